package cfapitest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/cfmint/cfmint/internal/cfgroups"
)

// Scopes of permission groups, as the permission_groups endpoints write them.
const (
	scopeAccount = "com.cloudflare.api.account"
	scopeZone    = "com.cloudflare.api.account.zone"
	scopeUser    = "com.cloudflare.api.user"
	scopeBucket  = "com.cloudflare.edge.r2.bucket"
)

// permissionGroupsJSON is the real list GET /user/tokens/permission_groups
// returned in January 2026, the binary's one copy (internal/cfgroups), so
// that neither tests nor the demo read anything outside the binary at run time.
var permissionGroupsJSON = cfgroups.JSON

// permissionGroup is one seed group. Every seed group has exactly one scope,
// but the list form is kept because that is what the API answers.
type permissionGroup struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// scope is the group's only scope; see loadGroups for why one is enough.
func (g *permissionGroup) scope() string { return g.Scopes[0] }

// userOnly reports whether the group can only be granted on a user, which
// rules it out for account-owned tokens.
func (g *permissionGroup) userOnly() bool {
	for _, sc := range g.Scopes {
		if sc != scopeUser {
			return false
		}
	}
	return true
}

// groupCatalog indexes the seed by id and by (name, scope): names alone are
// not unique ("Logs Write" exists at account and zone scope).
type groupCatalog struct {
	list        []*permissionGroup
	byID        map[string]*permissionGroup
	byNameScope map[groupKey]*permissionGroup
}

// groupKey names a group the way the endpoint table and seeded tokens do.
type groupKey struct {
	Name, Scope string
}

// catalog parses the embedded seed once; it never changes afterwards, so
// servers share it without locking.
var catalog = sync.OnceValue(func() *groupCatalog {
	c, err := loadGroups(permissionGroupsJSON)
	if err != nil {
		// The seed is compiled in: a broken seed is a programming error that
		// every test would hit at once.
		panic(err)
	}
	return c
})

func loadGroups(data []byte) (*groupCatalog, error) {
	var list []*permissionGroup
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("failed to parse permission groups: %w", err)
	}
	c := &groupCatalog{
		list:        list,
		byID:        make(map[string]*permissionGroup, len(list)),
		byNameScope: make(map[groupKey]*permissionGroup, len(list)),
	}
	for _, g := range list {
		// Scope matching below assumes one scope per group, which holds for
		// every group Cloudflare lists today; fail loudly if that changes.
		if len(g.Scopes) != 1 {
			return nil, fmt.Errorf("failed to load permission group %q: want one scope, got %d", g.Name, len(g.Scopes))
		}
		if _, dup := c.byID[g.ID]; dup {
			return nil, fmt.Errorf("failed to load permission group %q: duplicate id %s", g.Name, g.ID)
		}
		c.byID[g.ID] = g
		c.byNameScope[groupKey{g.Name, g.scope()}] = g
	}
	return c, nil
}

// implied returns the groups a granted group stands for: itself and, for a
// "... Write" group, its "... Read" twin of the same scope. That is how the
// dashboard presents them ("Edit" includes "Read"), and what lets a token
// with DNS Write list records.
func (c *groupCatalog) implied(g *permissionGroup) []*permissionGroup {
	out := []*permissionGroup{g}
	if base, ok := strings.CutSuffix(g.Name, " Write"); ok {
		if r, ok := c.byNameScope[groupKey{base + " Read", g.scope()}]; ok {
			out = append(out, r)
		}
	}
	return out
}
