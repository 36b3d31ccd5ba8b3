package e2e

// The keyless mode end to end: the real binary as the action's phases and as the CLI, against a
// broker run in-process in front of the built-in Cloudflare API, with ID tokens from oidctest.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/runner"
	"github.com/cfmint/cfmint/internal/trust"
)

// Claims of the test jobs' ID tokens that the rules pin.
const (
	brokerRepoID  = "690011"
	brokerOwnerID = "4200"
)

// testBroker is a broker running in-process, in front of a's Cloudflare API.
type testBroker struct {
	*broker.Server
	URL  string
	iss  *oidctest.Issuer
	logs *syncBuffer
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

// defaultRule is an account-owned rule for the test jobs: workers-deploy (and DNS Read on
// example.com), 30m at most, pinned to the caller.
func defaultRule(a *api, iss *oidctest.Issuer) string {
	return fmt.Sprintf(`  - name: site-deploy
    issuer: %s
    claims:
      repository_id: %q
      repository_owner_id: %q
    account_id: %s
    allow:
      presets: [workers-deploy]
      permissions: [DNS Read]
      zones: [example.com]
    max_ttl: 30m
`, iss.URL(), brokerRepoID, brokerOwnerID, a.fx.Account.ID)
}

// startBroker starts a broker whose policy has the audience of its own URL and rules (YAML list
// items, see defaultRule); wrap, when set, wraps its routes (to inject faults).
func startBroker(t *testing.T, a *api, iss *oidctest.Issuer, rules string, wrap func(http.Handler) http.Handler) *testBroker {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	b := &testBroker{URL: "http://" + ts.Listener.Addr().String(), iss: iss, logs: &syncBuffer{}}
	pol, err := trust.Parse([]byte("audience: " + b.URL + "\nrules:\n" + rules))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	ctx := context.Background()
	v, err := broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: []string{iss.URL()}, Audience: b.URL, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	boot := a.fx.AccountBootstrap.Secret
	srv, err := broker.New(broker.Options{
		Policy: pol, Verifier: v, Replay: &broker.MemoryReplayStore{},
		Tokens: cftoken.New(boot, cftoken.Options{BaseURL: a.url, HTTPClient: hc, Backoff: 10 * time.Millisecond}),
		Once:   cftoken.New(boot, cftoken.Options{BaseURL: a.url, HTTPClient: hc, Backoff: 10 * time.Millisecond, Attempts: 1}),
		Logger: slog.New(slog.NewJSONHandler(b.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Prepare(ctx, pol); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	b.Server = srv
	var h http.Handler = srv.Routes()
	if wrap != nil {
		h = wrap(h)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	return b
}

// brokerJob is a job with `permissions: id-token: write` (ids nil: without it).
func (a *api) brokerJob(t *testing.T, ids runner.IDTokenIssuer) *runner.Job {
	t.Helper()
	act, err := runner.LoadAction("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"GITHUB_ACTIONS":             "true",
		"GITHUB_REPOSITORY":          "octo-org/site",
		"GITHUB_REPOSITORY_ID":       brokerRepoID,
		"GITHUB_REPOSITORY_OWNER_ID": brokerOwnerID,
		"GITHUB_RUN_ID":              "1001",
		"GITHUB_RUN_ATTEMPT":         "1",
		"GITHUB_JOB":                 "deploy",
		"GITHUB_WORKFLOW":            "ci",
		"CLOUDFLARE_API_BASE_URL":    a.url,
		"CFMINT_TRACE_FALLBACK_URL":  noFallback,
		"PATH":                       "/usr/bin:/bin",
	}
	return runner.NewJob(runner.JobOptions{
		Dir: t.TempDir(), Env: env, Exec: runner.ExecBinary(binPath), Action: act,
		Secrets: []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret}, IDTokens: ids,
	})
}

// checkIDTokensMasked asserts every ID token the issuer gave out is masked before any other
// use, and shows up nowhere else a user or a later step can see.
func checkIDTokensMasked(t *testing.T, iss *oidctest.Issuer, b *testBroker, phases ...*runner.Phase) {
	t.Helper()
	for _, tok := range iss.Issued() {
		for _, p := range phases {
			for i, line := range strings.Split(p.Stdout, "\n") {
				if strings.Contains(line, tok) && line != "::add-mask::"+tok {
					t.Errorf("%s phase stdout line %d uses an ID token outside its mask line", p.Name, i+1)
				}
			}
			for what, s := range map[string]string{"stderr": p.Stderr, "log": p.Log, "summary": p.Summary} {
				if strings.Contains(s, tok) {
					t.Errorf("%s phase %s holds an ID token", p.Name, what)
				}
			}
			for k, v := range p.State {
				if strings.Contains(v, tok) {
					t.Errorf("%s phase state %s holds an ID token", p.Name, k)
				}
			}
		}
		if strings.Contains(b.logs.String(), tok) {
			t.Error("the broker's log holds an ID token")
		}
	}
}

func TestBrokerKeylessFlow(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), nil)
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL + "/", "preset": "workers-deploy"}}

	m := runMain(t, j, s)
	mustSucceed(t, m)
	token, id := m.Outputs["token"], m.Outputs["token-id"]
	if token == "" || id == "" {
		t.Fatalf("outputs = %v", m.Outputs)
	}
	if got := j.Env()["CLOUDFLARE_API_TOKEN"]; got != token {
		t.Error("CLOUDFLARE_API_TOKEN is not the token")
	}
	if got := j.Env()["CLOUDFLARE_ACCOUNT_ID"]; got != a.fx.Account.ID {
		t.Errorf("CLOUDFLARE_ACCOUNT_ID = %q, want the rule's account %s", got, a.fx.Account.ID)
	}
	if !strings.Contains(m.Summary, "| Broker | "+b.URL+" (rule `site-deploy`) |") {
		t.Errorf("summary does not name the broker and rule:\n%s", m.Summary)
	}
	if tk, ok := a.Token(id); !ok || !regexp.MustCompile(`^cfmint-broker:[0-9a-f]{6}:`+brokerRepoID+`:1001\.1:`).MatchString(tk.Name) || tk.Name != m.Outputs["name"] {
		t.Errorf("token %s: %+v (name output %q)", id, tk, m.Outputs["name"])
	}
	if got := a.call(t, token, a.scripts().method, a.scripts().path, "127.0.0.1"); got.Status != 200 {
		t.Errorf("the minted token: %+v", got)
	}
	if got := a.call(t, token, a.scripts().method, a.scripts().path, "127.0.0.2"); got.Status != 403 {
		t.Errorf("the token pinned to the caller worked from another address: %+v", got)
	}

	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if _, ok := a.Token(id); ok {
		t.Error("the token is still there after post")
	}
	if got := a.call(t, token, a.scripts().method, a.scripts().path, "127.0.0.1"); got.Status != 401 {
		t.Errorf("the revoked token: %+v", got)
	}
	if !strings.Contains(p.Log, "Revoked token") {
		t.Errorf("post log:\n%s", p.Log)
	}
	if n := len(iss.Issued()); n != 2 {
		t.Errorf("%d ID tokens issued; want one for main and a fresh one for post", n)
	}
	checkSecrets(t, a, token, m, p)
	checkIDTokensMasked(t, iss, b, m, p)
}

func TestBrokerDenial(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), nil)
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "permissions": "DNS Write", "zones": "example.com"}}
	before := a.creates()
	m := runMain(t, j, s)
	if !m.Failed() {
		t.Fatal("main succeeded with a permission the rule does not allow")
	}
	all := strings.Join(annotations(m), "\n")
	if !strings.Contains(all, "the broker refused the mint (HTTP 403)") || !strings.Contains(all, "site-deploy") || !strings.Contains(all, "DNS Write") {
		t.Errorf("errors do not carry the broker's sentence:\n%s", all)
	}
	if a.creates() != before {
		t.Error("a denied exchange created a token")
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if !strings.Contains(p.Log, "Nothing to revoke") {
		t.Errorf("post after a denial:\n%s", p.Log)
	}
	checkIDTokensMasked(t, iss, b, m, p)
}

func annotations(p *runner.Phase) []string {
	var out []string
	for _, an := range p.Annotations {
		out = append(out, an.Message)
	}
	return out
}

// TestBrokerLostAnswer: the broker mints, then the connection drops before main reads the
// answer; post asks the broker to delete what it minted for the step's nonce.
func TestBrokerLostAnswer(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	drop := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if rec.Code != http.StatusCreated {
				t.Errorf("the broker answered %d: %s", rec.Code, rec.Body)
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		})
	}
	b := startBroker(t, a, iss, defaultRule(a, iss), drop)
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "preset": "workers-deploy"}}
	m := runMain(t, j, s)
	if !m.Failed() {
		t.Fatal("main succeeded without the broker's answer")
	}
	if all := strings.Join(annotations(m), "\n"); !strings.Contains(all, "the post phase will ask it to delete what it minted for nonce") {
		t.Errorf("main's errors:\n%s", all)
	}
	live := brokerTokens(a)
	if len(live) != 1 {
		t.Fatalf("%d broker tokens live after the lost answer, want 1", len(live))
	}
	if m.State["broker-nonce"] == "" || !strings.Contains(live[0].Name, ":"+m.State["broker-nonce"]+":") {
		t.Errorf("state nonce %q; token %q", m.State["broker-nonce"], live[0].Name)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if n := len(brokerTokens(a)); n != 0 {
		t.Errorf("%d broker tokens live after post", n)
	}
	if !strings.Contains(p.Log, "the broker deleted 1 token(s) minted for this step") {
		t.Errorf("post log:\n%s", p.Log)
	}
	checkIDTokensMasked(t, iss, b, m, p)
}

func brokerTokens(a *api) []cfapitest.TokenInfo {
	var out []cfapitest.TokenInfo
	for _, tk := range a.Tokens() {
		if strings.HasPrefix(tk.Name, "cfmint-broker:") {
			out = append(out, tk)
		}
	}
	return out
}

func TestBrokerNeedsIDTokenPermission(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), nil)
	j := a.brokerJob(t, nil)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "preset": "workers-deploy"}}
	m := runMain(t, j, s)
	if !m.Failed() {
		t.Fatal("main succeeded without an ID token")
	}
	if all := strings.Join(annotations(m), "\n"); !strings.Contains(all, "add `permissions: id-token: write` to the job") {
		t.Errorf("errors do not say what to add:\n%s", all)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if n := len(brokerTokens(a)); n != 0 {
		t.Errorf("%d tokens minted", n)
	}
}

func TestBrokerCLI(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), nil)
	claims := oidctest.Claims{"aud": b.URL, "repository_id": brokerRepoID, "repository_owner_id": brokerOwnerID, "run_id": "77", "run_attempt": "1"}
	idTok := iss.Token(claims)
	env := map[string]string{"CFMINT_ID_TOKEN": idTok, "GITHUB_ACTIONS": "true"}
	out, errOut, code := a.cli(t, env, "mint", "--broker", b.URL, "--preset", "workers-deploy", "--ttl", "10m")
	if code != 0 {
		t.Fatalf("mint --broker: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	lines := strings.Split(errOut, "\n")
	if len(lines) < 2 || lines[0] != "::add-mask::"+idTok || lines[1] != "::add-mask::"+token {
		t.Errorf("stderr does not mask the ID token, then the token, first:\n%s", strings.NewReplacer(idTok, "<ID>", token, "<TOKEN>").Replace(errOut))
	}
	if got := a.call(t, token, a.scripts().method, a.scripts().path, "127.0.0.1"); got.Status != 200 {
		t.Errorf("the minted token: %+v", got)
	}
	live := brokerTokens(a)
	if len(live) != 1 {
		t.Fatalf("%d broker tokens", len(live))
	}
	// The ID token is spent: a revoke needs another.
	_, errOut, code = a.cli(t, env, "revoke", "--broker", b.URL, live[0].ID)
	if code != 1 || !strings.Contains(errOut, "this ID token was already used") || strings.Contains(strings.ReplaceAll(errOut, "::add-mask::"+idTok+"\n", ""), idTok) {
		t.Errorf("revoke with a spent ID token: exit %d: %s", code, errOut)
	}
	env["CFMINT_ID_TOKEN"] = iss.Token(claims)
	_, errOut, code = a.cli(t, env, "revoke", "--broker", b.URL, live[0].ID)
	if code != 0 {
		t.Fatalf("revoke --broker: exit %d: %s", code, errOut)
	}
	if n := len(brokerTokens(a)); n != 0 {
		t.Errorf("%d broker tokens after revoke", n)
	}
	// Both a broker and a bootstrap token: one error naming both.
	_, errOut, code = a.cli(t, env, "mint", "--broker", b.URL, "--bootstrap-token", "x", "--preset", "workers-deploy")
	if code != 2 || !strings.Contains(errOut, "--broker: cannot be combined with bootstrap-token") {
		t.Errorf("--broker with --bootstrap-token: exit %d: %s", code, errOut)
	}
}

// TestBrokerRetriesThroughTheAction: Cloudflare rate limits the broker's create once; the broker
// answers 429 with Retry-After, and the action's main retries with a fresh ID token, saying how
// long it waited, and mints.
func TestBrokerRetriesThroughTheAction(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), nil)
	a.InjectFault(cfapitest.Fault{Method: http.MethodPost, Path: "/accounts/{account_id}/tokens", Times: 1, Status: http.StatusTooManyRequests, RetryAfter: time.Second})
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "preset": "workers-deploy"}}
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if !strings.Contains(m.Log, "The broker answered HTTP 429") || !strings.Contains(m.Log, "retrying in 1s with a fresh ID token") {
		t.Errorf("main's log does not say it waited and retried:\n%s", m.Log)
	}
	if n := len(iss.Issued()); n != 2 {
		t.Errorf("%d ID tokens for main; want one per attempt", n)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if left := brokerTokens(a); len(left) > 0 {
		t.Errorf("tokens left: %v", left)
	}
	checkIDTokensMasked(t, iss, b, m, p)
}

// mintFirstThen lets the broker mint on the first POST, then throws its answer away and answers
// status with the JSON error body instead: a broker whose create minted a token it could not
// confirm (502), or one that minted and yet said to retry (503). Later calls go through.
func mintFirstThen(t *testing.T, status int) func(http.Handler) http.Handler {
	var once sync.Once
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			first := false
			if r.Method == http.MethodPost {
				once.Do(func() { first = true })
			}
			if !first {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if rec.Code != http.StatusCreated {
				t.Errorf("the broker answered %d: %s", rec.Code, rec.Body)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error": "the broker's create may have minted a token it could not confirm or delete"}`)
		})
	}
}

// TestBroker502IsCleanedUpByNonce: the broker answers 502 to a mint whose create may have
// minted: main does not retry (a retry would mint a twin), says post will clean up by nonce,
// and post has the broker delete what it minted for the nonce.
func TestBroker502IsCleanedUpByNonce(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), mintFirstThen(t, http.StatusBadGateway))
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "preset": "workers-deploy"}}
	m := runMain(t, j, s)
	if !m.Failed() {
		t.Fatal("main succeeded on a 502")
	}
	if all := strings.Join(annotations(m), "\n"); !strings.Contains(all, "HTTP 502") || !strings.Contains(all, "the post phase will ask it to delete what it minted for nonce") {
		t.Errorf("main's errors:\n%s", all)
	}
	if n := len(iss.Issued()); n != 1 {
		t.Errorf("main used %d ID tokens; a 502 to a mint must not be retried", n)
	}
	if n := len(brokerTokens(a)); n != 1 {
		t.Fatalf("%d broker tokens live after the 502, want the 1 it minted", n)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if !strings.Contains(p.Log, "the broker deleted 1 token(s) minted for this step") {
		t.Errorf("post log:\n%s", p.Log)
	}
	if left := brokerTokens(a); len(left) > 0 {
		t.Errorf("tokens left: %v", left)
	}
	checkIDTokensMasked(t, iss, b, m, p)
}

// TestBrokerRetriedMintRevokesByNonceToo: an attempt the broker answered 503 minted all the
// same; main retries and mints again. Post revokes main's token by id, and, because main's
// exchange was retried, the other one by nonce.
func TestBrokerRetriedMintRevokesByNonceToo(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), mintFirstThen(t, http.StatusServiceUnavailable))
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "preset": "workers-deploy"}}
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if m.State["broker-retried"] != "true" {
		t.Errorf("state broker-retried = %q after a retry", m.State["broker-retried"])
	}
	if n := len(brokerTokens(a)); n != 2 {
		t.Fatalf("%d broker tokens live, want 2 (the 503's and main's)", n)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if !strings.Contains(p.Log, "Revoked token") || !strings.Contains(p.Log, "the broker deleted 1 more token(s) minted for this step") {
		t.Errorf("post log:\n%s", p.Log)
	}
	if left := brokerTokens(a); len(left) > 0 {
		t.Errorf("tokens left: %v", left)
	}
	checkIDTokensMasked(t, iss, b, m, p)
}

// TestBrokerTTLUnset: a step without ttl sends none, so the broker gives min(15m, max_ttl): a
// rule with max_ttl 10m mints a 10m token rather than refusing 15m; the log and summary show
// the 10m the token has.
func TestBrokerTTLUnset(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	rule := strings.Replace(defaultRule(a, iss), "max_ttl: 30m", "max_ttl: 10m", 1)
	b := startBroker(t, a, iss, rule, nil)
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "preset": "workers-deploy"}}
	start := time.Now()
	m := runMain(t, j, s)
	mustSucceed(t, m)
	exp, err := time.Parse(time.RFC3339, m.Outputs["expires-on"])
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(start); d < 10*time.Minute-5*time.Second || d > 10*time.Minute+5*time.Second {
		t.Errorf("the token expires %s after the step started, want 10m", d)
	}
	if !strings.Contains(m.Log, "(10m), usable from") {
		t.Errorf("main's log does not show the token's 10m:\n%s", m.Log)
	}
	if !strings.Contains(m.Summary, "(10m) |") {
		t.Errorf("the summary does not show the token's 10m:\n%s", m.Summary)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
}

// TestBrokerSentenceLogSafe: what a broker writes reaches the CLI's stderr, which a workflow
// step's runner reads commands from, only log-safe.
func TestBrokerSentenceLogSafe(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	evil := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error": "no ##[set-output name=token]evil ::warning::injected"}`)
		})
	}
	b := startBroker(t, a, iss, defaultRule(a, iss), evil)
	claims := oidctest.Claims{"aud": b.URL, "repository_id": brokerRepoID, "repository_owner_id": brokerOwnerID, "run_id": "77", "run_attempt": "1"}
	env := map[string]string{"CFMINT_ID_TOKEN": iss.Token(claims)}
	for _, args := range [][]string{
		{"revoke", "--broker", b.URL, "0123456789abcdef0123456789abcdef"},
		{"mint", "--broker", b.URL, "--preset", "workers-deploy"},
	} {
		_, errOut, code := a.cli(t, env, args...)
		if code != 1 || !strings.Contains(errOut, "HTTP 403") {
			t.Errorf("%s: exit %d: %s", args[0], code, errOut)
		}
		if strings.Contains(errOut, "##[") || strings.Contains(errOut, "::warning::") {
			t.Errorf("%s: stderr carries the broker's workflow command:\n%s", args[0], errOut)
		}
	}
}
