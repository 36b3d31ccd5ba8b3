package action_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// r2 is the built-in API's S3 endpoint for an account and jurisdiction, on the test listener
// (the real one is https://<account>.r2.cloudflarestorage.com).
func (a *api) r2(accountID, jurisdiction string) string {
	return strings.TrimSuffix(a.url, "/client/v4") + "/r2/" + accountID + "/" + jurisdiction
}

// s3Put uploads an object with a request signed by AWS's own SigV4 signer, from the given
// loopback address, and returns the HTTP status.
func s3Put(t *testing.T, endpoint, bucket, key, body, accessKey, secretKey, from string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, strings.TrimRight(endpoint, "/")+"/"+bucket+"/"+key, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("x-amz-content-sha256", hash)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(), creds, req, hash, "s3", "auto", time.Now()); err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	res, err := (&http.Client{Transport: &http.Transport{DialContext: d.DialContext}}).Do(req)
	if err != nil {
		t.Fatalf("PUT %s/%s: %v", bucket, key, err)
	}
	res.Body.Close()
	return res.StatusCode
}
