package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes cert as a PEM file and returns its path.
func writeCert(t *testing.T, path string, cert *x509.Certificate) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newCA is a fresh self-signed CA certificate that signed nothing the tests serve.
func newCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "not the server's CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPhaseClientRoots: the phases' HTTP client trusts the CA bundle it is built with, and
// nothing SSL_CERT_FILE or SSL_CERT_DIR name, which an earlier step of a job can set. Not
// parallel: it sets those variables for the whole process.
func TestPhaseClientRoots(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	plantedDir := t.TempDir()
	planted := writeCert(t, filepath.Join(plantedDir, "planted.pem"), srv.Certificate())
	t.Setenv("SSL_CERT_FILE", planted)
	t.Setenv("SSL_CERT_DIR", plantedDir)

	dir := t.TempDir()
	other := writeCert(t, filepath.Join(dir, "other.pem"), newCA(t))
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, bundle string
		want         string // "" when the request must succeed
	}{
		{"the bundle lacks the server's CA", other, "certificate signed by unknown authority"},
		{"the bundle holds the server's CA", planted, ""},
		{"no bundle", filepath.Join(dir, "missing.pem"), "the image's CA bundle " + filepath.Join(dir, "missing.pem") + " is unusable"},
		{"a bundle without certificates", empty, "holds no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := phaseClient(tc.bundle).Get(srv.URL)
			if err == nil {
				res.Body.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("GET: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("GET succeeded; want an error saying %q", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("GET: %v; want it to say %q", err, tc.want)
			default:
				var ce *tls.CertificateVerificationError
				if !errors.As(err, &ce) {
					t.Errorf("GET: %v is no *tls.CertificateVerificationError, which cftoken does not retry", err)
				}
			}
		})
	}

	// The control: the variables do reach Go's system pool, which the CLI's client uses, so
	// the cases above show the phases' client ignoring something that works. The pool is read
	// once per process: if something loaded it before this test set the variables, say so.
	pool, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Certificate().Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Logf("the system pool was loaded before SSL_CERT_FILE was set (%v); no control", err)
		return
	}
	res, err := newHTTPClient(nil).Get(srv.URL)
	if err != nil {
		t.Fatalf("the CLI's client, with the system pool holding the planted certificate: %v", err)
	}
	res.Body.Close()
}

// TestPhaseClientReadsBundleLate: the phases' client reads the CA bundle when the first request
// that speaks TLS is made, not when it is built, and not for plain HTTP to a loopback address
// (the built-in API, a trace server in tests): a phase pays for parsing 144 certificates only
// when it needs them.
func TestPhaseClientReadsBundleLate(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	bundle := filepath.Join(t.TempDir(), "ca.pem")
	c := phaseClient(bundle) // no bundle yet
	res, err := c.Get(plain.URL)
	if err != nil {
		t.Fatalf("plain HTTP before the bundle exists: %v; it needs no bundle", err)
	}
	res.Body.Close()
	writeCert(t, bundle, tlsSrv.Certificate())
	res, err = c.Get(tlsSrv.URL)
	if err != nil {
		t.Fatalf("HTTPS once the bundle exists: %v; the client read the bundle before it was needed", err)
	}
	res.Body.Close()

	// Read once: a bundle that changes afterwards changes nothing.
	writeCert(t, bundle, newCA(t))
	c.CloseIdleConnections() // a new handshake
	if res, err := c.Get(tlsSrv.URL); err != nil {
		t.Errorf("HTTPS after the bundle changed: %v; the client should keep what it read", err)
	} else {
		res.Body.Close()
	}
}
