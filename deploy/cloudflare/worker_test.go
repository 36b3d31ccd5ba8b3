package cloudflare_test

// The broker's Worker bundle under workerd from npm, as deploy/cloudflare/run-local serves it,
// against the built-in Cloudflare API and a GitHub-shaped issuer on loopback. Callers send
// CF-Connecting-IP themselves: locally nothing sets it, as Cloudflare's edge does in production.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker/contracttest"
	"github.com/cfmint/cfmint/internal/broker/storetest"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/worker"
)

const audience = "https://cfmint.test"

// callerIP is the address the tests' requests come from, as Cloudflare would say it.
const callerIP = "198.51.100.7"

// needNode skips the test when Node.js or npm is missing, except in CI, where it fails.
func needNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: CI must install Node.js with npm to run the Worker under workerd (%v)", tool, err)
			}
			t.Skipf("%s not found: install Node.js with npm to run the Worker under workerd (%v)", tool, err)
		}
	}
}

// world is the fake Cloudflare API and issuer the Worker talks to.
type world struct {
	cf   *cfapitest.Server
	fx   cfapitest.Fixture
	api  string // base URL, /client/v4
	iss  *oidctest.Issuer
	now  *cfapitest.Clock
	mu   sync.Mutex
	seen []string // every ID token handed out
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clock := cfapitest.NewClock(time.Now())
	cf := cfapitest.New(cfapitest.WithClock(clock.Now))
	w := &world{cf: cf, fx: cf.Seed(), iss: oidctest.New(t), now: clock}
	hs := httptest.NewServer(cf.Handler())
	t.Cleanup(hs.Close)
	w.api = hs.URL + "/client/v4"
	return w
}

func (w *world) policy(account string) string {
	return contracttest.Policy(audience, w.iss.URL(), account)
}

// token is a fresh ID token for the policy's repository, with extra claims.
func (w *world) token(extra oidctest.Claims) string {
	c := oidctest.Claims{"aud": audience}
	for k, v := range extra {
		c[k] = v
	}
	s := w.iss.Token(c)
	w.mu.Lock()
	w.seen = append(w.seen, s)
	w.mu.Unlock()
	return s
}

func (w *world) named(name string) int {
	n := 0
	for _, tk := range w.cf.Tokens() {
		if tk.Name == name {
			n++
		}
	}
	return n
}

// local is a running deploy/cloudflare/run-local.
type local struct {
	cmd          *exec.Cmd
	url, control string
	out          *syncBuffer
	done         chan error
	startedAt    time.Time
	firstReply   time.Duration // from start to the first answer: the build, workerd's start and the cold request
	exited       bool          // it ended before it answered
	cold         time.Duration // the first request: the module's instantiation, Go's start, the policy's check at Cloudflare
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

// freePort is a free port below Linux's ephemeral range (32768 and up), where the loopback
// servers of other tests, listening on port 0, never land between its check and workerd's bind.
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		return strconv.Itoa(p)
	}
	t.Fatal("found no free port between 20000 and 32000")
	return ""
}

// runLocal starts run-local with policy text and waits until it answers /healthz (any status)
// or exits.
func runLocal(t *testing.T, w *world, policy string) *local {
	t.Helper()
	needNode(t)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	port, controlPort := freePort(t), freePort(t)
	cmd := exec.Command("bash", "run-local", "--port", port, "--control-port", controlPort, "--api-base", w.api, "--policy", file)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLOUDFLARE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "CLOUDFLARE_BOOTSTRAP_TOKEN="+w.fx.AccountBootstrap.Secret)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	l := &local{cmd: cmd, url: "http://127.0.0.1:" + port, control: "http://127.0.0.1:" + controlPort, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = l.out, l.out
	l.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group this test started
			<-l.done
		}
	})
	deadline := time.After(10 * time.Minute) // a first run installs workerd and compiles
	for {
		req, _ := http.NewRequest(http.MethodGet, l.url+"/healthz", nil)
		req.Header.Set("CF-Connecting-IP", callerIP)
		sent := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			l.firstReply, l.cold = time.Since(l.startedAt), time.Since(sent)
			return l
		}
		select {
		case err := <-l.done:
			l.done <- err
			l.exited = true
			return l
		case <-deadline:
			t.Fatalf("run-local did not answer within 10 minutes:\n%s", l.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// store calls the Durable Object's store through run-local's control port, as the Worker's Go
// side calls it through its binding (worker.Store).
func (l *local) store(ctx context.Context, method string, args []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.control+"/__store?method="+url.QueryEscape(method), bytes.NewReader(args))
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("%d %s", res.StatusCode, body)
	}
	return body, err
}

// stop sends SIGTERM and waits for a clean exit.
func (l *local) stop(t *testing.T) {
	t.Helper()
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-l.done:
		if err != nil {
			t.Errorf("run-local exited with %v after SIGTERM:\n%s", err, l.out)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("run-local did not stop within 30s of SIGTERM")
	}
}

type answer struct {
	Status int
	Body   map[string]any
	Raw    string
}

func (l *local) do(t *testing.T, method, path, idToken, from string, body map[string]string) answer {
	t.Helper()
	a, err := l.try(method, path, idToken, from, body)
	if err != nil {
		t.Fatalf("%v\n%s", err, l.out)
	}
	return a
}

// try is do for goroutines other than the test's, which must not call t.Fatal.
func (l *local) try(method, path, idToken, from string, body map[string]string) (answer, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, l.url+path, rd)
	if err != nil {
		return answer{}, err
	}
	if idToken != "" {
		req.Header.Set("Authorization", "Bearer "+idToken)
	}
	if from != "" {
		req.Header.Set("CF-Connecting-IP", from)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{Status: res.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a, nil
}

// workerdCPU is the CPU time workerd, run-local's child, has used so far.
func (l *local) workerdCPU(t *testing.T) time.Duration {
	t.Helper()
	var total time.Duration
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", l.cmd.Process.Pid, l.cmd.Process.Pid))
	for _, pid := range strings.Fields(string(kids)) {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	}
	return total
}

func TestWorker(t *testing.T) {
	needNode(t)
	w := newWorld(t)
	l := runLocal(t, w, w.policy(w.fx.Account.ID))
	if l.exited {
		t.Fatalf("run-local exited before it answered:\n%s", l.out)
	}
	t.Logf("run-local answered %.1fs after it started (build, workerd start, cold first request); the cold first request took %v", l.firstReply.Seconds(), l.cold)

	// The Durable Object the broker keeps its store in passes the stores' conformance test, as
	// the memory and Redis stores do; run first, on the empty store.
	t.Run("store", func(t *testing.T) { storetest.Run(t, worker.Store{Call: l.store}) })

	// The isolate's first mint fetches the issuer's discovery document and keys.
	start := time.Now()
	r := l.do(t, "POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy"})
	t.Logf("first mint: %v", time.Since(start))
	if r.Status != http.StatusCreated {
		t.Fatalf("first mint: %d %s\n%s", r.Status, r.Raw, l.out)
	}
	firstSecret := r.Body["token"].(string)
	if d := l.do(t, "DELETE", "/v1/tokens/"+r.Body["id"].(string), w.token(nil), callerIP, nil); d.Status != 204 {
		t.Fatalf("revoke: %d %s", d.Status, d.Raw)
	}

	// The broker's HTTP contract, as `cfmint serve` passes it, the caller's address from
	// CF-Connecting-IP.
	contract := contracttest.Run(t, contracttest.Target{URL: l.url, Audience: audience, Issuer: w.iss, API: w.cf, Account: w.fx.Account.ID,
		Caller: callerIP, CallerHeader: "CF-Connecting-IP", Log: l.out.String})

	// Warm mints: latency and workerd's CPU per exchange (mint and revoke), measured, not asserted.
	const rounds = 10
	cpu0 := l.workerdCPU(t)
	var mintTime time.Duration
	for i := range rounds {
		start := time.Now()
		r := l.do(t, "POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy", "nonce": fmt.Sprintf("a0a0a0a0%08d", i)})
		mintTime += time.Since(start)
		if r.Status != 201 {
			t.Fatalf("warm mint %d: %d %s", i, r.Status, r.Raw)
		}
		if d := l.do(t, "DELETE", "/v1/tokens/"+r.Body["id"].(string), w.token(nil), callerIP, nil); d.Status != 204 {
			t.Fatalf("warm revoke %d: %d %s", i, d.Status, d.Raw)
		}
	}
	t.Logf("warm mint: %v mean over %d; workerd CPU per mint and revoke: %v", mintTime/rounds, rounds, (l.workerdCPU(t)-cpu0)/rounds)

	// Concurrent exchanges share one isolate: each still mints once, and revokes its own.
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.try("POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy", "nonce": fmt.Sprintf("c0c0c0c0%08d", i)})
			if err != nil || r.Status != 201 {
				errs <- fmt.Sprintf("concurrent mint %d: %v %d %s", i, err, r.Status, r.Raw)
				return
			}
			if d, err := l.try("DELETE", "/v1/tokens/"+r.Body["id"].(string), w.token(nil), callerIP, nil); err != nil || d.Status != 204 {
				errs <- fmt.Sprintf("concurrent revoke %d: %v %d %s", i, err, d.Status, d.Raw)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// The cron sweep: a token left behind that has expired is deleted; a live one stays.
	left := l.do(t, "POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy", "ttl": "5m", "nonce": "5eeb5eeb00000001"})
	live := l.do(t, "POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy", "ttl": "30m", "nonce": "5eeb5eeb00000002"})
	if left.Status != 201 || live.Status != 201 {
		t.Fatalf("mints to sweep: %d %s; %d %s", left.Status, left.Raw, live.Status, live.Raw)
	}
	w.now.Advance(10 * time.Minute)
	res3, err := http.Get(l.control + "/__scheduled")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res3.Body)
	res3.Body.Close()
	if res3.StatusCode != 200 {
		t.Errorf("the cron trigger: %d %s\n%s", res3.StatusCode, body, l.out)
	}
	if n := w.named(left.Body["name"].(string)); n != 0 {
		t.Errorf("the sweep left the expired token:\n%s", l.out)
	}
	if n := w.named(live.Body["name"].(string)); n != 1 {
		t.Errorf("the sweep took the live token")
	}

	// Fair shares, counted in the Durable Object: the live token and nine more fill max_active
	// (10 by default); the next is refused, naming it, until a revoke frees a slot.
	var fill []string
	for i := range 9 {
		r := l.do(t, "POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy", "nonce": fmt.Sprintf("f1f1f1f1%08d", i)})
		if r.Status != 201 {
			t.Fatalf("mint %d of 10 live tokens: %d %s\n%s", i+2, r.Status, r.Raw, l.out)
		}
		fill = append(fill, r.Body["id"].(string))
	}
	if r := l.do(t, "POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy"}); r.Status != 429 || !strings.Contains(r.Raw, "max_active") {
		t.Errorf("an 11th live token: %d %s; want 429 naming max_active", r.Status, r.Raw)
	}
	if r := l.do(t, "DELETE", "/v1/tokens/"+fill[0], w.token(nil), callerIP, nil); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	if r := l.do(t, "POST", "/v1/tokens", w.token(nil), callerIP, map[string]string{"preset": "workers-deploy"}); r.Status != 201 {
		t.Errorf("a mint after a revoke freed a slot: %d %s", r.Status, r.Raw)
	}
	// Revokes of tokens that are not the repository's: ten are asked of Cloudflare, then the
	// repository is refused without a call.
	for i := range 10 {
		l.do(t, "DELETE", fmt.Sprintf("/v1/tokens/%032x", i+1), w.token(nil), callerIP, nil)
	}
	calls := len(w.cf.Requests())
	if r := l.do(t, "DELETE", fmt.Sprintf("/v1/tokens/%032x", 11), w.token(nil), callerIP, nil); r.Status != 429 || !strings.Contains(r.Raw, "no longer exist") {
		t.Errorf("an 11th revoke of a token not the repository's: %d %s; want 429", r.Status, r.Raw)
	}
	if n := len(w.cf.Requests()) - calls; n != 0 {
		t.Errorf("the refused revoke made %d Cloudflare calls", n)
	}

	l.stop(t)
	logs := l.out.String()
	for _, want := range []string{`"event":"mint"`, `"event":"sweep"`, `"reason":"expired"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	for _, s := range append(append([]string{w.fx.AccountBootstrap.Secret, firstSecret}, contract.Secrets...), w.seen...) {
		if strings.Contains(logs, s) {
			t.Errorf("the Worker's log holds a secret")
		}
	}
}

// TestWorkerBadPolicy: a policy that does not parse is refused at build time, and one that
// parses but does not check out against Cloudflare at start makes the Worker refuse every
// request with a clear error.
func TestWorkerBadPolicy(t *testing.T) {
	needNode(t)
	w := newWorld(t)
	l := runLocal(t, w, "audience: x\nrules: [{name: Bad Name}]\n")
	select {
	case err := <-l.done:
		if err == nil || !strings.Contains(l.out.String(), "policy check") {
			t.Errorf("run-local with a policy that does not parse: %v\n%s", err, l.out)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("run-local served a policy that does not parse:\n%s", l.out)
	}

	// An account the bootstrap token cannot see: the build's offline check passes, the start's
	// check against Cloudflare fails.
	l = runLocal(t, w, w.policy("0123456789abcdef0123456789abcdef"))
	if l.exited {
		t.Fatalf("run-local exited before it answered:\n%s", l.out)
	}
	for _, path := range []string{"/healthz", "/v1/tokens"} {
		method := "GET"
		if path != "/healthz" {
			method = "POST"
		}
		r := l.do(t, method, path, w.token(nil), callerIP, map[string]string{"preset": "workers-deploy"})
		if r.Status != 503 || !strings.Contains(r.Raw, "policy did not check out") {
			t.Errorf("%s with a bad policy: %d %s", path, r.Status, r.Raw)
		}
	}
	l.stop(t)
	if logs := l.out.String(); !strings.Contains(logs, `"event":"prepare"`) || !strings.Contains(logs, "0123456789abcdef0123456789abcdef") {
		t.Errorf("the log does not say why the policy was refused:\n%s", logs)
	}
}

// TestWranglerDeployDryRun: wrangler takes wrangler.jsonc and the built bundle as they are, and
// the upload fits Workers' 10 MiB (compressed) limit.
func TestWranglerDeployDryRun(t *testing.T) {
	needNode(t)
	w := newWorld(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(w.policy(w.fx.Account.ID)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "build", "--policy", file, "--out", filepath.Join(dir, "dist")).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile("wrangler.jsonc")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wrangler.jsonc"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	wrangler := installWrangler(t)
	home := t.TempDir()
	cmd := exec.Command("node", wrangler, "deploy", "--dry-run", "--outdir", filepath.Join(dir, "out"), "--config", filepath.Join(dir, "wrangler.jsonc"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"WRANGLER_SEND_METRICS=false", "WRANGLER_SEND_ERROR_REPORTS=false", "WRANGLER_HIDE_BANNER=true", "NO_UPDATE_NOTIFIER=1", "CI=true"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrangler deploy --dry-run: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Total Upload: ([0-9.]+) KiB / gzip: ([0-9.]+) KiB`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("wrangler did not say the upload's size:\n%s", out)
	}
	raw, _ := strconv.ParseFloat(string(m[1]), 64)
	gz, _ := strconv.ParseFloat(string(m[2]), 64)
	t.Logf("wrangler's upload: %.0f KiB, %.0f KiB gzipped", raw, gz)
	if gz > 10*1024 {
		t.Errorf("the upload is %.0f KiB gzipped, above Workers' 10 MiB limit", gz)
	}
	for _, want := range []string{"env.REPLAY (ReplayStore)", "env.CLOUDFLARE_BOOTSTRAP_TOKEN"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("wrangler does not list the binding %s:\n%s", want, out)
		}
	}
}

// wranglerVersion is the wrangler the repository's tests pin (wrangler_test.go); its workerd is
// run-local's.
const wranglerVersion = "4.86.0"

// installWrangler returns wrangler's script, installed from npm into the cache the repository's
// wrangler tests share: $CFMINT_WRANGLER_CACHE/wrangler-<version>, or <user cache
// dir>/cfmint-test/wrangler-<version>, complete once it holds cfmint-install-complete.
func installWrangler(t *testing.T) string {
	t.Helper()
	base := os.Getenv("CFMINT_WRANGLER_CACHE")
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = t.TempDir()
		}
		base = filepath.Join(d, "cfmint-test")
	}
	dir := filepath.Join(base, "wrangler-"+wranglerVersion)
	script := filepath.Join(dir, "node_modules", "wrangler", "bin", "wrangler.js")
	const marker = "cfmint-install-complete"
	if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
		return script
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(base, ".wrangler-"+wranglerVersion+"-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("npm", "install", "--prefix", tmp, "wrangler@"+wranglerVersion, "--no-audit", "--no-fund", "--ignore-scripts", "--no-update-notifier").CombinedOutput()
	if err != nil {
		t.Fatalf("npm install wrangler@%s: %v\n%s", wranglerVersion, err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, marker), []byte(wranglerVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, marker)); serr != nil {
			t.Fatalf("moving wrangler into the cache: %v", err)
		}
	}
	return script
}

// TestRunLocalArguments: bad arguments are refused before anything is built, every one at once.
func TestRunLocalArguments(t *testing.T) {
	needNode(t)
	cmd := exec.Command("bash", "run-local", "--port", "x", "--api-base", "ftp://a", "--control-port", "y")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("run-local with bad arguments: %v, want exit 2\n%s", err, out)
	}
	for _, want := range []string{`--port: "x"`, `--control-port: "y"`, `--api-base: "ftp://a"`, "--policy: is empty", "$CLOUDFLARE_BOOTSTRAP_TOKEN: is empty"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("run-local's error lacks %q:\n%s", want, out)
		}
	}
}
