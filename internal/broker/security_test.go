package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/trust"
)

// secWorld is a broker with three rules: site-deploy and shop-deploy for two repositories of one
// issuer, other-deploy for every repository of owner 9919 on another issuer; the test reads its
// log and may change its options.
type secWorld struct {
	cf       *cfapitest.Server
	api      *httptest.Server
	fx       cfapitest.Fixture
	iss      *oidctest.Issuer // rules site-deploy (repository 892345611) and shop-deploy (556)
	iss2     *oidctest.Issuer // rule other-deploy (owner 9919)
	url      string
	logs     *logBuffer
	trusted  oidctest.Claims // site-deploy's repository on main, run 7 attempt 1
	trusted2 oidctest.Claims // the same repository id and run on iss2, matched by other-deploy
}

func newSecWorld(t *testing.T, change func(*broker.Options)) *secWorld {
	t.Helper()
	cf := cfapitest.New()
	fx := cf.Seed()
	api := httptest.NewServer(cf.Handler())
	t.Cleanup(api.Close)
	iss, iss2 := oidctest.New(t), oidctest.New(t)
	text := fmt.Sprintf(`audience: %[1]s
rules:
  - name: site-deploy
    issuer: %[2]s
    claims: {repository_id: "892345611", repository_owner_id: "9919"}
    claim_patterns: {ref: "refs/heads/(main|release-.*)"}
    account_id: %[4]s
    allow: {presets: [workers-deploy]}
    max_ttl: 30m
  - name: shop-deploy
    issuer: %[2]s
    claims: {repository_id: "556"}
    account_id: %[4]s
    allow: {presets: [workers-deploy]}
    max_ttl: 30m
  - name: other-deploy
    issuer: %[3]s
    claims: {repository_owner_id: "9919"}
    account_id: %[4]s
    allow: {presets: [workers-deploy]}
    max_ttl: 30m
`, audience, iss.URL(), iss2.URL(), fx.Account.ID)
	pol, err := trust.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hc := iss.Client()
	ver, err := broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: pol.Issuers(), Audience: pol.Audience(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	store, closer, err := broker.OpenReplayStore("memory", broker.ReplayStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	base := api.URL + "/client/v4"
	logs := &logBuffer{}
	o := broker.Options{Policy: pol, Verifier: ver, Replay: store,
		Tokens: cftoken.New(fx.AccountBootstrap.Secret, cftoken.Options{BaseURL: base, HTTPClient: api.Client()}),
		Once:   cftoken.New(fx.AccountBootstrap.Secret, cftoken.Options{BaseURL: base, HTTPClient: api.Client(), Attempts: 1}),
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	if change != nil {
		change(&o)
	}
	srv, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Prepare(ctx, pol); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Routes())
	t.Cleanup(hs.Close)
	trusted := oidctest.Claims{"aud": audience, "repository": "octo-org/site", "repository_id": "892345611", "repository_owner_id": "9919", "ref": "refs/heads/main", "run_id": "7", "run_attempt": "1"}
	trusted2 := claimsWith(trusted)
	return &secWorld{cf: cf, api: api, fx: fx, iss: iss, iss2: iss2, url: hs.URL, logs: logs, trusted: trusted, trusted2: trusted2}
}

func claimsWith(c oidctest.Claims, kv ...string) oidctest.Claims {
	out := oidctest.Claims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// do sends a request with the ID token and headers; it returns the status and the body.
func (w *secWorld) do(t *testing.T, method, path, token, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, w.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const deployBody = `{"preset": "workers-deploy"}`

// mint mints for claims (of iss) with nonce, and returns the token's id.
func (w *secWorld) mint(t *testing.T, iss *oidctest.Issuer, c oidctest.Claims, nonce string) string {
	t.Helper()
	tok, _ := iss.Issue(c)
	status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, fmt.Sprintf(`{"preset": "workers-deploy", "nonce": %q}`, nonce))
	if status != http.StatusCreated {
		t.Fatalf("mint: %d %s", status, body)
	}
	var got struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	return got.ID
}

func (w *secWorld) live(id string) bool {
	_, ok := w.cf.Token(id)
	for _, d := range w.cf.Deleted() {
		if d.ID == id {
			return false
		}
	}
	return ok
}

// TestStrangerCostsNothingAndLearnsNothing: a token of a tenant no rule trusts is not recorded as
// used, and its 403 names no rule, no trusted id and no claim value but its own; the audit line
// has the detail. The trusted repository on another branch is recorded and told the near miss.
func TestStrangerCostsNothingAndLearnsNothing(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, nil)
	for _, c := range []oidctest.Claims{
		claimsWith(w.trusted, "repository", "octo-org/shop", "repository_id", "892345612"), // same owner
		claimsWith(w.trusted, "repository_id", "8923456110"),                               // an id extending the trusted one
		claimsWith(w.trusted, "repository_owner_id", "99190"),
	} {
		tok, _ := w.iss.Issue(c)
		for try := 1; try <= 2; try++ {
			status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody)
			if status != http.StatusForbidden || strings.Contains(body, "already used") {
				t.Fatalf("try %d: %d %s; want 403, never already used", try, status, body)
			}
			want := fmt.Sprintf("no rule of this broker trusts this repository (repository %s (repository_id %s), ref refs/heads/main", c["repository"], c["repository_id"])
			if !strings.Contains(body, want) {
				t.Errorf("try %d: %s\nwant %s", try, body, want)
			}
			for _, secret := range []string{"site-deploy", "shop-deploy", "other-deploy", `"892345611"`, `"9919"`, "556", w.fx.Account.ID, "refs/heads/(main", "differs"} {
				if strings.Contains(body, secret) {
					t.Errorf("try %d: the stranger's answer names %s: %s", try, secret, body)
				}
			}
		}
		// A revoke is a stranger's too: not recorded, nothing told.
		status, body := w.do(t, http.MethodDelete, "/v1/tokens?nonce=abcdefgh12", tok, "")
		if status != http.StatusForbidden || strings.Contains(body, "site-deploy") || strings.Contains(body, "already used") {
			t.Errorf("a stranger's revoke: %d %s", status, body)
		}
	}
	if !strings.Contains(w.logs.String(), `rule site-deploy differs only in claim repository_id: it wants \"892345611\"`) {
		t.Errorf("the audit log lost the near miss:\n%s", w.logs.String())
	}
	// The trusted repository on a branch the rule does not match: the hint, and its token spent.
	tok, _ := w.iss.Issue(claimsWith(w.trusted, "ref", "refs/heads/feature"))
	status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody)
	if status != http.StatusForbidden || !strings.Contains(body, "rule site-deploy differs only in claim ref") {
		t.Errorf("the trusted repository on another branch: %d %s; want the near miss", status, body)
	}
	if status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody); status != http.StatusUnauthorized || !strings.Contains(body, "already used") {
		t.Errorf("the trusted tenant's second try: %d %s; want already used", status, body)
	}
	// A minted token's ID token is spent too.
	tok, _ = w.iss.Issue(w.trusted)
	if status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody); status != http.StatusCreated {
		t.Fatalf("mint: %d %s", status, body)
	}
	if status, _ := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody); status != http.StatusUnauthorized {
		t.Errorf("a used ID token minted again: %d", status)
	}
}

// TestUnavailableSaysNothingInternal: a 503 because Cloudflare does not answer names no address
// and no account; the log does.
func TestUnavailableSaysNothingInternal(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, nil)
	w.api.Close()
	tok, _ := w.iss.Issue(w.trusted)
	status, body := w.do(t, http.MethodDelete, "/v1/tokens?nonce=abcdefgh12", tok, "")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("%d %s; want 503", status, body)
	}
	for _, secret := range []string{"127.0.0.1", "http", w.fx.Account.ID, "/client/v4"} {
		if strings.Contains(body, secret) {
			t.Errorf("the 503 names %s: %s", secret, body)
		}
	}
}

// TestDuplicateKeysRefused: a body naming a key twice is refused, naming the key, so a proxy
// reading the first value and the broker the last cannot disagree.
func TestDuplicateKeysRefused(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, nil)
	tok, _ := w.iss.Issue(w.trusted)
	status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, `{"preset": "workers-deploy", "ttl": "5m", "preset": "dns-edit", "ttl": "6m"}`)
	if status != http.StatusBadRequest || !strings.Contains(body, `names \"preset\", \"ttl\" more than once`) {
		t.Errorf("%d %s; want 400 naming preset and ttl", status, body)
	}
	// Nested values are not keys of the body: they are refused for their type, not as twins.
	tok, _ = w.iss.Issue(w.trusted)
	if status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, `{"preset": {"a": 1, "a": 2}}`); status != http.StatusBadRequest || strings.Contains(body, "more than once") {
		t.Errorf("a nested twin: %d %s", status, body)
	}
}

// TestClientIPHeader: behind a proxy the last entry of the header, the proxy's own, is the
// caller; a request without the header is refused.
func TestClientIPHeader(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, func(o *broker.Options) { o.ClientIPHeader = "X-Forwarded-For" })
	tok, _ := w.iss.Issue(w.trusted)
	status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody, "X-Forwarded-For", "203.0.113.66, 198.51.100.1", "X-Forwarded-For", "192.0.2.7")
	if status != http.StatusCreated {
		t.Fatalf("%d %s", status, body)
	}
	if !strings.Contains(body, `"ip_filter":["192.0.2.7/32"]`) {
		t.Errorf("the token is not pinned to the last entry 192.0.2.7: %s", body)
	}
	tok, _ = w.iss.Issue(w.trusted)
	status, body = w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody, "X-Forwarded-For", "192.0.2.7, 198.51.100.1")
	if status != http.StatusCreated || !strings.Contains(body, `"ip_filter":["198.51.100.1/32"]`) {
		t.Errorf("one header of two entries: %d %s; want the last, 198.51.100.1", status, body)
	}
	tok, _ = w.iss.Issue(w.trusted)
	status, body = w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody)
	if status != http.StatusBadRequest || !strings.Contains(body, "no X-Forwarded-For header") {
		t.Errorf("no header: %d %s; want 400", status, body)
	}
	tok, _ = w.iss.Issue(w.trusted)
	status, body = w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody, "X-Forwarded-For", "192.0.2.7, unknown")
	if status != http.StatusBadRequest {
		t.Errorf("a last entry that is no address: %d %s; want 400", status, body)
	}
}

// TestRevokeOwnership: a revoke reaches the ownership check (the caller's repository is one a
// rule matches) and deletes only its own run's tokens, of its own nonce, of its own issuer.
func TestRevokeOwnership(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, nil)
	a1 := w.mint(t, w.iss, w.trusted, "noncea11")
	a2 := w.mint(t, w.iss, w.trusted, "noncea22")
	// The same repository id, run, attempt and nonce on the other issuer: another run.
	b1 := w.mint(t, w.iss2, w.trusted2, "noncea11")
	// Another repository of the same issuer, same run numbers and nonce.
	shop := claimsWith(w.trusted, "repository", "octo-org/shop", "repository_id", "556")
	c1 := w.mint(t, w.iss, shop, "noncea11")
	refused := func(what string, iss *oidctest.Issuer, c oidctest.Claims, id string) {
		t.Helper()
		tok, _ := iss.Issue(c)
		status, body := w.do(t, http.MethodDelete, "/v1/tokens/"+id, tok, "")
		if status != http.StatusForbidden || !strings.Contains(body, "was not minted for this run") {
			t.Errorf("revoke by %s: %d %s; want 403", what, status, body)
		}
	}
	refused("another repository of the issuer", w.iss, shop, a1)
	refused("the same repository id and run on another issuer", w.iss2, w.trusted2, a1)
	refused("another attempt of the run", w.iss, claimsWith(w.trusted, "run_attempt", "2"), a1)
	refused("another run", w.iss, claimsWith(w.trusted, "run_id", "8"), a1)
	if !w.live(a1) {
		t.Fatal("a refused revoke deleted the token")
	}
	// By nonce: only that nonce's token of the caller's run and issuer goes.
	tok, _ := w.iss.Issue(w.trusted)
	status, body := w.do(t, http.MethodDelete, "/v1/tokens?nonce=noncea11", tok, "")
	if status != http.StatusOK || !strings.Contains(body, `"deleted":1`) {
		t.Errorf("revoke by nonce: %d %s", status, body)
	}
	if w.live(a1) || !w.live(a2) || !w.live(b1) || !w.live(c1) {
		t.Errorf("after revoking nonce noncea11 of site-deploy's run: a1 %v, a2 %v, b1 %v, c1 %v; want only a1 gone", w.live(a1), w.live(a2), w.live(b1), w.live(c1))
	}
	// By id, the owner may.
	tok, _ = w.iss.Issue(w.trusted)
	if status, body := w.do(t, http.MethodDelete, "/v1/tokens/"+a2, tok, ""); status != http.StatusNoContent || w.live(a2) {
		t.Errorf("the owner's revoke: %d %s", status, body)
	}
	// The other issuer's run revokes its own, by nonce.
	tok, _ = w.iss2.Issue(w.trusted2)
	if status, body := w.do(t, http.MethodDelete, "/v1/tokens?nonce=noncea11", tok, ""); status != http.StatusOK || !strings.Contains(body, `"deleted":1`) || w.live(b1) || !w.live(c1) {
		t.Errorf("the other issuer's owner: %d %s", status, body)
	}
}

// TestMintNeedsNumericRun: a token whose run claims are not numbers mints nothing.
func TestMintNeedsNumericRun(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, nil)
	before := len(w.cf.Tokens())
	for _, kv := range [][]string{{"run_id", "latest"}, {"run_attempt", "1a"}, {"repository_id", ""}, {"run_id", ""}} {
		c := claimsWith(w.trusted, kv...)
		if kv[0] == "repository_id" {
			// the rule pins repository_id: keep it, drop the run instead
			c = claimsWith(w.trusted, "run_attempt", "")
		}
		tok, _ := w.iss.Issue(c)
		status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody)
		if status != http.StatusForbidden || !strings.Contains(body, "numeric") {
			t.Errorf("%v: %d %s; want 403 naming the numeric run", kv, status, body)
		}
		tok, _ = w.iss.Issue(c)
		if status, _ := w.do(t, http.MethodDelete, "/v1/tokens?nonce=abcdefgh12", tok, ""); status != http.StatusForbidden {
			t.Errorf("%v: a revoke without a run: %d", kv, status)
		}
	}
	if n := len(w.cf.Tokens()); n != before {
		t.Errorf("%d tokens exist; a mint without a run made one", n)
	}
}

// TestNotReadySaysNothingInternal: /readyz, which anyone who reaches the port reads, names no
// address when an issuer's keys cannot be fetched; the log does.
func TestNotReadySaysNothingInternal(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, nil)
	w.iss2.SetKeysUnavailable(true)
	status, body := w.do(t, http.MethodGet, "/readyz", "", "")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "the issuers' keys could not be fetched") {
		t.Fatalf("%d %s; want 503", status, body)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "http") {
		t.Errorf("/readyz names an address: %s", body)
	}
	if !strings.Contains(w.logs.String(), "127.0.0.1") {
		t.Errorf("the log lacks the failed fetch's detail:\n%s", w.logs.String())
	}
}

// TestUnknownIssuerLearnsNoIssuer: a token of an issuer the policy does not name is refused
// without the list of those it does.
func TestUnknownIssuerLearnsNoIssuer(t *testing.T) {
	t.Parallel()
	w := newSecWorld(t, nil)
	stranger := oidctest.New(t)
	tok, _ := stranger.Issue(w.trusted)
	status, body := w.do(t, http.MethodPost, "/v1/tokens", tok, deployBody)
	if status != http.StatusUnauthorized || !strings.Contains(body, "is not trusted by this broker") {
		t.Fatalf("%d %s; want 401", status, body)
	}
	for _, u := range []string{w.iss.URL(), w.iss2.URL()} {
		if strings.Contains(body, u) {
			t.Errorf("the answer names trusted issuer %s: %s", u, body)
		}
	}
}
