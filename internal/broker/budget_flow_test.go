package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/redistest"
	"github.com/cfmint/cfmint/internal/trust"
)

const flowAudience = "https://cfmint.test"

// Two repositories, each with a rule of its own.
const (
	repoA = "892345611"
	repoB = "555000111"
)

// flow is a broker serving in-process, with a budget, against the fake Cloudflare API.
type flow struct {
	cf     *cfapitest.Server
	fx     cfapitest.Fixture
	iss    *oidctest.Issuer
	budget *Budget
	srv    *Server
	url    string
	api    string // the fake's API base
}

// newFlow starts a broker whose budget has ceiling and reserve, against a fake with opts; replay
// nil: the memory store.
func newFlow(t *testing.T, ceiling, reserve int, replay ReplayStore, opts ...cfapitest.Option) *flow {
	t.Helper()
	cf := cfapitest.New(opts...)
	fx := cf.Seed()
	api := httptest.NewServer(cf.Handler())
	t.Cleanup(api.Close)
	f := &flow{cf: cf, fx: fx, iss: oidctest.New(t), api: api.URL + "/client/v4"}
	return f.replica(t, ceiling, reserve, replay)
}

// replica is another broker on the same fake and issuer, with a budget of its own.
func (f *flow) replica(t *testing.T, ceiling, reserve int, replay ReplayStore) *flow {
	t.Helper()
	g := *f
	pol, err := trust.Parse([]byte(fmt.Sprintf(`audience: %s
rules:
  - name: deploy
    issuer: %s
    claims: {repository_id: "%s"}
    account_id: %s
    allow:
      presets: [workers-deploy]
      permissions: [DNS Read]
      zones: [example.com, missing.example, gone.example]
  - name: other
    issuer: %s
    claims: {repository_id: "%s"}
    account_id: %s
    allow: {presets: [workers-deploy]}
`, flowAudience, f.iss.URL(), repoA, f.fx.Account.ID, f.iss.URL(), repoB, f.fx.Account.ID)))
	if err != nil {
		t.Fatal(err)
	}
	ver, err := NewVerifier(context.Background(), VerifierOptions{Issuers: pol.Issuers(), Audience: pol.Audience(), HTTPClient: f.iss.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if replay == nil {
		replay = &MemoryReplayStore{}
	}
	g.budget = NewBudget(ceiling, 5*time.Minute, reserve)
	m := NewMetrics(g.budget)
	hc := &http.Client{Transport: Instrument(http.DefaultTransport, m, g.budget)}
	secret := f.fx.AccountBootstrap.Secret
	tokens := cftoken.New(secret, cftoken.Options{BaseURL: f.api, HTTPClient: hc, Backoff: time.Millisecond})
	once := cftoken.New(secret, cftoken.Options{BaseURL: f.api, HTTPClient: hc, Attempts: 1})
	g.srv, err = New(Options{Policy: pol, Verifier: ver, Replay: replay, Tokens: tokens, Once: once, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Budget: g.budget, Metrics: m, TicketKey: TicketKey(secret)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Prepare(context.Background(), pol); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g.srv.Routes())
	t.Cleanup(hs.Close)
	g.url = hs.URL
	return &g
}

// claims are a job of repo's, in run.
func claims(repo, run string) oidctest.Claims {
	return oidctest.Claims{"aud": flowAudience, "repository_id": repo, "run_id": run}
}

type answer struct {
	status     int
	retryAfter string
	body       map[string]any
}

func (f *flow) do(t *testing.T, method, path string, c oidctest.Claims, body string, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+f.iss.Token(c))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After")}
	_ = json.NewDecoder(res.Body).Decode(&a.body)
	return a
}

func (f *flow) mint(t *testing.T, c oidctest.Claims, body string) answer {
	t.Helper()
	return f.do(t, http.MethodPost, "/v1/tokens", c, body)
}

func (f *flow) revoke(t *testing.T, c oidctest.Claims, id, ticket string) answer {
	t.Helper()
	if ticket == "" {
		return f.do(t, http.MethodDelete, "/v1/tokens/"+id, c, "")
	}
	return f.do(t, http.MethodDelete, "/v1/tokens/"+id, c, "", TicketHeader, ticket)
}

// calls is how many requests the fake has answered.
func (f *flow) calls() int { return len(f.cf.Requests()) }

// noLimitHit fails the test if the fake answered any request 429, or some broker token is left.
func (f *flow) noLimitHit(t *testing.T) {
	t.Helper()
	for _, r := range f.cf.Requests() {
		if r.Status == http.StatusTooManyRequests {
			t.Errorf("Cloudflare answered %s %s with 429: the broker passed the rate limit", r.Method, r.Path)
		}
	}
}

func (f *flow) brokerTokensLeft() []string {
	var left []string
	for _, tk := range f.cf.Tokens() {
		if strings.HasPrefix(tk.Name, "cfmint-broker:") {
			left = append(left, tk.Name)
		}
	}
	return left
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

const deployBody = `{"preset":"workers-deploy"}`

// A storm of mints against a limit lower than --rate-limit: the broker keeps to Cloudflare's
// count, refuses in time with Retry-After, never gets a 429 from Cloudflare nor answers 502, and
// every token it handed out can be revoked.
func TestBudgetStormBelowTheFlag(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil, cfapitest.WithRateLimit(40, time.Hour))
	var mu sync.Mutex
	var minted []answer
	refused := 0
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			a := f.mint(t, claims(repoA, fmt.Sprint(1000+i)), deployBody)
			mu.Lock()
			defer mu.Unlock()
			switch a.status {
			case http.StatusCreated:
				a.body["run"] = fmt.Sprint(1000 + i)
				minted = append(minted, a)
			case http.StatusTooManyRequests:
				refused++
				if a.retryAfter == "" {
					t.Errorf("a 429 without Retry-After: %v", a.body)
				}
			default:
				t.Errorf("mint answered %d: %v", a.status, a.body)
			}
		})
	}
	wg.Wait()
	if len(minted) == 0 || refused == 0 {
		t.Fatalf("%d minted and %d refused: the storm did not reach the limit it is about", len(minted), refused)
	}
	for _, a := range minted {
		id, ticket := a.body["id"].(string), a.body["revoke_ticket"].(string)
		if r := f.revoke(t, claims(repoA, a.body["run"].(string)), id, ticket); r.status != http.StatusNoContent {
			t.Errorf("revoke of %s answered %d: %v", id, r.status, r.body)
		}
	}
	f.noLimitHit(t)
	if left := f.brokerTokensLeft(); len(left) > 0 {
		t.Errorf("%d tokens left behind: %v", len(left), left)
	}
	t.Logf("%d minted, %d refused, %d Cloudflare calls of 40", len(minted), refused, f.calls())
}

// Another user of the same Cloudflare user spends most of the window behind the broker's back:
// the broker learns it from Cloudflare's count, refuses with Retry-After before the limit, and
// still revokes what it minted.
func TestBudgetAnotherConsumer(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil, cfapitest.WithRateLimit(40, time.Hour))
	_, secret, err := f.cf.IssueToken(cfapitest.TokenSpec{Name: "dashboard script", OwnerAccount: f.fx.Account.ID, Policies: []cfapitest.Policy{{
		Groups:    []string{"Zone Read"},
		Resources: map[string]any{"com.cloudflare.api.account." + f.fx.Account.ID: map[string]any{"com.cloudflare.api.account.zone.*": "*"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 25 {
		req, _ := http.NewRequest(http.MethodGet, f.api+"/accounts/"+f.fx.Account.ID+"/tokens/verify", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	var minted []answer
	var throttled answer
	for i := range 10 {
		a := f.mint(t, claims(repoA, fmt.Sprint(2000+i)), deployBody)
		if a.status == http.StatusCreated {
			a.body["run"] = fmt.Sprint(2000 + i)
			minted = append(minted, a)
			continue
		}
		throttled = a
		break
	}
	if throttled.status != http.StatusTooManyRequests || throttled.retryAfter == "" {
		t.Fatalf("after %d mints the broker answered %d (Retry-After %q): %v; want 429 with Retry-After", len(minted), throttled.status, throttled.retryAfter, throttled.body)
	}
	for _, a := range minted {
		if r := f.revoke(t, claims(repoA, a.body["run"].(string)), a.body["id"].(string), a.body["revoke_ticket"].(string)); r.status != http.StatusNoContent {
			t.Errorf("revoke answered %d: %v", r.status, r.body)
		}
	}
	f.noLimitHit(t)
	if left := f.brokerTokensLeft(); len(left) > 0 {
		t.Errorf("tokens left behind: %v", left)
	}
}

// One repository floods the broker with revokes of ids that are nobody's: the broker stops them
// short of the limit, and another repository still revokes its own token.
func TestBudgetRevokeFlood(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil, cfapitest.WithRateLimit(40, time.Hour))
	mine := f.mint(t, claims(repoB, "3000"), deployBody)
	if mine.status != http.StatusCreated {
		t.Fatalf("mint answered %d: %v", mine.status, mine.body)
	}
	refused := 0
	for range 70 {
		a := f.revoke(t, claims(repoA, "3001"), randomID(), "")
		switch a.status {
		case http.StatusNoContent:
		case http.StatusTooManyRequests:
			refused++
			if a.retryAfter == "" {
				t.Errorf("a 429 without Retry-After")
			}
		default:
			t.Fatalf("revoke of a random id answered %d: %v", a.status, a.body)
		}
	}
	if refused == 0 {
		t.Fatalf("70 revokes of random ids on a limit of 40 were all made")
	}
	if r := f.revoke(t, claims(repoB, "3000"), mine.body["id"].(string), mine.body["revoke_ticket"].(string)); r.status != http.StatusNoContent {
		t.Errorf("the other repository's revoke of its own token answered %d: %v", r.status, r.body)
	}
	f.noLimitHit(t)
	if left := f.brokerTokensLeft(); len(left) > 0 {
		t.Errorf("tokens left behind: %v", left)
	}
}

// With its ticket a revoke is one DELETE; a ticket that does not verify falls back to the name
// check; a valid ticket of another token or run is refused without a call.
func TestRevokeTicket(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil)
	run := claims(repoA, "4000")
	a := f.mint(t, run, deployBody)
	b := f.mint(t, run, deployBody)
	other := f.mint(t, claims(repoB, "4001"), deployBody)
	for _, x := range []answer{a, b, other} {
		if x.status != http.StatusCreated || x.body["revoke_ticket"] == "" {
			t.Fatalf("mint answered %d: %v", x.status, x.body)
		}
	}
	ticket := func(x answer) string { return x.body["revoke_ticket"].(string) }
	id := func(x answer) string { return x.body["id"].(string) }

	n := f.calls()
	if r := f.revoke(t, run, id(a), ticket(a)); r.status != http.StatusNoContent {
		t.Fatalf("revoke with the ticket answered %d: %v", r.status, r.body)
	}
	if got := f.cf.Requests()[n:]; len(got) != 1 || got[0].Method != http.MethodDelete {
		t.Errorf("a revoke with its ticket made %d calls (%v), want one DELETE", len(got), got)
	}

	// Another token's ticket, or the other repository's: refused, no call.
	n = f.calls()
	if r := f.revoke(t, run, id(b), ticket(other)); r.status != http.StatusForbidden {
		t.Errorf("revoke with another token's ticket answered %d: %v; want 403", r.status, r.body)
	}
	if r := f.revoke(t, claims(repoA, "4002"), id(b), ticket(b)); r.status != http.StatusForbidden {
		t.Errorf("revoke from another run with the token's ticket answered %d: %v; want 403", r.status, r.body)
	}
	if got := f.calls() - n; got != 0 {
		t.Errorf("refused tickets made %d calls to Cloudflare, want 0", got)
	}

	// Altered: the name check decides, as without a ticket.
	tb := ticket(b)
	altered := tb[:len(tb)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(tb, "AA")]
	n = f.calls()
	if r := f.revoke(t, run, id(b), altered); r.status != http.StatusNoContent {
		t.Errorf("revoke with an altered ticket answered %d: %v; want the name check's 204", r.status, r.body)
	}
	if got := f.calls() - n; got != 2 {
		t.Errorf("a revoke with an altered ticket made %d calls, want 2 (GET, DELETE)", got)
	}
	forged := f.revoke(t, claims(repoA, "4003"), id(other), altered)
	if forged.status != http.StatusForbidden {
		t.Errorf("another run's revoke of repo B's token with a forged ticket answered %d: %v; want the name check's 403", forged.status, forged.body)
	}
	if r := f.revoke(t, claims(repoB, "4001"), id(other), ticket(other)); r.status != http.StatusNoContent {
		t.Errorf("revoke answered %d: %v", r.status, r.body)
	}
	if left := f.brokerTokensLeft(); len(left) > 0 {
		t.Errorf("tokens left behind: %v", left)
	}
}

// A revoke by nonce deletes what the nonce's mints made by id, without listing.
func TestRevokeNonceByMap(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil)
	run := claims(repoA, "5000")
	if a := f.mint(t, run, `{"preset":"workers-deploy","nonce":"abcdef0123456789"}`); a.status != http.StatusCreated {
		t.Fatalf("mint answered %d: %v", a.status, a.body)
	}
	n := f.calls()
	r := f.do(t, http.MethodDelete, "/v1/tokens?nonce=abcdef0123456789", run, "")
	if r.status != http.StatusOK || r.body["deleted"] != float64(1) {
		t.Fatalf("revoke by nonce answered %d: %v", r.status, r.body)
	}
	if got := f.cf.Requests()[n:]; len(got) != 1 || got[0].Method != http.MethodDelete {
		t.Errorf("a revoke by a known nonce made %d calls (%v), want one DELETE", len(got), got)
	}
	// A token revoked by its ticket already is not counted again by its nonce.
	b := f.mint(t, run, `{"preset":"workers-deploy","nonce":"bbbbbb0123456789"}`)
	if r := f.revoke(t, run, b.body["id"].(string), b.body["revoke_ticket"].(string)); r.status != http.StatusNoContent {
		t.Fatalf("revoke answered %d: %v", r.status, r.body)
	}
	if r := f.do(t, http.MethodDelete, "/v1/tokens?nonce=bbbbbb0123456789", run, ""); r.status != http.StatusOK || r.body["deleted"] != float64(0) {
		t.Errorf("revoke by the nonce of a token revoked already answered %d: %v; want 0 deleted", r.status, r.body)
	}
	// Another run's nonce of the same value reaches nothing of this run's, and lists.
	r = f.do(t, http.MethodDelete, "/v1/tokens?nonce=abcdef0123456789", claims(repoA, "5001"), "")
	if r.status != http.StatusOK || r.body["deleted"] != float64(0) {
		t.Errorf("another run's revoke by the nonce answered %d: %v", r.status, r.body)
	}
	if left := f.brokerTokensLeft(); len(left) > 0 {
		t.Errorf("tokens left behind: %v", left)
	}
}

// A zone Cloudflare does not know is not asked for again for a few minutes.
func TestMissingZonesAreCached(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil)
	zoneCalls := func() int {
		n := 0
		for _, r := range f.cf.Requests() {
			if strings.Contains(r.Path, "/zones") {
				n++
			}
		}
		return n
	}
	for i := range 3 {
		a := f.mint(t, claims(repoA, fmt.Sprint(6000+i)), `{"permissions":"DNS Read","zones":"missing.example"}`)
		if a.status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(a.body["error"]), "missing.example") {
			t.Fatalf("a mint for a missing zone answered %d: %v", a.status, a.body)
		}
	}
	if got := zoneCalls(); got != 1 {
		t.Errorf("three requests for a missing zone made %d zone lookups, want 1", got)
	}
}

// A full token quota is a 503 with Retry-After and a sentence that says what to do.
func TestQuotaFullIs503(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil, cfapitest.WithQuotas(50, 1))
	a := f.mint(t, claims(repoA, "7000"), deployBody)
	msg := fmt.Sprint(a.body["error"])
	if a.status != http.StatusServiceUnavailable || a.retryAfter == "" || !strings.Contains(msg, "limit on API tokens") || !strings.Contains(msg, "cfmint sweep") {
		t.Errorf("a mint on a full quota answered %d (Retry-After %q): %s", a.status, a.retryAfter, msg)
	}
}

// Two replicas share the nonce map through a real Redis: a revoke by nonce on one deletes what
// the other minted with one call, and the other's ticket is good on it too.
func TestNonceMapSharedByReplicas(t *testing.T) {
	t.Parallel()
	rd := redistest.Start(t)
	store := func() ReplayStore {
		s, err := NewRedisReplayStore(rd.URL(), ReplayStoreOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	one := newFlow(t, 1200, 8, store())
	two := one.replica(t, 1200, 8, store())
	run := claims(repoA, "8000")
	if a := one.mint(t, run, `{"preset":"workers-deploy","nonce":"n0nce0000000001"}`); a.status != http.StatusCreated {
		t.Fatalf("mint answered %d: %v", a.status, a.body)
	}
	n := one.calls()
	r := two.do(t, http.MethodDelete, "/v1/tokens?nonce=n0nce0000000001", run, "")
	if r.status != http.StatusOK || r.body["deleted"] != float64(1) {
		t.Fatalf("the other replica's revoke by nonce answered %d: %v", r.status, r.body)
	}
	if got := one.cf.Requests()[n:]; len(got) != 1 || got[0].Method != http.MethodDelete {
		t.Errorf("the other replica's revoke by nonce made %d calls (%v), want one DELETE", len(got), got)
	}
	b := one.mint(t, run, deployBody)
	if b.status != http.StatusCreated {
		t.Fatalf("mint answered %d: %v", b.status, b.body)
	}
	n = one.calls()
	if r := two.revoke(t, run, b.body["id"].(string), b.body["revoke_ticket"].(string)); r.status != http.StatusNoContent {
		t.Errorf("the other replica's revoke with the ticket answered %d: %v", r.status, r.body)
	}
	if got := one.calls() - n; got != 1 {
		t.Errorf("the other replica's revoke with the ticket made %d calls, want 1", got)
	}
	if left := one.brokerTokensLeft(); len(left) > 0 {
		t.Errorf("tokens left behind: %v", left)
	}
}

// /metrics shows Cloudflare's count and reset as it stated them, beside the budget left.
func TestMetricsShowCloudflaresCount(t *testing.T) {
	t.Parallel()
	f := newFlow(t, 1200, 8, nil, cfapitest.WithRateLimit(40, time.Hour))
	if a := f.mint(t, claims(repoA, "9000"), deployBody); a.status != http.StatusCreated {
		t.Fatalf("mint answered %d: %v", a.status, a.body)
	}
	rec := httptest.NewRecorder()
	f.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b := rec.Body.Bytes()
	// Prepare's group list, the create: 38 left as the create's answer said; the verify's
	// answer is the new token's, so one fewer is assumed.
	for _, want := range []string{"\ncfmint_cloudflare_ratelimit_remaining 37\n", "\ncfmint_ratelimit_budget_remaining 37\n", "\ncfmint_cloudflare_ratelimit_reset_seconds "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", strings.TrimSpace(want), b)
		}
	}
}
