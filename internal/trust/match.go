package trust

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/cfmint/cfmint/internal/logsafe"
)

// Claims are the claims of a verified ID token. GitHub writes every claim a rule can name as a
// string, ids and booleans included, and so does GitLab; a claim of another type (a number, a
// boolean, an array, an object, null) is held as its type's name after a NUL byte, which no
// policy value can hold (Parse refuses control characters), so it never matches, not even .*,
// and a denial can say what the token has instead.
type Claims map[string]string

// typeMark starts the value of a claim that is not a string.
const typeMark = "\x00"

// ClaimsFrom reads a decoded token's claims: strings as they are, other types as a mark of their
// type (see Claims). A rule naming a number never matches a formatted one: it fails closed.
func ClaimsFrom(raw map[string]any) Claims {
	c := Claims{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			c[k] = s
		} else {
			c[k] = typeMark + typeName(v)
		}
	}
	return c
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "number" // float64 or json.Number, as encoding/json decodes them
}

// nonString returns the type of a claim value that is not a string (see Claims).
func nonString(v string) (string, bool) {
	if strings.HasPrefix(v, typeMark) {
		return strings.TrimPrefix(v, typeMark), true
	}
	return "", false
}

// Match returns the rules whose issuer is issuer and whose every claim and claim pattern holds,
// in policy order. A claim the token lacks never holds.
func (p *Policy) Match(issuer string, c Claims) []*Rule {
	var out []*Rule
	for _, r := range p.rules {
		if r.matches(issuer, c) {
			out = append(out, r)
		}
	}
	return out
}

func (r *Rule) matches(issuer string, c Claims) bool {
	if r.issuer != issuer || !r.claimsHold(c) {
		return false
	}
	// A privileged event matches only a rule that names event_name, whatever else it names.
	if _, why := privileged(c); why != "" && !r.namesEvent {
		return false
	}
	return true
}

func (r *Rule) claimsHold(c Claims) bool {
	for _, m := range r.match {
		if !m.holds(c) {
			return false
		}
	}
	return true
}

// tenantHolds reports whether the token is of a tenant the rule trusts: its issuer, and every
// exact claim that pins a tenant on it (repository_id, repository_owner_id, enterprise_id;
// project_id, namespace_id). A single-tenant rule's tenant is its issuer's.
func (r *Rule) tenantHolds(issuer string, c Claims) bool {
	if r.issuer != issuer {
		return false
	}
	pins := pinClaims(kindOf(r.issuer))
	for _, m := range r.match {
		if m.re == nil && slices.Contains(pins, m.key) && !m.holds(c) {
			return false
		}
	}
	return true
}

// Stranger returns the denial of a token whose tenant no rule trusts (no rule of its issuer
// whose id pins its claims hold), or nil when some rule trusts the tenant. A stranger's denial
// names no rule, no trusted id and no claim value but the token's own; its Detail, for the
// audit log, says everything.
func (p *Policy) Stranger(issuer string, c Claims) *Denial {
	for _, r := range p.rules {
		if r.tenantHolds(issuer, c) {
			return nil
		}
	}
	return p.noMatch(issuer, c)
}

// noMatch explains why no rule matched: what the token claims and, to a caller of a tenant some
// rule trusts, the rules that missed by one claim (the usual cause: a job that names an
// environment gets another sub). A stranger is told only that no rule trusts it; the full
// explanation is the Denial's Detail.
func (p *Policy) noMatch(issuer string, c Claims) *Denial {
	// The audit log's explanation names every near miss; the caller's, only rules about its own
	// repository.
	full := p.explain(issuer, c, func(*Rule) bool { return true }, func(*Rule, Claims) bool { return true })
	if full.Reason == ReasonIssuer {
		return &Denial{Reason: ReasonIssuer, Msg: fmt.Sprintf("no rule of this broker trusts issuer %s (%s)", show(issuer), describe(c)), Detail: full.Msg}
	}
	d := p.explain(issuer, c, func(r *Rule) bool { return r.tenantHolds(issuer, c) }, sameTenant)
	if d.Reason == ReasonIssuer {
		// No rule trusts the token's tenant: say so, and nothing of the policy; but a pin claim of
		// the wrong type is the caller's own to know of.
		msg := "no rule of this broker trusts this repository (" + describe(c) + ")"
		for _, k := range pinClaims(kindOf(issuer)) {
			if t, typed := nonString(c[k]); typed {
				msg += fmt.Sprintf("; the token's %s is a %s, not a string (claims are compared as strings, so it never matches)", k, t)
			}
		}
		return &Denial{Reason: ReasonUnknownRepository, Msg: msg, Detail: full.Msg}
	}
	d.Detail = full.Msg
	return d
}

// explain says why no rule of those for which consider holds matched, naming as near misses
// the rules for which related holds.
func (p *Policy) explain(issuer string, c Claims, consider func(*Rule) bool, related func(*Rule, Claims) bool) *Denial {
	var near []string
	reason := ReasonUnknownRepository
	known := false // some rule of this issuer accepts the token's repository
	trusted := false
	var event []string // rules that hold but for the token's privileged event
	for _, r := range p.rules {
		if r.issuer != issuer || !consider(r) {
			continue
		}
		trusted = true
		if r.claimsHold(c) {
			event = append(event, r.name)
			continue
		}
		var failed []constraint
		repoOK := true
		for _, m := range r.match {
			if !m.holds(c) {
				failed = append(failed, m)
				if m.key == "repository" || m.key == "repository_id" {
					repoOK = false
				}
			}
		}
		known = known || repoOK
		// To a caller, a rule of another tenant (an id pin differs) is no near miss: naming it
		// would point at an unrelated rule, someone else's.
		if len(failed) == 1 && len(near) < 3 && related(r, c) {
			if len(near) == 0 {
				reason = ReasonClaims
				if failed[0].re != nil {
					reason = ReasonPattern
				}
			}
			near = append(near, differs(r, failed[0], c))
		}
	}
	msg := "no rule matches " + describe(c)
	switch {
	case len(event) > 0:
		ev, why := privileged(c)
		return &Denial{Reason: ReasonEvent, Msg: fmt.Sprintf("%s: the token's event_name is %s, which %s; rule %s would match, but a rule trusts such an event only when it names event_name (claims: {event_name: %s}); prefer a job with a deployment environment that needs a reviewer's approval", msg, show(ev), why, strings.Join(event, ", rule "), show(ev))}
	case !trusted:
		return &Denial{Reason: ReasonIssuer, Msg: fmt.Sprintf("no rule trusts issuer %s (%s); the policy trusts %s", show(issuer), describe(c), strings.Join(p.issuers, ", "))}
	case len(near) > 0:
		msg += "; " + strings.Join(near, "; ")
	case known:
		reason = ReasonClaims
	}
	return &Denial{Reason: reason, Msg: msg}
}

// sameTenant reports whether rule r may be about the token's repository: the rule's repository
// pin (repository_id, project_id) agrees with the token, or, for a rule that pins only an owner,
// each of its owner pins does. A pin agrees when it holds, or when the token lacks the claim or
// has it in another type than a string (mistakes worth naming). A rule whose pin holds another
// id is someone else's, and no near miss.
func sameTenant(r *Rule, c Claims) bool {
	pins := pinClaims(kindOf(r.issuer))
	agrees := func(m constraint) bool {
		got, ok := c[m.key]
		_, typed := nonString(got)
		return m.holds(c) || !ok || typed
	}
	repoPinned, ownerOK := false, true
	for _, m := range r.match {
		if m.re != nil || !slices.Contains(pins, m.key) {
			continue
		}
		if repoPins[m.key] {
			if !agrees(m) {
				return false
			}
			repoPinned = true
			continue
		}
		ownerOK = ownerOK && agrees(m)
	}
	return repoPinned || ownerOK
}

// repoPins are the pins that name one repository or project, not an owner.
var repoPins = map[string]bool{"repository_id": true, "project_id": true}

// differs says how one claim of rule r differs from the token's.
func differs(r *Rule, m constraint, c Claims) string {
	got, ok := c[m.key]
	has := "none"
	if t, typed := nonString(got); typed {
		has = "a " + t + ", not a string (claims are compared as strings, so this never matches)"
	} else if ok {
		has = strconv.Quote(logsafe.Clip(got, 80))
	}
	if m.re != nil {
		return fmt.Sprintf("rule %s differs only in claim %s: its pattern %s does not match the token's %s", r.name, m.key, m.value, has)
	}
	s := fmt.Sprintf("rule %s differs only in claim %s: it wants %q, the token has %s", r.name, m.key, logsafe.Clip(m.value, 80), has)
	if m.key == "sub" && strings.Contains(got, ":environment:") && !strings.Contains(m.value, ":environment:") {
		s += " (a job that names an environment gets a sub of repo:OWNER/REPO:environment:NAME; match repository_id and environment instead of sub)"
	}
	return s
}

// describe says who a token speaks for, in the claims a reader recognises.
func describe(c Claims) string {
	repo := show(c["repository"])
	if id, ok := c["repository_id"]; ok {
		repo += " (repository_id " + show(id) + ")"
	}
	s := "repository " + repo + ", ref " + show(c["ref"]) + ", environment " + show(c["environment"])
	if _, ok := c["repository"]; !ok {
		if sub, ok := c["sub"]; ok {
			s = "subject " + show(sub) + ", " + s
		}
	}
	return s
}

// show writes a claim for a message: bare when it is plain text, quoted when it holds anything a
// log line could be fooled by.
func show(v string) string {
	if v == "" {
		return "(none)"
	}
	if t, typed := nonString(v); typed {
		return "(a " + t + ")"
	}
	v = logsafe.Clip(v, 80)
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' }) >= 0 {
		return strconv.Quote(v)
	}
	return v
}
