package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/netaddr"
	"github.com/cfmint/cfmint/internal/policy"
)

// The same shapes the action's inputs accept (internal/config keeps its parsers of zones and
// r2-buckets unexported; these follow them).
var (
	ruleName   = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	zoneName   = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$`)
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
)

var (
	topKeys   = []string{"audience", "rules"}
	ruleKeys  = []string{"name", "issuer", "claims", "claim_patterns", "token_owner", "account_id", "allow", "max_ttl", "ip_filter", singleTenantKey, "max_mints", "max_active"}
	allowKeys = []string{"presets", "permissions", "zones", "r2_buckets"}
)

// brokerClaims are checked by the broker itself (or change with every token), so a rule that
// named them would either repeat that check or never match.
var brokerClaims = map[string]string{
	"iss": "the rule's issuer key checks it",
	"aud": "the policy's audience key checks it",
	"exp": "it changes with every token",
	"iat": "it changes with every token",
	"nbf": "it changes with every token",
	"jti": "it changes with every token",
}

// Parse reads and validates a policy, in the format testdata/policy.yaml shows. Every problem is reported at once (errors.Join), each
// naming the rule and key, the bad value and what is allowed; a policy with any problem is
// refused whole, since a broker half-configured is a broker that grants the wrong thing.
//
// Parse checks permission lines only for their form: whether a name is a permission group is
// known once Cloudflare's list is at hand (see Check).
func Parse(data []byte) (*Policy, error) {
	p, err := ParsePartial(data)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ParsePartial is Parse that also returns, beside the problems, what could be read of a policy
// that has some: each rule with a name, whatever its other problems, so that a check against
// Cloudflare's permission groups (CheckWith) can report its problems in the same run. The
// policy is nil when nothing could be read. A policy returned with an error is for checking
// only, never for serving: Parse refuses it whole.
func ParsePartial(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, fmt.Errorf("the policy is %d bytes; a trust policy is at most %d, so this is not one", len(data), MaxPolicySize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the policy is empty; write an audience and at least one rule")
		}
		return nil, fmt.Errorf("failed to read the policy as YAML: %w", yamlError(err, data))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("the policy holds more than one YAML document; keep one (no second ---)")
	}
	ps := &parser{}
	p := ps.policy(&doc)
	if len(ps.errs) > 0 { // >= would do too: errors.Join of nothing is nil
		return p, errors.Join(ps.errs...)
	}
	return p, nil
}

// entries counts what a mapping holds; anything else that is given counts as one (its problem is
// recorded as not being a mapping).
func entries(n *yaml.Node) int {
	if n.Kind == yaml.MappingNode {
		return len(n.Content) / 2 // * would do too: callers only ask whether the count is 0
	}
	return 1
}

// yamlLine finds the line number yaml.v3 puts in its errors.
var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// yamlError corrects the line yaml.v3 names for a tab in the indentation: it names the line
// before the tab's (the scanner's context), so the error points at the line that holds the tab,
// and says that YAML indents with spaces.
func yamlError(err error, data []byte) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	n, _ := strconv.Atoi(m[1])
	lines := strings.Split(string(data), "\n")
	tabbed := func(i int) bool { // line i (from 1) has a tab in its indentation
		if i < 1 || i > len(lines) { // <= 1 would do too: yaml.v3 names no line for a scanner error on line 1
			return false
		}
		l := lines[i-1]
		return strings.ContainsRune(l[:len(l)-len(strings.TrimLeft(l, " \t"))], '\t')
	}
	switch {
	case tabbed(n):
	case strings.Contains(m[2], "tab character") && tabbed(n+1):
		n++
	default:
		return err
	}
	return fmt.Errorf("line %d: %s (the line is indented with a tab; YAML indents with spaces only)", n, m[2])
}

// parser collects every problem of one policy.
type parser struct{ errs []error }

// errf records a problem of key (dotted: "claims.ref"); where is the rule ("rule \"x\"") or ""
// for the policy's top level.
func (ps *parser) errf(where, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch {
	case where != "" && key != "":
		msg = fmt.Sprintf("%s: key %q: %s", where, key, msg)
	case where != "":
		msg = where + ": " + msg
	case key != "":
		msg = fmt.Sprintf("key %q: %s", key, msg)
	}
	ps.errs = append(ps.errs, errors.New(msg))
}

type pair struct {
	key string
	val *yaml.Node
}

// pairs reads a mapping, refusing what would make it mean something other than it reads:
// aliases, merge keys, keys that are not strings and keys given twice.
func (ps *parser) pairs(n *yaml.Node, where, key, shape string) ([]pair, bool) {
	if !ps.plain(n, where, key) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		if where == "" && key == "" {
			ps.errf("", "", "the policy must be %s", shape)
		} else {
			ps.errf(where, key, "must be %s", shape)
		}
		return nil, false
	}
	var out []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 { // <= would do too: a mapping's content is pairs
		k, v := n.Content[i], n.Content[i+1]
		full := join(key, k.Value)
		switch {
		case k.Kind == yaml.AliasNode:
			ps.errf(where, key, "has an alias (*%s) as a key; write the key out", k.Value)
			continue
		case k.ShortTag() == "!!merge":
			ps.errf(where, key, "has a merge key (<<); a trust policy is read by reviewers, so write every key out")
			continue
		case k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str":
			ps.errf(where, full, "key names are strings; quote it")
			continue
		case seen[k.Value]:
			ps.errf(where, full, "is given twice; keep one")
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{k.Value, v})
	}
	return out, true
}

// fields reads a mapping with a fixed set of keys.
func (ps *parser) fields(n *yaml.Node, where, key, shape string, known []string) map[string]*yaml.Node {
	prs, ok := ps.pairs(n, where, key, shape)
	if !ok {
		return nil
	}
	out := map[string]*yaml.Node{}
	for _, p := range prs {
		if !slices.Contains(known, p.key) {
			ps.errf(where, join(key, p.key), "is not a known key; use %s", orList(known))
			continue
		}
		out[p.key] = p.val
	}
	return out
}

// plain refuses aliases and custom tags, which would make a value mean something other than what
// it reads as.
func (ps *parser) plain(n *yaml.Node, where, key string) bool {
	if n.Kind == yaml.AliasNode {
		ps.errf(where, key, "is an alias (*%s); a trust policy is read by reviewers, so write the value out", n.Value)
		return false
	}
	if t := n.ShortTag(); strings.HasPrefix(t, "!") && !strings.HasPrefix(t, "!!") {
		ps.errf(where, key, "has the tag %s; remove it", t)
		return false
	}
	return true
}

// str reads a string scalar; ok is false (and the problem recorded) for anything else. An empty
// value (or none at all) gives "" and true: the caller knows what empty means there.
func (ps *parser) str(n *yaml.Node, where, key string) (string, bool) {
	if !ps.plain(n, where, key) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		ps.errf(where, key, "must be a string, not a %s", kindName(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str":
		// Newlines are a block scalar's line breaks (permissions take one name or more a line).
		if strings.IndexFunc(n.Value, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0 {
			ps.errf(where, key, "%q contains control characters; write printable text only", logsafe.Clip(n.Value, 80))
			return "", false
		}
		return n.Value, true
	case "!!null":
		return "", true
	}
	// YAML reads 690011 as a number and true as a boolean; claims are strings, and a number may
	// not even survive the trip (0123, 1e3), so the user quotes it.
	ps.errf(where, key, "write the value as a string: %q", n.Value)
	return "", false
}

// list reads a list of strings, or one string that the caller splits as the matching input
// would be.
func (ps *parser) list(n *yaml.Node, where, key string, split func(string) []string) ([]string, bool) {
	if !ps.plain(n, where, key) {
		return nil, false
	}
	if n.Kind == yaml.ScalarNode {
		s, ok := ps.str(n, where, key)
		return split(s), ok
	}
	if n.Kind != yaml.SequenceNode {
		ps.errf(where, key, "must be a list of strings, not a %s", kindName(n))
		return nil, false
	}
	var out []string
	good := true
	for _, it := range n.Content {
		s, ok := ps.str(it, where, key)
		if !ok {
			good = false
			continue
		}
		out = append(out, split(s)...)
	}
	return out, good
}

func (ps *parser) policy(doc *yaml.Node) *Policy {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 { // >= would do too: yaml.v3 decodes a document with one node, an empty one as io.EOF
		root = root.Content[0]
	}
	if root.Kind == yaml.DocumentNode || root.ShortTag() == "!!null" {
		ps.errf("", "", "the policy is empty; write an audience and at least one rule")
		return nil
	}
	top := ps.fields(root, "", "", "a mapping with the keys audience and rules", topKeys)
	if top == nil {
		return nil
	}
	p := &Policy{}
	if n, ok := top["audience"]; !ok {
		ps.errf("", "audience", "is missing; set it to the audience every ID token must carry, such as the broker's URL (https://cfmint.example.com)")
	} else if s, ok := ps.str(n, "", "audience"); ok {
		p.audience = ps.audience(s)
	}
	n, ok := top["rules"]
	if !ok {
		ps.errf("", "rules", "is missing; write at least one rule")
		return p
	}
	if !ps.plain(n, "", "rules") {
		return p
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		ps.errf("", "rules", "must be a list of at least one rule")
		return p
	}
	names := map[string]int{}
	for i, rn := range n.Content {
		r, ok := ps.rule(i+1, rn, names)
		if r == nil {
			continue
		}
		if !ok {
			// Kept for CheckWith alone: its other problems are recorded.
			r.partial = true
			p.rules = append(p.rules, r)
			continue
		}
		p.rules = append(p.rules, r)
		p.warnings = append(p.warnings, r.warnings()...)
		if !slices.Contains(p.issuers, r.issuer) {
			p.issuers = append(p.issuers, r.issuer)
		}
	}
	return p
}

func (ps *parser) audience(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		ps.errf("", "audience", "is empty; set it to the audience every ID token must carry, such as the broker's URL (https://cfmint.example.com)")
		return ""
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		ps.errf("", "audience", "%q contains white space; an audience is one word, usually the broker's URL", logsafe.Clip(s, 80))
		return ""
	case strings.HasPrefix(strings.ToLower(s), "https://github.com/"):
		// GitHub gives this aud to every ID token requested without an audience, so a token
		// meant for any other service would be accepted here too.
		ps.errf("", "audience", "%q is the audience GitHub puts in every ID token that asks for none; choose one of the broker's own, such as its URL", logsafe.Clip(s, 80))
		return ""
	}
	return s
}

// rule reads one rule; i counts from 1. ok is false when the rule has problems (recorded); the
// rule is then what could be read of it, or nil when it has no name to be reported by.
func (ps *parser) rule(i int, n *yaml.Node, names map[string]int) (_ *Rule, ok bool) {
	before := len(ps.errs)
	where := fmt.Sprintf("rule #%d", i)
	r := &Rule{owner: cftoken.OwnerAccount, maxTTL: DefaultMaxTTL, maxMints: DefaultMaxMints, mintWindow: DefaultMintWindow, maxActive: DefaultMaxActive}

	// The name labels every other problem of the rule, so it is read first.
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 { // <= would do too: a mapping's content is pairs
			if k, v := n.Content[j], n.Content[j+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && ruleName.MatchString(v.Value) {
				if prev, dup := names[v.Value]; dup {
					ps.errf(where, "name", "%q is already the name of rule #%d; rule names are unique", v.Value, prev)
				} else {
					names[v.Value] = i
					where = fmt.Sprintf("rule %q", v.Value)
					r.name = v.Value
				}
				break
			}
		}
	}
	f := ps.fields(n, where, "", "a mapping with name, issuer, claims, account_id and allow", ruleKeys)
	if f == nil {
		return nil, false
	}

	if v, ok := f["name"]; !ok {
		ps.errf(where, "name", "is missing; give the rule a unique name of a-z, 0-9 and - (at most 32), such as shop-deploy")
	} else if s, ok := ps.str(v, where, "name"); ok && !ruleName.MatchString(s) {
		ps.errf(where, "name", "%q is not a rule name: it goes into token names, so it is 1 to 32 of a-z, 0-9 and -, such as shop-deploy", logsafe.Clip(s, 80))
	}

	if v, ok := f["issuer"]; !ok {
		ps.errf(where, "issuer", "is missing; write the issuer exactly as tokens carry it, such as https://token.actions.githubusercontent.com")
	} else if s, ok := ps.str(v, where, "issuer"); ok {
		if err := checkIssuer(s); err != "" {
			ps.errf(where, "issuer", "%s", err)
		} else {
			r.issuer = s
		}
	}

	inClaims := map[string]bool{}
	given := 0 // entries of claims and claim_patterns, good or bad
	if v, ok := f["claims"]; ok {
		prs, _ := ps.pairs(v, where, "claims", "a mapping of claim names to the values they must equal")
		given += entries(v)
		for _, p := range prs {
			key := join("claims", p.key)
			s, ok := ps.str(p.val, where, key)
			if !ok || !ps.claimName(p.key, where, key) {
				continue
			}
			if s == "" {
				ps.errf(where, key, "is empty; write the value the claim must equal (a claim the token lacks never matches)")
				continue
			}
			inClaims[p.key] = true
			r.match = append(r.match, constraint{key: p.key, value: s})
		}
	}
	if v, ok := f["claim_patterns"]; ok {
		prs, _ := ps.pairs(v, where, "claim_patterns", "a mapping of claim names to RE2 patterns that must match the whole claim")
		given += entries(v)
		for _, p := range prs {
			key := join("claim_patterns", p.key)
			s, ok := ps.str(p.val, where, key)
			if !ok || !ps.claimName(p.key, where, key) {
				continue
			}
			if inClaims[p.key] {
				ps.errf(where, key, "is also in claims; keep one of the two")
				continue
			}
			if s == "" {
				ps.errf(where, key, "is empty; write an RE2 pattern that must match the whole claim, such as refs/heads/(main|release-.*)")
				continue
			}
			// Anchored, so that "main" cannot match "not-main-really".
			re, err := regexp.Compile(`^(?:` + s + `)$`)
			if err != nil {
				ps.errf(where, key, "%q is not an RE2 pattern (%v); write one such as refs/heads/(main|release-.*)", logsafe.Clip(s, 80), reErr(err))
				continue
			}
			r.match = append(r.match, constraint{key: p.key, value: s, re: re})
		}
	}
	// Reported whatever else is wrong with the rule; a rule whose claims are there but wrong
	// has its problems named already.
	if given == 0 {
		what := "is missing"
		if _, ok := f["claims"]; ok {
			what = "is empty"
		}
		ps.errf(where, "claims", "%s; a rule needs at least one claim or claim pattern, or it would trust every token of its issuer (match repository_id and repository_owner_id, which survive renames)", what)
	}
	for _, m := range r.match {
		r.namesEvent = r.namesEvent || m.key == "event_name"
	}
	optOut := false
	if v, ok := f[singleTenantKey]; ok {
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" && ps.plain(v, where, singleTenantKey) {
			optOut = strings.EqualFold(v.Value, "true")
			r.singleTenant = optOut
		} else {
			ps.errf(where, singleTenantKey, "must be true or false, unquoted")
		}
	}
	if r.issuer != "" && len(r.match) > 0 {
		if key, msg := tenantProblem(r, optOut); msg != "" {
			ps.errf(where, key, "%s", msg)
		}
	}

	if v, ok := f["token_owner"]; ok {
		if s, ok := ps.str(v, where, "token_owner"); ok {
			if o, ok := cftoken.ParseOwner(s); ok {
				r.owner = o
			} else {
				ps.errf(where, "token_owner", "%q is not an owner; use account or user", logsafe.Clip(s, 80))
			}
		}
	}

	if v, ok := f["account_id"]; !ok {
		ps.errf(where, "account_id", "is missing; write the account the rule grants in (32 hex characters, on the account's overview page in the dashboard)")
	} else if s, ok := ps.str(v, where, "account_id"); ok {
		if id := strings.ToLower(strings.TrimSpace(s)); cftoken.ValidID(id) {
			r.accountID = id
		} else {
			ps.errf(where, "account_id", "%q is not an account id; it is 32 hex characters, on the account's overview page in the dashboard", logsafe.Clip(s, 80))
		}
	}

	if v, ok := f["allow"]; !ok {
		ps.errf(where, "allow", "is missing; list what the rule allows: presets, permissions, zones, r2_buckets")
	} else {
		ps.allow(v, where, r)
	}

	if v, ok := f["max_ttl"]; ok {
		r.maxTTL = ps.maxTTL(v, where)
	}
	if v, ok := f["ip_filter"]; ok {
		r.ip = ps.ipFilter(v, where)
	}
	if v, ok := f["max_mints"]; ok {
		r.maxMints, r.mintWindow = ps.maxMints(v, where)
	}
	if v, ok := f["max_active"]; ok {
		r.maxActive = ps.maxActive(v, where)
	}
	if len(ps.errs) > before {
		if r.name == "" {
			return nil, false
		}
		return r, false
	}
	return r, true
}

func (ps *parser) claimName(name, where, key string) bool {
	if strings.TrimSpace(name) == "" {
		ps.errf(where, key, "the claim name is empty; write one such as repository_id")
		return false
	}
	if why, ok := brokerClaims[name]; ok {
		ps.errf(where, key, "cannot be matched: %s; match claims that name the workflow, such as repository_id or ref", why)
		return false
	}
	return true
}

func (ps *parser) allow(n *yaml.Node, where string, r *Rule) {
	f := ps.fields(n, where, "allow", "a mapping with presets, permissions, zones and r2_buckets", allowKeys)
	if f == nil {
		return
	}
	before := len(ps.errs)
	if v, ok := f["presets"]; ok {
		names, _ := ps.list(v, where, "allow.presets", splitList)
		for _, s := range names {
			name := strings.ToLower(s)
			if _, ok := policy.Presets[name]; !ok {
				ps.errf(where, "allow.presets", "%q is not a preset; use one of %s", logsafe.Clip(s, 80), strings.Join(policy.PresetNames(), ", "))
				continue
			}
			if !slices.Contains(r.presets, name) {
				r.presets = append(r.presets, name)
			}
		}
	}
	if v, ok := f["permissions"]; ok {
		// The permissions input holds one or more names a line; so does each item here.
		lines, _ := ps.list(v, where, "allow.permissions", func(s string) []string { return strings.Split(s, "\n") })
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				r.perms = append(r.perms, l)
			}
		}
	}
	if len(r.presets) == 0 && len(r.perms) == 0 && len(ps.errs) == before {
		ps.errf(where, "allow", "allows no permission; list presets (such as workers-deploy) or permissions (such as \"DNS Write\")")
	}
	if v, ok := f["zones"]; ok {
		items, _ := ps.list(v, where, "allow.zones", splitList)
		for _, it := range items {
			z := strings.ToLower(strings.TrimSuffix(it, "."))
			switch {
			case z == "*":
				r.allZones = true
			case cftoken.ValidID(z) || zoneName.MatchString(z):
				if !slices.Contains(r.zones, z) {
					r.zones = append(r.zones, z)
				}
			default:
				ps.errf(where, "allow.zones", "%q is neither a zone name (example.com), a zone id (32 hex characters) nor * (every zone of the account)", logsafe.Clip(it, 80))
			}
		}
		if r.allZones && len(r.zones) > 0 {
			ps.errf(where, "allow.zones", "* (every zone of the account) already holds the named zones; write * alone, or the zones alone")
		}
	}
	if v, ok := f["r2_buckets"]; ok {
		items, _ := ps.list(v, where, "allow.r2_buckets", splitList)
		for _, it := range items {
			b := policy.Bucket{Jurisdiction: "default", Name: it}
			if j, name, ok := strings.Cut(it, ":"); ok {
				b = policy.Bucket{Jurisdiction: strings.ToLower(j), Name: name}
				if !slices.Contains(config.Jurisdictions, b.Jurisdiction) {
					ps.errf(where, "allow.r2_buckets", "%q has jurisdiction %q; use %s, or no prefix for the default", logsafe.Clip(it, 80), logsafe.Clip(j, 80), strings.Join(config.Jurisdictions, ", "))
					continue
				}
			}
			if !bucketName.MatchString(b.Name) {
				ps.errf(where, "allow.r2_buckets", "%q is not a bucket name: 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit", logsafe.Clip(b.Name, 80))
				continue
			}
			if !slices.Contains(r.buckets, b) {
				r.buckets = append(r.buckets, b)
			}
		}
	}
}

func (ps *parser) maxTTL(n *yaml.Node, where string) time.Duration {
	const allowed = "allowed: 1m to 6h; the default is 1h"
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		ps.errf(where, "max_ttl", "%q has no unit; write a duration such as 30m (%s)", logsafe.Clip(n.Value, 80), allowed)
		return 0
	}
	s, ok := ps.str(n, where, "max_ttl")
	if !ok {
		return 0
	}
	if s == "" {
		ps.errf(where, "max_ttl", "is empty; write a duration such as 30m, or leave the key out for 1h")
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		ps.errf(where, "max_ttl", "%q is not a duration; write one such as 30m or 1h30m (%s)", logsafe.Clip(s, 80), allowed)
	case d < MinMaxTTL || d > MaxMaxTTL:
		ps.errf(where, "max_ttl", "%q is outside the allowed range 1m to 6h", logsafe.Clip(s, 80))
	case d%time.Second != 0:
		ps.errf(where, "max_ttl", "%q has a fraction of a second; token lifetimes are whole seconds", logsafe.Clip(s, 80))
	default:
		return d
	}
	return 0
}

func (ps *parser) ipFilter(n *yaml.Node, where string) ipRule {
	const allowed = "write caller (the default), none, or a list of CIDRs such as [198.51.100.0/24]"
	items, ok := ps.list(n, where, "ip_filter", splitList)
	if !ok {
		return ipRule{}
	}
	if len(items) == 0 {
		ps.errf(where, "ip_filter", "is empty; %s", allowed)
		return ipRule{}
	}
	if len(items) == 1 && n.Kind == yaml.ScalarNode {
		switch strings.ToLower(items[0]) {
		case "caller":
			return ipRule{mode: ipCaller}
		case "none":
			return ipRule{mode: ipNone}
		}
	}
	out := ipRule{mode: ipCIDRs}
	for _, it := range items {
		switch strings.ToLower(it) {
		case "caller", "none", "runner":
			ps.errf(where, "ip_filter", "%q cannot be listed with CIDRs; %s", it, allowed)
			continue
		}
		p, err := config.ParseCIDR(it)
		if err != nil {
			ps.errf(where, "ip_filter", "%v; %s", err, allowed)
			continue
		}
		if p.Bits() == 0 {
			ps.errf(where, "ip_filter", "%s matches every address; write none if tokens without an IP filter are really meant", p)
			continue
		}
		if !slices.Contains(out.cidrs, p) {
			out.cidrs = append(out.cidrs, p)
		}
	}
	return out
}

// checkIssuer returns what is wrong with an issuer, or "". Verifiers are built for these URLs, so
// anything but https would let a network attacker serve the keys; plain http is for a loopback
// test issuer only.
func checkIssuer(s string) string {
	const example = "write the issuer exactly as tokens carry it in iss, such as https://token.actions.githubusercontent.com"
	if s == "" {
		return "is empty; " + example
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Sprintf("%q is not an absolute URL; %s", logsafe.Clip(s, 80), example)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Sprintf("%q has user info, a query or a fragment, which an issuer never has; %s", logsafe.Clip(s, 80), example)
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if netaddr.IsLoopbackHost(u.Hostname()) {
			return ""
		}
		return fmt.Sprintf("%q is plain http; issuers are https (http only to a loopback host, for tests)", logsafe.Clip(s, 80))
	}
	return fmt.Sprintf("%q is not an https URL; %s", logsafe.Clip(s, 80), example)
}

// splitList splits a list written as one string on commas and white space, as the action's list
// inputs are.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

// reErr is the part of a regexp error that says what is wrong; the pattern itself is quoted
// already (and with the anchors this package adds, which would confuse).
func reErr(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code)
	}
	return err.Error()
}
