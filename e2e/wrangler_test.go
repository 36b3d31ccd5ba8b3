package e2e

// TestWranglerDeploy proves, with the real wrangler, that what cfmint exports is what wrangler
// needs: the variable names, the account id and the permission set of the workers-deploy preset.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
)

// wranglerVersion is the wrangler the test runs: pinned, so that a new release cannot change what
// the test proves. 4.86.0 is the last wrangler 4 release that runs on Node.js 20 (its engines
// field says node >=20.3.0; 4.87.0 and later need Node.js 22).
const wranglerVersion = "4.86.0"

// wranglerNode is the oldest Node.js wranglerVersion runs on.
var wranglerNode = [2]int{20, 3}

const (
	wranglerTimeout = 120 * time.Second // one wrangler run
	npmTimeout      = 5 * time.Minute   // one install
	workerName      = "cfmint-wrangler-test"
	workerBody      = "minted by cfmint"
)

func TestWranglerDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("installs wrangler from npm and runs it: not run with -short")
	}
	t.Parallel()
	w := installWrangler(t)
	a := startAPI(t)
	trip := newTripwire(t)

	// The workflow points wrangler at the built-in API through the job's env, and cfmint through
	// its input.
	j := a.job(t, map[string]string{"CLOUDFLARE_API_BASE_URL": a.url})
	s := a.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	token := m.Outputs["token"]

	// Exactly what a later step gets from cfmint and the workflow: every CLOUDFLARE_ variable of
	// the job environment.
	env := map[string]string{}
	for k, v := range j.Env() {
		if strings.HasPrefix(k, "CLOUDFLARE_") {
			env[k] = v
		}
	}
	if env["CLOUDFLARE_API_TOKEN"] != token || token == "" {
		t.Fatalf("the job environment lacks CLOUDFLARE_API_TOKEN holding the minted token; it has %v", keys(env))
	}
	if env["CLOUDFLARE_ACCOUNT_ID"] != a.fx.Account.ID {
		t.Fatalf("CLOUDFLARE_ACCOUNT_ID = %q, want the account id %s", env["CLOUDFLARE_ACCOUNT_ID"], a.fx.Account.ID)
	}
	if env["CLOUDFLARE_API_BASE_URL"] != a.url {
		t.Fatalf("CLOUDFLARE_API_BASE_URL = %q, want the built-in API %s", env["CLOUDFLARE_API_BASE_URL"], a.url)
	}

	project := writeWorker(t)
	mask := func(s string) string { return strings.ReplaceAll(s, token, "***") }

	// The first deploy creates the Worker and puts it on workers.dev; the second takes wrangler's
	// other path, for a Worker that exists (versions, deployments, script settings), with a var
	// added to the config. --strict makes wrangler 4.86 check the Worker's remote secrets against
	// the config's vars, as wrangler 4.100 and later do on every deploy.
	for i := range 2 {
		if i == 1 {
			addVar(t, project, "DEPLOYED_BY", "cfmint")
		}
		from := len(a.Requests())
		out, err := w.run(t, project, env, trip, "deploy", "--strict")
		calls := a.Requests()[from:]
		if err != nil {
			t.Fatalf("wrangler deploy #%d with the minted token failed: %v\n%s\ncalls:\n%s", i+1, err, mask(out), callList(calls))
		}
		if strings.Contains(out, token) {
			t.Errorf("wrangler deploy #%d printed the token", i+1)
		}
		wantURL := "https://" + workerName + "." + a.WorkersSubdomain(a.fx.Account.ID) + ".workers.dev"
		if !strings.Contains(out, wantURL) {
			t.Errorf("wrangler deploy #%d does not report %s:\n%s", i+1, wantURL, mask(out))
		}
		checkWranglerCalls(t, calls, m.Outputs["token-id"], func(c wranglerCall) bool {
			// Answers a deploy expects: success, or on the first one "no such Worker yet".
			return c.status/100 == 2 || i == 0 && c.status == 404 && (c.has(10007) || c.has(10090))
		})
		info, ok := a.Script(a.fx.Account.ID, workerName)
		switch {
		case !ok:
			t.Fatalf("after wrangler deploy #%d the API holds no Worker %s; it holds %v", i+1, workerName, a.Scripts(a.fx.Account.ID))
		case !strings.Contains(info.Modules[info.MainModule], workerBody):
			t.Errorf("deployed entry point %q does not hold the Worker's code: %v", info.MainModule, info.Modules)
		case info.CompatibilityDate != "2025-01-01" || !info.WorkersDev || info.LastDeployedFrom != "wrangler":
			t.Errorf("deployed Worker %+v, want compatibility date 2025-01-01, on workers.dev, deployed from wrangler", info)
		case info.Versions != i+1 || info.Deployments != i+1:
			t.Errorf("after deploy #%d: %d versions and %d deployments, want %d of each", i+1, info.Versions, info.Deployments, i+1)
		case i == 1 && info.Vars["DEPLOYED_BY"] != "cfmint":
			t.Errorf("after deploy #2 the Worker's vars are %v, want DEPLOYED_BY=cfmint", info.Vars)
		}
		// What each deploy must have asked, beyond the first calls: the upload path of a new
		// Worker, then that of an existing one with its secrets check.
		want := [][]string{
			{"PUT /workers/scripts/" + workerName},
			{"GET /workers/scripts/" + workerName + "/secrets", "POST /workers/scripts/" + workerName + "/versions",
				"POST /workers/scripts/" + workerName + "/deployments", "PATCH /workers/scripts/" + workerName + "/script-settings"},
		}[i]
		for _, call := range want {
			method, suffix, _ := strings.Cut(call, " ")
			if !slices.ContainsFunc(calls, func(r cfapitest.Request) bool { return r.Method == method && strings.HasSuffix(r.Path, suffix) }) {
				t.Errorf("wrangler deploy #%d did not call %s:\n%s", i+1, call, callList(calls))
			}
		}
	}

	mustSucceed(t, runPost(t, j, s, m))

	from := len(a.Requests())
	out, err := w.run(t, project, env, trip, "deploy", "--strict")
	calls := a.Requests()[from:]
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("wrangler deploy after the post phase: %v, want it to fail\n%s\ncalls:\n%s", err, mask(out), callList(calls))
	}
	// The Workers API's own answer to a dead token (401 / 10000), not the 1000 of verify.
	if !strings.Contains(out, "Authentication error [code: 10000]") {
		t.Errorf("wrangler deploy after the post phase failed without the Workers API's authentication error:\n%s\ncalls:\n%s", mask(out), callList(calls))
	}
	refused := 0
	checkWranglerCalls(t, calls, m.Outputs["token-id"], func(c wranglerCall) bool {
		switch {
		case strings.Contains(c.Path, "/workers/"):
			refused++
			return c.status == 401 && c.has(10000)
		case strings.HasSuffix(c.Path, "/tokens/verify"):
			// wrangler's whoami after a 10000: which kind of token is this?
			return c.status == 401 && c.has(1000)
		default:
			// ... and its user and accounts (/user, /accounts), refused as the account API does.
			return c.status == 403 && c.has(9109)
		}
	})
	if refused == 0 {
		t.Errorf("wrangler deploy after the post phase made no Workers call:\n%s", callList(calls))
	}
	if info, _ := a.Script(a.fx.Account.ID, workerName); info.Versions != 2 {
		t.Errorf("the revoked token changed the Worker: %d versions, want 2", info.Versions)
	}
	t.Logf("wrangler deploy after the post phase:\n%s", mask(out))
}

// wranglerCall is one request of the fake's log, decoded.
type wranglerCall struct {
	cfapitest.Request
	status int
	codes  []int
}

func (c wranglerCall) has(code int) bool {
	for _, x := range c.codes {
		if x == code {
			return true
		}
	}
	return false
}

func (c wranglerCall) String() string {
	return fmt.Sprintf("%s %s -> %d %v", c.Method, c.Path, c.status, c.codes)
}

func decodeCalls(rs []cfapitest.Request) []wranglerCall {
	out := make([]wranglerCall, 0, len(rs))
	for _, r := range rs {
		var env struct {
			Errors []struct {
				Code int `json:"code"`
			} `json:"errors"`
		}
		_ = json.Unmarshal(r.Response, &env)
		c := wranglerCall{Request: r, status: r.Status}
		for _, e := range env.Errors {
			c.codes = append(c.codes, e.Code)
		}
		out = append(out, c)
	}
	return out
}

func callList(rs []cfapitest.Request) string {
	var b strings.Builder
	for _, c := range decodeCalls(rs) {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	return b.String()
}

// checkWranglerCalls asserts that every call of one wrangler run came from wrangler with the
// minted token, reached an endpoint the built-in API implements, never needed /memberships (cfmint
// exports the account id), and got an answer ok accepts.
func checkWranglerCalls(t *testing.T, rs []cfapitest.Request, tokenID string, ok func(wranglerCall) bool) {
	t.Helper()
	for _, c := range decodeCalls(rs) {
		switch {
		case !strings.HasPrefix(c.Header.Get("User-Agent"), "wrangler/"):
			t.Errorf("%s: not from wrangler (User-Agent %q)", c, c.Header.Get("User-Agent"))
		case c.TokenID != tokenID:
			t.Errorf("%s: not sent with the minted token", c)
		case strings.HasSuffix(c.Path, "/memberships"):
			t.Errorf("%s: wrangler looked up the account, so it did not get the account id", c)
		case c.has(7003) || c.has(7001):
			t.Errorf("%s: wrangler called an endpoint the built-in API does not implement", c)
		case !ok(c):
			t.Errorf("%s: unexpected answer %s", c, c.Response)
		}
	}
}

// writeWorker writes a minimal Worker project and returns its directory.
func writeWorker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"wrangler.toml": "name = \"" + workerName + "\"\nmain = \"index.js\"\ncompatibility_date = \"2025-01-01\"\n",
		"index.js":      "export default {\n  async fetch() {\n    return new Response(\"" + workerBody + "\");\n  },\n};\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// addVar adds a plain-text variable to the project's wrangler.toml.
func addVar(t *testing.T, dir, name, value string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "wrangler.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "\n[vars]\n%s = %q\n", name, value); err != nil {
		t.Fatal(err)
	}
}

// tripwire stands in for every host but the built-in API: it is the HTTP(S) proxy and the npm
// registry wrangler is given, and it refuses and records whatever reaches it.
type tripwire struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []string
}

func newTripwire(t *testing.T) *tripwire {
	tw := &tripwire{}
	tw.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var hit string
		switch {
		case r.Method == http.MethodConnect:
			hit = "CONNECT " + r.Host + " (through the proxy)"
		case r.URL.IsAbs():
			hit = r.Method + " " + r.URL.String() + " (through the proxy)"
		default:
			hit = r.Method + " " + r.URL.Path + " (the npm registry)"
		}
		tw.mu.Lock()
		tw.hits = append(tw.hits, hit)
		tw.mu.Unlock()
		http.Error(w, "cfmint test: only the built-in API is reachable", http.StatusForbidden)
	}))
	// Cleanups run last first: the check comes after the server has stopped, and also when the
	// test stopped early.
	t.Cleanup(tw.check(t))
	t.Cleanup(tw.srv.Close)
	return tw
}

func (tw *tripwire) check(t *testing.T) func() {
	return func() {
		tw.mu.Lock()
		defer tw.mu.Unlock()
		for _, h := range tw.hits {
			t.Errorf("wrangler tried to reach something other than the built-in API: %s", h)
		}
	}
}

// wrangler is an installed wrangler.
type wrangler struct {
	node, script string
}

// run runs wrangler in dir with env (the CLOUDFLARE_ variables under test) and the variables that
// keep it off the network and out of the user's files, and returns its combined output. The
// error is an *exec.ExitError when wrangler ran and failed.
func (w wrangler) run(t *testing.T, dir string, env map[string]string, trip *tripwire, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	vars := map[string]string{
		"PATH":        filepath.Dir(w.node) + string(os.PathListSeparator) + "/usr/bin:/bin",
		"HOME":        home,
		"TMPDIR":      filepath.Join(home, "tmp"),
		"CI":          "true", // non-interactive: no prompts, no browser login
		"NO_COLOR":    "1",
		"FORCE_COLOR": "0",
		// No telemetry, no error reports, no update check (the banner runs one).
		"WRANGLER_SEND_METRICS":       "false",
		"WRANGLER_SEND_ERROR_REPORTS": "false",
		"WRANGLER_HIDE_BANNER":        "true",
		"NO_UPDATE_NOTIFIER":          "1",
		"XDG_CONFIG_HOME":             filepath.Join(home, "config"),
		"XDG_CACHE_HOME":              filepath.Join(home, "cache"),
		// Anything else wrangler would reach lands on the tripwire: fetch goes through the proxy
		// (wrangler installs undici's EnvHttpProxyAgent when these are set), the update check
		// reads the registry from npm's settings. The built-in API is on loopback, which
		// NO_PROXY exempts.
		"HTTPS_PROXY":  trip.srv.URL,
		"HTTP_PROXY":   trip.srv.URL,
		"https_proxy":  trip.srv.URL,
		"http_proxy":   trip.srv.URL,
		"NO_PROXY":     "127.0.0.1,localhost,::1",
		"no_proxy":     "127.0.0.1,localhost,::1",
		"npm_registry": trip.srv.URL + "/",
	}
	if err := os.Mkdir(vars["TMPDIR"], 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), wranglerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.node, append([]string{w.script}, args...)...)
	cmd.Dir = dir
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // a child holding the output open must not hang the test
	err := cmd.Run()
	text := ansiEscape.ReplaceAllString(out.String(), "")
	if ctx.Err() != nil {
		t.Fatalf("wrangler %s did not finish within %v:\n%s", strings.Join(args, " "), wranglerTimeout, text)
	}
	return text, err
}

// ansiEscape matches the colour codes wrangler prints whatever the terminal.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// installWrangler returns wranglerVersion, installed from npm into a cache that later runs reuse:
// $CFMINT_WRANGLER_CACHE/wrangler-<version>, or <user cache dir>/cfmint-test/wrangler-<version>.
// It skips the test when npm is not installed, and fails it when the install fails.
func installWrangler(t *testing.T) wrangler {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skipf("npm not found: install Node.js %d.%d or later with npm to run wrangler against the built-in API (%v)", wranglerNode[0], wranglerNode[1], err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("npm is installed but node is not on PATH: %v", err)
	}
	checkNode(t, node)

	base := os.Getenv("CFMINT_WRANGLER_CACHE")
	if base == "" {
		if d, err := os.UserCacheDir(); err == nil {
			base = filepath.Join(d, "cfmint-test")
		} else {
			base = t.TempDir() // no cache directory: install for this run only
		}
	}
	dir := filepath.Join(base, "wrangler-"+wranglerVersion)
	w := wrangler{node: node, script: filepath.Join(dir, "node_modules", "wrangler", "bin", "wrangler.js")}
	if installed(dir) {
		return w
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists but holds no complete install of wrangler %s; remove it", dir, wranglerVersion)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatalf("failed to create the wrangler cache: %v", err)
	}
	// Install next to the cache entry, then rename it into place: a half-finished install is
	// never taken for a complete one, and two installs racing both end well.
	tmp, err := os.MkdirTemp(base, ".wrangler-"+wranglerVersion+"-")
	if err != nil {
		t.Fatalf("failed to create the wrangler cache: %v", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", tmp, "wrangler@"+wranglerVersion,
		"--no-audit", "--no-fund", "--ignore-scripts", "--no-update-notifier")
	cmd.Dir = tmp
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm install wrangler@%s failed: %v\n%s", wranglerVersion, err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(wranglerVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !installed(tmp) {
		t.Fatalf("npm install wrangler@%s succeeded but left no wrangler %s in %s:\n%s", wranglerVersion, wranglerVersion, tmp, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !installed(dir) {
		t.Fatalf("failed to move the wrangler install into the cache: %v", err)
	}
	return w
}

// completeMarker is written into an install once npm has finished.
const completeMarker = "cfmint-install-complete"

func installed(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "wrangler", "package.json"))
	if err != nil {
		return false
	}
	var pkg struct{ Version string }
	return json.Unmarshal(b, &pkg) == nil && pkg.Version == wranglerVersion
}

var nodeVersion = regexp.MustCompile(`^v(\d+)\.(\d+)\.`)

// checkNode fails the test when node is too old for wranglerVersion, which would otherwise fail
// in a way that looks like a problem of cfmint.
func checkNode(t *testing.T, node string) {
	t.Helper()
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := nodeVersion.FindStringSubmatch(strings.TrimSpace(string(out)))
	if v == nil {
		t.Fatalf("node --version printed %q", out)
	}
	major, _ := strconv.Atoi(v[1])
	minor, _ := strconv.Atoi(v[2])
	if major < wranglerNode[0] || major == wranglerNode[0] && minor < wranglerNode[1] {
		t.Fatalf("node %s is too old for wrangler %s, which needs %d.%d or later", strings.TrimSpace(string(out)), wranglerVersion, wranglerNode[0], wranglerNode[1])
	}
}
