// Package policy turns presets and permission lines into the exact policies of a token request; it does no I/O.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
)

// Scopes of Cloudflare permission groups.
const (
	ScopeAccount = "com.cloudflare.api.account"
	ScopeZone    = "com.cloudflare.api.account.zone"
	ScopeUser    = "com.cloudflare.api.user"
	ScopeBucket  = "com.cloudflare.edge.r2.bucket"
)

// Group is a permission group as the permission-groups endpoint lists it.
type Group struct {
	ID     string
	Name   string
	Scopes []string
}

// Has reports whether g applies at scope.
func (g Group) Has(scope string) bool {
	for _, s := range g.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Zone is a zone the request applies to.
type Zone struct{ ID, Name string }

// Policy is one allow policy: groups of one scope and the resources they apply to.
type Policy struct {
	Groups []Group
	// Resources is the policy's resource map: flat ("key": "*") or nested for all zones of an
	// account ("account key": {"com.cloudflare.api.account.zone.*": "*"}). Never both in one
	// policy: cloudflare-go v6 cannot send a mixed map.
	Resources map[string]any
}

// Request is a complete token request.
type Request struct {
	Name      string
	Policies  []Policy
	CIDRs     []netip.Prefix // empty: no IP condition
	ExpiresOn time.Time      // UTC, whole seconds
}

// Bucket is an R2 bucket a request applies to.
type Bucket struct{ Jurisdiction, Name string }

// Wanted is what the user asked for, in the user's words, with the zones already resolved.
type Wanted struct {
	Lines     []string // preset group names and permission lines
	AccountID string
	Zones     []Zone
	AllZones  bool
	Buckets   []Bucket
	// Owner is "account" or "user": it decides which groups can be granted at all.
	Owner string
	// AllowLastingAccess lets the token carry LastingGroups (the allow-lasting-access input).
	AllowLastingAccess bool
}

// Build resolves every line against the groups the owner may grant and returns one policy per
// scope. Every problem is reported at once.
func Build(w Wanted, available []Group) ([]Policy, error) {
	groups, err := Resolve(w.Lines, available, Hints{ZonesGiven: w.AllZones || len(w.Zones) > 0, Owner: w.Owner})
	if err != nil {
		return nil, err
	}
	var acct, zone, bucket []Group
	var errs []error
	for _, g := range groups {
		switch {
		case tokenMinting[strings.ToLower(g.Name)]:
			// A minted token that can mint tokens is a bootstrap token with a short fuse on its
			// first generation only: it would undo everything cfmint is for.
			errs = append(errs, field.Errorf("permissions", "%s would let the minted token create tokens of its own, with any permission; cfmint refuses to grant it (a job that manages tokens should use the bootstrap token's own step)", logsafe.Quote(g.Name)))
		case !w.AllowLastingAccess && lasting(g):
			l, _ := LastingFor(g)
			// The grant ends with the token; what the group creates does not.
			errs = append(errs, field.Errorf("allow-lasting-access", "is false, but %s %s; set allow-lasting-access: true if the job must do that, or leave the group out of permissions", logsafe.Quote(g.Name), l.Reason))
		case g.Has(ScopeAccount):
			acct = append(acct, g)
		case g.Has(ScopeZone):
			zone = append(zone, g)
		case g.Has(ScopeUser):
			errs = append(errs, field.Errorf("permissions", "%s applies to a user, which cfmint does not grant; a CI token should not manage a user", logsafe.Quote(g.Name)))
		case g.Has(ScopeBucket):
			bucket = append(bucket, g)
		default:
			errs = append(errs, field.Errorf("permissions", "%s has scopes %s that cfmint does not know", logsafe.Quote(g.Name), logsafe.String(fmt.Sprint(g.Scopes))))
		}
	}
	if len(acct) > 0 && w.AccountID == "" {
		errs = append(errs, field.Errorf("account-id", "is empty, but %s apply to an account; set account-id", names(acct)))
	}
	if len(zone) > 0 && !w.AllZones && len(w.Zones) == 0 {
		errs = append(errs, field.Errorf("zones", "is empty, but %s apply to zones; name the zones (example.com), or write * for every zone of the account", names(zone)))
	}
	if w.AllZones && w.AccountID == "" && len(zone) > 0 {
		errs = append(errs, field.Errorf("account-id", "is empty, but zones: * means every zone of an account; set account-id"))
	}
	if len(bucket) > 0 && len(w.Buckets) == 0 {
		errs = append(errs, field.Errorf("r2-buckets", "is empty, but %s apply to R2 buckets; name the buckets (assets, or eu:assets for a jurisdiction)", names(bucket)))
	}
	if len(bucket) > 0 && w.AccountID == "" {
		errs = append(errs, field.Errorf("account-id", "is empty, but %s apply to R2 buckets of an account; set account-id", names(bucket)))
	}
	if len(bucket) == 0 && len(w.Buckets) > 0 {
		errs = append(errs, field.Errorf("r2-buckets", "buckets are given but no permission applies to buckets; add \"Workers R2 Storage Bucket Item Write\" (or Read), or use preset r2-upload"))
	}
	if len(zone) == 0 && (w.AllZones || len(w.Zones) > 0) {
		errs = append(errs, field.Errorf("zones", "zones are given but no permission applies to zones; remove zones or add a zone permission such as \"DNS Write\""))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var out []Policy
	if len(acct) > 0 {
		out = append(out, Policy{Groups: acct, Resources: map[string]any{AccountKey(w.AccountID): "*"}})
	}
	if len(zone) > 0 {
		res := map[string]any{}
		if w.AllZones {
			res[AccountKey(w.AccountID)] = map[string]any{ScopeZone + ".*": "*"}
		} else {
			for _, z := range w.Zones {
				res[ZoneKey(z.ID)] = "*"
			}
		}
		out = append(out, Policy{Groups: zone, Resources: res})
	}
	if len(bucket) > 0 {
		res := map[string]any{}
		for _, b := range w.Buckets {
			res[BucketKey(w.AccountID, b)] = "*"
		}
		out = append(out, Policy{Groups: bucket, Resources: res})
	}
	return out, nil
}

// BucketKey is the resource key of one R2 bucket.
func BucketKey(accountID string, b Bucket) string {
	j := b.Jurisdiction
	if j == "" {
		j = "default"
	}
	return ScopeBucket + "." + accountID + "_" + j + "_" + b.Name
}

// ExpandPreset returns the group names of a preset: its bucket-level groups when buckets are
// named and it has them (the narrower grant), else its groups.
func ExpandPreset(name string, bucketsGiven bool) []string {
	p := Presets[name]
	if bucketsGiven && len(p.BucketGroups) > 0 {
		return p.BucketGroups
	}
	return p.Groups
}

// AccountKey is the resource key of one account.
func AccountKey(id string) string { return ScopeAccount + "." + id }

// ZoneKey is the resource key of one zone.
func ZoneKey(id string) string { return ScopeZone + "." + id }

func names(gs []Group) string {
	q := make([]string, len(gs))
	for i, g := range gs {
		q[i] = logsafe.Quote(g.Name)
	}
	return strings.Join(q, ", ")
}

// Hints are what, besides the names, decides which group a name means.
type Hints struct {
	ZonesGiven bool   // zones are named: a name that exists at two scopes means the zone one
	Owner      string // "account" or "user"
}

// Resolve finds the group for each line. A line may hold several comma-separated names; since
// some real names contain commas ("Access: Organizations, Identity Providers, and Groups Write"),
// pieces are joined back whenever the joined text is a known name. Each name may be written as
// the API names it ("DNS Write"), as the dashboard does ("DNS Edit"), or as the dashboard's three
// dropdowns, Scope / Resource / Level ("Zone / DNS / Edit", "Account | Workers R2 Storage | Edit"),
// case-insensitively. A name that exists at two scopes is taken at the scope written, else at zone
// scope when zones are given; otherwise the error names both.
func Resolve(lines []string, available []Group, h Hints) ([]Group, error) {
	byName := index(available)
	var out []Group
	var errs []error
	seen := map[string]bool{}
	for _, line := range lines {
		for _, name := range splitNames(line, byName) {
			g, err := resolveOne(name, byName, available, h)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !seen[g.ID] {
				seen[g.ID] = true
				out = append(out, g)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// lasting reports a group that can create lasting access, at a scope cfmint grants.
func lasting(g Group) bool {
	_, ok := LastingFor(g)
	return ok && !g.Has(ScopeUser)
}

// tokenMinting are the groups that let a token create tokens.
var tokenMinting = map[string]bool{"api tokens write": true, "account api tokens write": true}

// scopeWords are the dashboard's words for the first dropdown.
var scopeWords = map[string]string{"account": ScopeAccount, "zone": ScopeZone, "user": ScopeUser}

// userOnly are the groups that only a user can hold (scope com.cloudflare.api.user); an
// account-owned token's permission-group list leaves them out, so they are named here only to
// explain their absence.
var userOnly = map[string]bool{"api tokens read": true, "api tokens write": true, "memberships read": true, "memberships write": true, "user details read": true, "user details write": true}

func resolveOne(name string, byName map[string][]Group, available []Group, h Hints) (Group, error) {
	cands := lookupName(name, byName)
	if parts := splitDropdowns(name); parts != nil {
		scope, ok := scopeWords[strings.ToLower(parts[0])]
		if !ok {
			return Group{}, field.Errorf("permissions", "%s: the first part, %s, is not a scope; write Account, Zone or User, as in \"Zone / DNS / Edit\"", logsafe.Quote(name), logsafe.Quote(parts[0]))
		}
		level := parts[2]
		if strings.EqualFold(level, "edit") {
			level = "Write"
		}
		cands = byName[strings.ToLower(parts[1]+" "+level)]
		if len(cands) == 0 && strings.HasSuffix(strings.ToLower(parts[1]), strings.ToLower(" "+level)) {
			cands = byName[strings.ToLower(parts[1])] // "Zone / Cache Purge / Purge" is "Cache Purge"
		}
		var at []Group
		for _, g := range cands {
			if g.Has(scope) {
				at = append(at, g)
			}
		}
		if len(cands) > 0 && len(at) == 0 {
			return Group{}, field.Errorf("permissions", "%s: %s exists, but not at %s scope; it applies to %s", logsafe.Quote(name), logsafe.Quote(cands[0].Name), strings.ToLower(parts[0]), logsafe.String(scopeNames(cands)))
		}
		if len(cands) == 0 {
			return Group{}, unknown(parts[1]+" "+level, available)
		}
		cands = at
	}
	if len(cands) == 0 {
		if h.Owner == "account" && userOnly[strings.ToLower(name)] {
			return Group{}, field.Errorf("permissions", "%s is a user-level permission, which an account-owned token cannot hold; use token-owner: user, or leave it out", logsafe.Quote(name))
		}
		return Group{}, unknown(name, available)
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	if h.ZonesGiven {
		for _, g := range cands {
			if g.Has(ScopeZone) {
				return g, nil
			}
		}
	}
	var forms []string
	for _, g := range cands {
		forms = append(forms, logsafe.Quote(dropdown(g)))
	}
	sort.Strings(forms)
	return Group{}, field.Errorf("permissions", "%s exists at %s scope; say which: write %s (naming zones also picks the zone one)", logsafe.Quote(name), logsafe.String(scopeNames(cands)), strings.Join(forms, " or "))
}

// lookupName finds a name as the API writes it, or as the dashboard does (Edit for Write).
func lookupName(name string, byName map[string][]Group) []Group {
	low := strings.ToLower(strings.Join(strings.Fields(name), " "))
	if c := byName[low]; len(c) > 0 {
		return c
	}
	if strings.HasSuffix(low, " edit") {
		return byName[strings.TrimSuffix(low, " edit")+" write"]
	}
	return nil
}

// splitDropdowns splits "Zone / DNS / Edit" or "Account | Workers R2 Storage | Edit" into its
// three parts; nil when the name is not in that form.
func splitDropdowns(name string) []string {
	for _, sep := range []string{"|", "/"} {
		parts := strings.Split(name, sep)
		if len(parts) != 3 {
			continue
		}
		for i := range parts {
			parts[i] = strings.Join(strings.Fields(parts[i]), " ")
			if parts[i] == "" {
				return nil
			}
		}
		return parts
	}
	return nil
}

func scopeNames(gs []Group) string {
	var out []string
	for _, g := range gs {
		for _, sc := range g.Scopes {
			out = append(out, scopeWord(sc))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " and ")
}

func scopeWord(scope string) string {
	switch scope {
	case ScopeAccount:
		return "account"
	case ScopeZone:
		return "zone"
	case ScopeUser:
		return "user"
	case ScopeBucket:
		return "R2 bucket"
	}
	return scope
}

// dropdown writes a group the way the dashboard's three dropdowns show it.
func dropdown(g Group) string {
	sc := "Account"
	if g.Has(ScopeZone) {
		sc = "Zone"
	} else if g.Has(ScopeUser) {
		sc = "User"
	}
	res, level := g.Name, ""
	if i := strings.LastIndex(g.Name, " "); i > 0 {
		res, level = g.Name[:i], g.Name[i+1:]
	}
	if level == "Write" {
		level = "Edit"
	}
	return sc + " / " + res + " / " + level
}

// splitNames splits a line on commas, joining pieces back where the joined text is a known name
// (longest match first).
func splitNames(line string, known map[string][]Group) []string {
	pieces := strings.Split(line, ",")
	var out []string
	for i := 0; i < len(pieces); {
		j := len(pieces)
		for ; j > i+1; j-- {
			if _, ok := known[strings.ToLower(strings.TrimSpace(strings.Join(pieces[i:j], ",")))]; ok {
				break
			}
		}
		if n := strings.TrimSpace(strings.Join(pieces[i:j], ",")); n != "" {
			out = append(out, n)
		}
		i = j
	}
	return out
}

func unknown(name string, available []Group) error {
	sugg := Suggest(name, available, 3)
	if len(sugg) == 0 {
		return field.Errorf("permissions", "%s is not a permission group this token owner may grant; `cfmint permissions` lists them", logsafe.Quote(name))
	}
	return field.Errorf("permissions", "%s is not a permission group this token owner may grant; did you mean %s?", logsafe.Quote(name), quoteJoin(sugg))
}

func quoteJoin(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = logsafe.Quote(v)
	}
	return strings.Join(q, " or ")
}

// Suggest returns up to n group names closest to name by edit distance, nearest first.
func Suggest(name string, available []Group, n int) []string {
	type cand struct {
		name string
		d    int
	}
	low := strings.ToLower(name)
	seen := map[string]bool{}
	var cs []cand
	for _, g := range available {
		if seen[g.Name] {
			continue
		}
		seen[g.Name] = true
		d := distance(low, strings.ToLower(g.Name))
		if d <= len(low)/2+1 {
			cs = append(cs, cand{g.Name, d})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d // <= would do too: the distances differ here
		}
		return cs[i].name < cs[j].name // <= would do too: seen keeps each name once
	})
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// indexes remembers the name index of the last few group lists: the broker resolves every
// request against the same cached list, and building the index is most of a resolve's work.
var indexes struct {
	sync.Mutex
	recent []groupIndex
}

type groupIndex struct {
	data   *Group // the list's backing array, which nobody changes in place
	n      int
	byName map[string][]Group
}

// index maps each lower-case group name to its groups (a name can exist at several scopes).
// The map is shared: callers only read it.
func index(available []Group) map[string][]Group {
	if len(available) == 0 {
		return map[string][]Group{}
	}
	key := unsafe.SliceData(available)
	indexes.Lock()
	for _, ix := range indexes.recent {
		if ix.data == key && ix.n == len(available) {
			indexes.Unlock()
			return ix.byName
		}
	}
	indexes.Unlock()
	byName := map[string][]Group{}
	for _, g := range available {
		k := strings.ToLower(g.Name)
		byName[k] = append(byName[k], g)
	}
	indexes.Lock()
	indexes.recent = append([]groupIndex{{data: key, n: len(available), byName: byName}}, indexes.recent[:min(len(indexes.recent), 3)]...)
	indexes.Unlock()
	return byName
}
