package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs one command in-process with env as its environment, and no network.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), Env{
		Args:       args,
		Lookup:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Stdout:     &out,
		Stderr:     &errOut,
		HTTPClient: &http.Client{Transport: failing{t}},
	})
	return code, out.String(), errOut.String()
}

// TestPolicyCheckReportsEveryProblem: the eight problems of one file come out in one run, each
// naming its rule and key, those only the permission-group list shows included.
func TestPolicyCheckReportsEveryProblem(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, nil, "policy", "check", filepath.Join("testdata", "eight-errors.yaml"))
	if code != ExitFail {
		t.Errorf("exit %d, want %d", code, ExitFail)
	}
	want := []string{
		`rule "no-claims": key "claims": is empty`,
		`rule "typo-perm": key "allow.permissions": "DNS Wrte" is not a permission group`,
		`rule "lasting": key "allow.presets": "workers-deplyo" is not a preset`,
		`rule "lasting": key "allow": "Account Settings Write" can invite members`,
		`rule "many": key "zone": is not a known key`,
		`rule "many": key "claims.repository_id": write the value as a string`,
		`rule "many": key "allow.r2_buckets": "Bad_Bucket" is not a bucket name`,
		`rule "many": key "max_ttl": "30" has no unit`,
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
	if n := strings.Count(stderr, "\nrule "); n != len(want) {
		t.Errorf("%d problems reported, want %d:\n%s", n, len(want), stderr)
	}
}

func TestPolicyWording(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pol := write("policy.yaml", "audience: https://cfmint.test\nrules:\n  - name: r\n    issuer: https://token.actions.githubusercontent.com\n    claims: {repository_id: \"1\"}\n    account_id: 023e105f4ecef8ad9ca31a8372d0c353\n    allow: {presets: [workers-deploy]}\n")
	claims := write("claims.json", `{"iss":"https://token.actions.githubusercontent.com","repository_id":"1","repository":"o/r","run_id":"7","run_attempt":"1"}`)

	code, stdout, stderr := runCLI(t, nil, "policy", "check", pol)
	if code != ExitOK || !strings.Contains(stdout, "valid: 1 rule, audience https://cfmint.test, issuer https://token.actions.githubusercontent.com\n") {
		t.Errorf("check: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, nil, "policy", "test", pol, "--claims", claims, "--caller", "198.51.100.7")
	if code != ExitOK {
		t.Fatalf("test: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, w := range []string{"an account-owned token", "usable from 198.51.100.7/32 (the --caller address", "Workers Scripts Write on account 023e105f4ecef8ad9ca31a8372d0c353\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("test output lacks %q:\n%s", w, stdout)
		}
	}
	if strings.Contains(stdout, "  ") && strings.Contains(strings.ReplaceAll(stdout, "\n  ", "\n"), "  ") {
		t.Errorf("test output has a double space:\n%s", stdout)
	}

	code, _, stderr = runCLI(t, nil, "policy", "check", filepath.Join(dir, "missing.yaml"))
	if code != ExitUsage || strings.Contains(stderr, "--policy") || !strings.Contains(stderr, `cannot read the policy FILE "`) {
		t.Errorf("missing file: exit %d, %s", code, stderr)
	}

	tab := write("tab.yaml", "audience: https://cfmint.test\nrules:\n  - name: a\n\tissuer: https://x\n")
	code, _, stderr = runCLI(t, nil, "policy", "check", tab)
	if code != ExitFail || !strings.Contains(stderr, "line 4: found a tab character") || !strings.Contains(stderr, "YAML indents with spaces") {
		t.Errorf("tab: exit %d, %s", code, stderr)
	}
}
