package mint

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
)

func TestBrokerNamedFor(t *testing.T) {
	t.Parallel()
	run := BrokerRun{Issuer: "a1b2c3", RepositoryID: "690011", Repository: "Acme/Shop", RunID: "77", Attempt: "1"}
	name := BrokerName(run, "n0nce123", "site-deploy")
	long := BrokerName(BrokerRun{Issuer: "a1b2c3", RepositoryID: "690011", Repository: "acme/" + strings.Repeat("s", 90), RunID: "77", Attempt: "1"}, "n0nce123", "site-deploy")
	cases := []struct {
		name, repo string
		want       bool
	}{
		{name, "acme/shop", true}, // case does not count
		{name, "*", true},
		{name, "acme/sho", false},
		{name, "acme/shop2", false},
		{name, "", false},
		{long, "acme/" + strings.Repeat("s", 90), false}, // cut to Cloudflare's limit: only "*"
		{long, "*", true},
		{"cfmint:acme/shop:deploy:1.1:-:-", "acme/shop", false}, // the action's names are NamedFor's
		{"deploy token", "*", false},
		{BrokerNamePrefix, "*", false},
	}
	for _, tc := range cases {
		if got := BrokerNamedFor(tc.name, tc.repo); got != tc.want {
			t.Errorf("BrokerNamedFor(%q, %q) = %v, want %v", tc.name, tc.repo, got, tc.want)
		}
	}
}

// TestSweepBrokerTokens: a sweep by repository takes that repository's broker tokens as well as
// the action's, "*" takes every broker token, and tokens Cloudflare revoked go like expired ones.
func TestSweepBrokerTokens(t *testing.T) {
	t.Parallel()
	cf := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	id := func(n int) string { return strings.Repeat(string(rune('a'+n)), 32) }
	shop := BrokerName(BrokerRun{Issuer: "a1b2c3", RepositoryID: "690011", Repository: "acme/shop", RunID: "77", Attempt: "1"}, "n0nce123", "site-deploy")
	blog := BrokerName(BrokerRun{Issuer: "a1b2c3", RepositoryID: "690012", Repository: "acme/blog", RunID: "78", Attempt: "1"}, "n0nce124", "site-deploy")
	tokens := []cftoken.Listed{
		{ID: id(1), Name: shop, Status: "expired"},
		{ID: id(2), Name: shop, Status: "revoked (exposed)", ExpiresOn: cf.Add(time.Hour)},
		{ID: id(3), Name: shop, Status: "active", ExpiresOn: cf.Add(time.Hour)},
		{ID: id(4), Name: blog, Status: "expired"},
		{ID: id(5), Name: RepoNamePrefix("acme/shop") + "deploy:1.1:-:-", Status: "expired"},
		{ID: id(6), Name: "someone's token", Status: "revoked (exposed)"},
	}
	for _, tc := range []struct {
		repo string
		want []string
	}{
		{"acme/shop", []string{id(1), id(2), id(5)}},
		{"*", []string{id(1), id(2), id(4), id(5)}},
	} {
		f := &fakeTokens{t: t, date: cf,
			list:   func() ([]cftoken.Listed, error) { return tokens, nil },
			delete: func(string) error { return nil },
		}
		e := &Engine{Tokens: f, Once: f, UI: &quietUI{}, Now: func() time.Time { return cf }}
		swept, err := e.Sweep(context.Background(), SweepOptions{Owner: cftoken.OwnerAccount, AccountID: acct, Repo: tc.repo})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range swept {
			got = append(got, s.ID)
			if s.ID == id(2) && s.Reason != "revoked" {
				t.Errorf("the revoked token was swept as %q", s.Reason)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("--repo %s swept %q, want %q", tc.repo, got, tc.want)
		}
	}
}
