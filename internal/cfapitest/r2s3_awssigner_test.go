// This file signs the S3 tests' requests with the real AWS SigV4 signer, so
// the fake's own verifier is checked against AWS's implementation.

package cfapitest

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signerName names the signer in test logs.
const signerName = "aws-sdk-go-v2 signer/v4"

// signS3 signs req as an S3 client does: X-Amz-Content-Sha256 set to
// payloadHash and signed, the path signed as sent (S3's clients turn off the
// signer's second escaping of the path) unless escapeTwice.
func signS3(req *http.Request, akid, secret, payloadHash, region string, at time.Time, escapeTwice bool) error {
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = !escapeTwice })
	return signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, req, payloadHash, "s3", region, at)
}
