package mint

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// kindVerify answers each owner kind's verify of the bootstrap token as planned.
type kindVerify struct {
	*fakeTokens
	answers map[cftoken.Owner]func() (string, error)
	asked   []cftoken.Owner
}

func (k *kindVerify) Verify(_ context.Context, o cftoken.Owner, _ string, _ string) (string, error) {
	k.asked = append(k.asked, o)
	return k.answers[o]()
}

// TestBootstrapDead: dead only when every kind that can be asked answers 1000, or the kind that
// knows the token says it is not active; a live token of the other kind is not dead; and a
// failure that says neither is an error, not a verdict.
func TestBootstrapDead(t *testing.T) {
	t.Parallel()
	unknown := func() (string, error) {
		return "", &cftoken.APIError{Op: "verify", Status: 401, Details: []cftoken.Detail{{Code: 1000, Message: "Invalid API Token"}}}
	}
	answer := func(status string) func() (string, error) { return func() (string, error) { return status, nil } }
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		owner   cftoken.Owner
		account string
		answers map[cftoken.Owner]func() (string, error)
		dead    bool
		err     error
		asked   []cftoken.Owner
	}{
		{"active", cftoken.OwnerAccount, "a1", map[cftoken.Owner]func() (string, error){cftoken.OwnerAccount: answer("active")}, false, nil, []cftoken.Owner{cftoken.OwnerAccount}},
		{"disabled", cftoken.OwnerAccount, "a1", map[cftoken.Owner]func() (string, error){cftoken.OwnerAccount: answer("disabled")}, true, nil, []cftoken.Owner{cftoken.OwnerAccount}},
		{"unknown to both kinds", cftoken.OwnerAccount, "a1", map[cftoken.Owner]func() (string, error){cftoken.OwnerAccount: unknown, cftoken.OwnerUser: unknown}, true, nil, []cftoken.Owner{cftoken.OwnerAccount, cftoken.OwnerUser}},
		{"a live user token asked as an account's", cftoken.OwnerAccount, "a1", map[cftoken.Owner]func() (string, error){cftoken.OwnerAccount: unknown, cftoken.OwnerUser: answer("active")}, false, nil, []cftoken.Owner{cftoken.OwnerAccount, cftoken.OwnerUser}},
		{"a revoked user token asked as an account's", cftoken.OwnerAccount, "a1", map[cftoken.Owner]func() (string, error){cftoken.OwnerAccount: unknown, cftoken.OwnerUser: answer("revoked (exposed)")}, true, nil, []cftoken.Owner{cftoken.OwnerAccount, cftoken.OwnerUser}},
		{"a user rule with no account: the other kind cannot be asked", cftoken.OwnerUser, "", map[cftoken.Owner]func() (string, error){cftoken.OwnerUser: unknown}, true, nil, []cftoken.Owner{cftoken.OwnerUser}},
		{"Cloudflare unreachable", cftoken.OwnerAccount, "a1", map[cftoken.Owner]func() (string, error){cftoken.OwnerAccount: func() (string, error) { return "", down }}, false, down, []cftoken.Owner{cftoken.OwnerAccount}},
		{"the other kind unreachable", cftoken.OwnerUser, "a1", map[cftoken.Owner]func() (string, error){cftoken.OwnerUser: unknown, cftoken.OwnerAccount: func() (string, error) { return "", down }}, false, down, []cftoken.Owner{cftoken.OwnerUser, cftoken.OwnerAccount}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := &kindVerify{fakeTokens: &fakeTokens{t: t}, answers: tc.answers}
			dead, err := (&Engine{Tokens: k}).BootstrapDead(context.Background(), tc.owner, tc.account)
			if dead != tc.dead || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Errorf("dead %v, err %v; want %v, %v", dead, err, tc.dead, tc.err)
			}
			if !slices.Equal(k.asked, tc.asked) {
				t.Errorf("asked %v, want %v", k.asked, tc.asked)
			}
		})
	}
}
