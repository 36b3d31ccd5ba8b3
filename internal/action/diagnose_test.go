package action_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
)

// deadBootstrap is the sentence cfmint says for a bootstrap token Cloudflare no longer knows.
const deadBootstrap = "the bootstrap token is not valid: it has expired, been revoked (Cloudflare revokes tokens it finds in public code) or deleted, or the secret holds the wrong value; make a new one and update the secret"

// TestBootstrapDiagnosis runs main with bootstrap tokens that are dead (revoked by Cloudflare,
// expired, unknown) and with live ones of the wrong owner kind, per owner kind: a dead one is
// called dead and never sends the user to token-owner; a live one of the other kind keeps its
// precise message. Nothing is created.
func TestBootstrapDiagnosis(t *testing.T) {
	t.Parallel()
	expired := func(a *api, owner string) string {
		spec := cfapitest.TokenSpec{Name: "expired bootstrap", ExpiresOn: time.Now().Add(-time.Hour)}
		if owner == "user" {
			spec.OwnerUserID = a.fx.User.ID
			spec.Policies = []cfapitest.Policy{{Groups: []string{"API Tokens Write"}, Resources: map[string]any{"com.cloudflare.api.user." + a.fx.User.ID: "*"}}}
		} else {
			spec.OwnerAccount = a.fx.Account.ID
			spec.Policies = []cfapitest.Policy{{Groups: []string{"Account API Tokens Write"}, Resources: map[string]any{"com.cloudflare.api.account." + a.fx.Account.ID: "*"}}}
		}
		_, secret, err := a.IssueToken(spec)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	for _, tc := range []struct {
		name   string
		with   func(a *api) map[string]string
		want   []string
		reject []string
	}{
		{"account bootstrap revoked by Cloudflare", func(a *api) map[string]string {
			a.RevokeToken(a.fx.AccountBootstrap.ID)
			return nil
		}, []string{deadBootstrap}, []string{"token-owner"}},
		{"user bootstrap revoked by Cloudflare", func(a *api) map[string]string {
			a.RevokeToken(a.fx.UserBootstrap.ID)
			return map[string]string{"token-owner": "user", "bootstrap-token": a.fx.UserBootstrap.Secret}
		}, []string{deadBootstrap}, []string{"token-owner"}},
		{"user bootstrap revoked, no account-id to ask the account verify", func(a *api) map[string]string {
			a.RevokeToken(a.fx.UserBootstrap.ID)
			return map[string]string{"token-owner": "user", "bootstrap-token": a.fx.UserBootstrap.Secret, "account-id": ""}
		}, []string{deadBootstrap}, []string{"token-owner"}},
		{"expired account bootstrap", func(a *api) map[string]string {
			return map[string]string{"bootstrap-token": expired(a, "account")}
		}, []string{deadBootstrap}, []string{"token-owner"}},
		{"expired user bootstrap", func(a *api) map[string]string {
			return map[string]string{"token-owner": "user", "bootstrap-token": expired(a, "user")}
		}, []string{deadBootstrap}, []string{"token-owner"}},
		{"unknown bootstrap (wrong secret)", func(a *api) map[string]string {
			return map[string]string{"bootstrap-token": "cfat_" + strings.Repeat("x0", 24)}
		}, []string{deadBootstrap}, []string{"token-owner"}},
		{"user bootstrap for an account-owned token", func(a *api) map[string]string {
			return map[string]string{"bootstrap-token": a.fx.UserBootstrap.Secret}
		}, []string{"not an account-owned token", "it is a user token", "token-owner: user"}, []string{"not valid"}},
		{"account bootstrap for a user-owned token", func(a *api) map[string]string {
			return map[string]string{"token-owner": "user"}
		}, []string{"not a user token", "account-owned, of account", "token-owner: account"}, []string{"not valid"}},
		{"account bootstrap of another account", func(a *api) map[string]string {
			return map[string]string{"account-id": a.fx.OtherAccount.ID}
		}, []string{"not an account-owned token of account", "another account", "check account-id"}, []string{"not valid", "token-owner"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			with := map[string]string{"preset": "workers-deploy"}
			for k, v := range tc.with(a) {
				with[k] = v
			}
			step := a.step("cf", with)
			m := runMain(t, a.job(t, nil), step)
			if m.ExitCode != 1 {
				t.Fatalf("exit %d, want 1:\n%s", m.ExitCode, m.Log)
			}
			for _, w := range append([]string{`input "bootstrap-token"`}, tc.want...) {
				if !hasAnnotation(m, "error", w) {
					t.Errorf("no error with %q in %+v", w, m.Annotations)
				}
			}
			for _, an := range m.Annotations {
				for _, r := range tc.reject {
					if strings.Contains(an.Message, r) {
						t.Errorf("error %q says %q", an.Message, r)
					}
				}
				if tok := step.With["bootstrap-token"]; strings.Contains(an.Message, tok) {
					t.Errorf("error %q holds the bootstrap token", an.Message)
				}
			}
			if n := a.creates(); n != 0 {
				t.Errorf("%d create calls", n)
			}
			checkSecrets(t, a, "", m)
		})
	}
}

// TestPostWithDeadBootstrap: the bootstrap token dies between main and post (Cloudflare revokes
// it). Post fails, says the bootstrap token is no longer valid, names the token and its expiry,
// and prints the command that revokes it once a valid bootstrap token is at hand.
func TestPostWithDeadBootstrap(t *testing.T) {
	t.Parallel()
	for _, owner := range []string{"account", "user"} {
		t.Run(owner, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, nil)
			with := map[string]string{"preset": "workers-deploy"}
			boot, cmd := a.fx.AccountBootstrap, "--account-id "+a.fx.Account.ID
			if owner == "user" {
				boot, cmd = a.fx.UserBootstrap, "--token-owner user"
				with["token-owner"], with["bootstrap-token"] = "user", boot.Secret
			}
			s := a.step("cf", with)
			m := runMain(t, j, s)
			mustSucceed(t, m)
			id, expires := m.Outputs["token-id"], m.Outputs["expires-on"]
			if !a.RevokeToken(boot.ID) {
				t.Fatalf("the fake does not know bootstrap token %s", boot.ID)
			}
			p := runPost(t, j, s, m)
			if p.ExitCode == 0 {
				t.Fatalf("post succeeded with a dead bootstrap token:\n%s", p.Log)
			}
			for _, w := range []string{"the bootstrap token is no longer valid", "token " + id, expires, "cfmint revoke " + id + " " + cmd} {
				if !hasAnnotation(p, "error", w) {
					t.Errorf("no error with %q in %+v", w, p.Annotations)
				}
			}
			if tk, ok := a.Token(id); !ok || tk.Status != "active" {
				t.Errorf("the minted token is %+v, want it still there and active", tk)
			}
			if !strings.Contains(p.Summary, "failed to revoke") {
				t.Errorf("post summary %q does not say the revoke failed", p.Summary)
			}
			checkSecrets(t, a, m.Outputs["token"], m, p)
		})
	}
}

// TestCreate9109: a create naming a resource the bootstrap token's owner cannot delegate (a
// bucket that does not exist or is in another jurisdiction, an account the user is no member
// of) is refused with
// 9109, and cfmint names both possible causes and what was asked for.
func TestCreate9109(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		with func(a *api) map[string]string
		want []string
	}{
		{"bucket that does not exist", func(a *api) map[string]string {
			return map[string]string{"preset": "r2-upload", "r2-buckets": "no-such-bucket"}
		}, []string{`input "r2-buckets"`, "9109", "either the bootstrap token lacks Account API Tokens Write for account ACCOUNT", "does not exist or is not one its owner may delegate", "r2-buckets no-such-bucket in account ACCOUNT"}},
		{"bucket in another jurisdiction, user owner", func(a *api) map[string]string {
			return map[string]string{"preset": "r2-upload", "r2-buckets": "eu:assets", "token-owner": "user", "bootstrap-token": a.fx.UserBootstrap.Secret}
		}, []string{`input "r2-buckets"`, "9109", "either the bootstrap token lacks API Tokens Write", "r2-buckets eu:assets in account ACCOUNT"}},
		{"account the user is no member of", func(a *api) map[string]string {
			return map[string]string{"preset": "workers-deploy", "token-owner": "user", "bootstrap-token": a.fx.UserBootstrap.Secret, "account-id": a.fx.OtherAccount.ID}
		}, []string{"9109", "either the bootstrap token lacks API Tokens Write", "asked for: account OTHER"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			m := runMain(t, a.job(t, nil), a.step("cf", tc.with(a)))
			if m.ExitCode != 1 {
				t.Fatalf("exit %d, want 1:\n%s", m.ExitCode, m.Log)
			}
			if n := a.creates(); n != 1 {
				t.Errorf("%d creates, want the one Cloudflare refused", n)
			}
			for _, w := range tc.want {
				w = strings.NewReplacer("ACCOUNT", a.fx.Account.ID, "OTHER", a.fx.OtherAccount.ID).Replace(w)
				if !hasAnnotation(m, "error", w) {
					t.Errorf("no error with %q in %+v", w, m.Annotations)
				}
			}
			if n := len(a.Tokens()); n < 2 || n > 3 {
				t.Errorf("the API holds %d tokens", n)
			}
			checkSecrets(t, a, "", m)
		})
	}
}

// TestNoIPv6RouteDebugLine: the built-in API listens on 127.0.0.1 only, so the IPv6 trace has no
// route, as in a container on Docker's default network. A debug line (shown with RUNNER_DEBUG,
// never a warning) says so and how to add the host's IPv6 prefix; the token is pinned to the
// IPv4 address alone.
func TestNoIPv6RouteDebugLine(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	m := runMain(t, a.job(t, map[string]string{"RUNNER_DEBUG": "1"}), a.step("cf", map[string]string{"preset": "workers-deploy"}))
	mustSucceed(t, m)
	found := false
	for _, line := range strings.Split(m.Stdout, "\n") {
		if strings.HasPrefix(line, "::debug::") && strings.Contains(line, "the IPv6 trace failed for lack of a route") && strings.Contains(line, "ip-filter: runner, <the host's IPv6 prefix>") {
			found = true
		}
	}
	if !found {
		t.Errorf("no debug line about the missing IPv6 route:\n%s", m.Stdout)
	}
	if got := m.Outputs["ip-filter"]; got != "127.0.0.1/32" {
		t.Errorf("ip-filter output %q, want the IPv4 address alone", got)
	}
}
