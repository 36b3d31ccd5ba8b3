package action

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// phaseDeps is a phase's outside world with env as its environment, and what it writes to stdout.
func phaseDeps(env map[string]string) (Deps, *bytes.Buffer) {
	var out bytes.Buffer
	return Deps{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Stdout: &out}, &out
}

func TestReadLeft(t *testing.T) {
	t.Parallel()
	run := map[string]string{"GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_ACTION": "cf"}
	const bootstrap = "bootstrap-secret"
	d, _ := phaseDeps(run)
	binding := stateBinding(d, bootstrap)
	const id = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name  string
		state map[string]string
		want  left
	}{
		{"minted directly", map[string]string{
			stateTokenID: id, stateName: "cfmint:o/r:7.1:cf:abc", stateExpiresOn: "2030-01-01T00:00:00Z",
			stateOwner: "account", stateAccountID: "acct", stateRevoke: "true",
		}, left{id: id, name: "cfmint:o/r:7.1:cf:abc", expiresOn: "2030-01-01T00:00:00Z", owner: cftoken.OwnerAccount, account: "acct"}},
		{"revoke: false", map[string]string{stateTokenID: id, stateName: "n", stateRevoke: "false"},
			left{id: id, name: "n", keep: true}},
		{"a create in flight is never kept", map[string]string{stateName: "n", stateRevoke: "false", statePending: "true"},
			left{name: "n", pending: true}},
		{"pending with neither name nor nonce is nothing to look for", map[string]string{statePending: "true"},
			left{}},
		{"a broker's retried exchange", map[string]string{stateNonce: "abcdef0123456789", statePending: "true", stateRetried: "true"},
			left{nonce: "abcdef0123456789", pending: true, retried: true}},
		{"a broker's token and its revoke ticket", map[string]string{stateTokenID: id, stateNonce: "abcdef0123456789", stateTicket: "v1.x.y", stateRevoke: "true"},
			left{id: id, nonce: "abcdef0123456789", ticket: "v1.x.y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"STATE_" + stateRun: binding}
			for k, v := range run {
				env[k] = v
			}
			for k, v := range tc.state {
				env["STATE_"+k] = v
			}
			d, out := phaseDeps(env)
			got, ok := readLeft(d, newActions(d), bootstrap)
			if !ok || got != tc.want {
				t.Errorf("readLeft = %+v, %v; want %+v", got, ok, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("readLeft wrote %q", out)
			}
		})
	}
}

// TestReadLeftIgnoresPlantedState: state this run's main did not write (no binding, or one made
// with another bootstrap token) is acted on not at all, and named in a warning.
func TestReadLeftIgnoresPlantedState(t *testing.T) {
	t.Parallel()
	run := map[string]string{"GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_ACTION": "cf"}
	d, _ := phaseDeps(run)
	for name, binding := range map[string]string{"no binding": "", "another bootstrap token": stateBinding(d, "other-token")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"STATE_" + stateTokenID: "0123456789abcdef0123456789abcdef", "STATE_" + stateExpiresOn: "2030-01-01T00:00:00Z", "STATE_" + stateRun: binding}
			for k, v := range run {
				env[k] = v
			}
			d, out := phaseDeps(env)
			got, ok := readLeft(d, newActions(d), "bootstrap-secret")
			if ok || got != (left{}) {
				t.Errorf("readLeft = %+v, %v; want nothing", got, ok)
			}
			w := out.String()
			if !strings.HasPrefix(w, "::warning::") || !strings.Contains(w, stateTokenID) || !strings.Contains(w, "revoke token 0123456789abcdef0123456789abcdef by hand") {
				t.Errorf("warning %q does not name the planted state and the token to revoke by hand", w)
			}
		})
	}
}
