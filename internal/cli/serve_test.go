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

func TestServeRefusesBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("audience: https://cfmint.test\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := filepath.Join(dir, "valid.yaml")
	if err := os.WriteFile(valid, []byte("audience: https://cfmint.test\nrules:\n  - name: r\n    issuer: https://token.actions.githubusercontent.com\n    claims: {repository_id: \"1\"}\n    account_id: 023e105f4ecef8ad9ca31a8372d0c353\n    allow: {presets: [workers-deploy]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"no policy, no token", nil, []string{"serve"}, []string{"--policy: is empty", "no bootstrap token"}},
		{"a policy that does not validate", map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": "t"}, []string{"serve", "--policy", policy}, []string{"at least one rule"}},
		{"bad numbers", map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": "t"}, []string{"serve", "--policy", policy, "--rate-limit", "5", "--shutdown-timeout", "0s"}, []string{"--rate-limit 5", "--shutdown-timeout: 0s"}},
		{"http API base to another host", map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": "t", "CLOUDFLARE_API_BASE_URL": "http://api.example.com/client/v4"}, []string{"serve", "--policy", policy}, []string{"$CLOUDFLARE_API_BASE_URL"}},
		{"bad level", nil, []string{"serve", "--log-level", "loud"}, []string{`--log-level: "loud"`}},
		{"every problem at once", map[string]string{"CLOUDFLARE_API_BASE_URL": "http://api.example.com/client/v4"}, []string{"serve", "--log-level", "loud", "--replay-store", "", "--rate-reserve", "-1", "extra"}, []string{`unexpected argument "extra"`, `--log-level: "loud"`, "--policy: is empty", "no bootstrap token", "--rate-limit 1200 and --rate-reserve -1", "$CLOUDFLARE_API_BASE_URL", "--replay-store is empty"}},
		{"bad replay store", map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": "t"}, []string{"serve", "--policy", valid, "--replay-store", "memcached://x"}, []string{"--replay-store", "memcached://x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := Run(context.Background(), Env{
				Args:       tc.args,
				Lookup:     func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok },
				Stdout:     &out,
				Stderr:     &errOut,
				HTTPClient: &http.Client{Transport: failing{t}},
			})
			if code != ExitUsage {
				t.Errorf("exit %d, want %d:\n%s", code, ExitUsage, errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if strings.Contains(errOut.String(), "CLOUDFLARE_BOOTSTRAP_TOKEN=t") {
				t.Errorf("stderr shows the bootstrap token")
			}
		})
	}
}

// failing is a transport for commands that must not reach any API.
type failing struct{ t *testing.T }

func (f failing) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
	return nil, http.ErrNotSupported
}
