package trust

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/cfmint/cfmint/internal/logsafe"
)

// Claims are the string claims of a verified ID token.
type Claims map[string]string

// ClaimsFrom keeps the string-valued claims of a decoded token. GitHub writes every claim a
// rule can name as a string, ids and booleans included; a claim of another type is left out, so
// a rule naming it does not match (fail closed) rather than match a formatted number.
func ClaimsFrom(raw map[string]any) Claims {
	c := Claims{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			c[k] = s
		}
	}
	return c
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
	if r.issuer != issuer {
		return false
	}
	for _, m := range r.match {
		if !m.holds(c) {
			return false
		}
	}
	return true
}

// noMatch explains why no rule matched: what the token claims, and the rules that missed by one
// claim (the usual cause: a job that names an environment gets another sub).
func (p *Policy) noMatch(issuer string, c Claims) *Denial {
	var near []string
	reason := ReasonUnknownRepository
	known := false // some rule of this issuer accepts the token's repository
	trusted := false
	for _, r := range p.rules {
		if r.issuer != issuer {
			continue
		}
		trusted = true
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
		if len(failed) == 1 && len(near) < 3 {
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
	case !trusted:
		return &Denial{Reason: ReasonIssuer, Msg: fmt.Sprintf("no rule trusts issuer %s (%s); the policy trusts %s", show(issuer), describe(c), strings.Join(p.issuers, ", "))}
	case len(near) > 0:
		msg += "; " + strings.Join(near, "; ")
	case known:
		reason = ReasonClaims
	}
	return &Denial{Reason: reason, Msg: msg}
}

// differs says how one claim of rule r differs from the token's.
func differs(r *Rule, m constraint, c Claims) string {
	got, ok := c[m.key]
	has := "none"
	if ok {
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
	v = logsafe.Clip(v, 80)
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' }) >= 0 {
		return strconv.Quote(v)
	}
	return v
}
