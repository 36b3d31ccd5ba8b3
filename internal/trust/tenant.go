package trust

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// An issuer that many customers share signs ID tokens for every repository on it, so a rule of
// such an issuer that matches only names, refs or patterns trusts whoever registers a fitting
// name. Every rule therefore pins a tenant by id, as an exact claim: one of the claims its
// issuer guarantees are ids of the repository, its owner or the enterprise.
type issuerKind int

const (
	issuerOther  issuerKind = iota // GitHub Enterprise Server, a GitLab instance, a test issuer
	issuerGitHub                   // GitHub.com in every form: shared, GHEC's per enterprise, data residency
	issuerGitLab                   // gitlab.com
)

// githubPins and gitlabPins are the id claims that pin a tenant on each kind of issuer: ids are
// never reused or handed to whoever re-registers a deleted or renamed name.
var (
	githubPins = []string{"repository_id", "repository_owner_id", "enterprise_id"}
	gitlabPins = []string{"project_id", "namespace_id"}
)

// kindOf tells GitHub's and GitLab's shared issuers from the rest:
//
//   - https://token.actions.githubusercontent.com, and GHEC's .../<enterpriseSlug> under it;
//   - https://token.actions.<subdomain>.ghe.com (GHE.com, data residency);
//   - https://gitlab.com.
//
// GitHub Enterprise Server (https://HOST/_services/token) and GitLab instances are issuerOther.
func kindOf(issuer string) issuerKind {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuerOther
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	switch {
	case host == "token.actions.githubusercontent.com":
		return issuerGitHub
	case strings.HasPrefix(host, "token.actions.") && strings.HasSuffix(host, ".ghe.com"):
		return issuerGitHub
	case host == "gitlab.com":
		return issuerGitLab
	}
	return issuerOther
}

// pinClaims are the claims that pin a tenant on an issuer of kind k. An issuer of another kind
// may be shaped like GitHub's (Enterprise Server) or GitLab's (an instance), so either family
// pins there.
func pinClaims(k issuerKind) []string {
	switch k {
	case issuerGitHub:
		return githubPins
	case issuerGitLab:
		return gitlabPins
	}
	return append(slices.Clone(githubPins), gitlabPins...)
}

// singleTenantKey is the rule key that opts a rule out of the tenant pin: its issuer serves one
// organisation only (GitHub Enterprise Server, a GitLab instance of one's own), so every token it
// signs is the organisation's.
const singleTenantKey = "single_tenant_issuer"

// tenantProblem says what a rule lacks to pin a tenant, or "".
func tenantProblem(r *Rule, optOut bool) (key, msg string) {
	k := kindOf(r.issuer)
	pins := pinClaims(k)
	if optOut {
		switch k {
		case issuerGitHub:
			return singleTenantKey, fmt.Sprintf("is true, but %s signs ID tokens for every repository on GitHub (or every one of the enterprise); pin %s instead", r.issuer, orList(pins))
		case issuerGitLab:
			return singleTenantKey, fmt.Sprintf("is true, but %s signs ID tokens for every project on gitlab.com; pin %s instead", r.issuer, orList(pins))
		}
		return "", ""
	}
	for _, m := range r.match {
		if m.re == nil && slices.Contains(pins, m.key) {
			return "", ""
		}
	}
	var who string
	switch k {
	case issuerGitHub:
		who = "every repository on GitHub"
	case issuerGitLab:
		who = "every project on gitlab.com"
	default:
		who = "every repository or project of the issuer"
	}
	msg = fmt.Sprintf("pins no tenant by id, so the rule trusts %s that fits its other claims; add %s to claims, as an exact value (a name can be re-registered once it is free, and a pattern fits names not chosen yet)", who, orList(pins))
	if k == issuerOther {
		msg += fmt.Sprintf(", or, if this issuer signs tokens for your organisation only (GitHub Enterprise Server, your own GitLab instance), set %s: true", singleTenantKey)
	}
	return "claims", msg
}

// Names that anyone can re-register once their owner deletes or renames them: a rule may match
// them beside an id pin, but the id is what pins.
var nameClaims = map[string]string{
	"repository":       "repository_id",
	"repository_owner": "repository_owner_id",
	"enterprise":       "enterprise_id",
	"project_path":     "project_id",
	"namespace_path":   "namespace_id",
}

// tenantClaims are the claims that say who a token speaks for; a pattern with .* in one of them
// lets names nobody has chosen yet match.
var tenantClaims = map[string]bool{
	"sub": true, "repository": true, "repository_owner": true, "repository_id": true, "repository_owner_id": true,
	"enterprise": true, "enterprise_id": true, "job_workflow_ref": true, "workflow_ref": true,
	"project_path": true, "project_id": true, "namespace_path": true, "namespace_id": true, "ci_config_ref_uri": true,
}

// immutableSub is GitHub's sub that carries ids: repo:OWNER@OWNER-ID/REPO@REPO-ID:...
var immutableSub = regexp.MustCompile(`^repo:[^/:@]+@[0-9]+/[^/:@]+@[0-9]+:`)

// warnings are what a reviewer of the rule should know though the policy is valid: claims that
// match names, and patterns that let any extension of a tenant's name match.
func (r *Rule) warnings() []string {
	var out []string
	where := fmt.Sprintf("rule %q", r.name)
	for _, m := range r.match {
		key := "claims." + m.key
		if m.re != nil {
			key = "claim_patterns." + m.key
		}
		warn := func(format string, args ...any) {
			out = append(out, fmt.Sprintf("%s: key %q: %s", where, key, fmt.Sprintf(format, args...)))
		}
		if id, ok := nameClaims[m.key]; ok {
			warn("matches a name, which its owner can rename and anyone can register once it is free; match %s, which never changes hands", id)
		}
		if m.key == "sub" && !immutableSub.MatchString(m.value) && !strings.HasPrefix(m.value, "project_path:") {
			warn("matches a sub of names (repo:OWNER/REPO:...), which a re-registered name also gets; match repository_id, or GitHub's immutable sub repo:OWNER@OWNER-ID/REPO@REPO-ID:...")
		}
		if m.key == "sub" && strings.HasPrefix(m.value, "project_path:") {
			warn("matches a sub of names (project_path:GROUP/PROJECT:...), which a re-registered name also gets; match project_id or namespace_id")
		}
		if m.re != nil && tenantClaims[m.key] && (strings.Contains(m.value, ".*") || strings.Contains(m.value, ".+")) {
			warn("the pattern %s holds .* (or .+), so it fits names that extend the one meant (acme/shop.* fits acme/shop-evil); spell the names out", m.value)
		}
		if m.re != nil && m.key == "event_name" && strings.Contains(m.value, ".*") {
			warn("the pattern %s holds .*, so the rule trusts privileged events (%s) of any kind; name the events", m.value, strings.Join(PrivilegedEvents(), ", "))
		}
	}
	return out
}

// Warnings are what `policy check` should show about a valid policy: rules matching names that
// can change hands, and patterns that fit more tenants than meant. Each names the rule and key,
// like Parse's errors; none makes the policy invalid.
func (p *Policy) Warnings() []string { return slices.Clone(p.warnings) }
