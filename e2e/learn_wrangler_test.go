package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
)

// TestLearnWrangler runs a job of four wrangler commands through `cfmint learn` against the
// built-in API: a deploy with a KV binding, a KV write, a D1 query and an R2 upload. A token
// minted with exactly the permissions learn suggests runs the job again; without any one of
// them, the job fails.
func TestLearnWrangler(t *testing.T) {
	if testing.Short() {
		t.Skip("installs wrangler from npm and runs it: not run with -short")
	}
	t.Parallel()
	w := installWrangler(t)
	a := startAPI(t)
	trip := newTripwire(t)
	acct := a.fx.Account.ID
	ns := a.AddKVNamespace(acct, "CACHE")
	db := a.AddD1Database(acct, "app-db")
	acctRes := map[string]any{"com.cloudflare.api.account." + acct: "*"}
	issue := func(name string, groups []string) string {
		t.Helper()
		_, secret, err := a.IssueToken(cfapitest.TokenSpec{Name: name, OwnerAccount: acct, Policies: []cfapitest.Policy{{Groups: groups, Resources: acctRes}}})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	// The job's own token: far more than it needs, as people grant today.
	broad := issue("broad", []string{"Workers Scripts Write", "Workers KV Storage Write", "D1 Write", "Workers R2 Storage Write", "Queues Write", "Pages Write"})

	project := writeWorker(t)
	f, err := os.OpenFile(filepath.Join(project, "wrangler.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("\n[[kv_namespaces]]\nbinding = \"CACHE\"\nid = \"" + ns + "\"\n")
	f.Close()

	// The job, as a workflow's run step would write it.
	job := `set -e
"$NODE" "$WRANGLER" deploy
"$NODE" "$WRANGLER" kv key put greeting hello --namespace-id "$NS" --remote
"$NODE" "$WRANGLER" d1 execute app-db --remote --command "CREATE TABLE visits (at TEXT)"
"$NODE" "$WRANGLER" r2 object put assets/site/index.js --file index.js --remote
`
	env := func(token string) map[string]string {
		return map[string]string{"CLOUDFLARE_API_TOKEN": token, "CLOUDFLARE_ACCOUNT_ID": acct, "NODE": w.node, "WRANGLER": w.script, "NS": ns}
	}
	out, err := runJob(t, w, project, env(broad), trip, binPath, "learn", "--api-base", a.url, "--json", "--", "/bin/sh", "-c", job)
	if err != nil {
		t.Fatalf("cfmint learn -- the job failed: %v\n%s", err, out)
	}
	if strings.Contains(out, broad) {
		t.Errorf("the output holds the job's token")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r struct {
		Permissions, Zones, Accounts, Unknown []string
		R2Buckets                             []string `json:"r2_buckets"`
		Operations                            []struct {
			Method, Path string
			Status       int
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("the last line is not learn's JSON report: %v\n%s", err, out)
	}
	t.Logf("cfmint learn -- the job:\n%s", out)
	want := []string{"D1 Read", "Workers KV Storage Write", "Workers R2 Storage Write", "Workers Scripts Write"}
	if !slices.Equal(r.Permissions, want) {
		t.Errorf("learned %q, want %q", r.Permissions, want)
	}
	if !slices.Equal(r.Accounts, []string{acct}) || !slices.Equal(r.R2Buckets, []string{"assets"}) || len(r.Zones) != 0 {
		t.Errorf("accounts %q, buckets %q, zones %q; want %s, assets, none", r.Accounts, r.R2Buckets, r.Zones, acct)
	}
	if v, ok := a.KVValue(acct, ns, "greeting"); !ok || string(v) != "hello" {
		t.Errorf("KV greeting = %q (%v), want hello", v, ok)
	}
	if q := a.D1Queries(acct, db); len(q) != 1 {
		t.Errorf("D1 got %q, want the one CREATE TABLE", q)
	}
	if _, ok := a.Object(acct, "default", "assets", "site/index.js"); !ok {
		t.Errorf("R2 holds no site/index.js")
	}

	// Exactly the learned permissions: the job runs again.
	direct := func(token string) (string, error) {
		e := env(token)
		e["CLOUDFLARE_API_BASE_URL"] = a.url
		return runJob(t, w, project, e, trip, "/bin/sh", "-c", job)
	}
	if out, err := direct(issue("learned", r.Permissions)); err != nil {
		t.Errorf("the job with exactly the learned permissions failed: %v\n%s", err, out)
	}
	// One group fewer: it fails.
	for _, drop := range r.Permissions {
		less := slices.DeleteFunc(slices.Clone(r.Permissions), func(g string) bool { return g == drop })
		out, err := direct(issue("less", less))
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("the job without %s: %v, want it to fail\n%s", drop, err, out)
		}
	}
}

// runJob runs argv in dir with the environment wrangler.run gives wrangler (off the network but
// for the built-in API and the tripwire, out of the user's files), plus env; it allows a job of
// four wrangler runs the time of four.
func runJob(t *testing.T, w wrangler, dir string, env map[string]string, trip *tripwire, argv ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	vars := map[string]string{
		"PATH": filepath.Dir(w.node) + string(os.PathListSeparator) + "/usr/bin:/bin",
		"HOME": home, "TMPDIR": filepath.Join(home, "tmp"), "CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0",
		"WRANGLER_SEND_METRICS": "false", "WRANGLER_SEND_ERROR_REPORTS": "false", "WRANGLER_HIDE_BANNER": "true",
		"NO_UPDATE_NOTIFIER": "1", "XDG_CONFIG_HOME": filepath.Join(home, "config"), "XDG_CACHE_HOME": filepath.Join(home, "cache"),
		"HTTPS_PROXY": trip.srv.URL, "HTTP_PROXY": trip.srv.URL, "https_proxy": trip.srv.URL, "http_proxy": trip.srv.URL,
		"NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1", "npm_registry": trip.srv.URL + "/",
	}
	if err := os.Mkdir(vars["TMPDIR"], 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*wranglerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	text := ansiEscape.ReplaceAllString(out.String(), "")
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v:\n%s", strings.Join(argv, " "), 4*wranglerTimeout, text)
	}
	return text, err
}

// TestLearnForwardsSignals stops `cfmint learn` with SIGTERM while its command runs: the command
// gets the signal, learn exits with the command's code and still prints its report.
func TestLearnForwardsSignals(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binPath, "learn", "--json", "--", "/bin/sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 1; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("first line %q, %v; want ready", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Errorf("cfmint learn ended with %v, want the command's exit code 7", err)
	}
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n")
	if lines[0] != "got TERM" || !strings.HasPrefix(lines[len(lines)-1], `{"permissions":[]`) {
		t.Errorf("after SIGTERM the output is %q, want the command's own line, then the report", rest)
	}
}
