package policy

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/field"
)

// groups loads the real permission groups the built-in API is seeded with.
func groups(t testing.TB) []Group {
	t.Helper()
	b, err := os.ReadFile("../cfgroups/permission-groups.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw []struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := make([]Group, len(raw))
	for i, g := range raw {
		out[i] = Group{ID: g.ID, Name: g.Name, Scopes: g.Scopes}
	}
	return out
}

const acct = "0123456789abcdef0123456789abcdef"

func TestBuild(t *testing.T) {
	t.Parallel()
	all := groups(t)
	cases := []struct {
		name string
		w    Wanted
		want []Policy
	}{
		{
			name: "account group",
			w:    Wanted{Lines: []string{"Workers Scripts Write"}, AccountID: acct},
			want: []Policy{{Groups: []Group{{ID: "e086da7e2179491d91ee5f35b3ca210a", Name: "Workers Scripts Write", Scopes: []string{ScopeAccount}}}, Resources: map[string]any{AccountKey(acct): "*"}}},
		},
		{
			name: "zone group on two zones, case-insensitive",
			w:    Wanted{Lines: []string{"dns write"}, AccountID: acct, Zones: []Zone{{ID: "z1", Name: "a.com"}, {ID: "z2", Name: "b.com"}}},
			want: []Policy{{Groups: []Group{{ID: "4755a26eedb94da69e1066d98aa820be", Name: "DNS Write", Scopes: []string{ScopeZone}}}, Resources: map[string]any{ZoneKey("z1"): "*", ZoneKey("z2"): "*"}}},
		},
		{
			name: "all zones nested, separate from the account policy",
			w:    Wanted{Lines: []string{"Workers Scripts Write, Zone Read"}, AccountID: acct, AllZones: true},
			want: []Policy{
				{Groups: []Group{{ID: "e086da7e2179491d91ee5f35b3ca210a", Name: "Workers Scripts Write", Scopes: []string{ScopeAccount}}}, Resources: map[string]any{AccountKey(acct): "*"}},
				{Groups: []Group{{ID: "c8fed203ed3043cba015a93ad1616f1f", Name: "Zone Read", Scopes: []string{ScopeZone}}}, Resources: map[string]any{AccountKey(acct): map[string]any{ScopeZone + ".*": "*"}}},
			},
		},
		{
			name: "duplicates collapse",
			w:    Wanted{Lines: []string{"Workers Scripts Write", "WORKERS SCRIPTS WRITE"}, AccountID: acct},
			want: []Policy{{Groups: []Group{{ID: "e086da7e2179491d91ee5f35b3ca210a", Name: "Workers Scripts Write", Scopes: []string{ScopeAccount}}}, Resources: map[string]any{AccountKey(acct): "*"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Build(tc.w, all)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Build =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestResolveNamesWithCommasAndColons(t *testing.T) {
	t.Parallel()
	got, err := Resolve([]string{"Access: Organizations, Identity Providers, and Groups Write, DNS Read", "Access: Apps Read"}, groups(t), Hints{ZonesGiven: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.Name)
	}
	want := "Access: Organizations, Identity Providers, and Groups Write|DNS Read|Access: Apps Read"
	if strings.Join(names, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(names, "|"), want)
	}
}

func TestResolveTwoScopes(t *testing.T) {
	t.Parallel()
	for _, zones := range []bool{false, true} {
		if !zones {
			continue // covered by TestResolveForms: ambiguous without zones
		}
		got, err := Resolve([]string{"Logs Write"}, groups(t), Hints{ZonesGiven: zones})
		if err != nil {
			t.Fatal(err)
		}
		want := ScopeAccount
		if zones {
			want = ScopeZone
		}
		if len(got) != 1 || !got[0].Has(want) {
			t.Errorf("zones=%v: got %+v, want scope %s", zones, got, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	all := groups(t)
	cases := []struct {
		name string
		w    Wanted
		want []string
	}{
		{"unknown with suggestion", Wanted{Lines: []string{"DNS Wirte"}, AccountID: acct}, []string{`"DNS Wirte" is not a permission group`, `did you mean "DNS Write"`}},
		{"unknown without suggestion", Wanted{Lines: []string{"qqqqqqqqqqqqqqqqqqqqqqqq"}, AccountID: acct}, []string{"cfmint permissions"}},
		{"zone group without zones", Wanted{Lines: []string{"DNS Write"}, AccountID: acct}, []string{`input "zones": is empty`}},
		{"account group without account", Wanted{Lines: []string{"Workers Scripts Write"}}, []string{`input "account-id": is empty`}},
		{"zones without zone group", Wanted{Lines: []string{"Workers Scripts Write"}, AccountID: acct, Zones: []Zone{{ID: "z"}}}, []string{"no permission applies to zones"}},
		{"user group", Wanted{Lines: []string{"Memberships Read"}, AccountID: acct}, []string{"applies to a user"}},
		{"token minting, account", Wanted{Lines: []string{"Account API Tokens Write"}, AccountID: acct}, []string{"create tokens of its own"}},
		{"token minting, user", Wanted{Lines: []string{"API Tokens Write"}, AccountID: acct}, []string{"create tokens of its own"}},
		{"every problem at once", Wanted{Lines: []string{"Nope Write", "Zonk Read"}, AccountID: acct}, []string{`"Nope Write"`, `"Zonk Read"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Build(tc.w, all)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"dns wirte", "dns write", 2}} {
		if got := distance(tc.a, tc.b); got != tc.d {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

func FuzzResolve(f *testing.F) {
	all := groups(f)
	for _, s := range []string{"DNS Write", "Access: Organizations, Identity Providers, and Groups Write, DNS Read", ",,,", "Logs Write"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got, err := Resolve([]string{line}, all, Hints{Owner: "account"})
		if err != nil {
			if !strings.HasPrefix(err.Error(), `input "permissions"`) {
				t.Fatalf("%q: error %q does not name the input", line, err)
			}
			return
		}
		for _, g := range got {
			if g.ID == "" {
				t.Fatalf("%q: resolved to a group without id", line)
			}
		}
	})
}

// TestResolveForms covers every way users write a permission, and the failures.
func TestResolveForms(t *testing.T) {
	t.Parallel()
	all := groups(t)
	cases := []struct {
		line string
		h    Hints
		want string // "name@scope", or "error: <phrase>"
	}{
		{"DNS Write", Hints{}, "DNS Write@zone"},
		{"dns edit", Hints{}, "DNS Write@zone"},
		{"Zone / DNS / Edit", Hints{}, "DNS Write@zone"},
		{"zone/dns/read", Hints{}, "DNS Read@zone"},
		{"Account | Workers R2 Storage | Edit", Hints{}, "Workers R2 Storage Write@account"},
		{"Zone / Cache Purge / Purge", Hints{}, "Cache Purge@zone"},
		{"Zone / Zone / Read", Hints{}, "Zone Read@zone"},
		{"Access: Apps and Policies Write", Hints{ZonesGiven: true}, "Access: Apps and Policies Write@zone"},
		{"Account / Access: Apps and Policies / Edit", Hints{ZonesGiven: true}, "Access: Apps and Policies Write@account"},
		{"Logs Write", Hints{ZonesGiven: true}, "Logs Write@zone"},
		{"Account / Logs / Edit", Hints{ZonesGiven: true}, "Logs Write@account"},
		{"Zone / Logs / Edit", Hints{}, "Logs Write@zone"},
		{"Logs Write", Hints{}, `error: "Account / Logs / Edit" or "Zone / Logs / Edit"`},
		{"Account / DNS / Edit", Hints{}, "error: not at account scope"},
		{"Team / DNS / Edit", Hints{}, "error: is not a scope"},
		{"Zone / DNZ / Edit", Hints{}, `error: did you mean "DNS Write"`},
		{"API Tokens Write", Hints{Owner: "account"}, "error: user-level permission"},
		{"Workers R2 Storage Bucket Item Write", Hints{}, "Workers R2 Storage Bucket Item Write@R2 bucket"},
	}
	var acctGroups []Group // what the account endpoint lists: no user-only groups
	for _, g := range all {
		if !(len(g.Scopes) == 1 && g.Scopes[0] == ScopeUser) {
			acctGroups = append(acctGroups, g)
		}
	}
	for _, tc := range cases {
		avail := all
		if tc.h.Owner == "account" {
			avail = acctGroups
		}
		got, err := Resolve([]string{tc.line}, avail, tc.h)
		if strings.HasPrefix(tc.want, "error: ") {
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "error: ")) {
				t.Errorf("Resolve(%q) error = %v, want %q", tc.line, err, tc.want)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0].Name+"@"+scopeNames(got) != tc.want {
			t.Errorf("Resolve(%q) = %+v, %v; want %s", tc.line, got, err, tc.want)
		}
	}
}

func TestBuildBuckets(t *testing.T) {
	t.Parallel()
	got, err := Build(Wanted{Lines: ExpandPreset("r2-upload", true), AccountID: acct, Buckets: []Bucket{{"default", "assets"}, {"eu", "logs"}}}, groups(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{ScopeBucket + "." + acct + "_default_assets": "*", ScopeBucket + "." + acct + "_eu_logs": "*"}
	if len(got) != 1 || got[0].Groups[0].Name != "Workers R2 Storage Bucket Item Write" || !reflect.DeepEqual(got[0].Resources, want) {
		t.Errorf("Build = %+v", got)
	}
	if g := ExpandPreset("r2-upload", false); len(g) != 1 || g[0] != "Workers R2 Storage Write" {
		t.Errorf("r2-upload without buckets = %v", g)
	}
	if _, err := Build(Wanted{Lines: []string{"Workers R2 Storage Bucket Item Read"}, AccountID: acct}, groups(t)); err == nil || !strings.Contains(err.Error(), `input "r2-buckets": is empty`) {
		t.Errorf("bucket group without buckets: %v", err)
	}
	if _, err := Build(Wanted{Lines: []string{"DNS Read"}, AccountID: acct, Zones: []Zone{{ID: "z"}}, Buckets: []Bucket{{"default", "assets"}}}, groups(t)); err == nil || !strings.Contains(err.Error(), "no permission applies to buckets") {
		t.Errorf("buckets without bucket group: %v", err)
	}
}

// TestPresetsResolve checks every preset names real groups.
func TestPresetsResolve(t *testing.T) {
	t.Parallel()
	for _, name := range PresetNames() {
		for _, buckets := range []bool{false, true} {
			if _, err := Resolve(ExpandPreset(name, buckets), groups(t), Hints{ZonesGiven: true, Owner: "account"}); err != nil {
				t.Errorf("preset %s (buckets %v): %v", name, buckets, err)
			}
		}
	}
}

// TestBuildErrorInputs checks the exact inputs Build blames, one entry per problem: a check that
// fires when it should not, or stays quiet when it should fire, changes the list.
func TestBuildErrorInputs(t *testing.T) {
	t.Parallel()
	all := groups(t)
	cases := []struct {
		name string
		w    Wanted
		want []string // nil: Build succeeds
	}{
		{"zone group without account", Wanted{Lines: []string{"DNS Write"}, Zones: []Zone{{ID: "z"}}}, nil},
		{"every zone without account", Wanted{Lines: []string{"DNS Write"}, AllZones: true}, []string{"account-id"}},
		{"every zone without account or zone group", Wanted{Lines: []string{"Workers Scripts Write"}, AllZones: true}, []string{"account-id", "zones"}},
		{"bucket group without account", Wanted{Lines: []string{"Workers R2 Storage Bucket Item Write"}, Buckets: []Bucket{{Name: "assets"}}}, []string{"account-id"}},
		{"bucket group without buckets or account", Wanted{Lines: []string{"Workers R2 Storage Bucket Item Write"}}, []string{"r2-buckets", "account-id"}},
		// A name at two scopes is ambiguous without zones, not taken at zone scope.
		{"two scopes without zones", Wanted{Lines: []string{"Logs Write"}, AccountID: acct}, []string{"permissions"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Build(tc.w, all)
			var got []string
			if err != nil {
				errs := []error{err}
				if j, ok := err.(interface{ Unwrap() []error }); ok {
					errs = j.Unwrap()
				}
				for _, e := range errs {
					var fe *field.Error
					if !errors.As(e, &fe) {
						t.Fatalf("error %q names no input", e)
					}
					got = append(got, fe.Name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Build blames %q, want %q; error: %v", got, tc.want, err)
			}
		})
	}
}

// TestExpandPreset: named buckets pick a preset's bucket groups only when it has them; a preset
// without any keeps its groups.
func TestExpandPreset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		buckets bool
		want    []string
	}{
		{"r2-upload", true, []string{"Workers R2 Storage Bucket Item Write"}},
		{"r2-upload", false, []string{"Workers R2 Storage Write"}},
		{"dns-edit", true, []string{"DNS Write"}},
		{"workers-deploy-routes", true, []string{"Workers Scripts Write", "Workers Routes Write", "Zone Read"}},
	} {
		if got := ExpandPreset(tc.name, tc.buckets); !slices.Equal(got, tc.want) {
			t.Errorf("ExpandPreset(%q, %v) = %q, want %q", tc.name, tc.buckets, got, tc.want)
		}
	}
}

// TestDropdown: a group is written as the dashboard's three dropdowns, the last word being the
// level; a name with no word before its last space has no level to split off.
func TestDropdown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		g    Group
		want string
	}{
		{Group{Name: "DNS Write", Scopes: []string{ScopeZone}}, "Zone / DNS / Edit"},
		{Group{Name: "Logs Read", Scopes: []string{ScopeAccount, ScopeZone}}, "Zone / Logs / Read"},
		{Group{Name: "Memberships Read", Scopes: []string{ScopeUser}}, "User / Memberships / Read"},
		{Group{Name: "Workers Scripts Write", Scopes: []string{ScopeAccount}}, "Account / Workers Scripts / Edit"},
		{Group{Name: "Admin", Scopes: []string{ScopeAccount}}, "Account / Admin / "},
		{Group{Name: " Write", Scopes: []string{ScopeAccount}}, "Account /  Write / "},
	} {
		if got := dropdown(tc.g); got != tc.want {
			t.Errorf("dropdown(%q) = %q, want %q", tc.g.Name, got, tc.want)
		}
	}
}

// TestSuggest: names at most half the typed name's length plus one edits away are suggested,
// nearest first and then by name, at most n of them, each name once; farther ones are not.
func TestSuggest(t *testing.T) {
	t.Parallel()
	gs := []Group{
		{Name: "wxyz"},                        // 4 edits from "abcd": too far
		{Name: "axyz"},                        // 3: the farthest suggested (4/2+1)
		{Name: "abcx", Scopes: []string{"a"}}, // 1
		{Name: "abcx", Scopes: []string{"b"}}, // the same name at another scope
		{Name: "abxy"},                        // 2
		{Name: "abcy"},                        // 1, after abcx by name
	}
	if got, want := Suggest("ABCD", gs, 10), []string{"abcx", "abcy", "abxy", "axyz"}; !slices.Equal(got, want) {
		t.Errorf("Suggest = %q, want %q", got, want)
	}
	if got, want := Suggest("abcd", gs, 2), []string{"abcx", "abcy"}; !slices.Equal(got, want) {
		t.Errorf("Suggest(n=2) = %q, want %q", got, want)
	}
}

// TestIndexCache: the name index is remembered per group list, so a list with other groups, or a
// shorter list over the same array, is indexed afresh. Not parallel: other tests' lists could
// push an entry out of the cache between the calls.
func TestIndexCache(t *testing.T) {
	first := []Group{{ID: "1", Name: "DNS Write", Scopes: []string{ScopeZone}}, {ID: "2", Name: "Zone Read", Scopes: []string{ScopeZone}}}
	other := []Group{{ID: "3", Name: "DNS Write", Scopes: []string{ScopeZone}}, {ID: "4", Name: "Zone Read", Scopes: []string{ScopeZone}}}
	h := Hints{ZonesGiven: true, Owner: "account"}
	for _, tc := range []struct {
		list []Group
		want string
	}{{first, "1"}, {other, "3"}, {first, "1"}} {
		got, err := Resolve([]string{"DNS Write"}, tc.list, h)
		if err != nil || len(got) != 1 || got[0].ID != tc.want {
			t.Fatalf("Resolve(DNS Write) in the list of %s = %+v, %v; want group %s", tc.want, got, err, tc.want)
		}
	}
	if _, err := Resolve([]string{"Zone Read"}, first[:1], h); err == nil {
		t.Error("Resolve(Zone Read) in a list holding only DNS Write found it: the longer list's index answered")
	}
}
