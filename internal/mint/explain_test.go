package mint

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/policy"
)

func apiErr(status int, code int64, msg string) *cftoken.APIError {
	return &cftoken.APIError{Op: "x", Status: status, Details: []cftoken.Detail{{Code: code, Message: msg}}}
}

var (
	invalidToken  = apiErr(401, 1000, "Invalid API Token")
	invalidAccess = apiErr(403, 9109, "Invalid access token")
	unauthorized  = apiErr(403, 9109, "Unauthorized to access requested resource")
	noUserAuth    = apiErr(403, 9109, "Valid user-level authentication not found")
	location      = apiErr(403, 9109, "Cannot use the access token from location: 192.0.2.7")
)

// TestExplainBootstrap covers each combination of answers Cloudflare gives about a bootstrap
// token, as the reference's table lists them.
func TestExplainBootstrap(t *testing.T) {
	t.Parallel()
	account := Request{Owner: cftoken.OwnerAccount, AccountID: acct}
	user := Request{Owner: cftoken.OwnerUser, AccountID: acct}
	userNoAcct := Request{Owner: cftoken.OwnerUser}
	for _, tc := range []struct {
		name   string
		r      Request
		b      bootstrapAnswers
		want   []string
		reject []string
	}{
		{"dead account bootstrap", account, bootstrapAnswers{groups: invalidAccess, verify: invalidToken, other: invalidToken, otherAsked: true},
			[]string{DeadBootstrap}, []string{"token-owner"}},
		{"dead user bootstrap", user, bootstrapAnswers{groups: invalidAccess, verify: invalidToken, other: invalidToken, otherAsked: true},
			[]string{DeadBootstrap}, []string{"token-owner"}},
		{"dead user bootstrap, no account id to ask", userNoAcct, bootstrapAnswers{groups: invalidAccess, verify: invalidToken},
			[]string{DeadBootstrap}, []string{"token-owner"}},
		{"user token as account bootstrap", account, bootstrapAnswers{groups: unauthorized, verify: invalidToken, otherAsked: true},
			[]string{"not an account-owned token of account " + acct, "it is a user token", "token-owner: user"}, []string{"not valid"}},
		{"account token as user bootstrap", user, bootstrapAnswers{groups: noUserAuth, verify: invalidToken, otherAsked: true},
			[]string{"not a user token", "account-owned, of account " + acct, "token-owner: account"}, []string{"not valid"}},
		{"another account's token", account, bootstrapAnswers{groups: unauthorized, verify: invalidToken, other: invalidToken, otherAsked: true},
			[]string{"not an account-owned token of account " + acct, "another account", "check account-id"}, []string{"not valid", "token-owner"}},
		{"another account's token as user bootstrap", user, bootstrapAnswers{groups: noUserAuth, verify: invalidToken, other: invalidToken, otherAsked: true},
			[]string{"not a user token", "looks account-owned"}, []string{"not valid"}},
		{"bootstrap refused by its own IP filter", account, bootstrapAnswers{groups: location},
			[]string{"its own IP filter does not allow this runner"}, nil},
		{"bootstrap without Account API Tokens Write", account, bootstrapAnswers{groups: unauthorized},
			[]string{"may not manage tokens of account " + acct, "Account API Tokens Write"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := explainBootstrap(tc.b, tc.r)
			var fe *field.Error
			if !errors.As(err, &fe) || fe.Name != "bootstrap-token" {
				t.Fatalf("err = %v, want a bootstrap-token field error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
			for _, r := range tc.reject {
				if strings.Contains(err.Error(), r) {
					t.Errorf("%v\nsays %q", err, r)
				}
			}
		})
	}
	if err := explainBootstrap(bootstrapAnswers{}, account); err != nil {
		t.Errorf("all answers fine: %v", err)
	}
}

// TestPlanAsksTheOtherVerifyOnlyOn1000: the second verify is a round trip on the failure path,
// never on a mint that works.
func TestPlanAsksTheOtherVerifyOnlyOn1000(t *testing.T) {
	t.Parallel()
	groups := []policy.Group{{ID: "g1", Name: "Workers Scripts Write", Scopes: []string{"com.cloudflare.api.account"}}}
	for _, tc := range []struct {
		name     string
		verify   []error
		verifies int
	}{
		{"valid bootstrap", []error{nil}, 1},
		{"verify 1000", []error{invalidToken, invalidToken}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := 0
			f := &fakeTokens{t: t,
				groups: func() ([]policy.Group, error) { return groups, nil },
				verify: func(string) (string, error) {
					n++
					if n > len(tc.verify) {
						t.Errorf("verify %d unplanned", n)
						return "", invalidToken
					}
					return "active", tc.verify[n-1]
				},
			}
			e := &Engine{Tokens: f, Once: f, UI: &quietUI{}}
			_, _ = e.Plan(context.Background(), Request{Owner: cftoken.OwnerAccount, AccountID: acct, Preset: "workers-deploy", TTL: 60e9})
			if n != tc.verifies {
				t.Errorf("%d verifies, want %d", n, tc.verifies)
			}
		})
	}
}

// TestExplainCreate9109 names both causes of a refused create, and what was asked for.
func TestExplainCreate9109(t *testing.T) {
	t.Parallel()
	p := plan()
	p.Zones = []policy.Zone{{ID: "z1", Name: "example.com"}}
	p.Buckets = []policy.Bucket{{Name: "assets"}, {Jurisdiction: "eu", Name: "logs"}}
	err := explainCreate(unauthorized, p)
	var fe *field.Error
	if !errors.As(err, &fe) || fe.Name != "r2-buckets" {
		t.Errorf("err = %v, want it to name r2-buckets", err)
	}
	for _, w := range []string{"9109", "lacks Account API Tokens Write for account " + acct, "does not exist or is not one its owner may delegate", "account " + acct, "zones example.com", "assets, eu:logs"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v\nlacks %q", err, w)
		}
	}
	p.Buckets = nil
	if err := explainCreate(unauthorized, p); !errors.As(err, &fe) || fe.Name != "zones" {
		t.Errorf("without buckets: %v, want it to name zones", err)
	}
	p.Zones = nil
	p.Owner = cftoken.OwnerUser
	err = explainCreate(unauthorized, p)
	if errors.As(err, &fe) || !strings.Contains(err.Error(), "lacks API Tokens Write") {
		t.Errorf("user owner, account only: %v", err)
	}
}
