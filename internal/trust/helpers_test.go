package trust

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cfmint/cfmint/internal/policy"
)

var (
	groupsOnce sync.Once
	groupsList []policy.Group
	groupsErr  error
)

// realGroups are Cloudflare's permission groups as internal/cfapitest is seeded with them.
func realGroups(t testing.TB) []policy.Group {
	t.Helper()
	groupsOnce.Do(func() {
		var b []byte
		b, groupsErr = os.ReadFile("../cfgroups/permission-groups.json")
		if groupsErr != nil {
			return
		}
		var raw []struct {
			ID     string   `json:"id"`
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}
		if groupsErr = json.Unmarshal(b, &raw); groupsErr != nil {
			return
		}
		for _, g := range raw {
			groupsList = append(groupsList, policy.Group{ID: g.ID, Name: g.Name, Scopes: g.Scopes})
		}
	})
	if groupsErr != nil {
		t.Fatal(groupsErr)
	}
	if len(groupsList) < 100 {
		t.Fatalf("only %d permission groups read", len(groupsList))
	}
	return slices.Clone(groupsList)
}

// groupID finds a group's id by name and scope, so that tests compare ids without copying them.
func groupID(t testing.TB, name, scope string) string {
	t.Helper()
	for _, g := range realGroups(t) {
		if g.Name == name && g.Has(scope) {
			return g.ID
		}
	}
	t.Fatalf("no group %q at %s", name, scope)
	return ""
}

const (
	acct   = "023e105f4ecef8ad9ca31a8372d0c353"
	github = "https://token.actions.githubusercontent.com"
)

// baseRule is a minimal valid rule; ruleYAML edits it one key at a time.
var baseRule = []string{
	"name: shop-deploy",
	"issuer: " + github,
	`claims: {repository_id: "690011"}`,
	"account_id: " + acct,
	"allow: {presets: [workers-deploy]}",
}

// ruleYAML is a policy with one rule: baseRule with each edit applied. An edit "key: value"
// replaces the key's line (or adds it); "-key" removes it. Lines after the first of a multi-line
// edit are indented under the rule.
func ruleYAML(edits ...string) string {
	return "audience: https://cfmint.example.com\nrules:\n" + ruleItem(edits...)
}

func ruleItem(edits ...string) string {
	lines := slices.Clone(baseRule)
	for _, e := range edits {
		del := strings.HasPrefix(e, "-")
		key, _, _ := strings.Cut(strings.TrimPrefix(e, "-"), ":")
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+":") })
		switch {
		case del && i >= 0:
			lines = slices.Delete(lines, i, i+1)
		case i >= 0:
			lines[i] = e
		case !del:
			lines = append(lines, e)
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if i == 0 {
			b.WriteString("  - ")
		} else {
			b.WriteString("    ")
		}
		b.WriteString(strings.ReplaceAll(l, "\n", "\n    "))
		b.WriteString("\n")
	}
	return b.String()
}

func mustParse(t testing.TB, yml string) *Policy {
	t.Helper()
	p, err := Parse([]byte(yml))
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", yml, err)
	}
	return p
}

// lines splits a joined error into its problems.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}
