package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cfapitest"
)

func TestFlagWording(t *testing.T) {
	t.Parallel()
	const id = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
		not  []string
	}{
		{"revoke without a bootstrap token", []string{"revoke", id}, ExitUsage,
			[]string{"--bootstrap-token: is empty, and so is $CLOUDFLARE_BOOTSTRAP_TOKEN; give a Cloudflare token that may delete the token", "or --broker URL when a cfmint broker minted it"},
			[]string{"set it to holding", "GitHub does not give secrets", "set broker"}},
		{"mint without a bootstrap token", []string{"mint", "--preset", "dns-edit", "--zones", "example.com", "--account-id", strings.Repeat("a", 32)}, ExitUsage,
			[]string{"--bootstrap-token: is empty, and so is $CLOUDFLARE_BOOTSTRAP_TOKEN; give a Cloudflare token that may create tokens, or --broker URL"}, nil},
		{"revoke --help", []string{"revoke", "--help"}, ExitOK,
			[]string{"revoke through the broker that minted the token", "-id-token-env"}, []string{"mint keyless"}},
		{"--id-token-env needs --broker", []string{"revoke", "--id-token-env", "X", "--bootstrap-token", "t", "--account-id", strings.Repeat("a", 32), id}, ExitUsage,
			[]string{"--id-token-env: needs --broker"}, nil},
		{"--id-token-env names a variable", []string{"mint", "--broker", "https://b.example", "--id-token-env", "$X", "--preset", "workers-deploy"}, ExitUsage,
			[]string{`--id-token-env: "$X" is not a variable name`}, nil},
		{"permissions --help lists one owner flag", []string{"permissions", "--help"}, ExitOK,
			[]string{"-token-owner"}, []string{"\n  -owner ", "(hidden)"}},
		// The old name still parses.
		{"permissions --owner", []string{"permissions", "--owner", "user"}, ExitUsage,
			[]string{"--bootstrap-token: is empty"}, []string{"not defined"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCLI(t, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestSweepCountsInWords(t *testing.T) {
	t.Parallel()
	srv := cfapitest.New()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fx := srv.Seed()
	env := map[string]string{"CLOUDFLARE_API_BASE_URL": srv.URL(), "CLOUDFLARE_BOOTSTRAP_TOKEN": fx.AccountBootstrap.Secret, "CLOUDFLARE_ACCOUNT_ID": fx.Account.ID}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "--dry-run"}, "0 tokens would be deleted (dry run: nothing was)\n"},
		{[]string{"sweep"}, "0 tokens deleted\n"},
	} {
		var out, errOut strings.Builder
		code := Run(t.Context(), Env{Args: tc.args, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Stdout: &out, Stderr: &errOut, HTTPClient: &http.Client{Transport: &http.Transport{Proxy: nil}}})
		if code != ExitOK || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr lacks %q:\n%s", tc.args, code, tc.want, errOut.String())
		}
	}
	if plural(1, "rule") != "1 rule" || plural(2, "rule") != "2 rules" {
		t.Error("plural")
	}
}
