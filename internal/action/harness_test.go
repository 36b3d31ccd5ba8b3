package action_test

// The runner-contract harness: the action's phases, run in this process the way the GitHub runner
// runs a container action (internal/runner), against the in-memory Cloudflare API (internal/cfapitest)
// with every request and answer checked against Cloudflare's OpenAPI schemas (internal/apispec).

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/action"
	"github.com/cfmint/cfmint/internal/apispec"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
	"github.com/cfmint/cfmint/internal/runner/runnertest"
)

// noFallback is a trace fallback that refuses connections at once (port 9, discard, is closed
// on loopback), so a test whose trace fails never reaches past loopback.
const noFallback = "http://127.0.0.1:9/cdn-cgi/trace"

// phase runs the action's phases as main.go does, with hc as their HTTP client; opts change
// their Deps (shorter timeouts, for one).
func phase(hc *http.Client, opts ...func(*action.Deps)) runner.PhaseFunc {
	return func(ctx context.Context, argv0 string, lookup func(string) (string, bool), stdout io.Writer) (int, bool) {
		d := action.Deps{Lookup: lookup, Stdout: stdout, HTTPClient: hc}
		for _, o := range opts {
			o(&d)
		}
		return action.RunPhase(ctx, argv0, d)
	}
}

// loopbackClient is the phases' HTTP client in these tests: it talks to loopback only, whatever
// proxy the machine has set.
var loopbackClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

// api is the built-in Cloudflare API behind the OpenAPI checker.
type api struct {
	*cfapitest.Server
	fx  cfapitest.Fixture
	url string // API base URL, .../client/v4
	mu  sync.Mutex
	bad []apispec.Violation
}

func startAPI(t *testing.T, opts ...cfapitest.Option) *api {
	t.Helper()
	spec, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	a := &api{Server: cfapitest.New(opts...)}
	a.fx = a.Seed()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var unused unusedConns
	hs := &http.Server{Handler: spec.Middleware("/client/v4", a.Handler(), func(v apispec.Violation) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.bad = append(a.bad, v)
	}), ConnState: unused.track}
	go hs.Serve(ln)
	a.url = "http://" + ln.Addr().String() + "/client/v4"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		unused.close()
		hs.Shutdown(ctx)
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, v := range a.bad {
			// The spec documents no 5xx answers; those come from injected faults. And its error
			// codes start at 1000, while Cloudflare's rate-limit answer carries 971.
			if v.Status >= 500 || v.Status == http.StatusTooManyRequests {
				continue
			}
			t.Errorf("OpenAPI violation: %s", v)
		}
	})
	return a
}

// unusedConns tracks a server's connections that have not sent a request. Go's HTTP client
// dials a connection for a request that an idle one then serves, and keeps it for later;
// Shutdown waits 5s before it counts such a connection idle. The job is over when a test's
// cleanup shuts the server down, so those connections can go at once, while Shutdown still waits
// for requests in flight (whose OpenAPI checks may not have finished).
type unusedConns struct {
	mu sync.Mutex
	m  map[net.Conn]bool
}

// track is an http.Server's ConnState hook.
func (u *unusedConns) track(c net.Conn, s http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[net.Conn]bool{}
	}
	if s == http.StateNew {
		u.m[c] = true
	} else {
		delete(u.m, c)
	}
}

// close closes the connections that never sent a request.
func (u *unusedConns) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.m {
		c.Close()
	}
}

// job is one job on one runner, running the phases in this process.
func (a *api) job(t *testing.T, env map[string]string) *runner.Job {
	t.Helper()
	act, err := runner.LoadAction("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"GITHUB_ACTIONS":     "true",
		"GITHUB_REPOSITORY":  "octo-org/site",
		"GITHUB_RUN_ID":      "1001",
		"GITHUB_RUN_ATTEMPT": "1",
		"GITHUB_JOB":         "deploy",
		"GITHUB_WORKFLOW":    "ci",
		// The fallback trace would otherwise be Cloudflare's own: tests talk to loopback only.
		"CFMINT_TRACE_FALLBACK_URL": noFallback,
		"PATH":                      "/usr/bin:/bin",
	}
	for k, v := range env {
		base[k] = v
	}
	return runner.NewJob(runner.JobOptions{
		Dir:     t.TempDir(),
		Env:     base,
		Exec:    runner.InProcess(phase(loopbackClient)),
		Action:  act,
		Secrets: []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret},
	})
}

// step is a step with the account bootstrap token, pointed at the built-in API through the
// api-base-url input (the action reads no environment variable for it); with adds or changes
// inputs.
func (a *api) step(id string, with map[string]string) runner.Step {
	w := map[string]string{
		"bootstrap-token": a.fx.AccountBootstrap.Secret,
		"account-id":      a.fx.Account.ID,
		"api-base-url":    a.url,
	}
	for k, v := range with {
		w[k] = v
	}
	return runner.Step{ID: id, With: w}
}

func runMain(t *testing.T, j *runner.Job, s runner.Step) *runner.Phase {
	t.Helper()
	p, err := j.RunMain(context.Background(), s)
	if err != nil {
		t.Fatalf("main phase: %v", err)
	}
	return p
}

func runPost(t *testing.T, j *runner.Job, s runner.Step, main *runner.Phase) *runner.Phase {
	t.Helper()
	p, err := j.RunPost(context.Background(), s, main)
	if err != nil {
		t.Fatalf("post phase: %v", err)
	}
	if p == nil {
		t.Fatal("post phase did not run")
	}
	return p
}

// mustSucceed fails the test with the phase's log when it did not succeed.
func mustSucceed(t *testing.T, p *runner.Phase) {
	t.Helper()
	if p.Failed() {
		t.Fatalf("%s phase failed (exit %d, errors %v):\n%s\nstderr:\n%s", p.Name, p.ExitCode, p.Errors, p.Log, p.Stderr)
	}
}

// answer is what Cloudflare said to a call.
type answer struct {
	Status int
	Codes  []int
}

func (a answer) has(code int) bool {
	for _, c := range a.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// call uses a token the way a later step would, from the given loopback address.
func (a *api) call(t *testing.T, token, method, path, from string) answer {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"purge_everything":true,"type":"A","name":"x","content":"192.0.2.1","ttl":1}`)
	}
	req, err := http.NewRequest(method, a.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var env struct {
		Errors []struct {
			Code int `json:"code"`
		} `json:"errors"`
	}
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &env)
	out := answer{Status: res.StatusCode}
	for _, e := range env.Errors {
		out.Codes = append(out.Codes, e.Code)
	}
	return out
}

// tokensNamed lists the live tokens of the fake with that name.
func (a *api) tokensNamed(name string) []cfapitest.TokenInfo {
	var out []cfapitest.TokenInfo
	for _, tk := range a.Tokens() {
		if tk.Name == name {
			out = append(out, tk)
		}
	}
	return out
}

// creates counts the token-create requests the fake received.
func (a *api) creates() int {
	n := 0
	for _, r := range a.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/tokens") {
			n++
		}
	}
	return n
}

// checkSecrets is runnertest.CheckSecrets with the fixture's bootstrap tokens.
func checkSecrets(t *testing.T, a *api, secret string, phases ...*runner.Phase) {
	t.Helper()
	runnertest.CheckSecrets(t, []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret}, secret, phases...)
}
