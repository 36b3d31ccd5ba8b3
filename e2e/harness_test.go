// Package e2e tests the built binary from the outside: the runner contract, the CLI, the broker
// server, the image and the documents that describe them.
package e2e

// The runner-contract harness: the real binary, built once, run the way the GitHub runner runs
// a container action (internal/runner), against the in-memory Cloudflare API (internal/cfapitest)
// with every request and answer checked against Cloudflare's OpenAPI schemas (internal/apispec).

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/apispec"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
	"github.com/cfmint/cfmint/internal/runner/runnertest"
)

var binPath string

// noFallback is a trace fallback that refuses connections at once (port 9, discard, is closed
// on loopback), so a test whose trace fails never reaches past loopback.
const noFallback = "http://127.0.0.1:9/cdn-cgi/trace"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cfmint-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "cfmint")
	cmd := exec.Command("go", "build", "-o", binPath, "..")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build cfmint:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// api is the built-in Cloudflare API behind the OpenAPI checker.
type api struct {
	*cfapitest.Server
	fx  cfapitest.Fixture
	url string // API base URL, .../client/v4
	mu  sync.Mutex
	bad []apispec.Violation
}

func startAPI(t *testing.T, opts ...cfapitest.Option) *api {
	t.Helper()
	spec, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	a := &api{Server: cfapitest.New(opts...)}
	a.fx = a.Seed()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: spec.Middleware("/client/v4", a.Handler(), func(v apispec.Violation) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.bad = append(a.bad, v)
	})}
	go hs.Serve(ln)
	a.url = "http://" + ln.Addr().String() + "/client/v4"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, v := range a.bad {
			// The spec documents no 5xx answers; those come from injected faults. And its error
			// codes start at 1000, while Cloudflare's rate-limit answer carries 971.
			if v.Status >= 500 || v.Status == http.StatusTooManyRequests {
				continue
			}
			t.Errorf("OpenAPI violation: %s", v)
		}
	})
	return a
}

// job is one job on one runner, running the real binary.
func (a *api) job(t *testing.T, env map[string]string) *runner.Job {
	t.Helper()
	act, err := runner.LoadAction("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"GITHUB_ACTIONS":     "true",
		"GITHUB_REPOSITORY":  "octo-org/site",
		"GITHUB_RUN_ID":      "1001",
		"GITHUB_RUN_ATTEMPT": "1",
		"GITHUB_JOB":         "deploy",
		"GITHUB_WORKFLOW":    "ci",
		// The fallback trace would otherwise be Cloudflare's own: tests talk to loopback only.
		"CFMINT_TRACE_FALLBACK_URL": noFallback,
		"PATH":                      "/usr/bin:/bin",
	}
	for k, v := range env {
		base[k] = v
	}
	return runner.NewJob(runner.JobOptions{
		Dir:     t.TempDir(),
		Env:     base,
		Exec:    runner.ExecBinary(binPath),
		Action:  act,
		Secrets: []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret},
	})
}

// step is a step with the account bootstrap token, pointed at the built-in API through the
// api-base-url input (the action reads no environment variable for it); with adds or changes
// inputs.
func (a *api) step(id string, with map[string]string) runner.Step {
	w := map[string]string{
		"bootstrap-token": a.fx.AccountBootstrap.Secret,
		"account-id":      a.fx.Account.ID,
		"api-base-url":    a.url,
	}
	for k, v := range with {
		w[k] = v
	}
	return runner.Step{ID: id, With: w}
}

func runMain(t *testing.T, j *runner.Job, s runner.Step) *runner.Phase {
	t.Helper()
	p, err := j.RunMain(context.Background(), s)
	if err != nil {
		t.Fatalf("main phase: %v", err)
	}
	return p
}

func runPost(t *testing.T, j *runner.Job, s runner.Step, main *runner.Phase) *runner.Phase {
	t.Helper()
	p, err := j.RunPost(context.Background(), s, main)
	if err != nil {
		t.Fatalf("post phase: %v", err)
	}
	if p == nil {
		t.Fatal("post phase did not run")
	}
	return p
}

// mustSucceed fails the test with the phase's log when it did not succeed.
func mustSucceed(t *testing.T, p *runner.Phase) {
	t.Helper()
	if p.Failed() {
		t.Fatalf("%s phase failed (exit %d, errors %v):\n%s\nstderr:\n%s", p.Name, p.ExitCode, p.Errors, p.Log, p.Stderr)
	}
}

// answer is what Cloudflare said to a call.
type answer struct {
	Status int
	Codes  []int
}

// call uses a token the way a later step would, from the given loopback address.
func (a *api) call(t *testing.T, token, method, path, from string) answer {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"purge_everything":true,"type":"A","name":"x","content":"192.0.2.1","ttl":1}`)
	}
	req, err := http.NewRequest(method, a.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var env struct {
		Errors []struct {
			Code int `json:"code"`
		} `json:"errors"`
	}
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &env)
	out := answer{Status: res.StatusCode}
	for _, e := range env.Errors {
		out.Codes = append(out.Codes, e.Code)
	}
	return out
}

// creates counts the token-create requests the fake received.
func (a *api) creates() int {
	n := 0
	for _, r := range a.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/tokens") {
			n++
		}
	}
	return n
}

// checkSecrets is runnertest.CheckSecrets with the fixture's bootstrap tokens.
func checkSecrets(t *testing.T, a *api, secret string, phases ...*runner.Phase) {
	t.Helper()
	runnertest.CheckSecrets(t, []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret}, secret, phases...)
}

var checkCommands = runnertest.CheckCommands

// writeCert writes cert as a PEM file and returns its path.
func writeCert(t *testing.T, path string, cert *x509.Certificate) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func hasAnnotation(p *runner.Phase, level, text string) bool {
	for _, an := range p.Annotations {
		if an.Level == level && strings.Contains(an.Message, text) {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// use is an API call a token is (or is not) allowed to make.
type use struct{ method, path string }

func (a *api) scripts() use {
	return use{http.MethodGet, "/accounts/" + a.fx.Account.ID + "/workers/scripts"}
}
func (a *api) dns(z cfapitest.Zone) use {
	return use{http.MethodGet, "/zones/" + z.ID + "/dns_records"}
}

// reporter is the part of *testing.T a scan reports through.
type reporter = runnertest.Reporter

// scanSecrets is runnertest.ScanSecrets with the fixture's bootstrap tokens and what f minted.
func scanSecrets(t reporter, f *fapi, phases ...*runner.Phase) int {
	t.Helper()
	return runnertest.ScanSecrets(t, []string{f.fx.AccountBootstrap.Secret, f.fx.UserBootstrap.Secret}, runnertest.Created(f.Requests()), phases...)
}
