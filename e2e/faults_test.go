package e2e

// The built-in API with faults injected (fapi), for the tests of the binary: cancellation, dual
// stack, load. The fault cases themselves run in process in internal/action (faults_test.go).

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/apispec"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
	"github.com/cfmint/cfmint/internal/runner/runnertest"
)

// Fault paths, below /client/v4 (the fixture's bootstrap is account-owned).
const (
	pathVerify = "GET /accounts/{account_id}/tokens/verify"
	pathTrace  = "/cdn-cgi/trace"
	pathCreate = "POST /accounts/{account_id}/tokens"
	pathDelete = "DELETE /accounts/{account_id}/tokens/{token_id}"
)

// fapi is the built-in API with a test middleware in front of it and a record of when each
// request arrived.
type fapi struct {
	*api
	handler  http.Handler // the whole stack, to serve on another address too
	amu      sync.Mutex
	arrivals []arrival
}

// arrival is one request as it reached the API.
type arrival struct {
	method, path string
	boot         bool // authenticated by a bootstrap token
	at           time.Time
}

// seqHeader numbers each request, so that an OpenAPI violation can be matched with the fake's
// log entry of the same exchange.
const seqHeader = "X-Cfmint-Test-Seq"

type syntheticKey struct{}

// markSynthetic says that a test middleware shaped this exchange's answer (or withheld it), so
// its OpenAPI violations are the test's doing.
func markSynthetic(r *http.Request) {
	if f, ok := r.Context().Value(syntheticKey{}).(*atomic.Bool); ok {
		f.Store(true)
	}
}

// startAPIWith is startAPI with mw (built once the API exists) between the OpenAPI checker and
// the fake. Violations in exchanges shaped by an injected fault or by mw are not reported.
func startAPIWith(t *testing.T, mw func(f *fapi) func(http.Handler) http.Handler, opts ...cfapitest.Option) *fapi {
	t.Helper()
	spec, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	a := &api{Server: cfapitest.New(opts...)}
	a.fx = a.Seed()
	f := &fapi{api: a}
	inner := a.Handler()
	if mw != nil {
		inner = mw(f)(inner)
	}
	var seq atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.arrive(r)
		id := strconv.FormatInt(seq.Add(1), 10)
		r.Header.Set(seqHeader, id)
		synthetic := new(atomic.Bool)
		r = r.WithContext(context.WithValue(r.Context(), syntheticKey{}, synthetic))
		var vs []apispec.Violation
		spec.Middleware("/client/v4", inner, func(v apispec.Violation) { vs = append(vs, v) }).ServeHTTP(w, r)
		// An answer cut short because the client left (a cancelled phase) is not the fake's.
		if len(vs) == 0 || synthetic.Load() || r.Context().Err() != nil || f.faulted(id) {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, v := range vs {
			// Cloudflare's rate-limit answer carries code 971, below the minimum of 1000 that
			// the spec's error schema sets: the spec is stricter than the API.
			if v.Status == http.StatusTooManyRequests && strings.Contains(v.Err.Error(), "got 971") {
				continue
			}
			a.bad = append(a.bad, v)
		}
	})
	f.handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	a.url = "http://" + ln.Addr().String() + "/client/v4"
	t.Cleanup(func() {
		a.Close() // releases requests held by a hang
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		hs.Close()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, v := range a.bad {
			t.Errorf("OpenAPI violation: %s", v)
		}
	})
	return f
}

func (f *fapi) arrive(r *http.Request) {
	auth := r.Header.Get("Authorization")
	boot := auth == "Bearer "+f.fx.AccountBootstrap.Secret || auth == "Bearer "+f.fx.UserBootstrap.Secret
	f.amu.Lock()
	f.arrivals = append(f.arrivals, arrival{r.Method, r.URL.Path, boot, time.Now()})
	f.amu.Unlock()
}

// faulted reports whether the fake applied an injected fault to request number id.
func (f *fapi) faulted(id string) bool {
	for _, r := range f.Requests() {
		if r.Header.Get(seqHeader) == id {
			return r.Fault != ""
		}
	}
	return true // never reached the fake: a middleware answered
}

// traceURL is the fake's own trace, used as the fallback so that no test reaches the internet.
func (f *fapi) traceURL() string {
	return strings.TrimSuffix(f.url, "/client/v4") + "/cdn-cgi/trace"
}

// leftovers are the tokens the fake holds besides the two bootstrap tokens.
func (f *fapi) leftovers() []cfapitest.TokenInfo {
	var out []cfapitest.TokenInfo
	for _, tk := range f.Tokens() {
		if tk.ID != f.fx.AccountBootstrap.ID && tk.ID != f.fx.UserBootstrap.ID {
			out = append(out, tk)
		}
	}
	return out
}

// newTokenIDs are the ids the fake's create answers carried, lost answers included.
func (f *fapi) newTokenIDs() []string {
	var ids []string
	for _, m := range runnertest.Created(f.Requests()) {
		ids = append(ids, m.ID)
	}
	return ids
}

// noBootstrap is a fault that matches the bootstrap token's requests and changes nothing: put
// before a fault meant for the new token only.
func (f *fapi) noBootstrap(path string) cfapitest.Fault {
	return cfapitest.Fault{Path: path, TokenID: f.fx.AccountBootstrap.ID}
}

func errorsOf(ps ...*runner.Phase) string {
	var b strings.Builder
	for _, p := range ps {
		for _, an := range p.Annotations {
			if an.Level == "error" {
				b.WriteString(an.Message + "\n")
			}
		}
	}
	return b.String()
}

func names(ts []cfapitest.TokenInfo) []string {
	var out []string
	for _, tk := range ts {
		out = append(out, tk.Name)
	}
	return out
}

// TestDualStackBinary runs the binary against an API served on both 127.0.0.1 and ::1 under
// the name localhost: the filter holds both addresses. It needs a localhost that resolves to both.
func TestDualStackBinary(t *testing.T) {
	t.Parallel()
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), "localhost")
	if err != nil || !slices.ContainsFunc(ips, func(a net.IPAddr) bool { return a.IP.Equal(net.IPv6loopback) }) {
		t.Skipf("localhost does not resolve to ::1 here (%v); TestDualStackInProcess covers dual stack with its own resolver", ips)
	}
	f := startAPIWith(t, nil)
	port := serveAlsoOnV6(t, f)
	j := f.job(t, map[string]string{"CFMINT_TRACE_FALLBACK_URL": f.traceURL()})
	s := f.step("cf", map[string]string{"preset": "workers-deploy", "api-base-url": "http://localhost:" + port + "/client/v4"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	checkDualFilter(t, f, m)
	mustSucceed(t, runPost(t, j, s, m))
}

// serveAlsoOnV6 serves f on [::1] at the port it has on 127.0.0.1, as a dual-stack host would,
// skipping the test when that port or IPv6 is unavailable.
func serveAlsoOnV6(t *testing.T, f *fapi) string {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimSuffix(f.url, "/client/v4"), "http://")
	_, port, _ := net.SplitHostPort(host)
	ln, err := net.Listen("tcp6", "[::1]:"+port)
	if err != nil {
		t.Skipf("cannot listen on [::1]:%s: %v", port, err)
	}
	hs := &http.Server{Handler: f.handler}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return port
}

// checkDualFilter: the filter, as output and as stored, is the runner's two addresses.
func checkDualFilter(t *testing.T, f *fapi, m *runner.Phase) {
	t.Helper()
	want := []string{"127.0.0.1/32", "::1/128"}
	got := strings.Split(m.Outputs["ip-filter"], ",")
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("ip-filter output %q, want both of %v", m.Outputs["ip-filter"], want)
	}
	tk, ok := f.Token(m.Outputs["token-id"])
	stored := slices.Clone(tk.IPIn)
	slices.Sort(stored)
	if !ok || !slices.Equal(stored, want) {
		t.Errorf("stored filter %v, want %v", tk.IPIn, want)
	}
}

// jobWith is api.job with another executor.
func (a *api) jobWith(t *testing.T, env map[string]string, exe runner.Executor) *runner.Job {
	t.Helper()
	act, err := runner.LoadAction("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo-org/site", "GITHUB_RUN_ID": "1001",
		"GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "deploy", "GITHUB_WORKFLOW": "ci",
		"PATH": "/usr/bin:/bin",
	}
	for k, v := range env {
		base[k] = v
	}
	return runner.NewJob(runner.JobOptions{
		Dir:     t.TempDir(),
		Env:     base,
		Exec:    exe,
		Action:  act,
		Secrets: []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret},
	})
}
