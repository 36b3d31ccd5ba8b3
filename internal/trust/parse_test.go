package trust

import (
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/policy"
)

func TestParseExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, string(b))
	if err := p.Check(realGroups(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if p.Audience() != "https://cfmint.example.com" {
		t.Errorf("Audience = %q", p.Audience())
	}
	if got := p.Issuers(); !slices.Equal(got, []string{github}) {
		t.Errorf("Issuers = %q", got)
	}
	if len(p.rules) != 1 {
		t.Fatalf("%d rules", len(p.rules))
	}
	r := p.rules[0]
	want := &Rule{
		name:   "shop-deploy",
		issuer: github,
		match: []constraint{
			{key: "repository_id", value: "690011"},
			{key: "repository_owner_id", value: "4200"},
			{key: "ref", value: "refs/heads/(main|release-.*)", re: r.match[2].re},
		},
		owner:     cftoken.OwnerAccount,
		accountID: acct,
		presets:   []string{"workers-deploy", "r2-upload"},
		perms:     []string{"Zone Read"},
		zones:     []string{"example.com"},
		buckets:   []policy.Bucket{{Jurisdiction: "default", Name: "assets"}},
		maxTTL:    30 * time.Minute,
		ip:        ipRule{mode: ipCaller},
		// The fair shares' defaults.
		maxMints: DefaultMaxMints, mintWindow: DefaultMintWindow, maxActive: DefaultMaxActive,
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("rule =\n%#v\nwant\n%#v", r, want)
	}
	if r.Name() != "shop-deploy" || r.Owner() != cftoken.OwnerAccount || r.AccountID() != acct || r.MaxTTL() != 30*time.Minute {
		t.Errorf("accessors: %q %q %q %v", r.Name(), r.Owner(), r.AccountID(), r.MaxTTL())
	}

	// The issue's own example lists r2_buckets without a permission that applies to buckets:
	// it parses, and Check says what is wrong.
	issue := strings.Replace(string(b), "[workers-deploy, r2-upload]", "[workers-deploy]", 1)
	err = mustParse(t, issue).Check(realGroups(t))
	if want := `rule "shop-deploy": key "allow.r2_buckets": lists buckets, but nothing the rule allows applies to buckets; remove them or allow "Workers R2 Storage Bucket Item Write" (or preset r2-upload)`; err == nil || err.Error() != want {
		t.Errorf("Check of the issue's example = %v, want %s", err, want)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	p := mustParse(t, ruleYAML(`claim_patterns: {ref: "refs/heads/main"}`))
	r := p.rules[0]
	if r.owner != cftoken.OwnerAccount || r.maxTTL != time.Hour || r.ip.mode != ipCaller || len(r.ip.cidrs) != 0 {
		t.Errorf("defaults: owner %q, max_ttl %v, ip %+v", r.owner, r.maxTTL, r.ip)
	}
}

func TestParseForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edits []string
		check func(*Rule) bool
	}{
		{"permissions as a block of lines", []string{"allow:\n  permissions: |\n    DNS Write, Zone Read\n    Cache Purge\n  zones: example.com, EXAMPLE.org."},
			func(r *Rule) bool {
				return slices.Equal(r.perms, []string{"DNS Write, Zone Read", "Cache Purge"}) && slices.Equal(r.zones, []string{"example.com", "example.org"})
			}},
		{"presets case-insensitive, deduplicated", []string{"allow: {presets: [DNS-Edit, dns-edit, zone-read], zones: [\"*\"]}"},
			func(r *Rule) bool { return slices.Equal(r.presets, []string{"dns-edit", "zone-read"}) && r.allZones }},
		{"zone id", []string{"allow: {presets: [dns-edit], zones: [0123456789ABCDEF0123456789ABCDEF]}"},
			func(r *Rule) bool { return slices.Equal(r.zones, []string{"0123456789abcdef0123456789abcdef"}) }},
		{"buckets with jurisdictions", []string{"allow: {presets: [r2-upload], r2_buckets: [assets, EU:logs, fedramp:gov]}"},
			func(r *Rule) bool {
				return slices.Equal(r.buckets, []policy.Bucket{{Jurisdiction: "default", Name: "assets"}, {Jurisdiction: "eu", Name: "logs"}, {Jurisdiction: "fedramp", Name: "gov"}})
			}},
		{"user owner", []string{"token_owner: User"}, func(r *Rule) bool { return r.owner == cftoken.OwnerUser }},
		{"account id upper case", []string{"account_id: 023E105F4ECEF8AD9CA31A8372D0C353"}, func(r *Rule) bool { return r.accountID == acct }},
		{"ip_filter none", []string{"ip_filter: none"}, func(r *Rule) bool { return r.ip.mode == ipNone }},
		{"ip_filter CIDRs, bare address and duplicate", []string{"ip_filter: [198.51.100.0/24, 2001:db8::/48, 203.0.113.7, 198.51.100.0/24]"},
			func(r *Rule) bool {
				return r.ip.mode == ipCIDRs && slices.Equal(r.ip.cidrs, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("203.0.113.7/32")})
			}},
		{"ip_filter one CIDR as a string", []string{"ip_filter: 10.1.0.0/16"},
			func(r *Rule) bool {
				return r.ip.mode == ipCIDRs && slices.Equal(r.ip.cidrs, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")})
			}},
		{"http issuer on loopback", []string{"issuer: http://127.0.0.1:8080"}, func(r *Rule) bool { return r.issuer == "http://127.0.0.1:8080" }},
		{"http issuer on ::1", []string{"issuer: http://[::1]:9000/oidc"}, func(r *Rule) bool { return r.issuer == "http://[::1]:9000/oidc" }},
		{"GHES issuer", []string{"issuer: https://ghes.example.com/_services/token"}, func(r *Rule) bool { return r.issuer == "https://ghes.example.com/_services/token" }},
		{"max_ttl 6h", []string{"max_ttl: 6h"}, func(r *Rule) bool { return r.maxTTL == 6*time.Hour }},
		{"max_ttl 1m", []string{"max_ttl: 1m"}, func(r *Rule) bool { return r.maxTTL == time.Minute }},
		{"explicit string tag", []string{"claims: {repository_id: !!str 690011}"}, func(r *Rule) bool { return r.match[0].value == "690011" }},
		{"a pattern beside the pin", []string{`claims: {repository_owner_id: "4200"}`, `claim_patterns: {repository: "octo-org/(site|shop)"}`}, func(r *Rule) bool { return r.match[1].re != nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, ruleYAML(tc.edits...))
			if r := p.rules[0]; !tc.check(r) {
				t.Errorf("rule = %+v", r)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const top = "audience: https://cfmint.example.com\nrules:\n"
	cases := []struct {
		name string
		yml  string
		want []string // every problem, in order
	}{
		{"claim as a number", ruleYAML("claims: {repository_id: 690011}"),
			[]string{`rule "shop-deploy": key "claims.repository_id": write the value as a string: "690011"`}},
		{"claim as a boolean", ruleYAML("claims: {repository_id: \"1\", ref_protected: true}"),
			[]string{`rule "shop-deploy": key "claims.ref_protected": write the value as a string: "true"`}},
		{"pattern as a number", ruleYAML("claim_patterns: {run_attempt: 1}"),
			[]string{`rule "shop-deploy": key "claim_patterns.run_attempt": write the value as a string: "1"`}},
		{"claim as a list", ruleYAML("claims: {ref: [refs/heads/main]}"),
			[]string{`rule "shop-deploy": key "claims.ref": must be a string, not a list`}},
		{"empty claim", ruleYAML("claims: {environment: \"\"}"),
			[]string{`rule "shop-deploy": key "claims.environment": is empty; write the value the claim must equal (a claim the token lacks never matches)`}},
		{"no claims at all", ruleYAML("-claims"),
			[]string{`rule "shop-deploy": key "claims": is missing; a rule needs at least one claim or claim pattern, or it would trust every token of its issuer (match repository_id and repository_owner_id, which survive renames)`}},
		{"empty claims", ruleYAML("claims: {}"),
			[]string{`rule "shop-deploy": key "claims": is empty; a rule needs at least one claim or claim pattern, or it would trust every token of its issuer (match repository_id and repository_owner_id, which survive renames)`}},
		{"claims not a mapping", ruleYAML("claims: repository_id=1"),
			[]string{`rule "shop-deploy": key "claims": must be a mapping of claim names to the values they must equal`}},
		{"claim the broker checks", ruleYAML("claims: {aud: x, iss: y, exp: \"1\"}"),
			[]string{
				`rule "shop-deploy": key "claims.aud": cannot be matched: the policy's audience key checks it; match claims that name the workflow, such as repository_id or ref`,
				`rule "shop-deploy": key "claims.iss": cannot be matched: the rule's issuer key checks it; match claims that name the workflow, such as repository_id or ref`,
				`rule "shop-deploy": key "claims.exp": cannot be matched: it changes with every token; match claims that name the workflow, such as repository_id or ref`,
			}},
		{"bad pattern", ruleYAML("claim_patterns: {ref: \"refs/heads/(main\"}"),
			[]string{`rule "shop-deploy": key "claim_patterns.ref": "refs/heads/(main" is not an RE2 pattern (missing closing )); write one such as refs/heads/(main|release-.*)`}},
		{"pattern RE2 lacks", ruleYAML(`claim_patterns: {ref: "(?!x)main"}`),
			[]string{`rule "shop-deploy": key "claim_patterns.ref": "(?!x)main" is not an RE2 pattern (invalid or unsupported Perl syntax); write one such as refs/heads/(main|release-.*)`}},
		{"claim in both", ruleYAML("claim_patterns: {repository_id: \"6900.*\"}"),
			[]string{`rule "shop-deploy": key "claim_patterns.repository_id": is also in claims; keep one of the two`}},
		{"duplicate claim", ruleYAML("claims:\n  repository_id: \"690011\"\n  ref: a\n  ref: b"),
			[]string{`rule "shop-deploy": key "claims.ref": is given twice; keep one`}},
		{"unknown rule key", ruleYAML("subject: repo:octo-org/shop:ref:refs/heads/main"),
			[]string{`rule "shop-deploy": key "subject": is not a known key; use name, issuer, claims, claim_patterns, token_owner, account_id, allow, max_ttl, ip_filter, single_tenant_issuer, max_mints or max_active`}},
		{"unknown allow key", ruleYAML("allow: {presets: [workers-deploy], zone: [example.com]}"),
			[]string{`rule "shop-deploy": key "allow.zone": is not a known key; use presets, permissions, zones or r2_buckets`}},
		{"unknown top key", top + ruleItem() + "version: 2\n",
			[]string{`key "version": is not a known key; use audience or rules`}},
		{"missing name", ruleYAML("-name"),
			[]string{`rule #1: key "name": is missing; give the rule a unique name of a-z, 0-9 and - (at most 32), such as shop-deploy`}},
		{"name with capitals", ruleYAML("name: Shop Deploy"),
			[]string{`rule #1: key "name": "Shop Deploy" is not a rule name: it goes into token names, so it is 1 to 32 of a-z, 0-9 and -, such as shop-deploy`}},
		{"name too long", ruleYAML("name: " + strings.Repeat("a", 33)),
			[]string{`rule #1: key "name": "` + strings.Repeat("a", 33) + `" is not a rule name: it goes into token names, so it is 1 to 32 of a-z, 0-9 and -, such as shop-deploy`}},
		{"duplicate names", top + ruleItem() + ruleItem("claims: {repository_id: \"2\"}"),
			[]string{`rule #2: key "name": "shop-deploy" is already the name of rule #1; rule names are unique`}},
		{"issuer missing", ruleYAML("-issuer"),
			[]string{`rule "shop-deploy": key "issuer": is missing; write the issuer exactly as tokens carry it, such as https://token.actions.githubusercontent.com`}},
		{"issuer plain http", ruleYAML("issuer: http://token.example.com"),
			[]string{`rule "shop-deploy": key "issuer": "http://token.example.com" is plain http; issuers are https (http only to a loopback host, for tests)`}},
		{"issuer plain http on a zoned loopback address", ruleYAML("issuer: http://[::1%25lo]:8080"),
			[]string{`rule "shop-deploy": key "issuer": "http://[::1%25lo]:8080" is plain http; issuers are https (http only to a loopback host, for tests)`}},
		{"issuer relative", ruleYAML("issuer: token.actions.githubusercontent.com"),
			[]string{`rule "shop-deploy": key "issuer": "token.actions.githubusercontent.com" is not an absolute URL; write the issuer exactly as tokens carry it in iss, such as https://token.actions.githubusercontent.com`}},
		{"issuer other scheme", ruleYAML("issuer: ftp://token.example.com"),
			[]string{`rule "shop-deploy": key "issuer": "ftp://token.example.com" is not an https URL; write the issuer exactly as tokens carry it in iss, such as https://token.actions.githubusercontent.com`}},
		{"issuer with query", ruleYAML("issuer: https://token.example.com/?x=1"),
			[]string{`rule "shop-deploy": key "issuer": "https://token.example.com/?x=1" has user info, a query or a fragment, which an issuer never has; write the issuer exactly as tokens carry it in iss, such as https://token.actions.githubusercontent.com`}},
		{"token owner", ruleYAML("token_owner: team"),
			[]string{`rule "shop-deploy": key "token_owner": "team" is not an owner; use account or user`}},
		{"account id missing", ruleYAML("-account_id"),
			[]string{`rule "shop-deploy": key "account_id": is missing; write the account the rule grants in (32 hex characters, on the account's overview page in the dashboard)`}},
		{"account id missing for a user owner too", ruleYAML("-account_id", "token_owner: user"),
			[]string{`rule "shop-deploy": key "account_id": is missing; write the account the rule grants in (32 hex characters, on the account's overview page in the dashboard)`}},
		{"account id short", ruleYAML("account_id: 1234"),
			[]string{`rule "shop-deploy": key "account_id": write the value as a string: "1234"`}},
		{"account id not hex", ruleYAML("account_id: \"zz3e105f4ecef8ad9ca31a8372d0c353\""),
			[]string{`rule "shop-deploy": key "account_id": "zz3e105f4ecef8ad9ca31a8372d0c353" is not an account id; it is 32 hex characters, on the account's overview page in the dashboard`}},
		{"allow missing", ruleYAML("-allow"),
			[]string{`rule "shop-deploy": key "allow": is missing; list what the rule allows: presets, permissions, zones, r2_buckets`}},
		{"allow of zones only", ruleYAML("allow: {zones: [example.com]}"),
			[]string{`rule "shop-deploy": key "allow": allows no permission; list presets (such as workers-deploy) or permissions (such as "DNS Write")`}},
		{"unknown preset", ruleYAML("allow: {presets: [deploy-all]}"),
			[]string{`rule "shop-deploy": key "allow.presets": "deploy-all" is not a preset; use one of analytics-read, cache-purge, d1-write, dns-edit, dns-read, kv-write, pages-deploy, r2-upload, workers-deploy, workers-deploy-routes, zone-read`}},
		{"permission with control characters", ruleYAML("allow: {permissions: [\"DNS\\tWrite\"]}"),
			[]string{`rule "shop-deploy": key "allow.permissions": "DNS\tWrite" contains control characters; write printable text only`}},
		{"claim starting with a control character", ruleYAML(`claims: {repository_id: "\x01690011"}`),
			[]string{`rule "shop-deploy": key "claims.repository_id": "\x01690011" contains control characters; write printable text only`}},
		{"audience starting with white space", "audience: \" https://cfmint.example.com\"\nrules:\n" + ruleItem(),
			[]string{`key "audience": " https://cfmint.example.com" contains white space; an audience is one word, usually the broker's URL`}},
		{"bad zone", ruleYAML("allow: {presets: [dns-edit], zones: [\"not a zone!\"]}"),
			[]string{
				`rule "shop-deploy": key "allow.zones": "not" is neither a zone name (example.com), a zone id (32 hex characters) nor * (every zone of the account)`,
				`rule "shop-deploy": key "allow.zones": "a" is neither a zone name (example.com), a zone id (32 hex characters) nor * (every zone of the account)`,
				`rule "shop-deploy": key "allow.zones": "zone!" is neither a zone name (example.com), a zone id (32 hex characters) nor * (every zone of the account)`,
			}},
		{"star with zones", ruleYAML("allow: {presets: [dns-edit], zones: [\"*\", example.com]}"),
			[]string{`rule "shop-deploy": key "allow.zones": * (every zone of the account) already holds the named zones; write * alone, or the zones alone`}},
		{"bucket jurisdiction", ruleYAML("allow: {presets: [r2-upload], r2_buckets: [\"us:assets\"]}"),
			[]string{`rule "shop-deploy": key "allow.r2_buckets": "us:assets" has jurisdiction "us"; use default, eu, fedramp, or no prefix for the default`}},
		{"bucket name", ruleYAML("allow: {presets: [r2-upload], r2_buckets: [Assets_1]}"),
			[]string{`rule "shop-deploy": key "allow.r2_buckets": "Assets_1" is not a bucket name: 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit`}},
		{"max_ttl without unit", ruleYAML("max_ttl: 30"),
			[]string{`rule "shop-deploy": key "max_ttl": "30" has no unit; write a duration such as 30m (allowed: 1m to 6h; the default is 1h)`}},
		{"max_ttl too long", ruleYAML("max_ttl: 7h"),
			[]string{`rule "shop-deploy": key "max_ttl": "7h" is outside the allowed range 1m to 6h`}},
		{"max_ttl too short", ruleYAML("max_ttl: 30s"),
			[]string{`rule "shop-deploy": key "max_ttl": "30s" is outside the allowed range 1m to 6h`}},
		{"max_ttl not a duration", ruleYAML("max_ttl: half an hour"),
			[]string{`rule "shop-deploy": key "max_ttl": "half an hour" is not a duration; write one such as 30m or 1h30m (allowed: 1m to 6h; the default is 1h)`}},
		{"ip_filter word", ruleYAML("ip_filter: runner"),
			[]string{`rule "shop-deploy": key "ip_filter": "runner" cannot be listed with CIDRs; write caller (the default), none, or a list of CIDRs such as [198.51.100.0/24]`}},
		{"ip_filter host bits", ruleYAML("ip_filter: [198.51.100.7/24]"),
			[]string{`rule "shop-deploy": key "ip_filter": "198.51.100.7/24" has host bits set; write 198.51.100.0/24; write caller (the default), none, or a list of CIDRs such as [198.51.100.0/24]`}},
		{"ip_filter everything", ruleYAML("ip_filter: [0.0.0.0/0]"),
			[]string{`rule "shop-deploy": key "ip_filter": 0.0.0.0/0 matches every address; write none if tokens without an IP filter are really meant`}},
		{"ip_filter empty list", ruleYAML("ip_filter: []"),
			[]string{`rule "shop-deploy": key "ip_filter": is empty; write caller (the default), none, or a list of CIDRs such as [198.51.100.0/24]`}},
		{"ip_filter caller in a list", ruleYAML("ip_filter: [caller, 10.0.0.0/8]"),
			[]string{`rule "shop-deploy": key "ip_filter": "caller" cannot be listed with CIDRs; write caller (the default), none, or a list of CIDRs such as [198.51.100.0/24]`}},
		{"alias", "audience: https://cfmint.example.com\nrules:\n  - name: a\n    issuer: " + github + "\n    claims: &c {repository_id: \"1\"}\n    account_id: " + acct + "\n    allow: {presets: [workers-deploy]}\n  - name: b\n    issuer: " + github + "\n    claims: *c\n    account_id: " + acct + "\n    allow: {presets: [workers-deploy]}\n",
			[]string{`rule "b": key "claims": is an alias (*c); a trust policy is read by reviewers, so write the value out`}},
		{"merge key", ruleYAML("allow:\n  <<: {presets: [workers-deploy]}"),
			[]string{`rule "shop-deploy": key "allow": has a merge key (<<); a trust policy is read by reviewers, so write every key out`, `rule "shop-deploy": key "allow": allows no permission; list presets (such as workers-deploy) or permissions (such as "DNS Write")`}},
		{"custom tag", ruleYAML("claims: {repository_id: !env REPO}"),
			[]string{`rule "shop-deploy": key "claims.repository_id": has the tag !env; remove it`}},
		{"audience missing", "rules:\n" + ruleItem(),
			[]string{`key "audience": is missing; set it to the audience every ID token must carry, such as the broker's URL (https://cfmint.example.com)`}},
		{"audience of GitHub's default", "audience: https://github.com/octo-org\nrules:\n" + ruleItem(),
			[]string{`key "audience": "https://github.com/octo-org" is the audience GitHub puts in every ID token that asks for none; choose one of the broker's own, such as its URL`}},
		{"rules missing", "audience: x\n", []string{`key "rules": is missing; write at least one rule`}},
		{"rules empty", "audience: x\nrules: []\n", []string{`key "rules": must be a list of at least one rule`}},
		{"rule not a mapping", "audience: x\nrules: [shop-deploy]\n",
			[]string{`rule #1: must be a mapping with name, issuer, claims, account_id and allow`}},
		{"empty", "", []string{"the policy is empty; write an audience and at least one rule"}},
		{"only comments", "# nothing yet\n", []string{"the policy is empty; write an audience and at least one rule"}},
		{"a list", "- a\n", []string{"the policy must be a mapping with the keys audience and rules"}},
		{"two documents", ruleYAML() + "---\naudience: y\n", []string{"the policy holds more than one YAML document; keep one (no second ---)"}},
		{"not YAML", "audience: [", []string{"failed to read the policy as YAML: yaml: line 1: did not find expected node content"}},
		{"every problem at once", "audience: \"\"\nrules:\n" + ruleItem("claims: {repository_id: 690011}", "max_ttl: 1d") + ruleItem("name: Second", "-issuer"),
			[]string{
				`key "audience": is empty; set it to the audience every ID token must carry, such as the broker's URL (https://cfmint.example.com)`,
				`rule "shop-deploy": key "claims.repository_id": write the value as a string: "690011"`,
				`rule "shop-deploy": key "max_ttl": "1d" is not a duration; write one such as 30m or 1h30m (allowed: 1m to 6h; the default is 1h)`,
				`rule #2: key "name": "Second" is not a rule name: it goes into token names, so it is 1 to 32 of a-z, 0-9 and -, such as shop-deploy`,
				`rule #2: key "issuer": is missing; write the issuer exactly as tokens carry it, such as https://token.actions.githubusercontent.com`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse([]byte(tc.yml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.yml)
			}
			if p != nil {
				t.Errorf("Parse returned a policy with its error")
			}
			if got := lines(err); !slices.Equal(got, tc.want) {
				t.Errorf("Parse:\n%s\nerrors:\n  %s\nwant:\n  %s", tc.yml, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	t.Parallel()
	big := ruleYAML() + "# " + strings.Repeat("x", MaxPolicySize) + "\n"
	if _, err := Parse([]byte(big)); err == nil || !strings.Contains(err.Error(), "a trust policy is at most") {
		t.Errorf("Parse of %d bytes = %v", len(big), err)
	}
	// A policy of exactly the limit is read.
	exact := ruleYAML() + "#"
	exact += strings.Repeat("x", MaxPolicySize-len(exact)-1) + "\n"
	if _, err := Parse([]byte(exact)); len(exact) != MaxPolicySize || err != nil {
		t.Errorf("Parse of %d bytes = %v", len(exact), err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		yml  string
		want []string
	}{
		{"unknown permission", ruleYAML("allow: {permissions: [Workers Script Write]}"),
			[]string{`rule "shop-deploy": key "allow.permissions": "Workers Script Write" is not a permission group this token owner may grant; did you mean "Workers Scripts Write" or "Workers CI Write" or "Workers AI Write"?`}},
		{"name at two scopes, no zones", ruleYAML("allow: {permissions: [Logs Read]}"),
			[]string{`rule "shop-deploy": key "allow.permissions": "Logs Read" exists at account and zone scope; say which: write "Account / Logs / Read" or "Zone / Logs / Read" (naming zones also picks the zone one)`}},
		{"zone permission without zones", ruleYAML("allow: {presets: [dns-edit]}"),
			[]string{`rule "shop-deploy": key "allow.zones": is empty, but DNS Write apply to zones; list the zones (example.com), or * for every zone of the account`}},
		{"zones without a zone permission", ruleYAML("allow: {presets: [workers-deploy], zones: [example.com]}"),
			[]string{`rule "shop-deploy": key "allow.zones": lists zones, but nothing the rule allows applies to zones; remove them or allow a zone permission such as "DNS Write"`}},
		{"bucket permission without buckets", ruleYAML("allow: {permissions: [Workers R2 Storage Bucket Item Read]}"),
			[]string{`rule "shop-deploy": key "allow.r2_buckets": is empty, but Workers R2 Storage Bucket Item Read apply to R2 buckets; list the buckets (assets, or eu:assets)`}},
		{"token-minting permission", ruleYAML("allow: {permissions: [Account API Tokens Write]}"),
			[]string{`rule "shop-deploy": key "allow": "Account API Tokens Write" would let a minted token create tokens with any permission; cfmint never grants it`}},
		{"lasting-access permission", ruleYAML(`allow: {permissions: ["Access: Service Tokens Write"]}`),
			[]string{`rule "shop-deploy": key "allow": "Access: Service Tokens Write" ` + lastingAccess(policy.Group{Name: "Access: Service Tokens Write", Scopes: []string{policy.ScopeAccount}}) + `, which outlives the token; the broker does not grant it`}},
		{"user permission", ruleYAML("token_owner: user", "allow: {permissions: [Memberships Read]}"),
			[]string{`rule "shop-deploy": key "allow": "Memberships Read" applies to a user, which cfmint does not grant`}},
		// The lines that resolve alone are still checked; whether a name at two scopes is the zone
		// one follows the rule's zones, as it does for a rule whose lines all resolve.
		{"a bad line beside a name at two scopes, no zones", ruleYAML("allow: {permissions: [Nope Write, Logs Write]}"),
			[]string{
				`rule "shop-deploy": key "allow.permissions": "Nope Write" is not a permission group this token owner may grant; did you mean "Zone Write" or "Apps Write" or "IOT Write"?`,
				`rule "shop-deploy": key "allow.permissions": "Logs Write" exists at account and zone scope; say which: write "Account / Logs / Edit" or "Zone / Logs / Edit" (naming zones also picks the zone one)`,
			}},
		{"a bad line beside a name at two scopes, with zones", ruleYAML("allow: {permissions: [Nope Write, Logs Write], zones: [example.com]}"),
			[]string{
				`rule "shop-deploy": key "allow.permissions": "Nope Write" is not a permission group this token owner may grant; did you mean "Zone Write" or "Apps Write" or "IOT Write"?`,
				`rule "shop-deploy": key "allow": "Logs Write" ` + lastingAccess(policy.Group{Name: "Logs Write", Scopes: []string{policy.ScopeZone}}) + `, which outlives the token; the broker does not grant it`,
			}},
		{"problems of two rules at once", "audience: x\nrules:\n" + ruleItem("allow: {presets: [dns-edit]}") + ruleItem("name: b", "allow: {permissions: [Nope Write]}"),
			[]string{
				`rule "shop-deploy": key "allow.zones": is empty, but DNS Write apply to zones; list the zones (example.com), or * for every zone of the account`,
				`rule "b": key "allow.permissions": "Nope Write" is not a permission group this token owner may grant; did you mean "Zone Write" or "Apps Write" or "IOT Write"?`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := mustParse(t, tc.yml).Check(realGroups(t))
			if got := lines(err); !slices.Equal(got, tc.want) {
				t.Errorf("Check errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestEmptyClaimsBesideOtherProblems: a rule without claims says so whatever else is wrong with
// it, and ParsePartial keeps the rule, so that its permissions can still be checked.
func TestEmptyClaimsBesideOtherProblems(t *testing.T) {
	t.Parallel()
	for _, claims := range []string{"claims: {}", "-claims"} {
		_, err := Parse([]byte(ruleYAML(claims, "max_ttl: 9h", "allow: {presets: [workers-deploy], permissions: [Account Settings Write]}")))
		got := lines(err)
		if len(got) != 2 || !strings.Contains(err.Error(), `key "claims": is`) || !strings.Contains(err.Error(), `key "max_ttl"`) {
			t.Errorf("%s: problems %q, want claims and max_ttl", claims, got)
		}
		p, perr := ParsePartial([]byte(ruleYAML(claims, "max_ttl: 9h", "allow: {presets: [workers-deploy], permissions: [Account Settings Write]}")))
		if p == nil || perr == nil || len(p.Rules()) != 1 {
			t.Fatalf("%s: ParsePartial = %v, %v; want the rule kept beside its problems", claims, p, perr)
		}
		cerr := p.Check(realGroups(t))
		if cerr == nil || !strings.Contains(cerr.Error(), `"Account Settings Write" can invite members`) {
			t.Errorf("%s: Check of the partial rule = %v, want its lasting-access problem", claims, cerr)
		}
	}
}

// TestTypoDoesNotHideLastingAccess: a permission line that does not resolve leaves the others
// checked.
func TestTypoDoesNotHideLastingAccess(t *testing.T) {
	t.Parallel()
	p := mustParse(t, ruleYAML("allow: {permissions: [Workers Scripts Wrte, Account Settings Write]}"))
	err := p.Check(realGroups(t))
	if err == nil || !strings.Contains(err.Error(), `"Workers Scripts Wrte"`) || !strings.Contains(err.Error(), `"Account Settings Write" can invite members`) {
		t.Errorf("Check = %v, want both the typo and the lasting access", err)
	}
}

func TestTabLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yml, want string }{
		{"audience: a\nrules:\n  - name: a\n\tissuer: https://x\n", "line 4: found a tab character that violates indentation (the line is indented with a tab"},
		{"audience: a\nrules:\n  - name: a\n    claims:\n\t  repository_id: \"1\"\n", "line 5: "},
		// The tab on the last line, with no line break after it.
		{"audience: a\nrules:\n  - name: a\n\tissuer: https://x", "line 4: found a tab character that violates indentation (the line is indented with a tab"},
		{"audience: a\nrules:\n  - name: a\n    claims:\n\t  repository_id: \"1\"", "line 5: found character that cannot start any token (the line is indented with a tab"},
	} {
		_, err := Parse([]byte(tc.yml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.yml, err, tc.want)
		}
	}
}
