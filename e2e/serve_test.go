package e2e

// The broker as an operator runs it: the real binary's `cfmint serve`, a trust policy file, the
// built-in Cloudflare API and a GitHub-shaped OIDC issuer, all on loopback; callers speak its HTTP
// API with ID tokens the issuer signs (and forges).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker/contracttest"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/runner"
)

const brokerAudience = "https://cfmint.test"

// brokerPolicy is the contract's policy (contracttest.Policy) for the issuer and a's account.
func brokerPolicy(iss *oidctest.Issuer, a *api) string {
	return contracttest.Policy(brokerAudience, iss.URL(), a.fx.Account.ID)
}

// brokerProc is a running `cfmint serve`.
type brokerProc struct {
	cmd *exec.Cmd
	url string
	// metrics is the base URL of --metrics-listen's port.
	metrics string
	mu      sync.Mutex
	logs    strings.Builder
	done    chan error
}

func (b *brokerProc) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logs.String()
}

func runServe(t *testing.T, a *api, policyFile string, extra ...string) *brokerProc {
	t.Helper()
	return runServeWith(t, a, a.fx.AccountBootstrap.Secret, policyFile, extra...)
}

// runServeWith runs a broker that holds bootstrap.
func runServeWith(t *testing.T, a *api, bootstrap, policyFile string, extra ...string) *brokerProc {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--policy", policyFile, "--shutdown-timeout", "5s"}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = []string{"CLOUDFLARE_BOOTSTRAP_TOKEN=" + bootstrap, "CLOUDFLARE_API_BASE_URL=" + a.url, "PATH=/usr/bin:/bin"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &brokerProc{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			b.mu.Lock()
			b.logs.WriteString(line + "\n")
			b.mu.Unlock()
			var ev struct {
				Msg, Addr   string
				MetricsAddr string `json:"metrics_addr"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "listening" {
				addr <- [2]string{ev.Addr, ev.MetricsAddr}
			}
		}
		b.done <- cmd.Wait()
	}()
	select {
	case ad := <-addr:
		b.url, b.metrics = "http://"+ad[0], "http://"+ad[1]
	case err := <-b.done:
		t.Fatalf("cfmint serve exited at start (%v):\n%s", err, b.log())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("cfmint serve did not start:\n%s", b.log())
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

type brokerAnswer struct {
	Status     int
	RetryAfter string
	Body       map[string]any
	Raw        string
}

func (b *brokerProc) do(t *testing.T, method, path, idToken string, body map[string]string) brokerAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if idToken != "" {
		req.Header.Set("Authorization", "Bearer "+idToken)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := brokerAnswer{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After"), Raw: string(raw)}
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

// scrape is what the broker's metrics port answers.
func (b *brokerProc) scrape(t *testing.T) brokerAnswer {
	t.Helper()
	res, err := http.Get(b.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return brokerAnswer{Status: res.StatusCode, Raw: string(raw)}
}

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBrokerServe: `cfmint serve` passes the broker's HTTP contract (contracttest, which the
// Worker passes too), its tokens work from the caller's address only, and it counts, reloads and
// drains as an operator expects.
func TestBrokerServe(t *testing.T) {
	a := startAPI(t)
	iss := oidctest.New(t)
	policyFile := writePolicy(t, brokerPolicy(iss, a))
	b := runServe(t, a, policyFile)
	idt := func(extra oidctest.Claims) string {
		c := oidctest.Claims{"aud": brokerAudience}
		for k, v := range extra {
			c[k] = v
		}
		return iss.Token(c)
	}
	issued := contracttest.Run(t, contracttest.Target{URL: b.url, Audience: brokerAudience, Issuer: iss, API: a.Server, Account: a.fx.Account.ID, Caller: "127.0.0.1", Log: b.log}).Secrets
	token := func(extra oidctest.Claims) string { s := idt(extra); issued = append(issued, s); return s }

	// A minted token works at Cloudflare from the caller's address, and from no other.
	res := b.do(t, "POST", "/v1/tokens", token(nil), map[string]string{"preset": "workers-deploy"})
	if res.Status != http.StatusCreated {
		t.Fatalf("mint: %d %s\n%s", res.Status, res.Raw, b.log())
	}
	secret, _ := res.Body["token"].(string)
	issued = append(issued, secret)
	scripts := "/accounts/" + a.fx.Account.ID + "/workers/scripts"
	if got := a.call(t, secret, "GET", scripts, ""); got.Status != 200 {
		t.Errorf("the minted token on Workers: %+v", got)
	}
	if got := a.call(t, secret, "GET", scripts, "127.0.0.2"); got.Status != 403 {
		t.Errorf("the minted token from another address: %+v, want 403", got)
	}
	if r := b.do(t, "DELETE", "/v1/tokens/"+res.Body["id"].(string), token(nil), nil); r.Status != 204 {
		t.Errorf("revoke: %d %s", r.Status, r.Raw)
	}

	// Metrics moved.
	// On the metrics port (the contract checks that the API's port answers 404).
	m := b.scrape(t)
	for _, want := range []string{
		`cfmint_exchanges_total{outcome="minted",rule="site-deploy"} 6`,
		`cfmint_denials_total{reason="replay"} 4`, // the ID token replayed, and three of four sent at once
		`cfmint_denials_total{reason="permission"}`,
		`cfmint_revokes_total{outcome="revoked",rule="site-deploy"} 6`,
		`cfmint_cloudflare_calls_total{operation="create",status="200"} 6`,
		`cfmint_ratelimit_budget_remaining`,
		`cfmint_build_info`,
	} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if r := b.do(t, "GET", "/readyz", "", nil); r.Status != 200 {
		t.Errorf("readyz: %d %s", r.Status, r.Raw)
	}

	// SIGHUP with a policy that does not validate: refused, the old one stays.
	if err := os.WriteFile(policyFile, []byte("audience: x\nrules: [{name: Bad Name}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = b.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.log(), "refused the new policy") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(b.log(), "refused the new policy") {
		t.Errorf("no log line about the refused policy:\n%s", b.log())
	}
	if r := b.do(t, "POST", "/v1/tokens", token(nil), map[string]string{"preset": "workers-deploy", "nonce": "feedface00000002"}); r.Status != 201 {
		t.Errorf("after a refused reload: %d %s", r.Status, r.Raw)
	} else {
		b.do(t, "DELETE", "/v1/tokens/"+r.Body["id"].(string), token(nil), nil)
	}

	// SIGTERM: drain and exit 0.
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("cfmint serve exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("cfmint serve did not stop after SIGTERM")
	}

	// No secret in the log: minted tokens, the bootstrap token, ID tokens.
	logs := b.log()
	for _, s := range append([]string{a.fx.AccountBootstrap.Secret}, issued...) {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the broker's log holds a secret")
		}
	}
	if !strings.Contains(logs, `"event":"mint"`) || !strings.Contains(logs, `"event":"denial"`) || !strings.Contains(logs, `"event":"revoke"`) {
		t.Errorf("the log lacks audit lines:\n%s", logs)
	}
	for _, tk := range a.Tokens() {
		if strings.HasPrefix(tk.Name, "cfmint-broker:") {
			t.Errorf("token %s left behind", tk.Name)
		}
	}
}

func TestBrokerRefusesABadPolicy(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	f := writePolicy(t, "audience: https://cfmint.test\nrules:\n  - name: r1\n    issuer: https://token.actions.githubusercontent.com\n    claims:\n      repository_id: 690011\n    account_id: nothex\n    colour: blue\n")
	cmd := exec.CommandContext(context.Background(), binPath, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--policy", f)
	cmd.Env = []string{"CLOUDFLARE_BOOTSTRAP_TOKEN=" + a.fx.AccountBootstrap.Secret, "CLOUDFLARE_API_BASE_URL=" + a.url}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want 2:\n%s", err, out)
	}
	for _, want := range []string{"r1", "repository_id", `"690011"`, "account_id", "colour"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not name %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), a.fx.AccountBootstrap.Secret) {
		t.Errorf("the refusal holds the bootstrap token")
	}
}

func TestPolicyCheckAndTest(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	dir := t.TempDir()
	good := writePolicy(t, brokerPolicy(iss, a))
	writeJSONFile := func(name string, v any) string {
		f := filepath.Join(dir, name)
		b, _ := json.Marshal(v)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	claims := iss.Complete(oidctest.Claims{"aud": brokerAudience})
	onMain := writeJSONFile("main.json", claims)
	claims["ref"] = "refs/heads/feature"
	onFeature := writeJSONFile("feature.json", claims)
	dns := writeJSONFile("dns.json", map[string]string{"permissions": "DNS Write", "zones": "example.com"})
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(binPath, args...)
		cmd.Env = append([]string{"CLOUDFLARE_API_BASE_URL=" + a.url}, env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	boot := []string{"CLOUDFLARE_BOOTSTRAP_TOKEN=" + a.fx.AccountBootstrap.Secret}
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"check offline", nil, []string{"policy", "check", good}, 0, "valid: 1 rule,"},
		{"check against Cloudflare", boot, []string{"policy", "check", good}, 0, "valid"},
		{"check a bad file", nil, []string{"policy", "check", writePolicy(t, "audience: x\nrules: []\n")}, 1, "at least one rule"},
		{"test: allowed", boot, []string{"policy", "test", good, "--claims", onMain}, 0, "allowed by rule site-deploy"},
		{"test: matching only", nil, []string{"policy", "test", good, "--claims", onMain}, 0, "matching rules, in order: site-deploy"},
		{"test: pattern misses", boot, []string{"policy", "test", good, "--claims", onFeature}, 1, "refs/heads/feature"},
		{"test: not allowed", boot, []string{"policy", "test", good, "--claims", onMain, "--request", dns}, 1, "DNS Write"},
		{"test: no claims", nil, []string{"policy", "test", good}, 2, "--claims"},
	}
	for _, tc := range cases {
		out, code := run(tc.env, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", tc.name, code, tc.code, tc.want, out)
		}
		if strings.Contains(out, a.fx.AccountBootstrap.Secret) {
			t.Errorf("%s: the output holds the bootstrap token", tc.name)
		}
	}
	if n := a.creates(); n != 0 {
		t.Errorf("policy test created %d tokens", n)
	}
}

// TestBrokerKeylessUserOwned is the keyless flow through the action's binary for a rule that
// mints user-owned tokens, with a broker that holds a user bootstrap token.
func TestBrokerKeylessUserOwned(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	policy := writePolicy(t, fmt.Sprintf(`audience: %s
rules:
  - name: dns-bot
    issuer: %s
    claims: {repository_id: "%s", repository_owner_id: "%s"}
    token_owner: user
    account_id: %s
    allow:
      presets: [dns-edit]
      zones: [example.com]
`, brokerAudience, iss.URL(), brokerRepoID, brokerOwnerID, a.fx.Account.ID))
	b := runServeWith(t, a, a.fx.UserBootstrap.Secret, policy)
	j := a.brokerJob(t, iss)
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.url, "audience": brokerAudience, "preset": "dns-edit", "zones": "example.com"}}
	m := runMain(t, j, s)
	mustSucceed(t, m)
	id := m.Outputs["token-id"]
	tk, ok := a.Token(id)
	if !ok || tk.OwnerKind != "user" {
		t.Fatalf("token %s: %+v, want a user-owned token", id, tk)
	}
	token := m.Outputs["token"]
	if got := a.call(t, token, "GET", "/zones/"+a.fx.Zone.ID+"/dns_records", "127.0.0.1"); got.Status != 200 {
		t.Errorf("the user-owned token on DNS: %+v", got)
	}
	if got := a.call(t, token, "GET", "/zones/"+a.fx.Zone2.ID+"/dns_records", "127.0.0.1"); got.Status == 200 {
		t.Errorf("the token reaches a zone the rule does not list")
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if _, ok := a.Token(id); ok {
		t.Errorf("token %s is still there after post", id)
	}
	if strings.Contains(b.log(), a.fx.UserBootstrap.Secret) || strings.Contains(b.log(), token) {
		t.Errorf("the broker's log holds a secret")
	}
}

// TestBrokerCloudflareTrouble: what the broker answers when Cloudflare does not, and what it
// refuses to spend calls on.
func TestBrokerCloudflareTrouble(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := runServe(t, a, writePolicy(t, brokerPolicy(iss, a)))
	idt := func() string { return iss.Token(oidctest.Claims{"aud": brokerAudience}) }
	zoneCalls := func() int {
		n := 0
		for _, r := range a.Requests() {
			if strings.HasPrefix(r.Path, "/client/v4/zones") {
				n++
			}
		}
		return n
	}

	// Zones no rule lists are refused before any lookup; so are too many.
	before := zoneCalls()
	if r := b.do(t, "POST", "/v1/tokens", idt(), map[string]string{"permissions": "DNS Read", "zones": "example.org, a.example, b.example"}); r.Status != 403 || !strings.Contains(r.Raw, "example.org") {
		t.Errorf("zones no rule lists: %d %s", r.Status, r.Raw)
	}
	var many []string
	for i := range 21 {
		many = append(many, fmt.Sprintf("z%d.example", i))
	}
	if r := b.do(t, "POST", "/v1/tokens", idt(), map[string]string{"permissions": "DNS Read", "zones": strings.Join(many, ",")}); r.Status != 400 || !strings.Contains(r.Raw, "at most 20") {
		t.Errorf("21 zones: %d %s", r.Status, r.Raw)
	}
	if n := zoneCalls() - before; n != 0 {
		t.Errorf("refused zones cost %d zone lookups", n)
	}

	// A rate-limited zone lookup is a 429 with Retry-After, not a bad request.
	a.InjectFault(cfapitest.Fault{Method: "GET", Path: "/zones", Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second})
	r := b.do(t, "POST", "/v1/tokens", idt(), map[string]string{"permissions": "DNS Read", "zones": "example.com"})
	if r.Status != http.StatusTooManyRequests || r.RetryAfter == "" {
		t.Errorf("zone lookup rate limited: %d (Retry-After %q) %s", r.Status, r.RetryAfter, r.Raw)
	}
	a.ClearFaults()

	// A create whose outcome is unknown, and whose token was not found: 502, not to be retried,
	// naming the nonce to clean up by.
	a.InjectFault(cfapitest.Fault{Method: "POST", Path: "/accounts/{account_id}/tokens", Times: 1, Status: http.StatusBadGateway})
	r = b.do(t, "POST", "/v1/tokens", idt(), map[string]string{"preset": "workers-deploy", "nonce": "0badc0de0badc0de"})
	if r.Status != http.StatusBadGateway || !strings.Contains(r.Raw, "nonce=0badc0de0badc0de") || r.RetryAfter != "" {
		t.Errorf("an unseen create: %d (Retry-After %q) %s", r.Status, r.RetryAfter, r.Raw)
	}
	if left := brokerTokensLeft(a); len(left) > 0 {
		t.Errorf("tokens left: %v", left)
	}
}
