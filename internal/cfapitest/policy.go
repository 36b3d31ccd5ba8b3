package cfapitest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Resource key prefixes. The zone prefix starts with the account prefix, so
// it must be tried first.
const (
	prefixAccount = "com.cloudflare.api.account."
	prefixZone    = "com.cloudflare.api.account.zone."
	prefixBucket  = "com.cloudflare.edge.r2.bucket."
	prefixUser    = "com.cloudflare.api.user."
)

// ownerKind says who owns a token.
type ownerKind string

const (
	ownerUser    ownerKind = "user"
	ownerAccount ownerKind = "account"
)

// resKind is the kind of thing a resource key names; each kind pairs with
// one permission group scope.
type resKind int

const (
	kindAccount resKind = iota + 1
	kindZone
	kindBucket
	kindUser
)

func (k resKind) scope() string {
	switch k {
	case kindAccount:
		return scopeAccount
	case kindZone:
		return scopeZone
	case kindBucket:
		return scopeBucket
	default:
		return scopeUser
	}
}

// grant is one thing a policy's resources cover, parsed from a resource key.
type grant struct {
	key     string // the key as written, for messages
	kind    resKind
	account string // kindAccount: the account or "*"; kindZone with zone "*": whose zones ("*": every reachable account)
	zone    string // kindZone: the zone id, or "*"
	bucket  string // kindBucket: <ACCOUNT>_<JURISDICTION>_<NAME>
	user    string // kindUser
}

// target is what a request acts on.
type target struct {
	kind    resKind
	account string // the account, or the account that holds the zone or bucket
	zone    string
	bucket  string
	user    string
}

func accountTarget(id string) target { return target{kind: kindAccount, account: id} }
func userTarget(id string) target    { return target{kind: kindUser, user: id} }
func zoneTarget(z *zone) target {
	return target{kind: kindZone, account: z.AccountID, zone: z.ID}
}

// policyInput is a policy as a create request or a TokenSpec states it.
type policyInput struct {
	effect    string
	groupIDs  []string
	resources map[string]any
}

// policy is a stored policy of a token.
type policy struct {
	id        string
	effect    string
	groups    []*permissionGroup
	resources map[string]any // normalised copy, echoed by the API
	grants    []grant
}

// validationError is a request the API rejects with 400 / 1001. Cloudflare
// is known to answer a policy "id" that way; for the other malformed
// policies (unknown group, bad key, mixed scopes) 1001 and the wording are
// the fake's (unverified).
type validationError string

func (e validationError) Error() string { return string(e) }

func invalidf(format string, args ...any) error {
	return validationError(fmt.Sprintf(format, args...))
}

// undelegableError is a create naming a resource that does not exist or
// that the new token's owner cannot delegate. Cloudflare answers it with
// 403 / 9109 "Unauthorized to access requested resource", the answer to a
// missing permission, and does not say which resource it was; the detail is
// for IssueToken's error only.
type undelegableError string

func (e undelegableError) Error() string { return string(e) }

// buildPolicies validates policies for a new token of the given owner and
// returns them ready to store. It enforces what the dashboard enforces: every
// group exists and may be granted to this kind of owner, every resource
// exists and lies within the owner's reach, and every group's scope matches
// every resource key of its policy.
func (s *Server) buildPolicies(kind ownerKind, owner string, in []policyInput) ([]*policy, error) {
	if len(in) == 0 {
		return nil, invalidf("a token needs at least one policy")
	}
	cat := catalog()
	out := make([]*policy, 0, len(in))
	for i, pi := range in {
		p := &policy{id: newID(), effect: pi.effect}
		if p.effect != "allow" && p.effect != "deny" {
			return nil, invalidf("policies[%d]: effect %q is not allowed; use \"allow\" or \"deny\"", i, pi.effect)
		}
		if len(pi.groupIDs) == 0 {
			return nil, invalidf("policies[%d]: a policy needs at least one permission group", i)
		}
		for _, id := range pi.groupIDs {
			g, ok := cat.byID[id]
			if !ok {
				return nil, invalidf("policies[%d]: permission group %q does not exist", i, id)
			}
			if kind == ownerAccount && g.userOnly() {
				return nil, invalidf("policies[%d]: permission group %q (%s) cannot be granted to an account-owned token", i, g.Name, g.ID)
			}
			if !slices.Contains(p.groups, g) {
				p.groups = append(p.groups, g)
			}
		}
		if len(pi.resources) == 0 {
			return nil, invalidf("policies[%d]: a policy needs at least one resource", i)
		}
		norm, grants, err := parseResources(pi.resources)
		if err != nil {
			return nil, invalidf("policies[%d]: %v", i, err)
		}
		for _, g := range grants {
			if err := s.checkDelegable(kind, owner, g); err != nil {
				return nil, undelegableError(fmt.Sprintf("policies[%d]: %v", i, err))
			}
		}
		for _, grp := range p.groups {
			for _, g := range grants {
				if grp.scope() != g.kind.scope() {
					return nil, invalidf("policies[%d]: permission group %q applies to %s resources, not to %q; put each scope in its own policy",
						i, grp.Name, grp.scope(), g.key)
				}
			}
		}
		p.resources, p.grants = norm, grants
		out = append(out, p)
	}
	return out, nil
}

// parseResources parses a policy's resources into grants and a normalised
// copy ("*" values, nested maps as map[string]any).
func parseResources(res map[string]any) (map[string]any, []grant, error) {
	norm := make(map[string]any, len(res))
	var grants []grant
	// Sorted so that the first error reported is the same on every run.
	for _, key := range slices.Sorted(maps.Keys(res)) {
		val := res[key]
		if nested, ok := asNested(val); ok {
			gs, err := parseNested(key, nested)
			if err != nil {
				return nil, nil, err
			}
			grants = append(grants, gs...)
			inner := make(map[string]any, len(nested))
			for k := range nested {
				inner[k] = "*"
			}
			norm[key] = inner
			continue
		}
		if v, ok := val.(string); !ok || v != "*" {
			return nil, nil, fmt.Errorf("resource %q: the value must be \"*\" or a map of zone keys to \"*\"", key)
		}
		g, err := parseFlatKey(key)
		if err != nil {
			return nil, nil, err
		}
		grants = append(grants, g)
		norm[key] = "*"
	}
	return norm, grants, nil
}

// asNested accepts the nested value form whichever map type carried it.
func asNested(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out, true
	}
	return nil, false
}

func parseFlatKey(key string) (grant, error) {
	switch {
	case strings.HasPrefix(key, prefixZone):
		rest := strings.TrimPrefix(key, prefixZone)
		if rest == "*" {
			return grant{key: key, kind: kindZone, account: "*", zone: "*"}, nil
		}
		if isID(rest) {
			return grant{key: key, kind: kindZone, zone: rest}, nil
		}
	case strings.HasPrefix(key, prefixAccount):
		rest := strings.TrimPrefix(key, prefixAccount)
		if rest == "*" || isID(rest) {
			return grant{key: key, kind: kindAccount, account: rest}, nil
		}
	case strings.HasPrefix(key, prefixBucket):
		rest := strings.TrimPrefix(key, prefixBucket)
		acct, after, ok1 := strings.Cut(rest, "_")
		juris, name, ok2 := strings.Cut(after, "_")
		if ok1 && ok2 && isID(acct) && slices.Contains(jurisdictions, juris) && name != "" {
			return grant{key: key, kind: kindBucket, account: acct, bucket: rest}, nil
		}
	case strings.HasPrefix(key, prefixUser):
		rest := strings.TrimPrefix(key, prefixUser)
		if isID(rest) {
			return grant{key: key, kind: kindUser, user: rest}, nil
		}
	}
	return grant{}, fmt.Errorf("resource key %q is not valid", key)
}

// parseNested parses {"com.cloudflare.api.account.<A>": {"com.cloudflare.api.account.zone.*": "*"}},
// the form for "all zones of one account"; a zone id in place of "*" narrows it.
func parseNested(key string, inner map[string]any) ([]grant, error) {
	acct, ok := strings.CutPrefix(key, prefixAccount)
	if !ok || strings.HasPrefix(key, prefixZone) || !isID(acct) {
		return nil, fmt.Errorf("resource key %q cannot hold nested resources; only an account key can", key)
	}
	if len(inner) == 0 {
		return nil, fmt.Errorf("resource %q: the nested map is empty", key)
	}
	var out []grant
	for _, k := range slices.Sorted(maps.Keys(inner)) {
		if v, ok := inner[k].(string); !ok || v != "*" {
			return nil, fmt.Errorf("resource %q: nested value of %q must be \"*\"", key, k)
		}
		zoneID, ok := strings.CutPrefix(k, prefixZone)
		if !ok || (zoneID != "*" && !isID(zoneID)) {
			return nil, fmt.Errorf("resource %q: nested key %q is not a zone key", key, k)
		}
		out = append(out, grant{key: key, kind: kindZone, account: acct, zone: zoneID})
	}
	return out, nil
}

// errOutside is wrapped by checkDelegable for resources that exist but lie
// outside the owner's reach.
var errOutside = errors.New("outside what this token's owner may delegate")

// checkDelegable checks that a grant names things that exist and that the
// new token's owner reaches: an account-owned token only its own account and
// that account's zones and buckets; a user-owned token the accounts its user
// is a member of, their zones and buckets, and the user itself. A bucket
// must exist too (unverified: whether Cloudflare checks that a bucket
// exists when a token names it is not known; refusing a missing one like a
// missing zone makes a typo in a bucket name fail at create, loudly, rather
// than at the first upload).
func (s *Server) checkDelegable(kind ownerKind, owner string, g grant) error {
	reach := s.reach(kind, owner)
	inReach := func(acct string) error {
		if _, ok := s.accounts[acct]; !ok {
			return fmt.Errorf("resource %q: account %s does not exist", g.key, acct)
		}
		if !slices.Contains(reach, acct) {
			return fmt.Errorf("resource %q: account %s is %w", g.key, acct, errOutside)
		}
		return nil
	}
	switch g.kind {
	case kindAccount:
		if g.account == "*" {
			return nil
		}
		return inReach(g.account)
	case kindZone:
		if g.zone == "*" {
			if g.account == "*" {
				return nil
			}
			return inReach(g.account)
		}
		z, ok := s.zones[g.zone]
		if !ok {
			return fmt.Errorf("resource %q: zone %s does not exist", g.key, g.zone)
		}
		if g.account != "" && g.account != z.AccountID {
			return fmt.Errorf("resource %q: zone %s is not in account %s", g.key, g.zone, g.account)
		}
		if err := inReach(z.AccountID); err != nil {
			return fmt.Errorf("resource %q: zone %s is %w", g.key, g.zone, errOutside)
		}
		return nil
	case kindBucket:
		if err := inReach(g.account); err != nil {
			return err
		}
		if s.findBucket(g.bucket) == nil {
			return fmt.Errorf("resource %q: bucket does not exist", g.key)
		}
		return nil
	default:
		if _, ok := s.users[g.user]; !ok {
			return fmt.Errorf("resource %q: user %s does not exist", g.key, g.user)
		}
		if kind != ownerUser || g.user != owner {
			return fmt.Errorf("resource %q: user %s is %w", g.key, g.user, errOutside)
		}
		return nil
	}
}

// reach lists the accounts an owner can act in, as of now: memberships can
// change after a token was minted, and the token follows them.
func (s *Server) reach(kind ownerKind, owner string) []string {
	if kind == ownerAccount {
		if _, ok := s.accounts[owner]; ok {
			return []string{owner}
		}
		return nil
	}
	if u, ok := s.users[owner]; ok {
		return u.memberOf
	}
	return nil
}

// allows reports whether token t may act on tg with the permission group
// need: some allow policy grants a group implying need on a resource that
// covers tg, and no deny policy does. A token never reaches past its owner.
func (s *Server) allows(t *token, need groupKey, tg target) bool {
	want, ok := catalog().byNameScope[need]
	if !ok {
		// The endpoint table names a group the seed lacks: a bug in this
		// package, caught by its tests.
		panic(fmt.Sprintf("cfapitest: unknown permission group %v", need))
	}
	reach := s.reach(t.ownerKind, t.owner)
	switch tg.kind {
	case kindUser:
		if t.ownerKind != ownerUser || tg.user != t.owner {
			return false
		}
	default:
		if !slices.Contains(reach, tg.account) {
			return false
		}
	}
	allowed := false
	for _, p := range t.policies {
		if !p.grantsGroup(want) || !p.covers(tg, reach) {
			continue
		}
		if p.effect == "deny" {
			return false
		}
		allowed = true
	}
	return allowed
}

func (p *policy) grantsGroup(want *permissionGroup) bool {
	cat := catalog()
	for _, g := range p.groups {
		if slices.Contains(cat.implied(g), want) {
			return true
		}
	}
	return false
}

func (p *policy) covers(tg target, reach []string) bool {
	for _, g := range p.grants {
		if g.covers(tg, reach) {
			return true
		}
	}
	return false
}

func (g grant) covers(tg target, reach []string) bool {
	if g.kind != tg.kind {
		return false
	}
	switch g.kind {
	case kindAccount:
		if g.account == "*" {
			return slices.Contains(reach, tg.account)
		}
		return g.account == tg.account
	case kindZone:
		if g.zone != "*" {
			return g.zone == tg.zone
		}
		if g.account == "*" {
			return slices.Contains(reach, tg.account)
		}
		return g.account == tg.account
	case kindBucket:
		return g.bucket == tg.bucket
	default:
		return g.user == tg.user
	}
}

// resolveGroups turns the group names of a seeded Policy into ids, choosing
// for each name the group whose scope matches the policy's resource keys.
func resolveGroups(p Policy) ([]string, error) {
	_, grants, err := parseResources(p.Resources)
	if err != nil {
		return nil, err
	}
	if len(grants) == 0 {
		return nil, errors.New("policy has no resources")
	}
	scope := grants[0].kind.scope()
	for _, g := range grants[1:] {
		if g.kind.scope() != scope {
			return nil, fmt.Errorf("policy mixes %s and %s resources; put each scope in its own policy", scope, g.kind.scope())
		}
	}
	ids := make([]string, 0, len(p.Groups))
	for _, name := range p.Groups {
		g, ok := catalog().byNameScope[groupKey{name, scope}]
		if !ok {
			return nil, fmt.Errorf("no permission group %q with scope %s", name, scope)
		}
		ids = append(ids, g.ID)
	}
	return ids, nil
}

// touches reports whether token t holds any permission in account acct: an
// allow policy with a grant on the account, on one of its zones or on one of
// its buckets. That is what GET /accounts lists (unverified: Cloudflare does
// not document which accounts a token sees there).
func (s *Server) touches(t *token, acct string) bool {
	reach := s.reach(t.ownerKind, t.owner)
	if !slices.Contains(reach, acct) {
		return false
	}
	for _, p := range t.policies {
		if p.effect != "allow" {
			continue
		}
		for _, g := range p.grants {
			switch g.kind {
			case kindAccount:
				if g.account == acct || g.account == "*" {
					return true
				}
			case kindZone:
				if g.account == acct || g.account == "*" {
					return true
				}
				if z, ok := s.zones[g.zone]; ok && z.AccountID == acct {
					return true
				}
			case kindBucket:
				if g.account == acct {
					return true
				}
			}
		}
	}
	return false
}
