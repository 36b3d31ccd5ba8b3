// Command cfmint mints a least-privilege, IP-pinned, short-lived Cloudflare API token for a CI job
// and revokes it afterwards. As a GitHub Action its image runs it as /cfmint-main (main phase) and
// /cfmint-post (post phase); from a terminal it takes a subcommand.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/cfmint/cfmint/internal/action"
	"github.com/cfmint/cfmint/internal/cli"
)

//go:embed action.yml
var actionYML []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := realMain(ctx, os.Args, os.Stdout, os.Stderr, hup)
	stop()
	os.Exit(code)
}

// caBundle is the image's CA bundle: distroless/static's (see the Dockerfile), which the
// action's phases trust alone.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// realMain picks the phase by the name the binary was started under: the image holds one binary
// under two names, and a name cannot go missing the way an argument or a state value can, so the
// post phase can never mint.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer, hup <-chan os.Signal) int {
	if action.IsPhase(args[0]) {
		code, _ := action.RunPhase(ctx, args[0], action.Deps{
			Lookup:     os.LookupEnv,
			Stdout:     stdout,
			HTTPClient: phaseClient(caBundle),
		})
		return code
	}
	return cli.Run(ctx, cli.Env{
		Args:       args[1:],
		Lookup:     os.LookupEnv,
		Stdout:     stdout,
		Stderr:     stderr,
		HTTPClient: newHTTPClient(nil),
		ActionYML:  actionYML,
		Hangup:     hup,
		Phase: func(ctx context.Context, argv0 string, lookup func(string) (string, bool), stdout io.Writer, hc *http.Client) (int, bool) {
			return action.RunPhase(ctx, argv0, action.Deps{Lookup: lookup, Stdout: stdout, HTTPClient: hc})
		},
	})
}

// newHTTPClient is the one HTTP client of the process. Timeouts are per request (set by cftoken)
// and per phase (a context deadline). Proxies come from HTTPS_PROXY and NO_PROXY (HTTP_PROXY
// would apply to http, which cfmint speaks only to loopback addresses, and Go sends those to no
// proxy): a self-hosted runner may have no other way out, and TLS keeps the proxy from reading
// or changing what passes through it; docs/security.md says what a planted proxy can still do.
// tlsConfig nil means Go's defaults, which trust the system's roots.
func newHTTPClient(tlsConfig *tls.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.TLSClientConfig = tlsConfig
	return &http.Client{Transport: t}
}

// phaseClient is the HTTP client of the action's phases: it verifies TLS against the CA bundle
// at path only. Go's system pool would also take the certificates that SSL_CERT_FILE and
// SSL_CERT_DIR name, and in a workflow an earlier step can set those through $GITHUB_ENV, then
// pass its own server off as Cloudflare's API and receive the bootstrap token. The CLI keeps the
// system pool: a terminal's environment is its user's.
func phaseClient(path string) *http.Client {
	return newHTTPClient(bundleTLS(path))
}

// bundleTLS trusts the certificates of the PEM bundle at path. When the bundle cannot be read
// every handshake fails, saying so: there is nothing else cfmint may trust.
func bundleTLS(path string) *tls.Config {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(path)
	if err == nil && !pool.AppendCertsFromPEM(pem) {
		err = errors.New("it holds no PEM certificate")
	}
	if err == nil {
		return &tls.Config{RootCAs: pool}
	}
	why := fmt.Errorf("cannot verify the server's certificate, because the image's CA bundle %s is unusable (%v); cfmint does not fall back to the certificates the environment names", path, err)
	return &tls.Config{
		// The usual verification would fail with "unknown authority", which hides the cause;
		// this check refuses every connection with the cause instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: why}
		},
	}
}
