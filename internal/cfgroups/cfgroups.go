// Package cfgroups is a dated snapshot of Cloudflare's permission groups, compiled into the
// binary: `cfmint policy` resolves permission names against it when it has no bootstrap token
// to ask Cloudflare with, and internal/cfapitest serves it as the fake's list.
package cfgroups

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/cfmint/cfmint/internal/policy"
)

// Date is when Cloudflare answered GET /user/tokens/permission_groups with JSON.
const Date = "2026-01"

// JSON is the list as Cloudflare answered it: objects with id, name and scopes.
//
//go:embed permission-groups.json
var JSON []byte

var all = sync.OnceValue(func() []policy.Group {
	var raw []struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal(JSON, &raw); err != nil {
		// The list is compiled in: a broken one is a programming error every test hits.
		panic(fmt.Sprintf("cfgroups: %v", err))
	}
	out := make([]policy.Group, len(raw))
	for i, g := range raw {
		out[i] = policy.Group{ID: g.ID, Name: g.Name, Scopes: g.Scopes}
	}
	return out
})

// Groups is the list a token owner sees: a user's holds every group, an account's leaves out
// the groups that apply to a user only, as Cloudflare's account endpoint does. The slice is the
// caller's to keep.
func Groups(user bool) []policy.Group {
	var out []policy.Group
	for _, g := range all() {
		if user || !userOnly(g) {
			out = append(out, g)
		}
	}
	return out
}

func userOnly(g policy.Group) bool {
	for _, s := range g.Scopes {
		if s != policy.ScopeUser {
			return false
		}
	}
	return len(g.Scopes) > 0
}
