// Package policy turns presets and permission lines into the exact policies of a token request; it does no I/O.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
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

// Wanted is what the user asked for, in the user's words, with the zones already resolved.
type Wanted struct {
	Lines     []string // preset group names and permission lines
	AccountID string
	Zones     []Zone
	AllZones  bool
}

// Build resolves every line against the groups the owner may grant and returns one policy per
// scope. Every problem is reported at once.
func Build(w Wanted, available []Group) ([]Policy, error) {
	groups, err := Resolve(w.Lines, available, w.AllZones || len(w.Zones) > 0)
	if err != nil {
		return nil, err
	}
	var acct, zone []Group
	var errs []error
	for _, g := range groups {
		switch {
		case g.Has(ScopeAccount):
			acct = append(acct, g)
		case g.Has(ScopeZone):
			zone = append(zone, g)
		case g.Has(ScopeUser):
			errs = append(errs, fmt.Errorf("input \"permissions\": %q applies to a user, which cfmint does not grant; a CI token should not manage a user", g.Name))
		case g.Has(ScopeBucket):
			errs = append(errs, fmt.Errorf("input \"permissions\": %q applies to R2 buckets, which cfmint does not grant yet; use \"Workers R2 Storage Write\" (preset r2-upload)", g.Name))
		default:
			errs = append(errs, fmt.Errorf("input \"permissions\": %q has scopes %v that cfmint does not know", g.Name, g.Scopes))
		}
	}
	if len(acct) > 0 && w.AccountID == "" {
		errs = append(errs, fmt.Errorf("input \"account-id\": is empty, but %s apply to an account; set account-id", names(acct)))
	}
	if len(zone) > 0 && !w.AllZones && len(w.Zones) == 0 {
		errs = append(errs, fmt.Errorf("input \"zones\": is empty, but %s apply to zones; name the zones (example.com), or write * for every zone of the account", names(zone)))
	}
	if w.AllZones && w.AccountID == "" && len(zone) > 0 {
		errs = append(errs, errors.New("input \"account-id\": is empty, but zones: * means every zone of an account; set account-id"))
	}
	if len(zone) == 0 && (w.AllZones || len(w.Zones) > 0) {
		errs = append(errs, errors.New("input \"zones\": zones are given but no permission applies to zones; remove zones or add a zone permission such as \"DNS Write\""))
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
	return out, nil
}

// AccountKey is the resource key of one account.
func AccountKey(id string) string { return ScopeAccount + "." + id }

// ZoneKey is the resource key of one zone.
func ZoneKey(id string) string { return ScopeZone + "." + id }

func names(gs []Group) string {
	q := make([]string, len(gs))
	for i, g := range gs {
		q[i] = fmt.Sprintf("%q", g.Name)
	}
	return strings.Join(q, ", ")
}

// Resolve finds the group for each line. A line may hold several comma-separated names; since
// some real names contain commas ("Access: Organizations, Identity Providers, and Groups Write"),
// pieces are joined back whenever the joined text is a known name. Names are matched
// case-insensitively; a name that exists at account and zone scope is taken at zone scope when
// zones are given, else at account scope.
func Resolve(lines []string, available []Group, zonesGiven bool) ([]Group, error) {
	byName := map[string][]Group{}
	for _, g := range available {
		k := strings.ToLower(g.Name)
		byName[k] = append(byName[k], g)
	}
	var out []Group
	var errs []error
	seen := map[string]bool{}
	for _, line := range lines {
		for _, name := range splitNames(line, byName) {
			cands := byName[strings.ToLower(name)]
			if len(cands) == 0 {
				errs = append(errs, unknown(name, available))
				continue
			}
			g := pick(cands, zonesGiven)
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

func pick(cands []Group, zonesGiven bool) Group {
	if len(cands) == 1 {
		return cands[0]
	}
	want := ScopeAccount
	if zonesGiven {
		want = ScopeZone
	}
	for _, g := range cands {
		if g.Has(want) {
			return g
		}
	}
	return cands[0]
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
		return fmt.Errorf("input \"permissions\": %q is not a permission group this token owner may grant; `cfmint permissions` lists them", name)
	}
	return fmt.Errorf("input \"permissions\": %q is not a permission group this token owner may grant; did you mean %s?", name, quoteJoin(sugg))
}

func quoteJoin(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
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
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
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
