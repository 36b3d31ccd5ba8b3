package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sync"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
)

// serveTB lets `demo --serve` run the test OIDC issuer for as long as it runs: what the issuer
// would fail a test for (a request for a path it does not serve) is printed instead.
type serveTB struct {
	mu       sync.Mutex
	w        io.Writer
	cleanups []func()
}

func (*serveTB) Helper() {}
func (s *serveTB) Errorf(f string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "cfmint demo: issuer: %s\n", fmt.Sprintf(f, a...))
}
func (*serveTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (s *serveTB) Cleanup(f func())        { s.cleanups = append(s.cleanups, f) }
func (s *serveTB) close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

// demoEndpoints is what `demo --serve --json` prints: one JSON object on one line.
type demoEndpoints struct {
	APIBaseURL     string `json:"api_base_url"`
	AccountID      string `json:"account_id"`
	BootstrapToken string `json:"bootstrap_token"`
	Issuer         string `json:"issuer"`
}

// demoServe is `cfmint demo --serve`: the built-in Cloudflare API and the GitHub-shaped issuer
// on loopback until ctx ends (Ctrl-C), for a broker and a client to be tried against. The
// bootstrap token it prints is the built-in API's own, good nowhere else: printing it is the
// point.
func demoServe(ctx context.Context, e Env, asJSON bool) int {
	srv := cfapitest.New()
	if err := srv.Start(); err != nil {
		fmt.Fprintf(e.Stderr, "cfmint demo: failed to start the built-in Cloudflare API: %v\n", err)
		return ExitFail
	}
	defer srv.Close()
	fx := srv.Seed()
	tb := &serveTB{w: e.Stderr}
	defer tb.close()
	iss := oidctest.New(tb)
	ep := demoEndpoints{APIBaseURL: srv.URL(), AccountID: fx.Account.ID, BootstrapToken: fx.AccountBootstrap.Secret, Issuer: iss.URL()}

	if asJSON {
		b, _ := json.Marshal(ep)
		fmt.Fprintln(e.Stdout, string(b))
	} else {
		example := iss.URL() + oidctest.TokenPath + "?audience=" + url.QueryEscape("http://127.0.0.1:18080") + "&repository_id=" + oidctest.Defaults["repository_id"]
		fmt.Fprintf(e.Stdout, `cfmint demo --serve: a built-in Cloudflare API and a GitHub-shaped OIDC issuer listen on
loopback until interrupted (Ctrl-C). Nothing leaves this machine.

  API base URL     %s
  account id       %s   (zones %s and %s)
  bootstrap token  %s
  issuer           %s

The bootstrap token is the built-in API's own, printed on purpose: it works nowhere else.

For a broker and a client against them, in another terminal:

  export CLOUDFLARE_API_BASE_URL=%s
  export CLOUDFLARE_ACCOUNT_ID=%s
  export CLOUDFLARE_BOOTSTRAP_TOKEN=%s
  export CFMINT_DEMO_ISSUER=%s

An ID token for chosen claims (the others are GitHub's shape; see docs/broker.md):

  curl -s '%s'
  -> {"value": "<ID token>"}
`, ep.APIBaseURL, ep.AccountID, fx.Zone.Name, fx.Zone2.Name, ep.BootstrapToken, ep.Issuer,
			ep.APIBaseURL, ep.AccountID, ep.BootstrapToken, ep.Issuer, example)
	}
	<-ctx.Done()
	if !asJSON {
		fmt.Fprintln(e.Stderr, "cfmint demo: stopped")
	}
	return ExitOK
}
