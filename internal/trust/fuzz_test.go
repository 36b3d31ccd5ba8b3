package trust

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/policy"
)

// FuzzParse checks that Parse never panics, that what it accepts holds every promise the
// validation makes, and that deciding on an accepted policy never panics either.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add(ruleYAML())
	f.Add(ruleYAML("ip_filter: [198.51.100.0/24]", "max_ttl: 6h", "token_owner: user", `claim_patterns: {ref: "refs/tags/v[0-9]+"}`))
	f.Add(ruleYAML("claims: {repository_id: 690011}"))
	f.Add("audience: x\nrules:\n  - &a {name: a}\n  - *a\n")
	f.Add("audience: x\nrules: [{name: a, <<: {issuer: y}}]\n")
	f.Add("audience: !!binary eA==\n")
	f.Add("- [[[[\n")
	f.Add(ruleYAML(`claim_patterns: {sub: "repo:.*:ref:refs/heads/main"}`, "-claims"))
	f.Add(ruleYAML("issuer: https://gitlab.com", `claims: {project_id: "42", ref_type: branch}`, `claim_patterns: {ref_path: "refs/heads/main"}`))
	f.Add(ruleYAML("issuer: https://ghes.example.com/_services/token", "single_tenant_issuer: true", `claims: {ref: refs/heads/main}`))
	f.Add(ruleYAML("issuer: https://token.actions.eu.ghe.com", `claims: {enterprise_id: "7", event_name: pull_request_target}`))
	groups := realGroups(f)
	f.Fuzz(func(t *testing.T, yml string) {
		p, err := Parse([]byte(yml))
		if err != nil {
			if p != nil {
				t.Fatal("a policy returned with an error")
			}
			for _, l := range lines(err) {
				if strings.TrimSpace(l) == "" {
					t.Fatalf("an empty problem in %q", err)
				}
			}
			return
		}
		if p.audience == "" || strings.ContainsAny(p.audience, " \t\n") {
			t.Fatalf("audience %q", p.audience)
		}
		if len(p.rules) == 0 {
			t.Fatal("no rules")
		}
		seen := map[string]bool{}
		for _, r := range p.rules {
			switch {
			case !ruleName.MatchString(r.name) || seen[r.name]:
				t.Fatalf("rule name %q (seen %v)", r.name, seen[r.name])
			case checkIssuer(r.issuer) != "" || !slices.Contains(p.Issuers(), r.issuer):
				t.Fatalf("rule %s: issuer %q", r.name, r.issuer)
			case len(r.match) == 0:
				t.Fatalf("rule %s matches every token", r.name)
			case !cftoken.ValidID(r.accountID):
				t.Fatalf("rule %s: account %q", r.name, r.accountID)
			case r.owner != cftoken.OwnerAccount && r.owner != cftoken.OwnerUser:
				t.Fatalf("rule %s: owner %q", r.name, r.owner)
			case r.maxTTL < MinMaxTTL || r.maxTTL > MaxMaxTTL:
				t.Fatalf("rule %s: max_ttl %v", r.name, r.maxTTL)
			case len(r.presets) == 0 && len(r.perms) == 0:
				t.Fatalf("rule %s allows nothing", r.name)
			case r.allZones && len(r.zones) > 0:
				t.Fatalf("rule %s: * with zones %q", r.name, r.zones)
			case r.ip.mode == ipCIDRs && len(r.ip.cidrs) == 0:
				t.Fatalf("rule %s: an empty CIDR list", r.name)
			}
			seen[r.name] = true
			for _, pr := range r.presets {
				if _, ok := policy.Presets[pr]; !ok {
					t.Fatalf("rule %s: preset %q", r.name, pr)
				}
			}
			for _, c := range r.ip.cidrs {
				if c.Bits() == 0 || c.Masked() != c {
					t.Fatalf("rule %s: CIDR %v", r.name, c)
				}
			}
			// A rule of exact claims matches a token that carries just those claims.
			claims := Claims{}
			exact := true
			for _, m := range r.match {
				claims[m.key] = m.value
				exact = exact && m.re == nil
			}
			if exact && !slices.Contains(p.Match(r.issuer, claims), r) {
				t.Fatalf("rule %s does not match its own claims %v", r.name, claims)
			}
			// Nor does it match when any one value is extended, cut short or given another type:
			// claims compare whole.
			for _, m := range r.match {
				if m.re != nil {
					continue
				}
				for _, v := range []string{m.value + "0", m.value + "/x", m.value[:len(m.value)-1], "x" + m.value, typeMark + "number"} {
					other := maps.Clone(claims)
					other[m.key] = v
					if v != m.value && r.matches(r.issuer, other) {
						t.Fatalf("rule %s matches claim %s = %q, not its %q", r.name, m.key, v, m.value)
					}
				}
			}
			// Every rule pins a tenant by an exact id, or (off GitHub and gitlab.com) says its
			// issuer is single-tenant.
			pinned := slices.ContainsFunc(r.match, func(m constraint) bool { return m.re == nil && slices.Contains(pinClaims(kindOf(r.issuer)), m.key) })
			if !pinned && (!r.singleTenant || kindOf(r.issuer) != issuerOther) {
				t.Fatalf("rule %s of %s pins no tenant (single-tenant %v)", r.name, r.issuer, r.singleTenant)
			}
			// A privileged event never matches a rule that does not name event_name.
			if !r.namesEvent {
				ev := maps.Clone(claims)
				ev["event_name"] = "pull_request_target"
				if r.matches(r.issuer, ev) {
					t.Fatalf("rule %s matches pull_request_target without naming event_name", r.name)
				}
			}
			_, _ = p.Decide(r.issuer, claims, Ask{Preset: "workers-deploy"}, groups, caller)
		}
		if len(seen) != len(p.rules) || len(p.Issuers()) > len(p.rules) {
			t.Fatalf("%d names, %d issuers for %d rules", len(seen), len(p.Issuers()), len(p.rules))
		}
		_ = p.Check(groups)
	})
}
