package action_test

// Faults the built-in API injects, and what must hold under each: the call is retried when it
// is idempotent and the fault can pass, or the phase fails with an error that names what failed;
// and after main and post nothing of the run is left, unless the run failed loudly naming the
// token id it could not delete.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/action"
	"github.com/cfmint/cfmint/internal/apispec"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
	"github.com/cfmint/cfmint/internal/runner/runnertest"
)

// Fault paths, below /client/v4 (the fixture's bootstrap is account-owned).
const (
	pathGroups = "GET /accounts/{account_id}/tokens/permission_groups"
	pathVerify = "GET /accounts/{account_id}/tokens/verify"
	pathZones  = "GET /zones"
	pathTrace  = "/cdn-cgi/trace"
	pathCreate = "POST /accounts/{account_id}/tokens"
	pathList   = "GET /accounts/{account_id}/tokens"
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
	var unused unusedConns
	hs := &http.Server{Handler: h, ConnState: unused.track}
	go hs.Serve(ln)
	a.url = "http://" + ln.Addr().String() + "/client/v4"
	t.Cleanup(func() {
		a.Close() // releases requests held by a hang
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		unused.close()
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

// at lists the arrival times of the requests matching a fault path pattern (method and path as
// in pathGroups); boot filters on the token: nil any, else bootstrap or not.
func (f *fapi) at(pattern string, boot *bool) []time.Time {
	method, path, _ := strings.Cut(pattern, " ")
	re := "^/client/v4" + path
	f.amu.Lock()
	defer f.amu.Unlock()
	var out []time.Time
	for _, a := range f.arrivals {
		if a.method != method || !matchPath(re, a.path) || (boot != nil && a.boot != *boot) {
			continue
		}
		out = append(out, a.at)
	}
	return out
}

// matchPath matches a path against "^/client/v4/a/{x}/b" where {x} is one segment.
func matchPath(pattern, path string) bool {
	ps := strings.Split(strings.TrimPrefix(pattern, "^"), "/")
	xs := strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

var (
	yesBoot = func() *bool { b := true; return &b }()
	notBoot = func() *bool { b := false; return &b }()
)

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

// faultCase is one fault, or a few, and what must follow from them.
type faultCase struct {
	name string
	slow bool // runs into post's 10 s timeout: skipped with -short
	with map[string]string
	env  map[string]string
	opts []cfapitest.Option
	mw   func(f *fapi) func(http.Handler) http.Handler
	// deps shortens the phases' timeouts, so that a case about a timeout does not wait out the
	// real one.
	deps func(*action.Deps)
	// before injects the faults main meets; between changes them before post.
	before  func(f *fapi)
	between func(t *testing.T, f *fapi, m *runner.Phase)
	// mainFails and postFails are the expected outcomes; errs must each appear in an error
	// annotation of main or post.
	mainFails, postFails bool
	errs                 []string
	// left is how many tokens may stay behind: each must be named by id in an error.
	left  int
	check func(t *testing.T, f *fapi, r *faultRun)
}

// faultRun is what a case produced.
type faultRun struct {
	main, post *runner.Phase
	elapsed    time.Duration // of main
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

func faultCases() []faultCase {
	serverError := func(status int) cfapitest.Fault { return cfapitest.Fault{Status: status} }
	with := func(f cfapitest.Fault, path string, times int) cfapitest.Fault {
		f.Path, f.Times = path, times
		return f
	}
	retryAfter := func(path string) cfapitest.Fault {
		return cfapitest.Fault{Path: path, Times: 1, Status: 429, RetryAfter: time.Second}
	}
	gapAtLeast := func(pattern string, boot *bool, d time.Duration) func(t *testing.T, f *fapi, r *faultRun) {
		return func(t *testing.T, f *fapi, r *faultRun) {
			at := f.at(pattern, boot)
			if len(at) < 2 {
				t.Fatalf("%s: %d requests, want a retry", pattern, len(at))
			}
			if gap := at[1].Sub(at[0]); gap < d {
				t.Errorf("%s retried %v after a 429 with Retry-After %v", pattern, gap, d)
			}
		}
	}
	requests := func(pattern string, boot *bool, want int) func(t *testing.T, f *fapi, r *faultRun) {
		return func(t *testing.T, f *fapi, r *faultRun) {
			if got := len(f.at(pattern, boot)); got != want {
				t.Errorf("%d requests %s, want %d", got, pattern, want)
			}
		}
	}
	all := func(checks ...func(t *testing.T, f *fapi, r *faultRun)) func(t *testing.T, f *fapi, r *faultRun) {
		return func(t *testing.T, f *fapi, r *faultRun) {
			for _, c := range checks {
				c(t, f, r)
			}
		}
	}
	nothingToRevoke := func(t *testing.T, f *fapi, r *faultRun) {
		if !strings.Contains(r.post.Log, "Nothing to revoke") {
			t.Errorf("post after an early failure:\n%s", r.post.Log)
		}
	}
	clear := func(t *testing.T, f *fapi, m *runner.Phase) { f.ClearFaults() }

	return []faultCase{
		// Lookups: retried.
		{name: "groups 503 twice", before: func(f *fapi) { f.InjectFault(with(serverError(503), pathGroups, 2)) },
			check: requests(pathGroups, nil, 3)},
		{name: "groups 429 with Retry-After", before: func(f *fapi) { f.InjectFault(retryAfter(pathGroups)) },
			check: gapAtLeast(pathGroups, nil, time.Second)},
		{name: "groups malformed JSON once", before: func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathGroups, Times: 1, Malformed: true}) },
			check: requests(pathGroups, nil, 2)},
		{name: "groups answer lost once", before: func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathGroups, Times: 1, LoseAnswer: true}) },
			check: requests(pathGroups, nil, 2)},
		{name: "groups 500 always", before: func(f *fapi) { f.InjectFault(with(serverError(500), pathGroups, 0)) },
			mainFails: true, errs: []string{"list permission groups", "500"},
			check: all(requests(pathGroups, nil, 4), nothingToRevoke)},
		{name: "groups 403 fails at once", before: func(f *fapi) {
			f.InjectFault(cfapitest.Fault{Path: pathGroups, Status: 403, Code: 9109, Message: "Unauthorized to access requested resource"})
		}, mainFails: true, errs: []string{"Account API Tokens Write"}, check: requests(pathGroups, nil, 1)},
		{name: "bootstrap verify 502 once", before: func(f *fapi) { f.InjectFault(with(serverError(502), pathVerify, 1)) },
			check: requests(pathVerify, yesBoot, 2)},
		{name: "zones 502 twice", with: map[string]string{"preset": "dns-edit", "zones": "example.com"},
			before: func(f *fapi) { f.InjectFault(with(serverError(502), pathZones, 2)) }, check: requests(pathZones, nil, 3)},
		{name: "zones 429 with Retry-After", with: map[string]string{"preset": "dns-edit", "zones": "example.com"},
			before: func(f *fapi) { f.InjectFault(retryAfter(pathZones)) }, check: gapAtLeast(pathZones, nil, time.Second)},
		{name: "latency on every call", before: func(f *fapi) { f.SetLatency(50 * time.Millisecond) }},

		// Create: never retried.
		{name: "create 500", before: func(f *fapi) { f.InjectFault(with(serverError(500), pathCreate, 0)) },
			mainFails: true, errs: []string{"failed to create the token", "500", "never retries a create", "re-run the job", "no token with its name was found"},
			// A 5xx may come from a gateway after Cloudflare stored the token: main looks for it by
			// name, and post looks once more.
			check: all(requests(pathCreate, nil, 1), func(t *testing.T, f *fapi, r *faultRun) {
				if !strings.Contains(r.post.Log, "0 token(s) named") {
					t.Errorf("post did not look again by name:\n%s", r.post.Log)
				}
			})},
		{name: "create 429", before: func(f *fapi) { f.InjectFault(retryAfter(pathCreate)) },
			mainFails: true, errs: []string{"failed to create the token", "429", "re-run the job"}, check: requests(pathCreate, nil, 1)},
		{name: "create 9109", before: func(f *fapi) {
			f.InjectFault(cfapitest.Fault{Path: pathCreate, Status: 403, Code: 9109, Message: "Unauthorized to access requested resource"})
		}, mainFails: true, errs: []string{"9109", "the bootstrap token lacks Account API Tokens Write for account"},
			check: all(requests(pathCreate, nil, 1), nothingToRevoke)},
		{name: "create malformed answer", before: func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathCreate, Malformed: true}) },
			mainFails: true, errs: []string{"failed to create the token", "no usable answer"}, check: requests(pathCreate, nil, 1)},
		{name: "create answer lost: main deletes the token", before: func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathCreate, LoseAnswer: true}) },
			mainFails: true, errs: []string{"no usable answer", "created anyway, and was deleted"},
			between: func(t *testing.T, f *fapi, m *runner.Phase) {
				if ids := f.newTokenIDs(); len(ids) != 1 {
					t.Fatalf("the fake created %d tokens, want 1", len(ids))
				}
				if left := f.leftovers(); len(left) != 0 {
					t.Errorf("main left %d tokens behind after its own cleanup", len(left))
				}
			},
			check: requests(pathCreate, nil, 1)},
		{name: "create answer lost and main's list fails: post deletes by name", before: func(f *fapi) {
			f.InjectFault(cfapitest.Fault{Path: pathCreate, LoseAnswer: true})
			f.InjectFault(with(serverError(500), pathList, 0))
		}, mainFails: true, errs: []string{"the post phase will look again for tokens named"},
			between: func(t *testing.T, f *fapi, m *runner.Phase) {
				if m.State["create-pending"] != "true" || m.State["name"] == "" {
					t.Errorf("state %v, want create-pending and the name", m.State)
				}
				if len(f.leftovers()) != 1 {
					t.Errorf("want the orphan still there before post")
				}
				f.ClearFaults()
				f.InjectFault(with(serverError(503), pathList, 1)) // and post's list is retried
			},
			check: func(t *testing.T, f *fapi, r *faultRun) {
				if !strings.Contains(r.post.Log, "interrupted while creating") {
					t.Errorf("post log:\n%s", r.post.Log)
				}
			}},
		{name: "create answer lost with revoke false: post still deletes the orphan", with: map[string]string{"revoke": "false"}, before: func(f *fapi) {
			f.InjectFault(cfapitest.Fault{Path: pathCreate, LoseAnswer: true})
			f.InjectFault(with(serverError(500), pathList, 0))
		}, mainFails: true, between: clear},

		// Verify of the new token.
		{name: "verify 503 twice", before: func(f *fapi) {
			f.InjectFault(f.noBootstrap(pathVerify))
			f.InjectFault(with(serverError(503), pathVerify, 2))
		}, check: requests(pathVerify, notBoot, 3)},
		{name: "verify after an activation delay", opts: []cfapitest.Option{cfapitest.WithActivationDelay(time.Second)},
			check: func(t *testing.T, f *fapi, r *faultRun) {
				if n := len(f.at(pathVerify, notBoot)); n < 2 {
					t.Errorf("%d verifies of a token valid only after 1s", n)
				}
			}},
		// revoke: false keeps only a token that was handed out: one that failed its checks, and
		// that main could not delete, is still deleted by post.
		{name: "verify says disabled, main's delete fails, revoke false: post deletes it", mw: verifyStatus("disabled"),
			with:      map[string]string{"revoke": "false"},
			before:    func(f *fapi) { f.InjectFault(with(serverError(500), pathDelete, 0)) },
			between:   clear,
			mainFails: true, errs: []string{`"disabled"`, "deleting token", "the post phase will try again"},
			check: func(t *testing.T, f *fapi, r *faultRun) {
				if !strings.Contains(r.post.Log, "Revoked token") {
					t.Errorf("post did not revoke the token main could not delete:\n%s", r.post.Log)
				}
			}},
		{name: "verify says disabled: main deletes the token", mw: verifyStatus("disabled"),
			mainFails: true, errs: []string{`"disabled"`, "was deleted"},
			check: func(t *testing.T, f *fapi, r *faultRun) {
				if n := len(f.at(pathVerify, notBoot)); n != 1 {
					t.Errorf("%d verifies, want 1: a disabled token does not become active", n)
				}
				if len(f.Deleted()) != 1 {
					t.Errorf("%d tokens deleted, want the new one", len(f.Deleted()))
				}
			}},
		{name: "verify 403: main deletes the token", before: func(f *fapi) {
			f.InjectFault(f.noBootstrap(pathVerify))
			f.InjectFault(cfapitest.Fault{Path: pathVerify, Status: 403, Code: 10000, Message: "Authentication error"})
		}, mainFails: true, errs: []string{"the new token: failed to verify", "10000", "was deleted"}, check: requests(pathVerify, notBoot, 1)},
		{name: "verify never succeeds: main deletes the token after the window", deps: func(d *action.Deps) { d.VerifyWindow = time.Second }, before: func(f *fapi) {
			f.InjectFault(f.noBootstrap(pathVerify))
			f.InjectFault(with(serverError(503), pathVerify, 0))
		}, mainFails: true, errs: []string{"did not become active in time", "was deleted"}},

		// Delete.
		{name: "delete fails once in post", between: func(t *testing.T, f *fapi, m *runner.Phase) {
			f.InjectFault(with(serverError(500), pathDelete, 1))
		}, check: requests(pathDelete, nil, 2)},
		{name: "delete 429 with Retry-After in post", between: func(t *testing.T, f *fapi, m *runner.Phase) {
			f.InjectFault(retryAfter(pathDelete))
		}, check: gapAtLeast(pathDelete, nil, time.Second)},
		// Post's deadline is its timeout input: a Retry-After longer than the time left ends
		// the retries at once, naming the token id.
		{name: "delete 429 with a Retry-After past post's timeout", with: map[string]string{"timeout": "10s"}, between: func(t *testing.T, f *fapi, m *runner.Phase) {
			f.InjectFault(cfapitest.Fault{Path: pathDelete, Status: 429, RetryAfter: time.Minute})
		}, postFails: true, left: 1, errs: []string{"429", "cfmint revoke"}, check: all(requests(pathDelete, nil, 1), func(t *testing.T, f *fapi, r *faultRun) {
			if want := "token " + r.main.Outputs["token-id"] + " may still be live"; !strings.Contains(errorsOf(r.post), want) {
				t.Errorf("post's errors do not say %q:\n%s", want, errorsOf(r.post))
			}
		})},
		{name: "delete answer lost in post", between: func(t *testing.T, f *fapi, m *runner.Phase) {
			f.InjectFault(cfapitest.Fault{Path: pathDelete, Times: 1, LoseAnswer: true})
		}, check: func(t *testing.T, f *fapi, r *faultRun) {
			if !strings.Contains(r.post.Log, "already gone") {
				t.Errorf("post log:\n%s", r.post.Log)
			}
		}},
		{name: "delete 403 in post fails at once, naming the token id", between: func(t *testing.T, f *fapi, m *runner.Phase) {
			f.InjectFault(cfapitest.Fault{Path: pathDelete, Status: 403, Code: 9109, Message: "Unauthorized to access requested resource"})
		}, postFails: true, left: 1, errs: []string{"9109", "cfmint revoke"}, check: requests(pathDelete, nil, 1)},
		// Post keeps trying until its timeout: giving up early would leave a live token.
		{name: "delete fails always in post: post retries until its timeout, then names the token id", slow: true, with: map[string]string{"timeout": "10s"}, between: func(t *testing.T, f *fapi, m *runner.Phase) {
			f.InjectFault(with(serverError(500), pathDelete, 0))
		}, postFails: true, left: 1, errs: []string{"failed to delete token", "still be live until", "cfmint revoke"},
			check: func(t *testing.T, f *fapi, r *faultRun) {
				if !strings.Contains(r.post.Summary, "failed to revoke") {
					t.Errorf("post summary %q does not say the revoke failed", r.post.Summary)
				}
				n := 0
				for _, q := range f.Requests() {
					if q.Method == http.MethodDelete {
						n++
					}
				}
				if n <= 4 {
					t.Errorf("post tried the delete %d times in 10s; it should keep trying until its timeout", n)
				}
			}},

		// Hangs, bounded by the phase's timeout (the timeout input, shortened below its 10 s
		// minimum through Deps).
		{name: "trace hangs past timeout", deps: shortTimeout,
			before:    func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathTrace, Hang: true}) },
			mainFails: true, errs: []string{"timeout", "within 2s"},
			check: all(requests(pathCreate, nil, 0), func(t *testing.T, f *fapi, r *faultRun) {
				if r.elapsed < 2*time.Second {
					t.Errorf("main gave up after %v, before its timeout", r.elapsed)
				}
			})},
		{name: "groups hang past timeout", deps: shortTimeout,
			before:    func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathGroups, Hang: true}) },
			mainFails: true, errs: []string{"timeout", "within 2s"}, check: requests(pathCreate, nil, 0)},
		{name: "create commits but its answer never comes", mw: commitThenHang, deps: func(d *action.Deps) { d.RequestTimeout = time.Second },
			mainFails: true, errs: []string{"failed to create the token"}},
	}
}

// shortTimeout gives the phases 2 s instead of their timeout input.
func shortTimeout(d *action.Deps) { d.Timeout = 2 * time.Second }

// verifyStatus answers the new token's verify with status (Cloudflare's answer for a token that
// exists but is not active), letting everything else through.
func verifyStatus(status string) func(f *fapi) func(http.Handler) http.Handler {
	return func(f *fapi) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth := r.Header.Get("Authorization")
				if !strings.HasSuffix(r.URL.Path, "/tokens/verify") || auth == "Bearer "+f.fx.AccountBootstrap.Secret {
					next.ServeHTTP(w, r)
					return
				}
				markSynthetic(r)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"success":true,"errors":[],"messages":[],"result":{"id":"%032x","status":%q}}`, 7, status)
			})
		}
	}
}

// commitThenHang lets the create take effect, then never answers: a connection that stalls after
// Cloudflare stored the token. The client's own per-request timeout ends the wait.
func commitThenHang(f *fapi) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/tokens") {
				next.ServeHTTP(w, r)
				return
			}
			markSynthetic(r)
			next.ServeHTTP(httptest.NewRecorder(), r)
			<-r.Context().Done()
		})
	}
}

// runFaultCase runs main and post under a case's faults and checks what every case must hold.
func runFaultCase(t *testing.T, c faultCase, env map[string]string) (*fapi, *faultRun) {
	t.Helper()
	f := startAPIWith(t, c.mw, c.opts...)
	if c.before != nil {
		c.before(f)
	}
	jobEnv := map[string]string{"CFMINT_TRACE_FALLBACK_URL": f.traceURL()}
	for k, v := range c.env {
		jobEnv[k] = v
	}
	for k, v := range env {
		jobEnv[k] = v
	}
	j := f.job(t, jobEnv)
	if c.deps != nil {
		j = f.jobWith(t, jobEnv, runner.InProcess(phase(loopbackClient, c.deps)))
	}
	w := map[string]string{"preset": "workers-deploy"}
	for k, v := range c.with {
		w[k] = v
	}
	s := f.step("cf", w)
	// Bounded time: whatever the fault, main ends on its own well within the runner's patience
	// (its timeout input, 2m by default, plus cleanup); a phase the runner had to cancel did not.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	m, err := j.RunMain(ctx, s)
	if err != nil {
		t.Fatalf("main phase: %v", err)
	}
	if m.Cancelled {
		t.Fatalf("main did not end within 4 minutes: its timeout did not bound it\n%s", m.Log)
	}
	r := &faultRun{main: m, elapsed: time.Since(start)}
	if c.mainFails {
		if m.ExitCode != 1 || errorsOf(m) == "" {
			t.Fatalf("main: exit %d, errors %q; want exit 1 with an error\n%s", m.ExitCode, errorsOf(m), m.Log)
		}
		if m.Outputs["token"] != "" || m.Env["CLOUDFLARE_API_TOKEN"] != "" {
			t.Error("a failed main handed out a token")
		}
	} else {
		mustSucceed(t, m)
	}
	if c.between != nil {
		c.between(t, f, m)
	}
	r.post = runPost(t, j, s, m)
	if c.postFails {
		if r.post.ExitCode != 1 || errorsOf(r.post) == "" {
			t.Errorf("post: exit %d, errors %q; want exit 1 with an error\n%s", r.post.ExitCode, errorsOf(r.post), r.post.Log)
		}
	} else {
		mustSucceed(t, r.post)
	}
	errs := errorsOf(m, r.post)
	for _, want := range c.errs {
		if !strings.Contains(errs, want) {
			t.Errorf("no error says %q; errors:\n%s", want, errs)
		}
	}
	left := f.leftovers()
	if len(left) > c.left {
		t.Errorf("%d tokens left behind, want at most %d: %v", len(left), c.left, names(left))
	}
	for _, tk := range left {
		if !strings.Contains(errorsOf(r.post), tk.ID) {
			t.Errorf("token %s (%s) was left behind, and post's errors do not name it:\n%s", tk.ID, tk.Name, errorsOf(r.post))
		}
	}
	if c.check != nil {
		c.check(t, f, r)
	}
	return f, r
}

func names(ts []cfapitest.TokenInfo) []string {
	var out []string
	for _, tk := range ts {
		out = append(out, tk.Name)
	}
	return out
}

// TestFaults runs every fault case. The slow ones run with RUNNER_DEBUG=1 and have their
// output scanned for secrets here, so that they run once; TestSecretsUnderFaults does the same
// for the others.
func TestFaults(t *testing.T) {
	t.Parallel()
	for _, c := range faultCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if !c.slow {
				runFaultCase(t, c, nil)
				return
			}
			if testing.Short() {
				t.Skip("slow: runs into a timeout")
			}
			f, r := runFaultCase(t, c, map[string]string{"RUNNER_DEBUG": "1"})
			scanSecrets(t, f, r.main, r.post)
		})
	}
}

// TestTraceFallback: the API host's trace fails, the fallback answers: its address is the filter,
// and a warning says where it came from.
func TestTraceFallback(t *testing.T) {
	t.Parallel()
	f := startAPIWith(t, nil)
	f.InjectFault(cfapitest.Fault{Path: pathTrace, Status: 503})
	var hits atomic.Int32
	fb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "fl=1\nh=www.cloudflare.com\nip=198.51.100.7\nts=1\n")
	}))
	t.Cleanup(fb.Close)
	j := f.job(t, map[string]string{"CFMINT_TRACE_FALLBACK_URL": fb.URL + "/cdn-cgi/trace"})
	s := f.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if m.Outputs["ip-filter"] != "198.51.100.7/32" || hits.Load() == 0 {
		t.Errorf("ip-filter %q after %d fallback requests, want the fallback's 198.51.100.7/32", m.Outputs["ip-filter"], hits.Load())
	}
	if !hasAnnotation(m, "warning", "fallback") || !hasAnnotation(m, "warning", fb.URL) {
		t.Errorf("no warning naming the fallback: %+v", m.Annotations)
	}
	mustSucceed(t, runPost(t, j, s, m))
	if left := f.leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", names(left))
	}
}

// TestTraceBothFail: no address from the API host nor the fallback: nothing is minted.
func TestTraceBothFail(t *testing.T) {
	t.Parallel()
	f := startAPIWith(t, nil)
	f.InjectFault(cfapitest.Fault{Path: pathTrace, Status: 503})
	var hits atomic.Int32
	fb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusBadGateway)
	}))
	t.Cleanup(fb.Close)
	j := f.job(t, map[string]string{"CFMINT_TRACE_FALLBACK_URL": fb.URL + "/cdn-cgi/trace"})
	s := f.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	if m.ExitCode != 1 || !hasAnnotation(m, "error", "never falls back to an unfiltered token") || !hasAnnotation(m, "error", "503") || !hasAnnotation(m, "error", "502") {
		t.Errorf("exit %d, errors:\n%s", m.ExitCode, errorsOf(m))
	}
	if f.creates() != 0 || hits.Load() == 0 {
		t.Errorf("%d creates, %d fallback requests; want 0 and some", f.creates(), hits.Load())
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if !strings.Contains(p.Log, "Nothing to revoke") {
		t.Errorf("post:\n%s", p.Log)
	}
}

// TestProxyWarning: HTTPS_PROXY set says the egress address may differ; the mint still works
// (loopback is never proxied).
func TestProxyWarning(t *testing.T) {
	t.Parallel()
	f := startAPIWith(t, nil)
	j := f.job(t, map[string]string{"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost", "CFMINT_TRACE_FALLBACK_URL": f.traceURL()})
	s := f.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if !hasAnnotation(m, "warning", "HTTPS_PROXY is set") {
		t.Errorf("no proxy warning: %+v", m.Annotations)
	}
	mustSucceed(t, runPost(t, j, s, m))
	if left := f.leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", names(left))
	}
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

// TestDualStackInProcess runs the phases in this process with a dialer that maps the API's
// host name to 127.0.0.1 and ::1, as a dual-stack runner resolves api.cloudflare.com: the token
// is pinned to both addresses and works from both. The name is localhost, the one name http may
// go to, whatever this machine's own resolver says of it.
func TestDualStackInProcess(t *testing.T) {
	t.Parallel()
	f := startAPIWith(t, nil)
	port := serveAlsoOnV6(t, f)
	var d net.Dialer
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, p, err := net.SplitHostPort(addr)
		if err == nil && host == "localhost" {
			addr = net.JoinHostPort("127.0.0.1", p)
			if network == "tcp6" {
				addr = net.JoinHostPort("::1", p)
			}
		}
		return d.DialContext(ctx, network, addr)
	}}}
	j := f.jobWith(t, map[string]string{"CFMINT_TRACE_FALLBACK_URL": f.traceURL()}, runner.InProcess(phase(hc)))
	s := f.step("cf", map[string]string{"preset": "workers-deploy", "api-base-url": "http://localhost:" + port + "/client/v4"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	checkDualFilter(t, f, m)
	token := m.Outputs["token"]
	scripts := "/accounts/" + f.fx.Account.ID + "/workers/scripts"
	if got := f.call(t, token, http.MethodGet, scripts, "127.0.0.1"); got.Status != 200 {
		t.Errorf("from 127.0.0.1: %+v", got)
	}
	if got := f.call(t, token, http.MethodGet, scripts, "127.0.0.2"); got.Status != 403 {
		t.Errorf("from 127.0.0.2: %+v, want 403", got)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://[::1]:"+port+"/client/v4"+scripts, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("from ::1: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	mustSucceed(t, runPost(t, j, s, m))
	if left := f.leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", names(left))
	}
}

// jobWith is api.job with another executor.
func (a *api) jobWith(t *testing.T, env map[string]string, exe runner.Executor) *runner.Job {
	t.Helper()
	act, err := runner.LoadAction("../../action.yml")
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
