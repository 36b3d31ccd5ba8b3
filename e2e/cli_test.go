package e2e

// The CLI, run as a user runs it, and the README's presets table.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/policy"
	"github.com/cfmint/cfmint/internal/runner"
)

// cli runs the binary as a terminal user would.
func (a *api) cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CLOUDFLARE_API_BASE_URL=" + a.url, "CFMINT_TRACE_FALLBACK_URL=" + noFallback, "CLOUDFLARE_ACCOUNT_ID=" + a.fx.Account.ID, "CLOUDFLARE_BOOTSTRAP_TOKEN=" + a.fx.AccountBootstrap.Secret}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("cfmint %v: %v", args, err)
	}
	for _, s := range []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret} {
		if strings.Contains(o.String()+e.String(), s) {
			t.Errorf("cfmint %v printed a bootstrap token", args)
		}
	}
	return o.String(), e.String(), code
}

func TestCLI(t *testing.T) {
	t.Parallel()
	a := startAPI(t)

	// Shell use: the token alone on stdout.
	out, errOut, code := a.cli(t, nil, "mint", "--preset", "dns-edit", "--zones", "example.com", "--ttl", "5m")
	if code != 0 {
		t.Fatalf("mint: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	if strings.Contains(token, "\n") || !strings.HasPrefix(token, "cfat_") {
		t.Fatalf("stdout is not one token: %q", out)
	}
	if strings.Contains(errOut, token) {
		t.Error("stderr holds the token")
	}
	if got := a.call(t, token, http.MethodGet, a.dns(a.fx.Zone).path, "127.0.0.1"); got.Status != 200 {
		t.Errorf("minted token: %+v", got)
	}
	id := regexp.MustCompile(`cfmint revoke ([0-9a-f]{32})`).FindStringSubmatch(errOut)
	if id == nil {
		t.Fatalf("stderr does not say how to revoke: %s", errOut)
	}
	tk, _ := a.Token(id[1])
	if d := time.Until(tk.ExpiresOn); d > 5*time.Minute+2*time.Second || d < 4*time.Minute {
		t.Errorf("--ttl 5m gave %v", d)
	}
	if !strings.HasPrefix(tk.Name, "cfmint:local:dns-edit:") {
		t.Errorf("terminal name %q", tk.Name)
	}

	// JSON.
	out, errOut, code = a.cli(t, nil, "mint", "--preset", "workers-deploy", "--format", "json", "--ip-filter", "runner,198.51.100.0/24")
	var j struct {
		Token, ID, Name string
		ExpiresOn       string   `json:"expires_on"`
		IPFilter        []string `json:"ip_filter"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Token == "" || j.ID == "" || len(j.IPFilter) != 2 {
		t.Fatalf("mint --format json: exit %d, %q, %s", code, out, errOut)
	}
	if _, err := time.Parse(time.RFC3339, j.ExpiresOn); err != nil {
		t.Errorf("expires_on %q", j.ExpiresOn)
	}

	// Revoke, twice.
	for _, want := range []string{"Revoked token", "already gone"} {
		_, errOut, code = a.cli(t, nil, "revoke", j.ID)
		if code != 0 || !strings.Contains(errOut, want) {
			t.Errorf("revoke: exit %d, %s", code, errOut)
		}
	}

	// Dry run.
	out, _, code = a.cli(t, nil, "mint", "--permissions", "Zone / DNS / Edit", "--zones", "example.net", "--dry-run")
	if code != 0 || !strings.Contains(out, a.fx.Zone2.ID) || !strings.Contains(out, `"method": "POST"`) {
		t.Errorf("dry run: exit %d:\n%s", code, out)
	}

	// Permissions.
	out, _, code = a.cli(t, nil, "permissions", "dns")
	if code != 0 || !strings.Contains(out, "DNS Write") || !strings.Contains(out, "account.zone") || strings.Contains(out, "Workers") {
		t.Errorf("permissions dns: exit %d:\n%s", code, out)
	}
	out, _, code = a.cli(t, map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": a.fx.UserBootstrap.Secret}, "permissions", "--owner", "user", "api tokens")
	if code != 0 || !strings.Contains(out, "API Tokens Write") {
		t.Errorf("permissions --owner user: exit %d:\n%s", code, out)
	}

	// Sweep: the terminal's own tokens are named cfmint:local:...
	out, errOut, code = a.cli(t, nil, "sweep", "--dry-run", "--older-than", "1m")
	if code != 0 || !strings.Contains(errOut, "tokens would be deleted") {
		t.Errorf("sweep --dry-run: exit %d: %s %s", code, out, errOut)
	}

	// Bad flags and inputs: exit 2, the flag named, nothing created.
	before := a.creates()
	for _, args := range [][]string{
		{"mint", "--ttl", "90", "--preset", "workers-deploy"},
		{"mint", "--preset", "nope"},
		{"mint", "--format", "yaml", "--preset", "workers-deploy"},
		{"mint", "--no-such-flag"},
		{"revoke"},
		{"revoke", "not-an-id"},
		{"frobnicate"},
	} {
		_, errOut, code := a.cli(t, nil, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
		if strings.Contains(errOut, "input \"") {
			t.Errorf("%v: says input instead of the flag: %s", args, errOut)
		}
	}
	_, errOut, _ = a.cli(t, nil, "mint", "--ttl", "90", "--preset", "workers-deploy")
	if !strings.Contains(errOut, "--ttl") {
		t.Errorf("ttl error does not name --ttl: %s", errOut)
	}
	_, errOut, code = a.cli(t, map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": ""}, "mint", "--preset", "workers-deploy")
	if code != 2 || !strings.Contains(errOut, "CLOUDFLARE_BOOTSTRAP_TOKEN") {
		t.Errorf("no bootstrap token: exit %d: %s", code, errOut)
	}
	if a.creates() != before {
		t.Error("bad flags created a token")
	}

	// Help for each command, exit 0, with its exit codes.
	for _, cmd := range []string{"mint", "revoke", "permissions", "sweep"} {
		_, errOut, code := a.cli(t, nil, cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "Exit codes") || !strings.Contains(errOut, "-bootstrap-token") {
			t.Errorf("%s --help: exit %d:\n%s", cmd, code, errOut)
		}
	}
	out, _, code = a.cli(t, nil, "help")
	if code != 0 || !strings.Contains(out, "cfmint mint") {
		t.Errorf("help: %d %s", code, out)
	}
}

// TestCLIShellUse runs the README's shell line through a real shell.
func TestCLIShellUse(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	script := `CLOUDFLARE_API_TOKEN=$("$CFMINT" mint --preset dns-edit --zones example.com --ttl 5m) || exit 3
test -n "$CLOUDFLARE_API_TOKEN" || exit 4
printf '%s' "$CLOUDFLARE_API_TOKEN" | wc -c`
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CFMINT=" + binPath, "CLOUDFLARE_API_BASE_URL=" + a.url, "CFMINT_TRACE_FALLBACK_URL=" + noFallback, "CLOUDFLARE_ACCOUNT_ID=" + a.fx.Account.ID, "CLOUDFLARE_BOOTSTRAP_TOKEN=" + a.fx.AccountBootstrap.Secret}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shell use failed: %v\n%s", err, stderr.String())
	}
	if n := strings.TrimSpace(string(out)); n == "0" || n == "" {
		t.Errorf("token length %q", n)
	}
}

// TestCLIMintMasksInWorkflow: `cfmint mint` in a workflow step (GITHUB_ACTIONS=true) masks the
// token and its S3 secret on stderr, which the runner reads commands from, before any line
// about the token; stdout keeps the output alone for capture. In a terminal it prints no mask.
func TestCLIMintMasksInWorkflow(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	for _, inWorkflow := range []bool{true, false} {
		env := map[string]string{}
		if inWorkflow {
			env["GITHUB_ACTIONS"] = "true"
		}
		out, errOut, code := a.cli(t, env, "mint", "--preset", "r2-upload", "--r2-buckets", "assets", "--format", "json")
		if code != 0 {
			t.Fatalf("mint: exit %d: %s", code, errOut)
		}
		var got struct {
			Token string `json:"token"`
			S3    string `json:"r2_secret_access_key"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.Token == "" || got.S3 == "" {
			t.Fatalf("stdout %q: %v", out, err)
		}
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		masks := map[string]int{}
		minted := -1
		for i, line := range lines {
			if name, ok := runner.FindCommand(line); ok {
				if name != "add-mask" {
					t.Errorf("stderr line %d is a %s command: %q", i+1, name, line)
				}
				masks[strings.TrimPrefix(line, "::add-mask::")] = i
				continue
			}
			if strings.Contains(line, got.Token) || strings.Contains(line, got.S3) {
				t.Errorf("stderr line %d holds a secret", i+1)
			}
			if strings.HasPrefix(line, "Minted token") {
				minted = i
			}
		}
		if !inWorkflow {
			if len(masks) > 0 {
				t.Errorf("a terminal run printed %d mask commands", len(masks))
			}
			continue
		}
		for what, secret := range map[string]string{"token": got.Token, "S3 secret": got.S3} {
			if i, ok := masks[secret]; !ok || i > minted {
				t.Errorf("the %s is not masked before the line about the token (mask at %d, mint line at %d):\n%s", what, i, minted, strings.NewReplacer(got.Token, "<TOKEN>", got.S3, "<S3>").Replace(errOut))
			}
		}
	}
}

// TestREADMEPresets checks the README's presets table against the code.
func TestREADMEPresets(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m := regexp.MustCompile("^\\| `([a-z0-9-]+)` \\| ([^|]+) \\|").FindStringSubmatch(line)
		if m != nil {
			if _, ok := policy.Presets[m[1]]; ok {
				rows[m[1]] = strings.TrimSpace(m[2])
			}
		}
	}
	for _, name := range policy.PresetNames() {
		p := policy.Presets[name]
		want := strings.Join(p.Groups, ", ")
		if len(p.BucketGroups) > 0 {
			want = strings.Join(p.BucketGroups, ", ") + " (with `r2-buckets`), else " + want
		}
		if rows[name] != want {
			t.Errorf("README row for %s grants %q, code grants %q", name, rows[name], want)
		}
	}
	if len(rows) != len(policy.Presets) {
		t.Errorf("README lists %d presets, code has %d", len(rows), len(policy.Presets))
	}
}

// TestCLIPermissionFailures runs the permission failures through the terminal interface: exit 1,
// the flag named, nothing left behind.
func TestCLIPermissionFailures(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--permissions", "Workers Script Write"}, []string{"--permissions", `did you mean "Workers Scripts Write"`}},
		{[]string{"--permissions", "Logs Write"}, []string{`"Account / Logs / Edit" or "Zone / Logs / Edit"`}},
		{[]string{"--permissions", "API Tokens Write"}, []string{"user-level permission"}},
		{[]string{"--preset", "dns-edit", "--zones", "missing.example"}, []string{"--zones", `"missing.example" was not found`}},
		{[]string{"--preset", "r2-upload", "--r2-buckets", "no-such-bucket"}, []string{"--r2-buckets", "no-such-bucket"}},
	} {
		_, errOut, code := a.cli(t, nil, append([]string{"mint"}, tc.args...)...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1: %s", tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr lacks %q: %s", tc.args, w, errOut)
			}
		}
	}
	if n := len(a.Tokens()); n != 2 {
		t.Errorf("the API holds %d tokens, want only the 2 bootstrap tokens", n)
	}
}
