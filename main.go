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
	"net/url"
	"os"
	"os/signal"
	"sync"
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
//
// The bundle (144 certificates, about 1.4 ms to parse) is read when the first request that needs
// it is made, not at start: a dry run, or a phase that talks only to a loopback address, never
// parses it. The hook is the transport's Proxy function, which the transport calls for every
// request before it dials or reuses a connection; the action type-asserts the client's transport
// to *http.Transport (for the proxy it reports, and to ask both address families), so it cannot
// be wrapped. Until that first request the pool is empty, so nothing is trusted before it.
func phaseClient(path string) *http.Client {
	c := newHTTPClient(nil)
	t := c.Transport.(*http.Transport)
	roots := x509.NewCertPool()
	load := sync.OnceValue(func() error { return loadBundle(roots, path) })
	t.TLSClientConfig = &tls.Config{RootCAs: roots}
	proxy := t.Proxy
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		p, err := proxy(r)
		if err == nil && (r.URL.Scheme == "https" || p != nil && p.Scheme == "https") {
			// Every connection that will speak TLS is for such a request; the pool is filled
			// before its handshake, and never changes after.
			err = load()
		}
		return p, err
	}
	return c
}

// loadBundle adds the certificates of the PEM bundle at path to roots. When the bundle cannot be
// read, every request that needs it fails, saying so: there is nothing else cfmint may trust. The
// error is a *tls.CertificateVerificationError, which cftoken does not retry; the usual
// verification would fail with "unknown authority", which hides the cause.
func loadBundle(roots *x509.CertPool, path string) error {
	pem, err := os.ReadFile(path)
	if err == nil && !roots.AppendCertsFromPEM(pem) {
		err = errors.New("it holds no PEM certificate")
	}
	if err == nil {
		return nil
	}
	return &tls.CertificateVerificationError{Err: fmt.Errorf("cannot verify the server's certificate, because the image's CA bundle %s is unusable (%v); cfmint does not fall back to the certificates the environment names", path, err)}
}
