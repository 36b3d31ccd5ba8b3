package broker_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
)

// logBuffer collects a broker's log lines from its goroutines.
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

// waitFor waits until the log holds want, or fails the test when ctx ends first.
func (l *logBuffer) waitFor(ctx context.Context, t *testing.T, want string) {
	t.Helper()
	for !strings.Contains(l.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("the log never held %q:\n%s", want, l.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func validConfig(w *world) broker.Config {
	return broker.Config{
		Listen:          "127.0.0.1:0",
		PolicyFile:      w.policyFile,
		BootstrapToken:  w.fx.AccountBootstrap.Secret,
		APIBase:         w.apiBase,
		ReplayStore:     "memory",
		ShutdownTimeout: 5 * time.Second,
		RateLimit:       1200,
		RateReserve:     100,
		LogLevel:        "info",
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	if err := validConfig(w).Validate(); err != nil {
		t.Fatalf("a valid config: %v", err)
	}
	bad := broker.Config{
		Listen:             "127.0.0.1:0",
		BootstrapTokenFile: filepath.Join(t.TempDir(), "missing"),
		APIBase:            "http://api.example.com/client/v4",
		ReplayStore:        "memcached://x",
		ShutdownTimeout:    0,
		RateLimit:          5,
		LogLevel:           "loud",
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("a config with every field wrong validated")
	}
	// Every problem at once, each naming its flag or variable.
	for _, want := range []string{`--log-level: "loud"`, "--policy: is empty", "--shutdown-timeout: 0s", "--rate-limit 5", "--bootstrap-token-file:", "$CLOUDFLARE_API_BASE_URL", `--replay-store "memcached://x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	noToken := validConfig(w)
	noToken.BootstrapToken = " "
	if err := noToken.Validate(); err == nil || !strings.Contains(err.Error(), "no bootstrap token") {
		t.Errorf("no token: %v", err)
	}
	badPolicy := validConfig(w)
	badPolicy.PolicyFile = filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(badPolicy.PolicyFile, []byte("audience: x\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := badPolicy.Validate(); err == nil || !strings.Contains(err.Error(), "--policy "+badPolicy.PolicyFile) {
		t.Errorf("a policy that does not parse: %v", err)
	}
	// Serve refuses what Validate refuses, before it listens.
	if err := broker.Serve(context.Background(), bad); err == nil || err.Error() != bad.Validate().Error() {
		t.Errorf("Serve on a bad config: %v", err)
	}
}

// TestServeLifecycle starts a broker, mints through it, reloads its policy (a good one is taken,
// a bad one refused), and drains it.
func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := validConfig(w)
	// A policy file of its own, which the reloads rewrite.
	cfg.PolicyFile = filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy := func(text string) {
		if err := os.WriteFile(cfg.PolicyFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy(policyText(w.iss, w.fx, "site-deploy"))
	logs := &logBuffer{}
	hangup := make(chan os.Signal, 1)
	addr := make(chan net.Addr, 1)
	cfg.Log, cfg.Hangup, cfg.Listening = logs, hangup, func(a net.Addr) { addr <- a }
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- broker.Serve(sctx, cfg) }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a.String()
	case err := <-done:
		t.Fatalf("Serve ended before it listened: %v\n%s", err, logs)
	}
	b := &world{fx: w.fx, iss: w.iss, broker: url}

	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	mintRule := func() string {
		t.Helper()
		token, _ := w.iss.Issue(mainClaims())
		verdict, out := b.serve(t, token, map[string]string{"preset": "workers-deploy"})
		if verdict != "allowed" {
			t.Fatalf("the exchange: %s: %s", verdict, out)
		}
		_, rule, _ := strings.Cut(out, `"rule":"`)
		rule, _, _ = strings.Cut(rule, `"`)
		return rule
	}
	if r := mintRule(); r != "site-deploy" {
		t.Errorf("minted by rule %q, want site-deploy", r)
	}

	writePolicy(policyText(w.iss, w.fx, "site-deploy-2"))
	hangup <- os.Interrupt
	logs.waitFor(ctx, t, "reloaded the policy")
	if r := mintRule(); r != "site-deploy-2" {
		t.Errorf("after the reload, minted by rule %q, want site-deploy-2", r)
	}

	writePolicy("audience: x\nrules: []\n")
	hangup <- os.Interrupt
	logs.waitFor(ctx, t, "refused the new policy; the old one stays")
	if r := mintRule(); r != "site-deploy-2" {
		t.Errorf("after a refused reload, minted by rule %q, want site-deploy-2", r)
	}

	stop()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v\n%s", err, logs)
	}
	// The memory replay store says at start what a restart costs, as docs/broker.md does.
	for _, want := range []string{`"event":"start"`, `"msg":"draining"`, `"msg":"stopped"`, `a restart forgets it, so an ID token used before a restart is accepted once more until it expires`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), w.fx.AccountBootstrap.Secret) {
		t.Error("the log holds the bootstrap token")
	}
	if _, err := http.Get(url + "/healthz"); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("the broker still answers after it stopped: %v", err)
	}
}

// TestServeCannotListen: an address in use is a start failure naming --listen.
func TestServeCannotListen(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := validConfig(w)
	cfg.Listen, cfg.Log = ln.Addr().String(), &logBuffer{}
	if err := broker.Serve(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Errorf("Serve on an address in use: %v", err)
	}
}

func mainClaims() map[string]any {
	return map[string]any{"aud": audience, "repository_id": "892345611", "repository_owner_id": "9919", "ref": "refs/heads/main"}
}
