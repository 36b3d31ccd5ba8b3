package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/runner"
	"github.com/cfmint/cfmint/internal/trust"
)

// demoTB lets the demo run the test OIDC issuer: a failure of the issuer itself ends the demo.
type demoTB struct{ cleanups []func() }

func (*demoTB) Helper()                   {}
func (*demoTB) Errorf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (*demoTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (d *demoTB) Cleanup(f func())        { d.cleanups = append(d.cleanups, f) }
func (d *demoTB) close() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
}
func demoQuiet() *slog.Logger                    { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
func demoLine(out io.Writer, f string, a ...any) { fmt.Fprintf(out, f+"\n", a...) }

// demoKeyless tells the same story through a broker: the job holds no Cloudflare secret, only
// the ID token GitHub gives it, and the broker mints what its policy's rule allows.
func (e Env) demoKeyless(ctx context.Context, out io.Writer, srv *cfapitest.Server, fx cfapitest.Fixture, act *runner.Action, hc *http.Client, dir string) bool {
	tb := &demoTB{}
	defer tb.close()
	iss := oidctest.New(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		demoLine(out, "cfmint demo: %v", err)
		return false
	}
	url := "http://" + ln.Addr().String()
	policyText := fmt.Sprintf(`audience: %s
rules:
  - name: website-deploy
    issuer: %s
    claims:
      repository_id: "4242001"
      repository_owner_id: "4242"
    claim_patterns:
      ref: refs/heads/main
    account_id: %s
    allow:
      presets: [workers-deploy]
    max_ttl: 30m
`, url, iss.URL(), fx.Account.ID)
	pol, err := trust.Parse([]byte(policyText))
	if err != nil {
		demoLine(out, "cfmint demo: the demo's policy: %v", err)
		return false
	}
	v, err := broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: pol.Issuers(), Audience: pol.Audience(), HTTPClient: hc})
	if err != nil {
		demoLine(out, "cfmint demo: %v", err)
		return false
	}
	boot := fx.AccountBootstrap.Secret
	b, err := broker.New(broker.Options{
		Policy: pol, Verifier: v, Replay: &broker.MemoryReplayStore{},
		Tokens: cftoken.New(boot, cftoken.Options{BaseURL: srv.URL(), HTTPClient: hc}),
		Once:   cftoken.New(boot, cftoken.Options{BaseURL: srv.URL(), HTTPClient: hc, Attempts: 1}),
		Logger: demoQuiet(),
	})
	if err == nil {
		err = b.Prepare(ctx, pol)
	}
	if err != nil {
		demoLine(out, "cfmint demo: the broker: %v", err)
		return false
	}
	hs := &http.Server{Handler: b.Routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	section(out, "Keyless: the same step through a broker")
	fmt.Fprintf(out, "A broker (cfmint serve) listens on %s. It holds the bootstrap token and this\ntrust policy; the repository holds no Cloudflare secret at all:\n\n%s\n", url, indent(policyText))
	fmt.Fprintf(out, "The workflow:\n\n  permissions:\n    id-token: write\n  steps:\n    - uses: cfmint/cfmint@v1\n      with:\n        broker: %s\n        preset: workers-deploy\n", url)

	jdir := filepath.Join(dir, "keyless")
	if err := os.MkdirAll(jdir, 0o700); err != nil {
		demoLine(out, "cfmint demo: %v", err)
		return false
	}
	job := runner.NewJob(runner.JobOptions{
		Dir: jdir,
		Env: map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo-org/website", "GITHUB_REPOSITORY_ID": "4242001",
			"GITHUB_REPOSITORY_OWNER_ID": "4242", "GITHUB_RUN_ID": "4243", "GITHUB_RUN_ATTEMPT": "1",
			"GITHUB_JOB": "deploy", "GITHUB_ACTION": "cf", "GITHUB_WORKFLOW": "deploy", "GITHUB_REF": "refs/heads/main",
		},
		Exec:     e.inProcess(hc),
		Action:   act,
		IDTokens: iss,
	})
	step := runner.Step{ID: "cf", With: map[string]string{"broker": url, "preset": "workers-deploy"}}
	m, err := job.RunMain(ctx, step)
	if err != nil {
		demoLine(out, "cfmint demo: main phase: %v", err)
		return false
	}
	mask := func(s string) string {
		for _, v := range job.Masks() {
			if v != "" {
				s = strings.ReplaceAll(s, v, "***")
			}
		}
		return s
	}
	section(out, "Keyless main phase log")
	fmt.Fprint(out, indent(mask(m.Log)))
	section(out, "Keyless step summary")
	fmt.Fprint(out, indent(mask(m.Summary)))
	if m.ExitCode != 0 {
		return false
	}
	token := m.Outputs["token"]
	scripts := srv.URL() + "/accounts/" + fx.Account.ID + "/workers/scripts"
	section(out, "Using the broker's token")
	ok := try(out, hc, "list Workers scripts (granted)", scripts, token, 200)
	p, err := job.RunPost(ctx, step, m)
	if err != nil || p == nil {
		demoLine(out, "cfmint demo: post phase: %v", err)
		return false
	}
	section(out, "Keyless post phase log")
	fmt.Fprint(out, indent(mask(p.Log)))
	ok = try(out, hc, "list Workers scripts after the post phase", scripts, token, 401) && ok
	return ok && p.ExitCode == 0
}
