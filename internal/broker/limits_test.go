package broker_test

import (
	"bytes"
	"context"
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

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/redistest"
	"github.com/cfmint/cfmint/internal/trust"
)

// Two repositories of one organisation, both trusted by the shares test policy's one rule.
var (
	repoA = oidctest.Claims{"repository": "octo-org/shop", "repository_id": "892345611"}
	repoB = oidctest.Claims{"repository": "octo-org/blog", "repository_id": "892345612", "run_id": "555"}
)

// shareWorld is the fake Cloudflare API, an issuer, and brokers (replicas) in front of them.
type shareWorld struct {
	cf    *cfapitest.Server
	fx    cfapitest.Fixture
	iss   *oidctest.Issuer
	clock *cfapitest.Clock // the brokers' clock (not the issuer's, nor Cloudflare's)
	pol   *trust.Policy
	log   *syncBuffer
	base  string
	http  *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newShareWorld is a world whose rule has the given extra keys (max_mints, max_active).
func newShareWorld(t *testing.T, cfOpts []cfapitest.Option, extra string) *shareWorld {
	t.Helper()
	cf := cfapitest.New(cfOpts...)
	fx := cf.Seed()
	api := httptest.NewServer(cf.Handler())
	t.Cleanup(api.Close)
	iss := oidctest.New(t)
	text := fmt.Sprintf(`audience: %s
rules:
  - name: site-deploy
    issuer: %s
    claims:
      repository_owner_id: "9919"
    claim_patterns:
      repository_id: "89234561[12]"
    account_id: %s
    allow:
      permissions: [DNS Read]
      zones: [example.com]
    max_ttl: 30m
%s`, audience, iss.URL(), fx.Account.ID, extra)
	pol, err := trust.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return &shareWorld{cf: cf, fx: fx, iss: iss, clock: cfapitest.NewClock(time.Now()), pol: pol, log: &syncBuffer{},
		base: api.URL + "/client/v4", http: api.Client()}
}

// replica is one broker on store, served over HTTP.
type replica struct {
	srv *broker.Server
	url string
}

func (w *shareWorld) replica(t *testing.T, store broker.ReplayStore) *replica {
	t.Helper()
	ctx := context.Background()
	ver, err := broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: w.pol.Issuers(), Audience: w.pol.Audience(), HTTPClient: w.iss.Client()})
	if err != nil {
		t.Fatal(err)
	}
	secret := w.fx.AccountBootstrap.Secret
	srv, err := broker.New(broker.Options{Policy: w.pol, Verifier: ver, Replay: store, Now: w.clock.Now,
		Tokens: cftoken.New(secret, cftoken.Options{BaseURL: w.base, HTTPClient: w.http}),
		Once:   cftoken.New(secret, cftoken.Options{BaseURL: w.base, HTTPClient: w.http, Attempts: 1}),
		Logger: slog.New(slog.NewJSONHandler(w.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Prepare(ctx, w.pol); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Routes())
	t.Cleanup(hs.Close)
	return &replica{srv: srv, url: hs.URL}
}

func memoryStore(t *testing.T) broker.ReplayStore {
	s, _, err := broker.OpenReplayStore("memory", broker.ReplayStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func redisStore(t *testing.T, url string) broker.ReplayStore {
	t.Helper()
	s, closer, err := broker.OpenReplayStore(url, broker.ReplayStoreOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	return s
}

type answer struct {
	status int
	body   string
	header http.Header
	token  struct{ ID string }
}

func (w *shareWorld) do(t *testing.T, method, url string, claims oidctest.Claims, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	c := oidctest.Claims{"aud": audience}
	for k, v := range claims {
		c[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+w.iss.Token(c))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b), header: resp.Header}
	if a.status == http.StatusCreated {
		_ = json.Unmarshal(b, &a.token)
	}
	return a
}

func (w *shareWorld) mint(t *testing.T, r *replica, claims oidctest.Claims) answer {
	t.Helper()
	return w.do(t, http.MethodPost, r.url+"/v1/tokens", claims, map[string]string{"permissions": "DNS Read", "zones": "example.com", "ttl": "10m"})
}

func (w *shareWorld) revoke(t *testing.T, r *replica, claims oidctest.Claims, id string) answer {
	t.Helper()
	return w.do(t, http.MethodDelete, r.url+"/v1/tokens/"+id, claims, nil)
}

func mustStatus(t *testing.T, what string, a answer, want int) {
	t.Helper()
	if a.status != want {
		t.Fatalf("%s: status %d, want %d: %s", what, a.status, want, a.body)
	}
}

// TestMaxMints: a repository that minted max_mints tokens in the window is refused with 429,
// Retry-After and a sentence naming the limit, until the window slides past its first mint;
// another repository under the same rule is not affected.
func TestMaxMints(t *testing.T) {
	t.Parallel()
	w := newShareWorld(t, nil, "    max_mints: 3/1h\n")
	r := w.replica(t, memoryStore(t))
	for i := range 3 {
		a := w.mint(t, r, repoA)
		mustStatus(t, fmt.Sprintf("mint %d", i+1), a, http.StatusCreated)
		// Revoked at once: max_mints counts mints, not live tokens.
		mustStatus(t, "revoke", w.revoke(t, r, repoA, a.token.ID), http.StatusNoContent)
		w.clock.Advance(10 * time.Minute)
	}
	a := w.mint(t, r, repoA)
	mustStatus(t, "mint 4", a, http.StatusTooManyRequests)
	want := "repository octo-org/shop (id 892345611) has minted 3 tokens in the last 1h under rule site-deploy, its max_mints; retry in 30m"
	if !strings.Contains(a.body, want) {
		t.Errorf("answer %s lacks %q", a.body, want)
	}
	if ra := a.header.Get("Retry-After"); ra != "1800" {
		t.Errorf("Retry-After %q, want 1800 (the first mint leaves the window in 30m)", ra)
	}
	mustStatus(t, "another repository", w.mint(t, r, repoB), http.StatusCreated)
	w.clock.Advance(30 * time.Minute)
	mustStatus(t, "after the first mint left the window", w.mint(t, r, repoA), http.StatusCreated)
	mustStatus(t, "and no more", w.mint(t, r, repoA), http.StatusTooManyRequests)
}

// TestMaxActive: a repository holding max_active live tokens is refused until it revokes one or
// one expires; another repository is not affected; a failed mint does not count.
func TestMaxActive(t *testing.T) {
	t.Parallel()
	w := newShareWorld(t, nil, "    max_active: 2\n")
	r := w.replica(t, memoryStore(t))
	first := w.mint(t, r, repoA)
	mustStatus(t, "mint 1", first, http.StatusCreated)
	// A mint Cloudflare refuses frees its slot.
	w.cf.InjectFault(cfapitest.Fault{Path: "POST /accounts/" + w.fx.Account.ID + "/tokens", Status: http.StatusBadRequest, Times: 1})
	if a := w.mint(t, r, repoA); a.status == http.StatusCreated {
		t.Fatalf("the faulted mint succeeded")
	}
	mustStatus(t, "mint 2", w.mint(t, r, repoA), http.StatusCreated)
	a := w.mint(t, r, repoA)
	mustStatus(t, "mint 3", a, http.StatusTooManyRequests)
	want := "repository octo-org/shop (id 892345611) holds 2 live tokens under rule site-deploy, its max_active; revoke one, or retry in 10m, when the first expires"
	if !strings.Contains(a.body, want) {
		t.Errorf("answer %s lacks %q", a.body, want)
	}
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	mustStatus(t, "another repository", w.mint(t, r, repoB), http.StatusCreated)
	mustStatus(t, "revoke", w.revoke(t, r, repoA, first.token.ID), http.StatusNoContent)
	mustStatus(t, "after a revoke", w.mint(t, r, repoA), http.StatusCreated)
	mustStatus(t, "full again", w.mint(t, r, repoA), http.StatusTooManyRequests)
	w.clock.Advance(10*time.Minute + time.Second)
	mustStatus(t, "after the tokens expired", w.mint(t, r, repoA), http.StatusCreated)
}

// TestStrangerRevokes: a repository that keeps revoking ids that are not its own is refused
// after a few, without a Cloudflare call; another repository still revokes its own token.
func TestStrangerRevokes(t *testing.T) {
	t.Parallel()
	w := newShareWorld(t, nil, "")
	r := w.replica(t, memoryStore(t))
	own := w.mint(t, r, repoB)
	mustStatus(t, "mint", own, http.StatusCreated)
	theirs := w.mint(t, r, repoB)
	mustStatus(t, "mint", theirs, http.StatusCreated)
	// Not its own: forbidden, and counted.
	mustStatus(t, "revoke of another's", w.revoke(t, r, repoA, theirs.token.ID), http.StatusForbidden)
	for i := range 9 {
		// Ids that do not exist: gone, and counted.
		mustStatus(t, "random revoke", w.revoke(t, r, repoA, fmt.Sprintf("%032x", i+1)), http.StatusNoContent)
	}
	calls := len(w.cf.Requests())
	a := w.revoke(t, r, repoA, fmt.Sprintf("%032x", 99))
	mustStatus(t, "revoke past the limit", a, http.StatusTooManyRequests)
	want := "repository octo-org/shop (id 892345611) has asked to revoke 10 tokens in 5m that were not minted for its runs or no longer exist, the broker's limit"
	if !strings.Contains(a.body, want) || a.header.Get("Retry-After") == "" {
		t.Errorf("answer %s (Retry-After %q) lacks %q", a.body, a.header.Get("Retry-After"), want)
	}
	if n := len(w.cf.Requests()) - calls; n != 0 {
		t.Errorf("the refused revoke made %d Cloudflare calls", n)
	}
	mustStatus(t, "the other repository's own revoke", w.revoke(t, r, repoB, own.token.ID), http.StatusNoContent)
	if _, ok := w.cf.Token(own.token.ID); ok {
		t.Error("the other repository's token is still there")
	}
}

// TestReplicasShareLimits: two brokers on one Redis count one repository's mints and live
// tokens together.
func TestReplicasShareLimits(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	w := newShareWorld(t, nil, "    max_mints: 3/1h\n    max_active: 2\n")
	r1, r2 := w.replica(t, redisStore(t, rs.URL())), w.replica(t, redisStore(t, rs.URL()))
	first := w.mint(t, r1, repoA)
	mustStatus(t, "mint on replica 1", first, http.StatusCreated)
	mustStatus(t, "mint on replica 2", w.mint(t, r2, repoA), http.StatusCreated)
	a := w.mint(t, r1, repoA)
	mustStatus(t, "third live token", a, http.StatusTooManyRequests)
	if !strings.Contains(a.body, "max_active") {
		t.Errorf("answer %s does not name max_active", a.body)
	}
	mustStatus(t, "another repository", w.mint(t, r2, repoB), http.StatusCreated)
	// Revoked through the other replica, the slot frees for both.
	mustStatus(t, "revoke on replica 2", w.revoke(t, r2, repoA, first.token.ID), http.StatusNoContent)
	mustStatus(t, "mint 3 on replica 1", w.mint(t, r1, repoA), http.StatusCreated)
	a = w.mint(t, r2, repoA)
	mustStatus(t, "mint 4 on replica 2", a, http.StatusTooManyRequests)
	if !strings.Contains(a.body, "has minted 3 tokens in the last 1h under rule site-deploy, its max_mints") {
		t.Errorf("answer %s does not name max_mints", a.body)
	}
}
