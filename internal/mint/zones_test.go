package mint

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/field"
)

// TestFindZone: a zone name resolves to one zone; without an account it must be the only zone of
// that name the bootstrap token can read, and active.
func TestFindZone(t *testing.T) {
	t.Parallel()
	const other = "99999999999999999999999999999999"
	ours := cftoken.Zone{ID: "11111111111111111111111111111111", Name: "example.com", AccountID: acct, Status: "active"}
	theirs := cftoken.Zone{ID: "22222222222222222222222222222222", Name: "example.com", AccountID: other, Status: "pending"}
	cases := []struct {
		name    string
		found   []cftoken.Zone
		account string
		want    string   // the zone id resolved
		errs    []string // what the error must say
	}{
		{name: "one active zone", found: []cftoken.Zone{ours}, want: ours.ID},
		{name: "one pending zone", found: []cftoken.Zone{theirs}, errs: []string{`"example.com"`, theirs.ID, other, `"pending", not active`, "set account-id", "write the zone id"}},
		{name: "two zones", found: []cftoken.Zone{ours, theirs}, errs: []string{"names 2 zones", ours.ID + " (active, account " + acct + ")", theirs.ID + " (pending, account " + other + ")", "set account-id", "write the zone id"}},
		{name: "two zones, account given", found: []cftoken.Zone{theirs, ours}, account: acct, want: ours.ID},
		{name: "another account's zone", found: []cftoken.Zone{theirs}, account: acct, errs: []string{"belongs to account " + other}},
		{name: "no zone", errs: []string{"was not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeTokens{t: t, zone: func(name string) ([]cftoken.Zone, error) { return tc.found, nil }}
			e := &Engine{Tokens: f, Once: f, UI: &quietUI{}}
			zs, err := e.Zones(context.Background(), []string{"example.com"}, nil, tc.account)
			if tc.want != "" {
				if err != nil || len(zs) != 1 || zs[0].ID != tc.want {
					t.Fatalf("Zones = %+v, %v; want %s", zs, err, tc.want)
				}
				return
			}
			var fe *field.Error
			if !errors.As(err, &fe) || fe.Name != "zones" {
				t.Fatalf("err = %v, want a zones field error", err)
			}
			for _, s := range tc.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v; want it to say %q", err, s)
				}
			}
		})
	}
}
