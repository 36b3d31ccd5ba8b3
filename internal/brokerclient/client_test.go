package brokerclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/oidctest"
)

// answer is one scripted broker answer; nil write drops the connection after reading the request.
type answer struct {
	method, path string
	status       int
	header       map[string]string
	body         string
	hangUp       bool
}

// fakeBroker answers calls in the order scripted, fails the test on any call beyond the script
// or not of the scripted method and path, and records the ID tokens it was sent.
type fakeBroker struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []answer
	tokens []string
	bodies []map[string]string
}

func newFakeBroker(t *testing.T, script ...answer) *fakeBroker {
	f := &fakeBroker{t: t, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.script) > 0 {
			t.Errorf("the broker expected %d more call(s), first %s %s", len(f.script), f.script[0].method, f.script[0].path)
		}
	})
	return f
}

func (f *fakeBroker) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if len(f.script) == 0 {
		f.mu.Unlock()
		f.t.Errorf("unexpected call %s %s", r.Method, r.URL.RequestURI())
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	a := f.script[0]
	f.script = f.script[1:]
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.tokens = append(f.tokens, tok)
	if r.Method == http.MethodPost {
		var body map[string]string
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			f.t.Errorf("the mint's body is not a JSON object of strings: %v", err)
		}
		f.bodies = append(f.bodies, body)
	}
	f.mu.Unlock()
	if r.Method != a.method || r.URL.RequestURI() != a.path {
		f.t.Errorf("call %s %s, want %s %s", r.Method, r.URL.RequestURI(), a.method, a.path)
	}
	if a.hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			f.t.Error(err)
			return
		}
		conn.Close()
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeBroker) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

// sleeper records the waits asked for and waits for none: its clock jumps instead.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	slept time.Duration
	start time.Time
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	s.slept += d
	return ctx.Err()
}

func (s *sleeper) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start.Add(time.Since(s.start) + s.slept)
}

type harness struct {
	broker *fakeBroker
	iss    *oidctest.Issuer
	sleep  *sleeper
	client *Client
	masked []string
}

func newHarness(t *testing.T, script ...answer) *harness {
	t.Helper()
	h := &harness{broker: newFakeBroker(t, script...), iss: oidctest.New(t), sleep: &sleeper{start: time.Now()}}
	u, reqTok := h.iss.IDTokenEndpoint(nil)
	env := map[string]string{EnvRequestURL: u, EnvRequestToken: reqTok}
	h.client = &Client{
		Base: h.broker.srv.URL, Audience: h.broker.srv.URL, HTTPClient: &http.Client{},
		Lookup: envLookup(env), Sleep: h.sleep.sleep, Now: h.sleep.now,
		OnIDToken: func(s string) { h.masked = append(h.masked, s) },
	}
	return h
}

const issuedJSON = `{"token":"cf-secret-token-value","id":"0123456789abcdef0123456789abcdef","name":"cfmint-broker:1:2.1:abcdefgh:rule","owner":"account","account_id":"023e105f4ecef8ad9ca31a8372d0c353","expires_on":"2030-01-01T00:00:00Z","ip_filter":["192.0.2.1/32"],"grants":[{"permission":"DNS Write","resources":[{"kind":"zone","id":"z","name":"example.com"}]}],"rule":"shop-deploy"}`

func errJSON(s string) string { b, _ := json.Marshal(map[string]string{"error": s}); return string(b) }

func checkFresh(t *testing.T, h *harness, want int) {
	t.Helper()
	sent := h.broker.sent()
	if len(sent) != want {
		t.Fatalf("the broker got %d calls, want %d", len(sent), want)
	}
	seen := map[string]bool{}
	for _, s := range sent {
		if strings.Count(s, ".") != 2 {
			t.Errorf("a call carried %q, not an ID token", s)
		}
		if seen[s] {
			t.Error("an ID token was sent twice; each attempt needs a fresh one")
		}
		seen[s] = true
	}
	if len(h.masked) != want {
		t.Errorf("OnIDToken saw %d tokens, want %d", len(h.masked), want)
	}
	for i := range min(len(sent), len(h.masked)) {
		if h.masked[i] != sent[i] {
			t.Errorf("attempt %d: the token sent is not the one handed to OnIDToken first", i+1)
		}
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "POST", path: "/v1/tokens", status: 201, body: issuedJSON})
	fields := map[string]string{"preset": "dns-edit", "zones": "example.com", "nonce": "abcdef0123456789"}
	got, err := h.client.Mint(context.Background(), fields)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != "cf-secret-token-value" || got.ID != "0123456789abcdef0123456789abcdef" || got.Rule != "shop-deploy" || got.AccountID != "023e105f4ecef8ad9ca31a8372d0c353" || len(got.CIDRs) != 1 || len(got.Grants) != 1 {
		t.Errorf("Mint = %+v", got)
	}
	if b := h.broker.bodies[0]; len(b) != 3 || b["preset"] != "dns-edit" || b["zones"] != "example.com" || b["nonce"] != "abcdef0123456789" {
		t.Errorf("body = %v, want the fields as given", b)
	}
	checkFresh(t, h, 1)
	if aud := claimsOf(t, h.broker.sent()[0])["aud"]; aud != h.client.Audience {
		t.Errorf("aud = %v, want %q", aud, h.client.Audience)
	}
}

func TestMintRetriesWithFreshIDTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t,
		answer{method: "POST", path: "/v1/tokens", status: 429, header: map[string]string{"Retry-After": "3"}, body: errJSON("the broker is near Cloudflare's rate limit")},
		answer{method: "POST", path: "/v1/tokens", status: 503, body: errJSON("Cloudflare did not answer")},
		answer{method: "POST", path: "/v1/tokens", status: 503, header: map[string]string{"Retry-After": "0"}, body: errJSON("Cloudflare did not answer")},
		answer{method: "POST", path: "/v1/tokens", status: 201, body: issuedJSON},
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.client.Mint(ctx, map[string]string{"preset": "dns-edit"}); err != nil {
		t.Fatal(err)
	}
	checkFresh(t, h, 4)
	// Retry-After first, then the client's own backoff where the broker named none.
	want := []time.Duration{3 * time.Second, firstBackoff, 2 * firstBackoff}
	if len(h.sleep.waits) != len(want) {
		t.Fatalf("waits = %v, want %v", h.sleep.waits, want)
	}
	for i := range want {
		if h.sleep.waits[i] != want[i] {
			t.Errorf("waits = %v, want %v", h.sleep.waits, want)
		}
	}
}

func TestNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		msg    string
	}{
		{400, `"ttl": "90" has no unit; write a duration such as 15m`},
		{401, "this ID token was already used; each exchange needs a fresh one from the CI system"},
		{403, "rule shop-deploy allows workers-deploy; DNS Write on example.com is not allowed"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, answer{method: "POST", path: "/v1/tokens", status: tc.status, body: errJSON(tc.msg)})
			_, err := h.client.Mint(context.Background(), map[string]string{"preset": "dns-edit"})
			var be *Error
			if !errors.As(err, &be) || be.Status != tc.status || be.Msg != tc.msg {
				t.Fatalf("Mint error = %#v, want status %d and the broker's sentence", err, tc.status)
			}
			if errors.Is(err, ErrAnswerLost) {
				t.Error("a refusal is not a lost answer")
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "HTTP "+itoa(tc.status)) {
				t.Errorf("error %q lacks the sentence or status", err)
			}
			checkFresh(t, h, 1)
			assertNoSecrets(t, err, h.broker.sent()...)
			if len(h.sleep.waits) != 0 {
				t.Errorf("waited %v before giving up", h.sleep.waits)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestRetryWithinDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t,
		answer{method: "POST", path: "/v1/tokens", status: 429, header: map[string]string{"Retry-After": "2"}, body: errJSON("rate limited")},
		answer{method: "POST", path: "/v1/tokens", status: 429, header: map[string]string{"Retry-After": "600"}, body: errJSON("rate limited")},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.client.Mint(ctx, map[string]string{"preset": "dns-edit"})
	var be *Error
	if !errors.As(err, &be) || be.Status != 429 || be.Attempts != 2 || be.Waited != 2*time.Second {
		t.Fatalf("Mint error = %#v, want a 429 after 2 attempts and 2s of waiting", err)
	}
	for _, want := range []string{"rate limited", "after 2 attempts and 2s of waiting", "the broker asked to wait 10m0s before retrying, longer than the"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(h.sleep.waits) != 1 {
		t.Errorf("waits = %v, want one (the 600s one is past the deadline)", h.sleep.waits)
	}
}

func TestRetryWithoutDeadlineIsBounded(t *testing.T) {
	t.Parallel()
	var script []answer
	for range attemptsWithoutDeadline {
		script = append(script, answer{method: "DELETE", path: "/v1/tokens/abc", status: 503, body: errJSON("down")})
	}
	h := newHarness(t, script...)
	err := h.client.Revoke(context.Background(), "abc")
	var be *Error
	if !errors.As(err, &be) || be.Attempts != attemptsWithoutDeadline {
		t.Fatalf("Revoke error = %#v, want %d attempts", err, attemptsWithoutDeadline)
	}
	checkFresh(t, h, attemptsWithoutDeadline)
}

func TestLostMintAnswerIsNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a    answer
	}{
		{"connection dropped", answer{method: "POST", path: "/v1/tokens", hangUp: true}},
		{"a proxy's 502", answer{method: "POST", path: "/v1/tokens", status: 502, body: "<html>bad gateway</html>"}},
		{"a proxy's 503", answer{method: "POST", path: "/v1/tokens", status: 503, body: "upstream down"}},
		// The broker's own 502: its create may have minted a token it could not confirm or undo.
		{"the broker's 502", answer{method: "POST", path: "/v1/tokens", status: 502, body: errJSON("the broker's create may have minted a token it could not confirm or delete")}},
		{"201 not JSON", answer{method: "POST", path: "/v1/tokens", status: 201, body: "{"}},
		{"201 without a token", answer{method: "POST", path: "/v1/tokens", status: 201, body: `{"id":"x"}`}},
		{"201 too large", answer{method: "POST", path: "/v1/tokens", status: 201, body: `{"token":"` + strings.Repeat("x", maxBrokerAnswer) + `"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.a)
			_, err := h.client.Mint(context.Background(), map[string]string{"preset": "dns-edit", "nonce": "abcdef0123456789"})
			if !errors.Is(err, ErrAnswerLost) {
				t.Fatalf("Mint error = %v, want ErrAnswerLost", err)
			}
			checkFresh(t, h, 1)
			assertNoSecrets(t, err, append(h.broker.sent(), "x"+strings.Repeat("x", 40))...)
		})
	}
}

// closedPort is the URL of a loopback port nothing listens on: a connection to it is refused.
func closedPort(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	return base
}

// TestUnreachableBrokerFailsFast: a broker that refuses connections is tried a few times with
// short waits, not backed off for the whole timeout, and the error says which URL could not be
// reached; no wait is ever said to be the broker's. A mint never sent is not a lost answer.
func TestUnreachableBrokerFailsFast(t *testing.T) {
	t.Parallel()
	for _, viaEnv := range []bool{false, true} {
		h := newHarness(t)
		h.client.Base = closedPort(t)
		if viaEnv {
			// One ID token from the environment: never spent, since no request reached a broker.
			h.client.Lookup = envLookup(map[string]string{EnvIDToken: h.iss.Token(oidctest.Claims{})})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := h.client.Mint(ctx, map[string]string{"preset": "dns-edit"})
		cancel()
		var be *Error
		if !errors.As(err, &be) || be.Status != 0 || !be.Unreachable || errors.Is(err, ErrAnswerLost) {
			t.Fatalf("env %v: Mint error = %#v, want an unreachable broker that is not a lost answer", viaEnv, err)
		}
		if be.Attempts != unreachableAttempts {
			t.Errorf("env %v: %d attempts, want %d", viaEnv, be.Attempts, unreachableAttempts)
		}
		for _, want := range []string{"could not reach the broker at " + h.client.Base + " for the mint", "connection was refused", "check the URL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("env %v: error %q does not say %q", viaEnv, err, want)
			}
		}
		if strings.Contains(err.Error(), "asked") {
			t.Errorf("env %v: error %q says the broker asked for something; it never answered", viaEnv, err)
		}
		var sum time.Duration
		for _, w := range h.sleep.waits {
			sum += w
		}
		if sum >= unreachableBudget || be.Waited != sum {
			t.Errorf("env %v: waited %v in all (error says %v), want less than %v", viaEnv, sum, be.Waited, unreachableBudget)
		}
	}
}

func TestUnresolvableBrokerFailsFast(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.client.Base = "http://broker.invalid"
	// A resolver that answers no such host for the broker's name: tests talk only to loopback.
	var d net.Dialer
	h.client.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "broker.invalid:") {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "broker.invalid", IsNotFound: true}}
		}
		return d.DialContext(ctx, network, addr)
	}}}
	err := h.client.Revoke(context.Background(), "abc")
	var be *Error
	if !errors.As(err, &be) || !be.Unreachable || be.Attempts != unreachableAttempts {
		t.Fatalf("Revoke error = %#v, want an unreachable broker after %d attempts", err, unreachableAttempts)
	}
	if want := `could not reach the broker at http://broker.invalid for the revoke: its host name "broker.invalid" does not resolve`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestRetryingWording(t *testing.T) {
	t.Parallel()
	got := Retrying(&Error{Op: "mint", Msg: "the connection was refused", Unreachable: true, Base: "http://127.0.0.1:1"}, time.Second)
	if want := "Could not reach the broker at http://127.0.0.1:1 (the connection was refused); retrying in 1s."; got != want {
		t.Errorf("Retrying = %q, want %q", got, want)
	}
	got = Retrying(&Error{Op: "mint", Status: 429, Msg: "slow down"}, 2*time.Second)
	if want := "The broker answered HTTP 429 (slow down); retrying in 2s with a fresh ID token."; got != want {
		t.Errorf("Retrying = %q, want %q", got, want)
	}
}

// TestOwnBackoffPastDeadlineIsNotTheBrokers: a wait the client chose is not worded as the
// broker's.
func TestOwnBackoffPastDeadlineIsNotTheBrokers(t *testing.T) {
	t.Parallel()
	var script []answer
	for range 2 {
		script = append(script, answer{method: "DELETE", path: "/v1/tokens/abc", status: 503, body: errJSON("down")})
	}
	h := newHarness(t, script...)
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err := h.client.Revoke(ctx, "abc")
	if err == nil || !strings.Contains(err.Error(), "not retried: the next retry would wait 2s, longer than the") || strings.Contains(err.Error(), "asked") {
		t.Fatalf("Revoke error = %v", err)
	}
}

// TestIDTokenEnv: IDTokenEnv names the variable whose ID token is spent; neither
// $CFMINT_ID_TOKEN nor the runner is asked.
func TestIDTokenEnv(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "DELETE", path: "/v1/tokens/abc", status: 204})
	u, reqTok := h.iss.IDTokenEndpoint(nil)
	revokeTok := h.iss.Token(oidctest.Claims{"jti": "for-revoke"})
	h.client.Lookup = envLookup(map[string]string{EnvIDToken: h.iss.Token(oidctest.Claims{}), "CFMINT_REVOKE_ID_TOKEN": revokeTok, EnvRequestURL: u, EnvRequestToken: reqTok})
	h.client.IDTokenEnv = "CFMINT_REVOKE_ID_TOKEN"
	if err := h.client.Revoke(context.Background(), "abc"); err != nil {
		t.Fatal(err)
	}
	if sent := h.broker.sent(); len(sent) != 1 || sent[0] != revokeTok {
		t.Errorf("sent another token than $CFMINT_REVOKE_ID_TOKEN's")
	}
	h.client.IDTokenEnv = "NOT_SET"
	err := h.client.Revoke(context.Background(), "abc")
	if err == nil || !strings.Contains(err.Error(), "$NOT_SET is not set") {
		t.Errorf("Revoke with an unset variable: %v", err)
	}
	if len(h.broker.sent()) != 1 {
		t.Error("a call was made without the named ID token")
	}
}

func TestRevokeRetriesADroppedConnection(t *testing.T) {
	t.Parallel()
	id := "0123456789abcdef0123456789abcdef"
	h := newHarness(t,
		answer{method: "DELETE", path: "/v1/tokens/" + id, hangUp: true},
		answer{method: "DELETE", path: "/v1/tokens/" + id, status: 429, header: map[string]string{"Retry-After": "1"}, body: errJSON("near the rate limit")},
		answer{method: "DELETE", path: "/v1/tokens/" + id, status: 204},
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.client.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	checkFresh(t, h, 3)
}

func TestRevokeRefused(t *testing.T) {
	t.Parallel()
	msg := "token 0123 was not minted for this run (repository_id 1, run_id 2, run_attempt 1); only the run it was minted for may revoke it"
	h := newHarness(t, answer{method: "DELETE", path: "/v1/tokens/0123", status: 403, body: errJSON(msg)})
	err := h.client.Revoke(context.Background(), "0123")
	if err == nil || !strings.Contains(err.Error(), "the broker refused the revoke (HTTP 403): "+msg) {
		t.Fatalf("Revoke error = %v", err)
	}
	assertNoSecrets(t, err, h.broker.sent()...)
}

func TestRevokeNonce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "DELETE", path: "/v1/tokens?nonce=abcdef0123456789", status: 200, body: `{"deleted": 2}`})
	n, err := h.client.RevokeNonce(context.Background(), "abcdef0123456789")
	if err != nil || n != 2 {
		t.Fatalf("RevokeNonce = %d, %v; want 2, nil", n, err)
	}
	checkFresh(t, h, 1)
}

func TestSpentEnvIDTokenIsNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "POST", path: "/v1/tokens", status: 429, header: map[string]string{"Retry-After": "1"}, body: errJSON("rate limited")})
	tok := h.iss.Token(oidctest.Claims{})
	h.client.Lookup = envLookup(map[string]string{EnvIDToken: tok})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := h.client.Mint(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "not retried: the ID token (from $CFMINT_ID_TOKEN) is the one already spent") {
		t.Fatalf("Mint error = %v", err)
	}
	assertNoSecrets(t, err, tok)
}

func TestBrokerSentenceIsScrubbed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "POST", path: "/v1/tokens", status: 400})
	// The fake answers after the ID token is known only to the client: echo whatever it sent.
	h.broker.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.broker.mu.Lock()
		h.broker.script = nil
		h.broker.mu.Unlock()
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.WriteHeader(400)
		_, _ = io.WriteString(w, errJSON("bad\n::error::injected "+tok+strings.Repeat("y", 2*maxSentence)))
	})
	_, err := h.client.Mint(context.Background(), nil)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.ContainsAny(err.Error(), "\n\r") || len(err.Error()) > maxSentence+200 {
		t.Errorf("error is not one clipped line: %d bytes", len(err.Error()))
	}
	if strings.Contains(err.Error(), "::") {
		t.Errorf("error %.80q holds a workflow command's \"::\"; it must be log-safe", err)
	}
	assertNoSecrets(t, err, h.masked...)
}

// TestBrokerSentenceIsLogSafe: what the broker writes reaches a log line only escaped, so that
// the runner reads no workflow command in it.
func TestBrokerSentenceIsLogSafe(t *testing.T) {
	t.Parallel()
	msg := "denied ##[set-output name=token]evil ::add-mask::x"
	h := newHarness(t, answer{method: "DELETE", path: "/v1/tokens/abc", status: 403, body: errJSON(msg)})
	err := h.client.Revoke(context.Background(), "abc")
	var be *Error
	if !errors.As(err, &be) || be.Msg != msg {
		t.Fatalf("Revoke error = %#v, want the sentence kept as sent in Msg", err)
	}
	for _, bad := range []string{"##[", "::"} {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error %q holds %q", err, bad)
		}
	}
	if !strings.Contains(err.Error(), "denied") {
		t.Errorf("error %q lost the sentence", err)
	}
}

// TestRunnerOnlyIgnoresCFMINTIDToken: with RunnerOnly, a $CFMINT_ID_TOKEN (which an earlier
// step of a job can plant) is never sent; the runner's ID token is.
func TestRunnerOnlyIgnoresCFMINTIDToken(t *testing.T) {
	t.Parallel()
	for _, runnerOnly := range []bool{false, true} {
		h := newHarness(t, answer{method: "DELETE", path: "/v1/tokens/abc", status: 204})
		u, reqTok := h.iss.IDTokenEndpoint(nil)
		planted := h.iss.Token(oidctest.Claims{"repository": "someone/else"})
		h.client.Lookup = envLookup(map[string]string{EnvIDToken: planted, EnvRequestURL: u, EnvRequestToken: reqTok})
		h.client.RunnerOnly = runnerOnly
		if err := h.client.Revoke(context.Background(), "abc"); err != nil {
			t.Fatal(err)
		}
		if sent := h.broker.sent()[0]; (sent == planted) == runnerOnly {
			t.Errorf("RunnerOnly %v: sent $CFMINT_ID_TOKEN: %v", runnerOnly, sent == planted)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Tue, 01 Jan 2030 00:00:30 GMT": 30 * time.Second,
		"Mon, 31 Dec 2029 00:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// RevokeWithTicket sends the mint's ticket in its header; Revoke sends none.
func TestRevokeWithTicket(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get(TicketHeader))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h := newHarness(t)
	h.client.Base = srv.URL
	id := "0123456789abcdef0123456789abcdef"
	if err := h.client.RevokeWithTicket(context.Background(), id, "v1.abc.def"); err != nil {
		t.Fatal(err)
	}
	if err := h.client.Revoke(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "v1.abc.def" || got[1] != "" {
		t.Errorf("the broker got tickets %q, want the ticket and then none", got)
	}
}
