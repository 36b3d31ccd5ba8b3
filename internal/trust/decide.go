package trust

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/policy"
)

// Ask is what a request asks the broker for, parsed with internal/config's parsers (one parser,
// one meaning) and with its zones looked up.
type Ask struct {
	Preset      string   // a preset name, or ""
	Permissions []string // permission lines, as config.Config.Permissions holds them
	// Zones are the zones asked for, looked up in ZonesAccount; a rule allows them only when that
	// is its own account_id (so a name cannot pick a same-named zone of another account).
	Zones        []policy.Zone
	ZonesAccount string
	AllZones     bool // zones: *
	Buckets      []policy.Bucket
	// TTL is the ttl asked for; 0 means the request named none: then config.DefaultTTL, capped
	// by the rule's max_ttl.
	TTL time.Duration
	// IPFilter is the parsed ip-filter; its zero value, like Runner, means the caller's address.
	IPFilter config.IPFilter
}

// Decision is what a rule allowed: everything needed to build the token request.
type Decision struct {
	Rule      string // the rule's name, for logs and the token's name
	Owner     cftoken.Owner
	AccountID string
	Policies  []policy.Policy // policy.Build's, for policy.Request.Policies
	// CIDRs pin the token; empty only when the request asked for none and the rule allows it.
	CIDRs []netip.Prefix
	TTL   time.Duration
}

// Reason is why a request was denied, as a label for metrics and log lines.
type Reason string

// Reasons of a denial.
const (
	ReasonIssuer            Reason = "issuer"             // no rule names the token's issuer
	ReasonEvent             Reason = "event"              // a rule would match but for a privileged event_name it does not name
	ReasonUnknownRepository Reason = "unknown-repository" // no rule accepts the token's repository
	ReasonClaims            Reason = "claims"             // no rule matches; the nearest misses a claim
	ReasonPattern           Reason = "pattern"            // no rule matches; the nearest misses a claim pattern
	ReasonRequest           Reason = "request"            // the request itself is wrong, whatever the policy
	ReasonPolicy            Reason = "policy"             // the rule's allow does not resolve: fix the policy (see Check)
	ReasonPermission        Reason = "permission"         // a permission the rule does not allow
	ReasonZone              Reason = "zone"               // a zone the rule does not allow
	ReasonBucket            Reason = "bucket"             // an R2 bucket the rule does not allow
	ReasonTTL               Reason = "ttl"                // a ttl above the rule's max_ttl
	ReasonIPFilter          Reason = "ip-filter"          // an ip-filter the rule does not allow
)

// Denial is a refused request. Msg names no secret: claims, rule names and what was asked.
type Denial struct {
	Reason Reason
	Rule   string // the first rule that matched, or "" when none did
	Msg    string
	// Detail is what the audit log says, when it says more than Msg: to a caller whose tenant
	// no rule trusts, Msg names no rule and no trusted value; Detail does.
	Detail string
}

// Error returns Msg.
func (d *Denial) Error() string { return d.Msg }

// Audit is what the audit log says of the denial: Detail, or Msg.
func (d *Denial) Audit() string {
	if d.Detail != "" {
		return d.Detail
	}
	return d.Msg
}

// Decide finds the first rule that matches the token's issuer and claims and allows ask, and
// says what it allows; else a *Denial naming the token's repository, ref and environment and,
// for each rule that matched, what it does not allow.
//
// groups is the bootstrap token owner's permission-group list: both the rules' allow and the ask
// are resolved against it, as the permissions input is, and compared by group id. caller is the
// address the request came from; it is pinned unless the rule and the request both say none, or
// the request names CIDRs the rule allows. A rule of CIDRs allows a requested range only if the
// range lies within one of the rule's and holds the caller's address, so a caller outside the
// rule's ranges gets nothing, and one inside gets no range it is not in.
//
// A request the action itself would refuse (an unknown permission, zones without a zone
// permission) is denied with ReasonRequest before any rule is weighed. The broker looks the
// request's zones up in the account of the first rule Match returns and sets Ask.ZonesAccount;
// rules of another account then deny zones rather than grant a zone they never named.
func (p *Policy) Decide(issuer string, c Claims, ask Ask, groups []policy.Group, caller netip.Addr) (*Decision, error) {
	return p.DecideWith(issuer, c, ask, func(*Rule) []policy.Group { return groups }, caller)
}

// GroupsFor is the permission-group list of a rule's owner: an account's and a user's lists
// differ, and each rule is resolved against its own.
type GroupsFor func(r *Rule) []policy.Group

// DecideWith is Decide with each rule's own group list.
func (p *Policy) DecideWith(issuer string, c Claims, ask Ask, groupsFor GroupsFor, caller netip.Addr) (*Decision, error) {
	rules := p.Match(issuer, c)
	if len(rules) == 0 {
		return nil, p.noMatch(issuer, c)
	}
	var why []string
	var first Reason
	for _, r := range rules {
		d, reason, msg := r.allow(ask, groupsFor(r), caller)
		if d != nil {
			return d, nil
		}
		if reason == ReasonRequest {
			return nil, &Denial{Reason: ReasonRequest, Rule: rules[0].name, Msg: msg}
		}
		if first == "" {
			first = reason
		}
		why = append(why, msg)
	}
	return nil, &Denial{Reason: first, Rule: rules[0].name, Msg: describe(c) + ": " + strings.Join(why, ". ")}
}

// problem is one thing a rule does not allow.
type problem struct {
	reason Reason
	msg    string
}

// allow decides ask against one rule: a decision, or the reason and a message.
func (r *Rule) allow(ask Ask, groups []policy.Group, caller netip.Addr) (*Decision, Reason, string) {
	zonesGiven := ask.AllZones || len(ask.Zones) > 0 // >= would do too: Build resolves again with the hint Wanted gives, and refuses the same names
	var lines []string
	if ask.Preset != "" {
		if _, ok := policy.Presets[ask.Preset]; !ok {
			return nil, ReasonRequest, fmt.Sprintf("input \"preset\": %q is not a preset; use one of %s", logsafe.Clip(ask.Preset, 80), strings.Join(policy.PresetNames(), ", "))
		}
		lines = append(lines, policy.ExpandPreset(ask.Preset, len(ask.Buckets) > 0)...)
	}
	lines = append(lines, ask.Permissions...)
	if len(lines) == 0 {
		return nil, ReasonRequest, fmt.Sprintf("input \"preset\": no permissions asked for; set preset (one of %s) or permissions (for example \"DNS Write\")", strings.Join(policy.PresetNames(), ", "))
	}
	ttl := ask.TTL
	if ttl == 0 {
		ttl = min(config.DefaultTTL, r.maxTTL)
	}
	if ttl < config.MinTTL || ttl > config.MaxTTL {
		return nil, ReasonRequest, fmt.Sprintf("input \"ttl\": %s is outside the allowed range 1m to 6h", dur(ttl))
	}
	// The ask is resolved and built as the action would: a request that the action would refuse
	// is refused here for the same reason, before any rule is consulted.
	asked, err := policy.Resolve(lines, groups, policy.Hints{ZonesGiven: zonesGiven, Owner: string(r.owner)})
	if err != nil {
		return nil, ReasonRequest, err.Error()
	}
	pols, err := policy.Build(policy.Wanted{Lines: lines, AccountID: r.accountID, Zones: ask.Zones, AllZones: ask.AllZones, Buckets: ask.Buckets, Owner: string(r.owner)}, groups)
	if err != nil {
		return nil, ReasonRequest, err.Error()
	}

	granted, err := r.granted(groups)
	if err != nil {
		return nil, ReasonPolicy, fmt.Sprintf("rule %s cannot be applied: its allow does not resolve against Cloudflare's permission groups (%v); fix the policy", r.name, err)
	}
	var probs []problem
	for _, g := range asked {
		if !slices.ContainsFunc(granted, func(h policy.Group) bool { return h.ID == g.ID }) {
			probs = append(probs, problem{ReasonPermission, g.Name + r.where(g, ask) + " is not allowed"})
		}
	}
	probs = append(probs, r.zoneProblems(ask)...)
	for _, b := range ask.Buckets {
		if !slices.Contains(r.buckets, normBucket(b)) {
			probs = append(probs, problem{ReasonBucket, "bucket " + bucketText(b) + " is not allowed"})
		}
	}
	if ttl > r.maxTTL {
		probs = append(probs, problem{ReasonTTL, fmt.Sprintf("ttl %s is more than its max_ttl %s", dur(ttl), dur(r.maxTTL))})
	}
	cidrs, ipProbs := r.pin(ask.IPFilter, caller)
	probs = append(probs, ipProbs...)
	if len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, pr := range probs {
			msgs[i] = pr.msg
		}
		return nil, probs[0].reason, fmt.Sprintf("rule %s allows %s; %s", r.name, r.summary(), strings.Join(msgs, ", "))
	}
	return &Decision{Rule: r.name, Owner: r.owner, AccountID: r.accountID, Policies: pols, CIDRs: cidrs, TTL: ttl}, "", ""
}

// lines are the permission lines the rule allows: its presets expanded, then its permissions. A
// preset with a narrower bucket grant is expanded to it when the rule names buckets, as the action
// expands it when r2-buckets is set.
func (r *Rule) lines() []string {
	var lines []string
	for _, name := range r.presets {
		lines = append(lines, policy.ExpandPreset(name, len(r.buckets) > 0)...)
	}
	return append(lines, r.perms...)
}

func (r *Rule) granted(groups []policy.Group) ([]policy.Group, error) {
	return policy.Resolve(r.lines(), groups, policy.Hints{ZonesGiven: r.allZones || len(r.zones) > 0, Owner: string(r.owner)})
}

// grantedLines is what granted resolves of the lines that resolve alone, for a rule some of
// whose lines do not: its other problems are still reported.
func (r *Rule) grantedLines(groups []policy.Group) []policy.Group {
	var out []policy.Group
	for _, l := range r.lines() {
		gs, err := policy.Resolve([]string{l}, groups, policy.Hints{ZonesGiven: r.allZones || len(r.zones) > 0, Owner: string(r.owner)})
		if err == nil {
			out = append(out, gs...)
		}
	}
	return out
}

func (r *Rule) zoneProblems(ask Ask) []problem {
	var probs []problem
	if ask.AllZones && !r.allZones {
		probs = append(probs, problem{ReasonZone, "every zone (*) is not allowed"})
	}
	if len(ask.Zones) > 0 && ask.ZonesAccount != r.accountID {
		acct := ask.ZonesAccount
		if acct == "" {
			acct = "no account"
		}
		return append(probs, problem{ReasonZone, fmt.Sprintf("the zones were looked up in %s, not in the rule's account %s", acct, r.accountID)})
	}
	if r.allZones {
		return probs
	}
	for _, z := range ask.Zones {
		name := strings.ToLower(strings.TrimSuffix(z.Name, "."))
		if !slices.Contains(r.zones, strings.ToLower(z.ID)) && (name == "" || !slices.Contains(r.zones, name)) {
			probs = append(probs, problem{ReasonZone, "zone " + zoneText(z) + " is not allowed"})
		}
	}
	return probs
}

// pin decides the token's IP filter: the CIDRs to pin, or what the rule does not allow.
func (r *Rule) pin(f config.IPFilter, caller netip.Addr) ([]netip.Prefix, []problem) {
	wantCaller := f.Runner || (!f.None && len(f.CIDRs) == 0)
	var probs []problem
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	switch r.ip.mode {
	case ipCaller:
		if f.None {
			probs = append(probs, problem{ReasonIPFilter, "ip-filter none is not allowed (the rule pins tokens to the caller's address; leave ip-filter empty)"})
		}
		if len(f.CIDRs) > 0 {
			probs = append(probs, problem{ReasonIPFilter, fmt.Sprintf("ip-filter %s is not allowed (the rule pins tokens to the caller's address; leave ip-filter empty)", prefixes(f.CIDRs))})
		}
		wantCaller = true
	case ipNone:
		if f.None {
			return nil, nil
		}
		// A rule that allows no filter at all allows any narrower one.
		for _, p := range f.CIDRs {
			add(p)
		}
	case ipCIDRs:
		if f.None {
			probs = append(probs, problem{ReasonIPFilter, fmt.Sprintf("ip-filter none is not allowed (the rule allows addresses within %s only)", prefixes(r.ip.cidrs))})
		}
		// A range is the caller's to ask for only if the caller is in it: the rule's ranges say
		// where callers may be, not which of them a caller anywhere may pick.
		for _, p := range f.CIDRs {
			switch {
			case !within(p, r.ip.cidrs):
				probs = append(probs, problem{ReasonIPFilter, fmt.Sprintf("ip-filter %s is not within %s", p, prefixes(r.ip.cidrs))})
			case !caller.IsValid():
				probs = append(probs, problem{ReasonIPFilter, fmt.Sprintf("ip-filter %s cannot be checked: the caller's address is unknown, and a range is allowed only if it holds the caller's", p)})
			case !p.Contains(caller.Unmap()):
				probs = append(probs, problem{ReasonIPFilter, fmt.Sprintf("ip-filter %s does not hold the caller's address %s; the rule allows a range only if it holds the caller's address", p, caller.Unmap())})
			}
			add(p)
		}
	}
	if wantCaller {
		if !caller.IsValid() {
			// The broker always knows its peer; if it does not, nothing is pinned to a guess.
			probs = append(probs, problem{ReasonIPFilter, "the caller's address is unknown, so the token cannot be pinned to it"})
		} else {
			a := caller.Unmap()
			p := netip.PrefixFrom(a, a.BitLen())
			if r.ip.mode == ipCIDRs && !within(p, r.ip.cidrs) {
				probs = append(probs, problem{ReasonIPFilter, fmt.Sprintf("the caller's address %s is not within %s", a, prefixes(r.ip.cidrs))})
			}
			out = append([]netip.Prefix{p}, slices.DeleteFunc(out, func(q netip.Prefix) bool { return q == p })...)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return out, nil
}

// within reports whether all of p lies in one of in.
func within(p netip.Prefix, in []netip.Prefix) bool {
	for _, q := range in {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// where says, for a denied group, the resources it was asked on.
func (r *Rule) where(g policy.Group, ask Ask) string {
	switch {
	case g.Has(policy.ScopeZone) && ask.AllZones:
		return " on every zone"
	case g.Has(policy.ScopeZone) && len(ask.Zones) > 0:
		zs := make([]string, len(ask.Zones))
		for i, z := range ask.Zones {
			zs[i] = zoneText(z)
		}
		return " on " + strings.Join(zs, ", ")
	case g.Has(policy.ScopeBucket) && len(ask.Buckets) > 0:
		bs := make([]string, len(ask.Buckets))
		for i, b := range ask.Buckets {
			bs[i] = bucketText(b)
		}
		return " on bucket " + strings.Join(bs, ", ")
	}
	return ""
}

// summary says what the rule allows, in the policy's own words.
func (r *Rule) summary() string {
	s := strings.Join(append(slices.Clone(r.presets), r.perms...), ", ")
	var on []string
	switch {
	case r.allZones:
		on = append(on, "every zone")
	case len(r.zones) > 0:
		on = append(on, "zones "+strings.Join(r.zones, ", "))
	}
	if len(r.buckets) > 0 {
		bs := make([]string, len(r.buckets))
		for i, b := range r.buckets {
			bs[i] = bucketText(b)
		}
		on = append(on, "buckets "+strings.Join(bs, ", "))
	}
	on = append(on, "ttl up to "+dur(r.maxTTL))
	return s + " (" + strings.Join(on, "; ") + ")"
}

// Check resolves every rule's allow against Cloudflare's permission-group list and reports,
// naming rule and key, every name that is not a group and every grant that could never be used:
// a zone permission with no zones, zones with no zone permission, and the like. The broker calls
// it once it has the list, at start and after each reload, and refuses a policy that fails.
func (p *Policy) Check(groups []policy.Group) error {
	return p.CheckWith(func(*Rule) []policy.Group { return groups })
}

// CheckWith is Check with each rule's own group list; a rule whose list is nil is skipped (its
// owner's list could not be had).
func (p *Policy) CheckWith(groupsFor GroupsFor) error {
	var errs []error
	for _, r := range p.rules {
		groups := groupsFor(r)
		if groups == nil {
			continue
		}
		where := fmt.Sprintf("rule %q", r.name)
		bad := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: key %q: %s", where, key, fmt.Sprintf(format, args...)))
		}
		gs, err := r.granted(groups)
		// A rule with problems of its own (ParsePartial), or a line that does not resolve, is
		// checked for what its other lines grant; whether zones and buckets fit what it
		// allows cannot be told from part of it.
		whole := err == nil && !r.partial
		if err != nil {
			// policy.Resolve phrases its errors for the permissions input; here the key is the
			// rule's.
			for _, e := range unjoin(err) {
				bad("allow.permissions", "%s", strings.TrimPrefix(e.Error(), `input "permissions": `))
			}
			gs = r.grantedLines(groups)
		}
		var zone, bucket []string
		for _, g := range gs {
			switch {
			case mintsTokens[strings.ToLower(g.Name)]:
				bad("allow", "%q would let a minted token create tokens with any permission; cfmint never grants it", g.Name)
			case lastingAccess(g) != "":
				// The action grants these only with allow-lasting-access; a broker's caller has no
				// say in what outlives its token, so the broker grants none of them.
				bad("allow", "%q %s, which outlives the token; the broker does not grant it", g.Name, lastingAccess(g))
			case g.Has(policy.ScopeAccount):
			case g.Has(policy.ScopeZone):
				zone = append(zone, g.Name)
			case g.Has(policy.ScopeBucket):
				bucket = append(bucket, g.Name)
			case g.Has(policy.ScopeUser):
				bad("allow", "%q applies to a user, which cfmint does not grant", g.Name)
			default:
				bad("allow", "%q has scopes %v that cfmint does not know", g.Name, g.Scopes)
			}
		}
		if !whole {
			continue
		}
		hasZones := r.allZones || len(r.zones) > 0
		switch {
		case len(zone) > 0 && !hasZones:
			bad("allow.zones", "is empty, but %s apply to zones; list the zones (example.com), or * for every zone of the account", strings.Join(zone, ", "))
		case len(zone) == 0 && hasZones:
			bad("allow.zones", "lists zones, but nothing the rule allows applies to zones; remove them or allow a zone permission such as \"DNS Write\"")
		}
		switch {
		case len(bucket) > 0 && len(r.buckets) == 0:
			bad("allow.r2_buckets", "is empty, but %s apply to R2 buckets; list the buckets (assets, or eu:assets)", strings.Join(bucket, ", "))
		case len(bucket) == 0 && len(r.buckets) > 0:
			bad("allow.r2_buckets", "lists buckets, but nothing the rule allows applies to buckets; remove them or allow \"Workers R2 Storage Bucket Item Write\" (or preset r2-upload)")
		}
	}
	return errors.Join(errs...)
}

// lastingAccess says what g can create that outlives a token, or "".
func lastingAccess(g policy.Group) string {
	if l, ok := policy.LastingFor(g); ok {
		return l.Reason
	}
	return ""
}

// AllowsZone reports whether the rule lists the zone name or id (or every zone), so that a
// broker can refuse zones no rule allows before it spends a Cloudflare call looking them up.
func (r *Rule) AllowsZone(nameOrID string) bool {
	return r.allZones || slices.Contains(r.zones, strings.ToLower(strings.TrimSuffix(nameOrID, ".")))
}

// mintsTokens are the groups that let a token create tokens; policy.Build refuses them in any
// request, and Check refuses a rule that allows them so the policy fails at start, not on a mint.
var mintsTokens = map[string]bool{"api tokens write": true, "account api tokens write": true}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func normBucket(b policy.Bucket) policy.Bucket {
	b.Jurisdiction = strings.ToLower(b.Jurisdiction)
	if b.Jurisdiction == "" {
		b.Jurisdiction = "default"
	}
	return b
}

func bucketText(b policy.Bucket) string {
	if b = normBucket(b); b.Jurisdiction == "default" {
		return b.Name
	}
	return b.Jurisdiction + ":" + b.Name
}

func zoneText(z policy.Zone) string {
	if z.Name != "" {
		return z.Name
	}
	return z.ID
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// dur writes a duration as people do: 30m, 1h, 1h30m, not 30m0s.
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
