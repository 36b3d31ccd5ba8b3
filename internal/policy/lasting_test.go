package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/runner"
)

// TestLastingGroupsExist checks every entry against Cloudflare's list: a misspelt name would
// silently let its group through.
func TestLastingGroupsExist(t *testing.T) {
	t.Parallel()
	all := groups(t)
	seen := map[string]bool{}
	for _, l := range LastingGroups {
		key := l.Name + "@" + l.Scope
		if seen[key] {
			t.Errorf("%s is listed twice", key)
		}
		seen[key] = true
		found := false
		for _, g := range all {
			if g.Name == l.Name && g.Has(l.Scope) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q at scope %s is not a permission group in permission-groups.json", l.Name, l.Scope)
		}
		if l.Scope == ScopeUser || tokenMinting[strings.ToLower(l.Name)] {
			t.Errorf("%q: user-scope and token-creating groups are refused outright, not listed", l.Name)
		}
		if !strings.HasPrefix(l.Reason, "can ") || strings.HasSuffix(l.Reason, ".") {
			t.Errorf("%q: the reason %q should read as a clause starting \"can\"", l.Name, l.Reason)
		}
	}
}

func TestBuildLastingAccess(t *testing.T) {
	t.Parallel()
	all := groups(t)
	zones := []Zone{{ID: "z1", Name: "example.com"}}
	cases := []struct {
		lines   []string
		zones   []Zone
		allowed bool
		err     string   // phrase of the error, or ""
		lasting []string // LastingAccess of the built policies
	}{
		{lines: []string{"Account Settings Write"}, err: `input "allow-lasting-access": is false, but "Account Settings Write" can invite members to the account with any role`},
		{lines: []string{"Account / Account Settings / Edit"}, err: `"Account Settings Write" can invite members`},
		{lines: []string{"access: service tokens write"}, err: `"Access: Service Tokens Write" can create Access service tokens`},
		{lines: []string{"Cloudflare Tunnel Write"}, err: "read any tunnel's token"},
		{lines: []string{"Access: Apps and Policies Write"}, zones: zones, err: "applications and policies of the zone"},
		{lines: []string{"Workers Scripts Write", "SCIM Provisioning"}, err: `"SCIM Provisioning" can add account members`},
		{lines: []string{"Account Settings Write"}, allowed: true, lasting: []string{"Account Settings Write"}},
		{lines: []string{"Workers Scripts Write, SSO Connector Write", "SSL and Certificates Write"}, zones: zones, allowed: true, lasting: []string{"SSO Connector Write", "SSL and Certificates Write"}},
		{lines: []string{"Account Settings Read", "Cloudflare Tunnel Read", "Workers Scripts Write"}},
		// Token-creating groups stay refused, allowed or not.
		{lines: []string{"Account API Tokens Write"}, allowed: true, err: "create tokens of its own"},
	}
	for _, tc := range cases {
		w := Wanted{Lines: tc.lines, AccountID: acct, Zones: tc.zones, AllowLastingAccess: tc.allowed, Owner: "account"}
		ps, err := Build(w, all)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Build(%q, allowed %v) error = %v, want %q", tc.lines, tc.allowed, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Build(%q, allowed %v): %v", tc.lines, tc.allowed, err)
			continue
		}
		var got []string
		for _, l := range LastingAccess(ps) {
			got = append(got, l.Name)
		}
		if !reflect.DeepEqual(got, tc.lasting) {
			t.Errorf("LastingAccess(Build(%q)) = %q, want %q", tc.lines, got, tc.lasting)
		}
	}
}

// TestBuildLastingEveryGroup refuses every listed group without the input, and grants each with it.
func TestBuildLastingEveryGroup(t *testing.T) {
	t.Parallel()
	all := groups(t)
	for _, l := range LastingGroups {
		line := l.Name
		if !strings.Contains(l.Name, ",") { // the dropdown form cannot hold a name with commas
			line = dropdown(Group{Name: l.Name, Scopes: []string{l.Scope}})
		}
		w := Wanted{Lines: []string{line}, AccountID: acct, Owner: "account"}
		if l.Scope == ScopeZone {
			w.Zones = []Zone{{ID: "z1", Name: "example.com"}}
		}
		if _, err := Build(w, all); err == nil || !strings.Contains(err.Error(), l.Reason) {
			t.Errorf("%s at %s: error %v does not give the reason", l.Name, l.Scope, err)
		}
		w.AllowLastingAccess = true
		ps, err := Build(w, all)
		if err != nil {
			t.Errorf("%s at %s with allow-lasting-access: %v", l.Name, l.Scope, err)
			continue
		}
		if got := LastingAccess(ps); len(got) != 1 || got[0] != l {
			t.Errorf("%s at %s: LastingAccess = %+v", l.Name, l.Scope, got)
		}
	}
}

// TestErrorsPrintSafely: a permission line is free text, and Resolve quotes it back.
func TestErrorsPrintSafely(t *testing.T) {
	t.Parallel()
	// The error is checked bare, as well as after a prefix: a "::" command counts only at the
	// start of a line, and a value after a line break, or at the error's start, could be one.
	for _, line := range []string{"##[set-output name=r2-endpoint]https://evil.example", "::add-mask::x", "Zone / ##[debug]x / Edit", "DNS Write::", "DNS Write\n::add-mask::x", "x\r::stop-commands::t"} {
		_, err := Build(Wanted{Lines: []string{line}, AccountID: acct, Owner: "account"}, groups(t))
		if err == nil {
			t.Fatalf("%q: no error", line)
		}
		for _, text := range []string{err.Error(), "Error: " + err.Error()} {
			if cmd, ok := runner.FindCommand(text); ok {
				t.Errorf("%q: error %q reads as ::%s::", line, err, cmd)
			}
		}
	}
}

// TestLastingForIgnoresCase: the lookup is the second layer behind Cloudflare's own names, which
// TestLastingGroupsExist checks against the list; it must hold alone, so a group Cloudflare
// renames in case only (or a list fetched in another form) still counts as lasting.
func TestLastingForIgnoresCase(t *testing.T) {
	t.Parallel()
	for _, l := range LastingGroups {
		for _, name := range []string{strings.ToLower(l.Name), strings.ToUpper(l.Name)} {
			got, ok := LastingFor(Group{ID: "x", Name: name, Scopes: []string{l.Scope}})
			if !ok || got.Reason == "" {
				t.Errorf("LastingFor(%q at %s) = %v; want the entry of %q", name, l.Scope, ok, l.Name)
			}
		}
	}
	if _, ok := LastingFor(Group{Name: "DNS Write", Scopes: []string{ScopeZone}}); ok {
		t.Error("DNS Write counts as lasting")
	}
}
