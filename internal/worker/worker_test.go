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
	if err := w.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := wd.cf.Token(id); ok {
		t.Errorf("the sweep left an expired token:\n%s", log)
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
