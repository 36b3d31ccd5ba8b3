// Package contracttest is the broker's HTTP contract, as a test any running broker must pass:
// `cfmint serve` (e2e) and the Worker under workerd (deploy/cloudflare) both run it, so that the
// two answer every caller alike. The broker serves Policy, mints at the built-in Cloudflare API,
// and trusts the GitHub-shaped issuer of internal/oidctest; the suite speaks to it over HTTP.
package contracttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
)

// Policy is the trust policy a target serves: rule site-deploy trusts oidctest's repository
// (892345611, owner 9919) on main and release branches, in account.
func Policy(audience, issuer, account string) string {
	return fmt.Sprintf(`audience: %s
rules:
  - name: site-deploy
    issuer: %s
    claims:
      repository_id: "892345611"
      repository_owner_id: "9919"
    claim_patterns:
      ref: refs/heads/(main|release-.*)
    account_id: %s
    allow:
      presets: [workers-deploy, r2-upload]
      permissions: [DNS Read]
      zones: [example.com]
      r2_buckets: [assets]
    max_ttl: 30m
`, audience, issuer, account)
}

// Target is a running broker that serves Policy.
type Target struct {
	URL      string
	Audience string
	Issuer   *oidctest.Issuer
	// API is the built-in Cloudflare API the broker mints at, and Account the policy's account.
	API     *cfapitest.Server
	Account string
	// Caller is the address the broker sees the suite's requests come from; CallerHeader, when
	// set, is the header the broker reads it from (the Worker's CF-Connecting-IP), and the suite
	// sends it; empty: the broker reads the connection's address, which must be Caller.
	Caller       string
	CallerHeader string
	// Log is the broker's log so far.
	Log func() string
}

// Result is what a run handed out, for the target's own checks after it: the minted tokens' and
// the ID tokens' secrets (to look for in logs a target writes later), and how many tokens it
// minted.
type Result struct {
	Secrets []string
	Minted  int
}

// Answer is the broker's answer to one request.
type Answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

type suite struct {
	t   *testing.T
	tg  Target
	res Result
}

// Run runs the contract against tg; it leaves no token of its own behind.
func Run(t *testing.T, tg Target) Result {
	t.Helper()
	s := &suite{t: t, tg: tg}
	t.Run("contract", func(t *testing.T) {
		s.t = t
		s.run()
	})
	return s.res
}

// token is a fresh ID token of the trusted repository's run, with extra claims.
func (s *suite) token(extra oidctest.Claims) string {
	c := oidctest.Claims{"aud": s.tg.Audience}
	for k, v := range extra {
		c[k] = v
	}
	tok := s.tg.Issuer.Token(c)
	s.res.Secrets = append(s.res.Secrets, tok)
	return tok
}

// Send makes one request as the suite's caller; headers are name, value pairs.
func (tg Target) Send(method, path, idToken string, body any, headers ...string) (Answer, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, tg.URL+path, rd)
	if err != nil {
		return Answer{}, err
	}
	if idToken != "" {
		req.Header.Set("Authorization", "Bearer "+idToken)
	}
	if tg.CallerHeader != "" {
		req.Header.Set(tg.CallerHeader, tg.Caller)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := Answer{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a, nil
}

func (s *suite) do(method, path, idToken string, body any, headers ...string) Answer {
	s.t.Helper()
	a, err := s.tg.Send(method, path, idToken, body, headers...)
	if err != nil {
		s.t.Fatalf("%v\n%s", err, s.tg.Log())
	}
	return a
}

// named counts the fake's tokens with that name.
func (s *suite) named(name string) int {
	n := 0
	for _, tk := range s.tg.API.Tokens() {
		if tk.Name == name {
			n++
		}
	}
	return n
}

// mint mints with body and fails the test unless it gets a token.
func (s *suite) mint(body map[string]string) Answer {
	s.t.Helper()
	a := s.do("POST", "/v1/tokens", s.token(nil), body)
	if a.Status != http.StatusCreated {
		s.t.Fatalf("mint %v: %d %s\n%s", body, a.Status, a.Raw, s.tg.Log())
	}
	s.res.Minted++
	if tok, _ := a.Body["token"].(string); tok != "" {
		s.res.Secrets = append(s.res.Secrets, tok)
	}
	return a
}

func (s *suite) run() {
	t := s.t
	if r := s.do("GET", "/healthz", "", nil); r.Status != 200 || r.Raw != "ok\n" {
		t.Fatalf("healthz: %d %q\n%s", r.Status, r.Raw, s.tg.Log())
	}
	// The metrics name the rules and the rate budget left: never on the callers' port.
	if r := s.do("GET", "/metrics", "", nil); r.Status != 404 || strings.Contains(r.Raw, "cfmint_") {
		t.Errorf("the API's port answers /metrics: %d %.200s", r.Status, r.Raw)
	}

	// A mint: 201 with a token of the rule's, named for the run, pinned to the caller.
	first := s.token(nil)
	res := s.do("POST", "/v1/tokens", first, map[string]string{"preset": "workers-deploy", "ttl": "10m", "nonce": "abcdef0123456789"})
	if res.Status != http.StatusCreated {
		t.Fatalf("mint: %d %s\n%s", res.Status, res.Raw, s.tg.Log())
	}
	s.res.Minted++
	secret, _ := res.Body["token"].(string)
	s.res.Secrets = append(s.res.Secrets, secret)
	tid, _ := res.Body["id"].(string)
	name, _ := res.Body["name"].(string)
	if res.Body["rule"] != "site-deploy" || res.Body["account_id"] != s.tg.Account || secret == "" || s.named(name) != 1 {
		t.Errorf("mint answered %s", strings.ReplaceAll(res.Raw, secret, "<SECRET>"))
	}
	if !regexp.MustCompile(`^cfmint-broker:[0-9a-f]{6}:892345611:9876543210\.1:abcdef0123456789:site-deploy:octo-org/octo-repo$`).MatchString(name) {
		t.Errorf("name = %q, want it to record the repository id, run, attempt, nonce and rule", name)
	}
	if f, _ := res.Body["ip_filter"].([]any); len(f) != 1 || f[0] != s.tg.Caller+"/32" {
		t.Errorf("ip_filter = %v, want the caller's address %s/32", res.Body["ip_filter"], s.tg.Caller)
	}
	if tk, ok := s.tg.API.Token(tid); !ok || len(tk.IPIn) != 1 || tk.IPIn[0] != s.tg.Caller+"/32" {
		t.Errorf("the token at Cloudflare: %+v, want it pinned to %s", tk.IPIn, s.tg.Caller)
	}
	// The expiry is the broker's clock plus the ttl, the issue Cloudflare's clock: a few seconds
	// apart at most.
	if tk, _ := s.tg.API.Token(tid); tk.ExpiresOn.IsZero() || (tk.ExpiresOn.Sub(tk.IssuedOn)-10*time.Minute).Abs() > 30*time.Second {
		t.Errorf("the token at Cloudflare expires %v after its issue, want 10m", tk.ExpiresOn.Sub(tk.IssuedOn))
	}
	creates := s.tg.API.Tokens()

	// Where the caller's address is a header, a request without it, or with no address in it, is
	// refused whatever its token.
	if h := s.tg.CallerHeader; h != "" {
		if r := s.do("POST", "/v1/tokens", s.token(nil), map[string]string{"preset": "workers-deploy"}, h, ""); r.Status != 400 || !strings.Contains(r.Raw, h) {
			t.Errorf("no %s: %d %s", h, r.Status, r.Raw)
		}
		if r := s.do("POST", "/v1/tokens", s.token(nil), map[string]string{"preset": "workers-deploy"}, h, "not-an-address"); r.Status != 400 {
			t.Errorf("a %s that is no address: %d %s", h, r.Status, r.Raw)
		}
	}
	// Single use: the same ID token again is refused.
	if r := s.do("POST", "/v1/tokens", first, map[string]string{"preset": "workers-deploy"}); r.Status != 401 || !strings.Contains(r.Raw, "already used") {
		t.Errorf("replay: %d %s", r.Status, r.Raw)
	}
	// No ID token, and every forged one: 401.
	if r := s.do("POST", "/v1/tokens", "", map[string]string{"preset": "workers-deploy"}); r.Status != 401 {
		t.Errorf("no ID token: %d %s", r.Status, r.Raw)
	}
	for _, f := range oidctest.Forgeries() {
		forged := s.tg.Issuer.Forge(f, oidctest.Claims{"aud": s.tg.Audience})
		if r := s.do("POST", "/v1/tokens", forged, map[string]string{"preset": "workers-deploy"}); r.Status != 401 {
			t.Errorf("forgery %s: %d %s", f, r.Status, r.Raw)
		}
	}
	// Denials: what the rule does not allow, a repository no rule knows, bad requests.
	for _, d := range []struct {
		name   string
		claims oidctest.Claims
		body   any
		status int
		want   string
	}{
		{"permission", nil, map[string]string{"permissions": "DNS Write", "zones": "example.com"}, 403, "DNS Write"},
		{"zone", nil, map[string]string{"permissions": "DNS Read", "zones": "example.net"}, 403, "example.net"},
		{"ttl", nil, map[string]string{"preset": "workers-deploy", "ttl": "2h"}, 403, "30m"},
		{"ip-filter", nil, map[string]string{"preset": "workers-deploy", "ip-filter": "198.51.100.0/24"}, 403, "ip"},
		{"pattern", oidctest.Claims{"ref": "refs/heads/feature"}, map[string]string{"preset": "workers-deploy"}, 403, "refs/heads/feature"},
		// Another owner id than the rule pins: a stranger, told only that no rule trusts it.
		{"claims", oidctest.Claims{"repository_owner_id": "1234"}, map[string]string{"preset": "workers-deploy"}, 403, "no rule of this broker trusts this repository"},
		{"bucket", nil, map[string]string{"preset": "r2-upload", "r2-buckets": "logs"}, 403, "logs"},
		{"unknown repository", oidctest.Claims{"repository_id": "1", "repository": "evil/repo"}, map[string]string{"preset": "workers-deploy"}, 403, "evil/repo"},
		{"bad request key", nil, map[string]string{"bootstrap-token": "x"}, 400, "not a request key"},
		{"bad ttl", nil, map[string]string{"preset": "workers-deploy", "ttl": "90"}, 400, "ttl"},
		{"duplicate key", nil, `{"preset":"workers-deploy","preset":"dns-edit"}`, 400, "more than once"},
		{"not an object", nil, `["workers-deploy"]`, 400, "JSON object"},
	} {
		r := s.do("POST", "/v1/tokens", s.token(d.claims), d.body)
		if r.Status != d.status || !strings.Contains(strings.ToLower(r.Raw), strings.ToLower(d.want)) {
			t.Errorf("%s: %d %s, want %d naming %q", d.name, r.Status, r.Raw, d.status, d.want)
		}
	}
	if n := len(s.tg.API.Tokens()); n != len(creates) {
		t.Errorf("refused requests created %d tokens", n-len(creates))
	}

	// Revoke by id: another run, attempt or repository may not; the run may, and again is 204.
	for _, c := range []oidctest.Claims{{"run_id": "1111"}, {"run_attempt": "2"}, {"repository_id": "1", "repository": "evil/repo"}} {
		if r := s.do("DELETE", "/v1/tokens/"+tid, s.token(c), nil); r.Status != 403 {
			t.Errorf("revoke by %v: %d %s", c, r.Status, r.Raw)
		}
	}
	if s.named(name) != 1 {
		t.Fatal("the token went after another run's revoke")
	}
	if r := s.do("DELETE", "/v1/tokens/"+tid, s.token(nil), nil); r.Status != 204 || s.named(name) != 0 {
		t.Errorf("revoke: %d %s; %d tokens left", r.Status, r.Raw, s.named(name))
	}
	if r := s.do("DELETE", "/v1/tokens/"+tid, s.token(nil), nil); r.Status != 204 {
		t.Errorf("revoke of a gone token: %d %s", r.Status, r.Raw)
	}

	// Revoke with the ticket the mint answered: one for another token is refused.
	a, b := s.mint(map[string]string{"preset": "workers-deploy"}), s.mint(map[string]string{"preset": "workers-deploy"})
	ta, _ := a.Body["revoke_ticket"].(string)
	tb, _ := b.Body["revoke_ticket"].(string)
	if ta == "" || tb == "" {
		t.Fatalf("mints answered no revoke_ticket: %s", a.Raw)
	}
	if r := s.do("DELETE", "/v1/tokens/"+a.Body["id"].(string), s.token(nil), nil, broker.TicketHeader, tb); r.Status != 403 || !strings.Contains(r.Raw, "ticket") {
		t.Errorf("revoke with another token's ticket: %d %s", r.Status, r.Raw)
	}
	for _, m := range []struct {
		a      Answer
		ticket string
	}{{a, ta}, {b, tb}} {
		if r := s.do("DELETE", "/v1/tokens/"+m.a.Body["id"].(string), s.token(nil), nil, broker.TicketHeader, m.ticket); r.Status != 204 || s.named(m.a.Body["name"].(string)) != 0 {
			t.Errorf("revoke with its ticket: %d %s", r.Status, r.Raw)
		}
	}

	// Revoke by nonce: what a step's main never learned the id of.
	n := s.mint(map[string]string{"preset": "workers-deploy", "nonce": "feedface00000001"})
	if r := s.do("DELETE", "/v1/tokens?nonce=feedface00000001", s.token(nil), nil); r.Status != 200 || r.Body["deleted"] != float64(1) {
		t.Errorf("revoke by nonce: %d %s", r.Status, r.Raw)
	}
	if c := s.named(n.Body["name"].(string)); c != 0 {
		t.Errorf("%d tokens left after the revoke by nonce", c)
	}
	if r := s.do("DELETE", "/v1/tokens?nonce=NOT-A-NONCE", s.token(nil), nil); r.Status != 400 || !strings.Contains(r.Raw, "nonce") {
		t.Errorf("revoke by a bad nonce: %d %s", r.Status, r.Raw)
	}

	// One ID token sent four times at once: exactly one mint.
	same := s.token(nil)
	answers := make(chan Answer, 4)
	for i := range 4 {
		go func() {
			r, err := s.tg.Send("POST", "/v1/tokens", same, map[string]string{"preset": "workers-deploy", "nonce": fmt.Sprintf("d0d0d0d0%08d", i)})
			if err != nil {
				r.Raw = err.Error()
			}
			answers <- r
		}()
	}
	minted := 0
	for range 4 {
		r := <-answers
		switch {
		case r.Status == 201:
			minted++
			s.res.Minted++
			s.res.Secrets = append(s.res.Secrets, r.Body["token"].(string))
			s.do("DELETE", "/v1/tokens/"+r.Body["id"].(string), s.token(nil), nil)
		case r.Status != 401:
			t.Errorf("one ID token at once: %d %s", r.Status, r.Raw)
		}
	}
	if minted != 1 {
		t.Errorf("one ID token sent four times at once minted %d tokens, want 1", minted)
	}

	// Nothing left behind, and no secret in the log so far.
	for _, tk := range s.tg.API.Tokens() {
		if strings.HasPrefix(tk.Name, "cfmint-broker:") {
			t.Errorf("token %s left behind", tk.Name)
		}
	}
	logs := s.tg.Log()
	for _, sec := range s.res.Secrets {
		if sec != "" && strings.Contains(logs, sec) {
			t.Error("the broker's log holds a secret")
			break
		}
	}
}
