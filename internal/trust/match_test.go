package trust

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

func examplePolicy(t testing.TB) *Policy {
	t.Helper()
	b, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, string(b))
}

// shopClaims are the claims of a push to main in octo-org/shop, which the example policy trusts.
func shopClaims() Claims {
	return Claims{
		"sub":                 "repo:octo-org/shop:ref:refs/heads/main",
		"repository":          "octo-org/shop",
		"repository_id":       "690011",
		"repository_owner":    "octo-org",
		"repository_owner_id": "4200",
		"ref":                 "refs/heads/main",
		"ref_protected":       "true",
	}
}

func with(c Claims, kv ...string) Claims {
	out := Claims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<none>" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func TestMatch(t *testing.T) {
	t.Parallel()
	const ghes = "https://ghes.example.com/_services/token"
	p := mustParse(t, "audience: x\nrules:\n"+
		ruleItem("name: main-only", `claim_patterns: {ref: "refs/heads/main"}`)+
		ruleItem("name: any-ref")+
		ruleItem("name: ghes", "issuer: "+ghes)+
		ruleItem("name: any-env", `claim_patterns: {environment: ".*"}`)+
		ruleItem("name: octo-org", `claims: {repository_owner_id: "4200"}`, `claim_patterns: {repository: "octo-org/.*"}`))
	base := Claims{"repository_id": "690011", "repository_owner_id": "4200", "repository": "octo-org/shop", "ref": "refs/heads/main"}
	cases := []struct {
		name   string
		issuer string
		claims Claims
		want   []string
	}{
		{"every rule of the issuer that holds, in order", github, base, []string{"main-only", "any-ref", "octo-org"}},
		{"patterns match the whole claim", github, with(base, "ref", "refs/heads/main-x"), []string{"any-ref", "octo-org"}},
		{"nor a suffix", github, with(base, "ref", "x-refs/heads/main"), []string{"any-ref", "octo-org"}},
		{"a missing claim never matches, even .*", github, with(base, "ref", "<none>"), []string{"any-ref", "octo-org"}},
		{"an empty claim matches .*", github, with(base, "environment", ""), []string{"main-only", "any-ref", "any-env", "octo-org"}},
		{"claims compare as strings", github, with(base, "repository_id", "0690011"), []string{"octo-org"}},
		// Equality, not a prefix or a suffix: a value that extends the rule's is another tenant.
		{"a claim that extends the rule's value", github, with(base, "repository_id", "6900112"), []string{"octo-org"}},
		{"a claim the rule's value extends", github, with(base, "repository_id", "69001"), []string{"octo-org"}},
		{"a claim that ends in the rule's value", github, with(base, "repository_id", "1690011"), []string{"octo-org"}},
		{"an owner id that extends the rule's", github, with(base, "repository_owner_id", "42001"), []string{"main-only", "any-ref"}},
		{"a number where the rule wants a string", github, with(base, "repository_id", typeMark+"number"), []string{"octo-org"}},
		{"a boolean never matches .*", github, with(base, "environment", typeMark+"boolean"), []string{"main-only", "any-ref", "octo-org"}},
		{"claim values are case-sensitive", github, with(base, "repository", "Octo-Org/shop"), []string{"main-only", "any-ref"}},
		{"issuer exact", github + "/", base, nil},
		{"another issuer", ghes, base, []string{"ghes"}},
		{"no claims", github, Claims{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, r := range p.Match(tc.issuer, tc.claims) {
				got = append(got, r.Name())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Match = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNoMatch(t *testing.T) {
	t.Parallel()
	ex := examplePolicy(t)
	subPolicy := mustParse(t, ruleYAML("name: shop-sub", `claims: {repository_id: "690011", sub: "repo:octo-org/shop:ref:refs/heads/main"}`))
	cases := []struct {
		name   string
		p      *Policy
		issuer string
		claims Claims
		reason Reason
		want   string
	}{
		{"unknown repository", ex, github, Claims{"repository": "octo-org/site", "repository_id": "123", "ref": "refs/heads/x"}, ReasonUnknownRepository,
			"no rule of this broker trusts this repository (repository octo-org/site (repository_id 123), ref refs/heads/x, environment (none))"},
		{"an environment changed sub", subPolicy, github, with(shopClaims(), "sub", "repo:octo-org/shop:environment:production", "environment", "production"), ReasonClaims,
			`no rule matches repository octo-org/shop (repository_id 690011), ref refs/heads/main, environment production; rule shop-sub differs only in claim sub: it wants "repo:octo-org/shop:ref:refs/heads/main", the token has "repo:octo-org/shop:environment:production" (a job that names an environment gets a sub of repo:OWNER/REPO:environment:NAME; match repository_id and environment instead of sub)`},
		{"a pattern missed", ex, github, with(shopClaims(), "ref", "refs/heads/dev"), ReasonPattern,
			`no rule matches repository octo-org/shop (repository_id 690011), ref refs/heads/dev, environment (none); rule shop-deploy differs only in claim ref: its pattern refs/heads/(main|release-.*) does not match the token's "refs/heads/dev"`},
		// A pin claim missing or another tenant's: a stranger, told nothing of the policy.
		{"a pin claim missing", ex, github, with(shopClaims(), "repository_owner_id", "<none>"), ReasonUnknownRepository,
			`no rule of this broker trusts this repository (repository octo-org/shop (repository_id 690011), ref refs/heads/main, environment (none))`},
		{"a same-owner repository", ex, github, with(shopClaims(), "repository", "octo-org/site", "repository_id", "690012"), ReasonUnknownRepository,
			`no rule of this broker trusts this repository (repository octo-org/site (repository_id 690012), ref refs/heads/main, environment (none))`},
		{"the tenant is trusted: the near miss is named", mustParse(t, ruleYAML("name: shop-env", `claims: {repository_id: "690011", environment: production}`)), github, with(shopClaims(), "ref", "refs/tags/v1", "environment", "staging"), ReasonClaims,
			`no rule matches repository octo-org/shop (repository_id 690011), ref refs/tags/v1, environment staging; rule shop-env differs only in claim environment: it wants "production", the token has "staging"`},
		// Two claims missed: no near miss to name, but the rule knows the repository.
		{"the tenant is trusted, two claims missed", mustParse(t, ruleYAML("name: shop-env", `claims: {repository_id: "690011", environment: production, ref: refs/heads/main}`)), github, with(shopClaims(), "ref", "refs/tags/v1", "environment", "staging"), ReasonClaims,
			`no rule matches repository octo-org/shop (repository_id 690011), ref refs/tags/v1, environment staging`},
		// A rule whose repository pin holds is about the token's repository, even when its
		// pattern on another pin claim misses: it is named.
		{"a pattern on the owner pin missed", mustParse(t, ruleYAML(`claim_patterns: {repository_owner_id: "43.*"}`)), github, shopClaims(), ReasonPattern,
			`no rule matches repository octo-org/shop (repository_id 690011), ref refs/heads/main, environment (none); rule shop-deploy differs only in claim repository_owner_id: its pattern 43.* does not match the token's "4200"`},
		// At most three near misses are named.
		{"four near misses", mustParse(t, "audience: x\nrules:\n"+
			ruleItem("name: a", `claims: {repository_id: "690011", environment: a}`)+
			ruleItem("name: b", `claims: {repository_id: "690011", environment: b}`)+
			ruleItem("name: c", `claims: {repository_id: "690011", environment: c}`)+
			ruleItem("name: d", `claims: {repository_id: "690011", environment: d}`)), github, shopClaims(), ReasonClaims,
			`no rule matches repository octo-org/shop (repository_id 690011), ref refs/heads/main, environment (none); rule a differs only in claim environment: it wants "a", the token has none; rule b differs only in claim environment: it wants "b", the token has none; rule c differs only in claim environment: it wants "c", the token has none`},
		{"issuer not trusted", ex, "https://issuer.example.com", shopClaims(), ReasonIssuer,
			"no rule of this broker trusts issuer https://issuer.example.com (repository octo-org/shop (repository_id 690011), ref refs/heads/main, environment (none))"},
		{"odd claim values are quoted", ex, github, Claims{"repository": "octo-org/a b", "ref": "refs/heads/\"x\"\n"}, ReasonUnknownRepository,
			`no rule of this broker trusts this repository (repository "octo-org/a b", ref "refs/heads/\"x\"\n", environment (none))`},
		{"values starting with a quote or a space are quoted", ex, github, Claims{"repository": `"octo-org/x`, "ref": " refs/heads/x"}, ReasonUnknownRepository,
			`no rule of this broker trusts this repository (repository "\"octo-org/x", ref " refs/heads/x", environment (none))`},
		{"another issuer's subject", mustParse(t, ruleYAML("issuer: http://127.0.0.1:9", `claims: {sub: "a"}`, "single_tenant_issuer: true")), "http://127.0.0.1:9", Claims{"sub": "b"}, ReasonClaims,
			`no rule matches subject b, repository (none), ref (none), environment (none); rule shop-deploy differs only in claim sub: it wants "a", the token has "b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := tc.p.Decide(tc.issuer, tc.claims, Ask{Preset: "workers-deploy"}, realGroups(t), caller)
			var den *Denial
			if d != nil || !errors.As(err, &den) {
				t.Fatalf("Decide = %+v, %v; want a denial", d, err)
			}
			if den.Reason != tc.reason || den.Rule != "" {
				t.Errorf("reason %q, rule %q; want %q and no rule", den.Reason, den.Rule, tc.reason)
			}
			if den.Error() != tc.want {
				t.Errorf("message\n  %s\nwant\n  %s", den.Error(), tc.want)
			}
		})
	}
}

// TestStrangerLearnsNothing: a caller whose tenant no rule pins is told no rule name, no trusted
// id and no claim value but its own; the audit line (Detail) keeps the near miss.
func TestStrangerLearnsNothing(t *testing.T) {
	t.Parallel()
	ex := examplePolicy(t)
	for _, c := range []Claims{
		with(shopClaims(), "repository", "octo-org/site", "repository_id", "690012"), // same owner
		with(shopClaims(), "repository_owner_id", "4201"),                            // same repository id, another owner
		with(shopClaims(), "repository_id", "6900110"),                               // an id that extends the trusted one
		with(shopClaims(), "repository_id", "<none>"),
	} {
		den := ex.Stranger(github, c)
		if den == nil {
			t.Fatalf("%v: Stranger = nil; the tenant is not trusted", c)
		}
		for _, secret := range []string{"shop-deploy", `"690011"`, `"4200"`, "023e105f4ecef8ad9ca31a8372d0c353", "refs/heads/(main", "example.com"} {
			if strings.Contains(den.Msg, secret) {
				t.Errorf("%v: the stranger's denial %q names %s", c, den.Msg, secret)
			}
		}
		if !strings.HasPrefix(den.Msg, "no rule of this broker trusts this repository (repository ") {
			t.Errorf("%v: denial %q", c, den.Msg)
		}
		if !strings.Contains(den.Audit(), "shop-deploy") {
			t.Errorf("%v: the audit line %q lost the near miss", c, den.Audit())
		}
		_, err := ex.Decide(github, c, Ask{Preset: "workers-deploy"}, realGroups(t), caller)
		if err == nil || err.Error() != den.Msg {
			t.Errorf("%v: Decide says %v, Stranger %q", c, err, den.Msg)
		}
	}
	// The trusted repository on another branch is no stranger, and learns the near miss.
	c := with(shopClaims(), "ref", "refs/heads/dev")
	if den := ex.Stranger(github, c); den != nil {
		t.Fatalf("Stranger(another branch) = %v", den)
	}
	_, err := ex.Decide(github, c, Ask{Preset: "workers-deploy"}, realGroups(t), caller)
	if err == nil || !strings.Contains(err.Error(), "rule shop-deploy differs only in claim ref") {
		t.Errorf("the trusted repository on another branch is not told the near miss: %v", err)
	}
	if den := ex.Stranger("https://issuer.example.com", shopClaims()); den == nil || den.Reason != ReasonIssuer || strings.Contains(den.Msg, "githubusercontent") {
		t.Errorf("Stranger(another issuer) = %v", den)
	}
}

func TestClaimsFrom(t *testing.T) {
	t.Parallel()
	got := ClaimsFrom(map[string]any{"repository_id": "1", "exp": float64(1700000000), "ref_protected": true, "aud": []any{"x"}, "o": map[string]any{}, "n": nil})
	want := Claims{"repository_id": "1", "exp": typeMark + "number", "ref_protected": typeMark + "boolean", "aud": typeMark + "array", "o": typeMark + "object", "n": typeMark + "null"}
	if !maps.Equal(got, want) {
		t.Errorf("ClaimsFrom = %q, want %q", got, want)
	}
}
