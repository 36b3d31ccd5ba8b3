package worker

// The Worker's Go side, natively: the same code the wasm module runs, given a memory replay
// store and the built-in Cloudflare API and issuer over loopback. deploy/cloudflare's test runs
// the real bundle under workerd.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
)

const audience = "https://cfmint.test"

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func policy(iss *oidctest.Issuer, account string) string {
	return fmt.Sprintf(`audience: %s
rules:
  - name: site-deploy
    issuer: %s
    claims:
      repository_id: "892345611"
      repository_owner_id: "9919"
    account_id: %s
    allow:
      presets: [workers-deploy]
    max_ttl: 30m
`, audience, iss.URL(), account)
}

type world struct {
	cf    *cfapitest.Server
	fx    cfapitest.Fixture
	clock *cfapitest.Clock
	iss   *oidctest.Issuer
	api   string
}

func newWorld(t *testing.T) *world {
	clock := cfapitest.NewClock(time.Now())
	cf := cfapitest.New(cfapitest.WithClock(clock.Now))
	hs := httptest.NewServer(cf.Handler())
	t.Cleanup(hs.Close)
	return &world{cf: cf, fx: cf.Seed(), clock: clock, iss: oidctest.New(t), api: hs.URL + "/client/v4"}
}

func (w *world) worker(policyText string, log *logBuffer) *Worker {
	return New(Config{BootstrapToken: w.fx.AccountBootstrap.Secret, APIBase: w.api, Policy: []byte(policyText), Replay: &broker.MemoryReplayStore{}, Log: log})
}

func do(t *testing.T, h http.Handler, method, path, idToken, from string, body map[string]string) (int, map[string]any, string) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	r := httptest.NewRequest(method, path, bytes.NewReader(b))
	if idToken != "" {
		r.Header.Set("Authorization", "Bearer "+idToken)
	}
	if from != "" {
		r.Header.Set(ClientIPHeader, from)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out, rec.Body.String()
}

// TestBadConfig: a Worker cannot refuse to start, so it refuses every request instead, and logs
// every problem at once.
func TestBadConfig(t *testing.T) {
	t.Parallel()
	log := &logBuffer{}
	w := New(Config{Policy: []byte("audience: x\nrules: [{name: Bad Name}]\n"), APIBase: "ftp://x", LogLevel: "loud", Log: log})
	for _, path := range []string{"/healthz", "/v1/tokens"} {
		if code, _, raw := do(t, w, "GET", path, "", "192.0.2.1", nil); code != 503 || !strings.Contains(raw, "configuration is bad") {
			t.Errorf("%s: %d %s", path, code, raw)
		}
	}
	for _, want := range []string{"LOG_LEVEL", "no bootstrap token", "CLOUDFLARE_API_BASE_URL", "the bundled policy policy.yaml", "no replay store"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if err := w.Sweep(context.Background()); err == nil {
		t.Error("a sweep with a bad configuration succeeded")
	}
}

// TestWorker: a mint pinned to CF-Connecting-IP, its refusal without it, the policy checked
// against Cloudflare on the first request, and the sweep of the broker's expired tokens.
func TestWorker(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	log := &logBuffer{}
	w := wd.worker(policy(wd.iss, wd.fx.Account.ID), log)
	idt := func() string { return wd.iss.Token(oidctest.Claims{"aud": audience}) }

	if code, _, raw := do(t, w, "POST", "/v1/tokens", idt(), "", map[string]string{"preset": "workers-deploy"}); code != 400 || !strings.Contains(raw, ClientIPHeader) {
		t.Errorf("without %s: %d %s", ClientIPHeader, code, raw)
	}
	code, out, raw := do(t, w, "POST", "/v1/tokens", idt(), "203.0.113.9", map[string]string{"preset": "workers-deploy", "ttl": "5m"})
	if code != 201 {
		t.Fatalf("mint: %d %s\n%s", code, raw, log)
	}
	if f, _ := out["ip_filter"].([]any); len(f) != 1 || f[0] != "203.0.113.9/32" {
		t.Errorf("ip_filter = %v, want the CF-Connecting-IP address", out["ip_filter"])
	}
	if code, _, _ := do(t, w, "GET", "/metrics", "", "203.0.113.9", nil); code != 404 {
		t.Errorf("/metrics: %d, want 404", code)
	}
	id := out["id"].(string)
	// Not yet expired: the sweep leaves it.
	if err := w.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := wd.cf.Token(id); !ok {
		t.Fatal("the sweep deleted a live token")
	}
	wd.clock.Advance(6 * time.Minute)
	// Within the first sweep's hold of the lock, another (a cron retry) leaves the tokens to it.
	if err := w.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := wd.cf.Token(id); !ok || !strings.Contains(log.String(), "another sweep holds the lock") {
		t.Fatalf("a sweep within another's lock swept, or did not say why not:\n%s", log)
	}
	now := time.Now().Add(sweepHold)
	w.now = func() time.Time { return now }
	if err := w.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := wd.cf.Token(id); ok {
		t.Errorf("the sweep left an expired token:\n%s", log)
	}
	if !strings.Contains(log.String(), `"reason":"expired"`) || !strings.Contains(log.String(), `"deleted":1`) {
		t.Errorf("the sweep's audit lines do not say what it deleted and why:\n%s", log)
	}
	if strings.Contains(log.String(), out["token"].(string)) || strings.Contains(log.String(), wd.fx.AccountBootstrap.Secret) {
		t.Error("the log holds a secret")
	}
}

// TestPolicyNotCheckedOut: a policy that parses but does not resolve at Cloudflare refuses every
// request until a later try, a minute on, succeeds.
func TestPolicyNotCheckedOut(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	log := &logBuffer{}
	w := wd.worker(policy(wd.iss, "0123456789abcdef0123456789abcdef"), log)
	now := time.Now()
	w.now = func() time.Time { return now }
	if code, _, raw := do(t, w, "GET", "/healthz", "", "192.0.2.1", nil); code != 503 || !strings.Contains(raw, "policy did not check out") {
		t.Errorf("healthz: %d %s", code, raw)
	}
	if !strings.Contains(log.String(), `"event":"prepare"`) || !strings.Contains(log.String(), "0123456789abcdef0123456789abcdef") {
		t.Errorf("the log does not say why:\n%s", log)
	}
	calls := len(wd.cf.Requests())
	do(t, w, "GET", "/healthz", "", "192.0.2.1", nil)
	if n := len(wd.cf.Requests()); n != calls {
		t.Errorf("a refused policy was checked again within a minute (%d calls)", n-calls)
	}
	now = now.Add(retryPrepare)
	do(t, w, "GET", "/healthz", "", "192.0.2.1", nil)
	if n := len(wd.cf.Requests()); n == calls {
		t.Error("the policy was not checked again after a minute")
	}
}

// TestBudgetAcrossIsolates: each isolate keeps its own budget, but from Cloudflare's Ratelimit
// header, so what other isolates spent counts: with Cloudflare's limit at 40 per window, two
// isolates (each with a ceiling of 1200 of its own) are both refused before Cloudflare would
// lock the bootstrap token out, the reserve stays for revokes, and the revokes go through.
func TestBudgetAcrossIsolates(t *testing.T) {
	t.Parallel()
	clock := cfapitest.NewClock(time.Now())
	cf := cfapitest.New(cfapitest.WithClock(clock.Now), cfapitest.WithRateLimit(40, 5*time.Minute))
	hs := httptest.NewServer(cf.Handler())
	t.Cleanup(hs.Close)
	fx := cf.Seed()
	iss := oidctest.New(t)
	store := &broker.MemoryReplayStore{} // the one Durable Object every isolate shares
	isolate := func(log *logBuffer) *Worker {
		// No fair share binds here: the budget does.
		text := strings.Replace(policy(iss, fx.Account.ID), "    max_ttl: 30m\n", "    max_ttl: 30m\n    max_active: 100\n    max_mints: 100/1h\n", 1)
		return New(Config{BootstrapToken: fx.AccountBootstrap.Secret, APIBase: hs.URL + "/client/v4", Policy: []byte(text), Replay: store, Log: log, RateReserve: "10"})
	}
	logA, logB := &logBuffer{}, &logBuffer{}
	a, b := isolate(logA), isolate(logB)
	idt := func() string { return iss.Token(oidctest.Claims{"aud": audience}) }
	type minted struct{ id, ticket string }
	var tokens []minted
	mintAll := func(w *Worker, log *logBuffer) int {
		for n := 0; n < 40; n++ {
			code, out, raw := do(t, w, "POST", "/v1/tokens", idt(), "203.0.113.9", map[string]string{"preset": "workers-deploy", "ttl": "5m"})
			if code == 429 {
				if !strings.Contains(raw, "near Cloudflare's rate limit") {
					t.Fatalf("refused, but not by the budget: %s", raw)
				}
				return n
			}
			if code != 201 {
				t.Fatalf("mint: %d %s\n%s", code, raw, log)
			}
			tokens = append(tokens, minted{out["id"].(string), out["revoke_ticket"].(string)})
		}
		t.Fatalf("40 mints and no refusal, with Cloudflare's limit at 40:\n%s", log)
		return 0
	}
	na := mintAll(a, logA)
	nb := mintAll(b, logB) // b starts fresh: its ceiling of 1200 is not what binds it
	t.Logf("isolate A minted %d, then isolate B %d", na, nb)
	if na == 0 {
		t.Fatal("isolate A minted nothing")
	}
	for _, tk := range tokens {
		req := httptest.NewRequest("DELETE", "/v1/tokens/"+tk.id, nil)
		req.Header.Set("Authorization", "Bearer "+idt())
		req.Header.Set(ClientIPHeader, "203.0.113.9")
		req.Header.Set(broker.TicketHeader, tk.ticket)
		rec := httptest.NewRecorder()
		b.ServeHTTP(rec, req)
		if rec.Code != 204 {
			t.Errorf("revoke %s: %d %s", tk.id, rec.Code, rec.Body)
		}
	}
	for _, r := range cf.Requests() {
		if r.Status == 429 {
			t.Fatalf("Cloudflare answered 429 to %s %s: the budget let a call past its limit", r.Method, r.Path)
		}
	}
}

// TestWorkerShares: the rule's max_active holds across isolates that share the store, and a
// revoke frees the slot.
func TestWorkerShares(t *testing.T) {
	t.Parallel()
	wd := newWorld(t)
	store := &broker.MemoryReplayStore{}
	text := strings.Replace(policy(wd.iss, wd.fx.Account.ID), "    max_ttl: 30m\n", "    max_ttl: 30m\n    max_active: 1\n", 1)
	a := New(Config{BootstrapToken: wd.fx.AccountBootstrap.Secret, APIBase: wd.api, Policy: []byte(text), Replay: store, Log: &logBuffer{}})
	b := New(Config{BootstrapToken: wd.fx.AccountBootstrap.Secret, APIBase: wd.api, Policy: []byte(text), Replay: store, Log: &logBuffer{}})
	idt := func() string { return wd.iss.Token(oidctest.Claims{"aud": audience}) }
	body := map[string]string{"preset": "workers-deploy", "ttl": "5m"}
	code, out, raw := do(t, a, "POST", "/v1/tokens", idt(), "203.0.113.9", body)
	if code != 201 {
		t.Fatalf("mint: %d %s", code, raw)
	}
	if code, _, raw := do(t, b, "POST", "/v1/tokens", idt(), "203.0.113.9", body); code != 429 || !strings.Contains(raw, "max_active") {
		t.Fatalf("a second live token on another isolate: %d %s; want 429 naming max_active", code, raw)
	}
	if code, _, raw := do(t, b, "DELETE", "/v1/tokens/"+out["id"].(string), idt(), "203.0.113.9", nil); code != 204 {
		t.Fatalf("revoke: %d %s", code, raw)
	}
	if code, _, raw := do(t, b, "POST", "/v1/tokens", idt(), "203.0.113.9", body); code != 201 {
		t.Errorf("a mint after the revoke freed the slot: %d %s", code, raw)
	}
}

// TestBadRate: RATE_LIMIT and RATE_RESERVE are checked as serve's flags are.
func TestBadRate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ limit, reserve, want string }{
		{"many", "", `RATE_LIMIT: \"many\" is not a whole number`}, // as JSON writes it
		{"", "x", `RATE_RESERVE: \"x\" is not a whole number`},
		{"100", "100", "RATE_LIMIT 100 and RATE_RESERVE 100"},
		{"5", "", "RATE_LIMIT 5 and RATE_RESERVE 100"},
	} {
		log := &logBuffer{}
		wd := newWorld(t)
		w := New(Config{BootstrapToken: "x", APIBase: wd.api, Policy: []byte(policy(wd.iss, wd.fx.Account.ID)), Replay: &broker.MemoryReplayStore{}, Log: log, RateLimit: c.limit, RateReserve: c.reserve})
		if code, _, _ := do(t, w, "GET", "/healthz", "", "192.0.2.1", nil); code != 503 || !strings.Contains(log.String(), c.want) {
			t.Errorf("%q %q: %d, log lacks %q:\n%s", c.limit, c.reserve, code, c.want, log)
		}
	}
}
