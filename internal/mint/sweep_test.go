package mint

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// TestSweep: a sweep takes only the repository's own tokens, and decides expired and old by
// Cloudflare's status and the Date of its list answer, whatever the local clock says.
func TestSweep(t *testing.T) {
	t.Parallel()
	cf := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	repo := "octo-org/site"
	long := "octo-org/" + strings.Repeat("a", 60)
	name := func(r, rest string) string { return RepoNamePrefix(r) + rest }
	id := func(n int) string { return strings.Repeat(string(rune('0'+n)), 32) }
	tokens := []cftoken.Listed{
		{ID: id(1), Name: name(repo, "live"), Status: "active", IssuedOn: cf.Add(-5 * time.Minute), ExpiresOn: cf.Add(10 * time.Minute)},
		{ID: id(2), Name: name(repo, "said-expired"), Status: "expired", IssuedOn: cf.Add(-time.Hour), ExpiresOn: cf.Add(-time.Minute)},
		{ID: id(3), Name: name(repo, "past-expiry"), Status: "active", IssuedOn: cf.Add(-time.Hour), ExpiresOn: cf.Add(-time.Second)},
		{ID: id(4), Name: name(repo, "old"), Status: "active", IssuedOn: cf.Add(-2 * time.Hour), ExpiresOn: cf.Add(time.Hour)},
		{ID: id(5), Name: name("octo-org/site2", "expired"), Status: "expired"},
		{ID: id(6), Name: name(long+"x", "expired"), Status: "expired"},
		{ID: id(7), Name: "deploy token", Status: "expired"},
		{ID: id(8), Name: name(long, "expired"), Status: "expired"},
	}
	cases := []struct {
		name      string
		date      time.Time // zero: the answer has no Date
		repo      string
		olderThan time.Duration
		want      []string // ids swept
		warn      string
	}{
		{name: "expired only", date: cf, repo: repo, want: []string{id(2), id(3)}},
		{name: "older than 1h", date: cf, repo: repo, olderThan: time.Hour, want: []string{id(2), id(3), id(4)}},
		{name: "a long name's own tokens only", date: cf, repo: long, want: []string{id(8)}},
		{name: "every repository", date: cf, repo: "*", want: []string{id(2), id(3), id(5), id(6), id(8)}},
		{name: "no Date: status alone", repo: repo, olderThan: time.Hour, want: []string{id(2)}, warn: "no Date header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var deleted []string
			f := &fakeTokens{t: t, date: tc.date,
				list:   func() ([]cftoken.Listed, error) { return tokens, nil },
				delete: func(id string) error { deleted = append(deleted, id); return nil },
			}
			ui := &quietUI{}
			// The local clock runs 12 minutes fast: token 1, with 10 minutes left on
			// Cloudflare's clock, is past its expiry by it.
			e := &Engine{Tokens: f, Once: f, UI: ui, Now: func() time.Time { return cf.Add(12 * time.Minute) }}
			swept, err := e.Sweep(context.Background(), SweepOptions{Owner: cftoken.OwnerAccount, AccountID: acct, Repo: tc.repo, OlderThan: tc.olderThan})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range swept {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(deleted, tc.want) {
				t.Errorf("swept %q, deleted %q; want %q", got, deleted, tc.want)
			}
			if tc.warn != "" && !slices.ContainsFunc(ui.warnings, func(w string) bool { return strings.Contains(w, tc.warn) }) {
				t.Errorf("warnings %q lack %q", ui.warnings, tc.warn)
			}
		})
	}
}
