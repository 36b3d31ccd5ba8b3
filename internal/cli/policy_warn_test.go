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

// TestPolicyCheckWarns: a valid policy whose rule also leans on a name claim is valid (exit 0),
// and check says why the name is weak; a rule with id pins only gets no warning.
func TestPolicyCheckWarns(t *testing.T) {
	t.Parallel()
	const head = "audience: https://cfmint.test\nrules:\n  - name: r\n    issuer: https://token.actions.githubusercontent.com\n    account_id: 023e105f4ecef8ad9ca31a8372d0c353\n    allow: {presets: [workers-deploy]}\n"
	cases := []struct {
		name, claims string
		warn         bool
	}{
		{"id pin only", "    claims: {repository_id: \"1\"}\n", false},
		{"a name beside the pin", "    claims: {repository_id: \"1\", repository_owner: acme}\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(file, []byte(head+tc.claims), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := Run(context.Background(), Env{
				Args:       []string{"policy", "check", file},
				Lookup:     func(string) (string, bool) { return "", false },
				Stdout:     &out,
				Stderr:     &errOut,
				HTTPClient: &http.Client{Transport: failing{t}},
			})
			if code != ExitOK {
				t.Fatalf("exit %d, want %d:\n%s%s", code, ExitOK, out.String(), errOut.String())
			}
			got := strings.Contains(errOut.String(), "warning: ") && strings.Contains(errOut.String(), "repository_owner")
			if got != tc.warn {
				t.Errorf("warned about repository_owner: %v, want %v:\n%s", got, tc.warn, errOut.String())
			}
		})
	}
}
