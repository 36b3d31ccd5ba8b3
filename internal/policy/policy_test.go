package policy

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// groups loads the real permission groups the built-in API is seeded with.
func groups(t testing.TB) []Group {
	t.Helper()
	b, err := os.ReadFile("../cfapitest/permission-groups.json")
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
	got, err := Resolve([]string{"Access: Organizations, Identity Providers, and Groups Write, DNS Read", "Access: Apps Read"}, groups(t), true)
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
		got, err := Resolve([]string{"Logs Write"}, groups(t), zones)
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
		{"user group", Wanted{Lines: []string{"API Tokens Write"}, AccountID: acct}, []string{"applies to a user"}},
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
		got, err := Resolve([]string{line}, all, false)
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
