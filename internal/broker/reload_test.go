package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
)

// served is a broker run by broker.Serve against a fake Cloudflare API of its own.
type served struct {
	cf  *cfapitest.Server
	fx  cfapitest.Fixture
	iss *oidctest.Issuer
	url string
	// metrics is the base URL of --metrics-listen's port.
	metrics string
	logs    *logBuffer
	cfg     broker.Config
}

// cfWorld is the fake Cloudflare API and issuer, and a config that serves the test policy
// (its one rule named site-deploy) from them, polling the file every 10 ms.
func cfWorld(t *testing.T) *served {
	t.Helper()
	cf := cfapitest.New()
	fx := cf.Seed()
	api := httptest.NewServer(cf.Handler())
	t.Cleanup(api.Close)
	iss := oidctest.New(t)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(policyText(iss, fx, "site-deploy")), 0o600); err != nil {
		t.Fatal(err)
	}
	return &served{cf: cf, fx: fx, iss: iss, logs: &logBuffer{}, cfg: broker.Config{
		Listen:          "127.0.0.1:0",
		MetricsListen:   "127.0.0.1:0",
		PolicyFile:      file,
		PolicyPoll:      10 * time.Millisecond,
		BootstrapToken:  fx.AccountBootstrap.Secret,
		APIBase:         api.URL + "/client/v4",
		ReplayStore:     "memory",
		ShutdownTimeout: 5 * time.Second,
		RateLimit:       1200,
		RateReserve:     100,
		LogLevel:        "info",
	}}
}

// start runs Serve until the test ends.
func (s *served) start(t *testing.T) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	addr, maddr := make(chan net.Addr, 1), make(chan net.Addr, 1)
	s.cfg.Log, s.cfg.Listening, s.cfg.MetricsListening = s.logs, func(a net.Addr) { addr <- a }, func(a net.Addr) { maddr <- a }
	done := make(chan error, 1)
	go func() { done <- broker.Serve(ctx, s.cfg) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v\n%s", err, s.logs)
		}
		if strings.Contains(s.logs.String(), s.fx.AccountBootstrap.Secret) {
			t.Error("the log holds the bootstrap token")
		}
	})
	select {
	case a := <-addr:
		s.url = "http://" + a.String()
		if s.cfg.MetricsListen != "" {
			s.metrics = "http://" + (<-maddr).String()
		}
	case err := <-done:
		done <- nil // for the clean-up, which waits for Serve to end
		t.Fatalf("Serve ended before it listened: %v\n%s", err, s.logs)
	}
}

// exchange mints with a fresh ID token of the main branch: the status and the answer.
func (s *served) exchange(t *testing.T) (int, string) {
	t.Helper()
	token, _ := s.iss.Issue(mainClaims())
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/tokens", strings.NewReader(`{"preset":"workers-deploy"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mintedBy mints and returns the rule that allowed it.
func (s *served) mintedBy(t *testing.T) string {
	t.Helper()
	status, out := s.exchange(t)
	if status != http.StatusCreated {
		t.Fatalf("the exchange: %d %s\n%s", status, out, s.logs)
	}
	_, rule, _ := strings.Cut(out, `"rule":"`)
	rule, _, _ = strings.Cut(rule, `"`)
	return rule
}

func (s *served) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// series returns the /metrics lines that start with prefix.
func (s *served) series(t *testing.T, prefix string) []string {
	t.Helper()
	resp, err := http.Get(s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := string(b)
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			got = append(got, line)
		}
	}
	return got
}

func sha(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:])
}

func infoLine(text string) string { return `cfmint_policy_info{sha256="` + sha(text) + `"} 1` }

// write replaces file's content at once, as a ConfigMap's update does (a file written in place
// is read only once two polls agree on it).
func write(t *testing.T, file, text string) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyReloadsWhenTheFileChanges: no signal, only a new content; a bad one is refused with
// one log line and one count, not retried at every poll, and the last good policy stays.
func TestPolicyReloadsWhenTheFileChanges(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := cfWorld(t)
	s.start(t)
	first := policyText(s.iss, s.fx, "site-deploy")
	if got := s.series(t, "cfmint_policy_info"); len(got) != 1 || got[0] != infoLine(first) {
		t.Errorf("cfmint_policy_info at start = %q, want %q", got, infoLine(first))
	}
	if got := s.series(t, "cfmint_policy_reload_errors_total"); len(got) != 1 || got[0] != "cfmint_policy_reload_errors_total 0" {
		t.Errorf("the reload errors at start = %q, want the series at 0", got)
	}
	if r := s.mintedBy(t); r != "site-deploy" {
		t.Errorf("minted by rule %q, want site-deploy", r)
	}

	second := policyText(s.iss, s.fx, "site-deploy-2")
	write(t, s.cfg.PolicyFile, second)
	s.logs.waitFor(ctx, t, "reloaded the policy")
	if r := s.mintedBy(t); r != "site-deploy-2" {
		t.Errorf("after the file changed, minted by rule %q, want site-deploy-2", r)
	}
	if got := s.series(t, "cfmint_policy_info"); len(got) != 1 || got[0] != infoLine(second) {
		t.Errorf("cfmint_policy_info after the reload = %q, want only %q", got, infoLine(second))
	}

	// Two problems, so that the log line joins lines.
	bad := "audience: x\nrules:\n  - name: a\n    claims: {}\n    frobnicate: 1\n"
	write(t, s.cfg.PolicyFile, bad)
	s.logs.waitFor(ctx, t, "refused the new policy; the old one stays")
	// Many polls of the same bad file: not one more line, nor count.
	time.Sleep(30 * s.cfg.PolicyPoll)
	if r := s.mintedBy(t); r != "site-deploy-2" {
		t.Errorf("after a bad policy, minted by rule %q, want site-deploy-2", r)
	}
	if got := s.series(t, "cfmint_policy_reload_errors_total"); len(got) != 1 || got[0] != "cfmint_policy_reload_errors_total 1" {
		t.Errorf("the reload errors after a bad policy = %q, want 1", got)
	}
	if got := s.series(t, "cfmint_policy_info"); len(got) != 1 || got[0] != infoLine(second) {
		t.Errorf("cfmint_policy_info after a bad policy = %q, want it unchanged: %q", got, infoLine(second))
	}
	if n := strings.Count(s.logs.String(), "refused the new policy"); n != 1 {
		t.Errorf("the bad policy was logged %d times, want once:\n%s", n, s.logs)
	}
	var line string
	for _, l := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(l, "refused the new policy") {
			line = l
		}
	}
	if strings.Contains(line, ":;") || !strings.Contains(line, `"sha256":"`+sha(bad)+`"`) || !strings.Contains(line, "frobnicate") {
		t.Errorf("the refusal's line = %s; want its problems joined without \":;\", and the file's sha256", line)
	}

	third := policyText(s.iss, s.fx, "site-deploy-3")
	write(t, s.cfg.PolicyFile, third)
	for !strings.Contains(s.logs.String(), `"sha256":"`+sha(third)+`"`) {
		s.logs.waitFor(ctx, t, "reloaded the policy")
		time.Sleep(5 * time.Millisecond)
	}
	if r := s.mintedBy(t); r != "site-deploy-3" {
		t.Errorf("after a good policy again, minted by rule %q, want site-deploy-3", r)
	}
	if got := s.series(t, "cfmint_policy_info"); len(got) != 1 || got[0] != infoLine(third) {
		t.Errorf("cfmint_policy_info after the good policy = %q, want only %q", got, infoLine(third))
	}
}

// TestPolicyReloadsOnConfigMapSwap: a ConfigMap volume's file is a symlink through ..data, which
// the kubelet points at a new directory at once; the file's own path never changes.
func TestPolicyReloadsOnConfigMapSwap(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := cfWorld(t)
	dir := t.TempDir()
	version := func(name, rule string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "policy.yaml"), policyText(s.iss, s.fx, rule))
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_06_06_00_00.1", "site-deploy")
	if err := os.Symlink("..data/policy.yaml", filepath.Join(dir, "policy.yaml")); err != nil {
		t.Fatal(err)
	}
	s.cfg.PolicyFile = filepath.Join(dir, "policy.yaml")
	s.start(t)
	if r := s.mintedBy(t); r != "site-deploy" {
		t.Errorf("minted by rule %q, want site-deploy", r)
	}
	version("..2026_12_06_06_01_00.2", "site-deploy-2")
	s.logs.waitFor(ctx, t, "reloaded the policy")
	if r := s.mintedBy(t); r != "site-deploy-2" {
		t.Errorf("after the ConfigMap's swap, minted by rule %q, want site-deploy-2", r)
	}
}

var deadAnswer = regexp.MustCompile(`bootstrap token is no longer valid.*operator must replace it`)

// TestDeadBootstrapToken: Cloudflare revokes the bootstrap token (it leaked). The next exchange
// is refused with 503 and what to do, /readyz says so, the gauge reads 0, the exchange counts
// under its rule, and a restart says what is wrong.
func TestDeadBootstrapToken(t *testing.T) {
	t.Parallel()
	s := cfWorld(t)
	s.start(t)
	if got := s.series(t, "cfmint_bootstrap_token_valid"); len(got) != 1 || got[0] != "cfmint_bootstrap_token_valid 1" {
		t.Errorf("the gauge at start = %q, want 1", got)
	}
	if r := s.mintedBy(t); r != "site-deploy" {
		t.Errorf("minted by rule %q, want site-deploy", r)
	}
	s.cf.RevokeToken(s.fx.AccountBootstrap.ID)

	status, out := s.exchange(t)
	if status != http.StatusServiceUnavailable || !deadAnswer.MatchString(out) {
		t.Errorf("an exchange with a dead bootstrap token = %d %s, want 503 saying the bootstrap token is no longer valid", status, out)
	}
	if status, out := s.get(t, "/readyz"); status != http.StatusServiceUnavailable || !deadAnswer.MatchString(out) {
		t.Errorf("/readyz = %d %s, want 503 saying why", status, out)
	}
	if got := s.series(t, "cfmint_bootstrap_token_valid"); len(got) != 1 || got[0] != "cfmint_bootstrap_token_valid 0" {
		t.Errorf("the gauge = %q, want 0", got)
	}
	if got := s.series(t, `cfmint_exchanges_total{outcome="unavailable"`); len(got) != 1 || !strings.Contains(got[0], `rule="site-deploy"`) {
		t.Errorf("the failed exchange's series = %q, want it under rule site-deploy", got)
	}
	// Known dead: the next exchange does not ask Cloudflare to create.
	if status, out := s.exchange(t); status != http.StatusServiceUnavailable || !deadAnswer.MatchString(out) {
		t.Errorf("the next exchange = %d %s, want 503", status, out)
	}
	if n := strings.Count(s.logs.String(), `"event":"bootstrap"`); n != 1 {
		t.Errorf("the bootstrap token's death was logged %d times, want once:\n%s", n, s.logs)
	}

	// A restart with it says so in one sentence, not with the permission groups' refusal.
	again := *s
	again.logs = &logBuffer{}
	again.cfg.Log = again.logs
	err := broker.Serve(context.Background(), again.cfg)
	if err == nil || err.Error() != broker.DeadBootstrapStart {
		t.Errorf("a start with the revoked bootstrap token: %v; want %q", err, broker.DeadBootstrapStart)
	}
}

// TestBootstrapTokenRecovers: the gauge reads 1 again only once a verify succeeds.
func TestBootstrapTokenRecovers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := cfWorld(t)
	s.cfg.BootstrapCheck = 10 * time.Millisecond
	s.start(t)
	// Cloudflare answers as it does for a token it no longer knows.
	s.cf.InjectFault(cfapitest.Fault{Path: "/accounts/{account_id}/tokens/verify", Status: http.StatusUnauthorized, Code: 1000, Message: "Invalid API Token"})
	s.cf.InjectFault(cfapitest.Fault{Path: "/user/tokens/verify", Status: http.StatusUnauthorized, Code: 1000, Message: "Invalid API Token"})
	s.cf.InjectFault(cfapitest.Fault{Path: "POST /accounts/{account_id}/tokens", Status: http.StatusForbidden, Code: 9109, Message: "Invalid access token"})
	s.logs.waitFor(ctx, t, "the bootstrap token is no longer valid")
	if status, out := s.exchange(t); status != http.StatusServiceUnavailable || !deadAnswer.MatchString(out) {
		t.Errorf("an exchange = %d %s, want 503", status, out)
	}
	if got := s.series(t, "cfmint_bootstrap_token_valid"); len(got) != 1 || got[0] != "cfmint_bootstrap_token_valid 0" {
		t.Errorf("the gauge = %q, want 0", got)
	}
	s.cf.ClearFaults()
	s.logs.waitFor(ctx, t, "Cloudflare accepts the bootstrap token again")
	if got := s.series(t, "cfmint_bootstrap_token_valid"); len(got) != 1 || got[0] != "cfmint_bootstrap_token_valid 1" {
		t.Errorf("the gauge after a verify succeeded = %q, want 1", got)
	}
	if status, out := s.get(t, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200", status, out)
	}
	if r := s.mintedBy(t); r != "site-deploy" {
		t.Errorf("minted by rule %q, want site-deploy", r)
	}
	// The verifies are Cloudflare calls like any other: counted, and spent from the budget.
	if got := s.series(t, `cfmint_cloudflare_calls_total{operation="verify",status="401"}`); len(got) != 1 {
		t.Errorf("the refused verifies were not counted: %q", got)
	}
}
