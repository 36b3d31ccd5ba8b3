package trust

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/policy"
)

var (
	caller  = netip.MustParseAddr("203.0.113.9")
	exZone  = policy.Zone{ID: "0123456789abcdef0123456789abcdef", Name: "example.com"}
	ipAsked = func(s string) config.IPFilter {
		f, err := config.ParseIPFilter(s)
		if err != nil {
			panic(err)
		}
		return f
	}
)

// exPrefix is the first line the example rule's denials start with.
const exPrefix = "repository octo-org/shop (repository_id 690011), ref refs/heads/main, environment (none): rule shop-deploy allows workers-deploy, r2-upload, Zone Read (zones example.com; buckets assets; ttl up to 30m); "

func TestDecideAllows(t *testing.T) {
	t.Parallel()
	p := examplePolicy(t)
	scripts := policy.Group{ID: groupID(t, "Workers Scripts Write", policy.ScopeAccount), Name: "Workers Scripts Write", Scopes: []string{policy.ScopeAccount}}
	zoneRead := policy.Group{ID: groupID(t, "Zone Read", policy.ScopeZone), Name: "Zone Read", Scopes: []string{policy.ScopeZone}}
	items := policy.Group{ID: groupID(t, "Workers R2 Storage Bucket Item Write", policy.ScopeBucket), Name: "Workers R2 Storage Bucket Item Write", Scopes: []string{policy.ScopeBucket}}
	pinned := []netip.Prefix{netip.MustParsePrefix("203.0.113.9/32")}
	cases := []struct {
		name   string
		ask    Ask
		caller netip.Addr
		want   Decision
	}{
		{"a preset, the default ttl", Ask{Preset: "workers-deploy"}, caller,
			Decision{Policies: []policy.Policy{{Groups: []policy.Group{scripts}, Resources: map[string]any{policy.AccountKey(acct): "*"}}}, CIDRs: pinned, TTL: 15 * time.Minute}},
		{"a permission in the dashboard's words on an allowed zone, the longest ttl", Ask{Permissions: []string{"Zone / Zone / Read"}, Zones: []policy.Zone{exZone}, ZonesAccount: acct, TTL: 30 * time.Minute}, caller,
			Decision{Policies: []policy.Policy{{Groups: []policy.Group{zoneRead}, Resources: map[string]any{policy.ZoneKey(exZone.ID): "*"}}}, CIDRs: pinned, TTL: 30 * time.Minute}},
		{"zone names compare case-insensitively", Ask{Permissions: []string{"zone read"}, Zones: []policy.Zone{{ID: exZone.ID, Name: "Example.COM."}}, ZonesAccount: acct}, caller,
			Decision{Policies: []policy.Policy{{Groups: []policy.Group{zoneRead}, Resources: map[string]any{policy.ZoneKey(exZone.ID): "*"}}}, CIDRs: pinned, TTL: 15 * time.Minute}},
		{"a preset and lines together", Ask{Preset: "workers-deploy", Permissions: []string{"Zone Read"}, Zones: []policy.Zone{exZone}, ZonesAccount: acct}, caller,
			Decision{Policies: []policy.Policy{
				{Groups: []policy.Group{scripts}, Resources: map[string]any{policy.AccountKey(acct): "*"}},
				{Groups: []policy.Group{zoneRead}, Resources: map[string]any{policy.ZoneKey(exZone.ID): "*"}},
			}, CIDRs: pinned, TTL: 15 * time.Minute}},
		{"r2-upload on a named bucket is the bucket-level grant", Ask{Preset: "r2-upload", Buckets: []policy.Bucket{{Jurisdiction: "default", Name: "assets"}}, TTL: 10 * time.Minute}, caller,
			Decision{Policies: []policy.Policy{{Groups: []policy.Group{items}, Resources: map[string]any{policy.BucketKey(acct, policy.Bucket{Jurisdiction: "default", Name: "assets"}): "*"}}}, CIDRs: pinned, TTL: 10 * time.Minute}},
		{"the shortest ttl", Ask{Preset: "workers-deploy", TTL: time.Minute}, caller,
			Decision{Policies: []policy.Policy{{Groups: []policy.Group{scripts}, Resources: map[string]any{policy.AccountKey(acct): "*"}}}, CIDRs: pinned, TTL: time.Minute}},
		{"an IPv6 caller is pinned alone", Ask{Preset: "workers-deploy", IPFilter: ipAsked("runner")}, netip.MustParseAddr("2001:db8::7"),
			Decision{Policies: []policy.Policy{{Groups: []policy.Group{scripts}, Resources: map[string]any{policy.AccountKey(acct): "*"}}}, CIDRs: []netip.Prefix{netip.MustParsePrefix("2001:db8::7/128")}, TTL: 15 * time.Minute}},
		{"an IPv4-mapped caller is pinned as IPv4", Ask{Preset: "workers-deploy", IPFilter: ipAsked("")}, netip.MustParseAddr("::ffff:203.0.113.9"),
			Decision{Policies: []policy.Policy{{Groups: []policy.Group{scripts}, Resources: map[string]any{policy.AccountKey(acct): "*"}}}, CIDRs: pinned, TTL: 15 * time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := p.Decide(github, shopClaims(), tc.ask, realGroups(t), tc.caller)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Rule, want.Owner, want.AccountID = "shop-deploy", cftoken.OwnerAccount, acct
			if !reflect.DeepEqual(*d, want) {
				t.Errorf("Decision =\n%#v\nwant\n%#v", *d, want)
			}
		})
	}
}

func TestDecideDenies(t *testing.T) {
	t.Parallel()
	p := examplePolicy(t)
	other := policy.Zone{ID: "fedcba9876543210fedcba9876543210", Name: "other.com"}
	cases := []struct {
		name   string
		ask    Ask
		reason Reason
		want   string // the message after exPrefix
	}{
		{"a permission the rule does not allow", Ask{Permissions: []string{"DNS Write"}, Zones: []policy.Zone{exZone}, ZonesAccount: acct}, ReasonPermission,
			"DNS Write on example.com is not allowed"},
		{"an account permission", Ask{Preset: "kv-write"}, ReasonPermission,
			"Workers KV Storage Write is not allowed"},
		{"the same name at another scope", Ask{Permissions: []string{"Account / Logs / Read"}}, ReasonPermission,
			"Logs Read is not allowed"},
		{"r2-upload without buckets is the account-wide grant", Ask{Preset: "r2-upload"}, ReasonPermission,
			"Workers R2 Storage Write is not allowed"},
		{"a zone the rule does not list", Ask{Permissions: []string{"Zone Read"}, Zones: []policy.Zone{exZone, other}, ZonesAccount: acct}, ReasonZone,
			"zone other.com is not allowed"},
		{"every zone", Ask{Permissions: []string{"Zone Read"}, AllZones: true}, ReasonZone,
			"every zone (*) is not allowed"},
		{"zones looked up in another account", Ask{Permissions: []string{"Zone Read"}, Zones: []policy.Zone{exZone}, ZonesAccount: "ffffffffffffffffffffffffffffffff"}, ReasonZone,
			"the zones were looked up in ffffffffffffffffffffffffffffffff, not in the rule's account " + acct},
		{"zones looked up nowhere", Ask{Permissions: []string{"Zone Read"}, Zones: []policy.Zone{exZone}}, ReasonZone,
			"the zones were looked up in no account, not in the rule's account " + acct},
		{"a bucket permission the rule does not allow, on its bucket", Ask{Permissions: []string{"Workers R2 Storage Bucket Item Read"}, Buckets: []policy.Bucket{{Jurisdiction: "default", Name: "assets"}}}, ReasonPermission,
			"Workers R2 Storage Bucket Item Read on bucket assets is not allowed"},
		{"a bucket in another jurisdiction", Ask{Preset: "r2-upload", Buckets: []policy.Bucket{{Jurisdiction: "eu", Name: "assets"}}}, ReasonBucket,
			"bucket eu:assets is not allowed"},
		{"a ttl above max_ttl", Ask{Preset: "workers-deploy", TTL: time.Hour}, ReasonTTL,
			"ttl 1h is more than its max_ttl 30m"},
		{"ip-filter none", Ask{Preset: "workers-deploy", IPFilter: ipAsked("none")}, ReasonIPFilter,
			"ip-filter none is not allowed (the rule pins tokens to the caller's address; leave ip-filter empty)"},
		{"every problem at once, the first labels it", Ask{Permissions: []string{"DNS Write"}, Zones: []policy.Zone{other}, ZonesAccount: acct, TTL: 2 * time.Hour, IPFilter: ipAsked("runner, 10.0.0.0/8")}, ReasonPermission,
			"DNS Write on other.com is not allowed, zone other.com is not allowed, ttl 2h is more than its max_ttl 30m, ip-filter 10.0.0.0/8 is not allowed (the rule pins tokens to the caller's address; leave ip-filter empty)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := p.Decide(github, shopClaims(), tc.ask, realGroups(t), caller)
			var den *Denial
			if d != nil || !errors.As(err, &den) {
				t.Fatalf("Decide = %+v, %v; want a denial", d, err)
			}
			if den.Reason != tc.reason || den.Rule != "shop-deploy" {
				t.Errorf("reason %q, rule %q; want %q, shop-deploy", den.Reason, den.Rule, tc.reason)
			}
			if want := exPrefix + tc.want; den.Error() != want {
				t.Errorf("message\n  %s\nwant\n  %s", den.Error(), want)
			}
		})
	}
}

// Groups compare by id: a name that exists at two scopes is granted at the scope the rule wrote.
func TestDecideComparesGroupsByID(t *testing.T) {
	t.Parallel()
	p := mustParse(t, ruleYAML("allow: {permissions: [Zone / Logs / Read], zones: [example.com]}"))
	zoneAsk := Ask{Permissions: []string{"Logs Read"}, Zones: []policy.Zone{exZone}, ZonesAccount: acct}
	if _, err := p.Decide(github, shopClaims(), zoneAsk, realGroups(t), caller); err != nil {
		t.Fatalf("zone Logs Read on example.com: %v", err)
	}
	_, err := p.Decide(github, shopClaims(), Ask{Permissions: []string{"Account / Logs / Read"}}, realGroups(t), caller)
	var den *Denial
	if !errors.As(err, &den) || den.Reason != ReasonPermission || !strings.HasSuffix(den.Error(), "; Logs Read is not allowed") {
		t.Errorf("account Logs Read under a rule of zone Logs Read: %v", err)
	}
}

// A request the action would refuse is refused as a bad request, before any rule is weighed.
func TestDecideBadRequest(t *testing.T) {
	t.Parallel()
	p := examplePolicy(t)
	cases := []struct {
		name string
		ask  Ask
		want string
	}{
		{"nothing asked", Ask{}, `input "preset": no permissions asked for; set preset (one of analytics-read, cache-purge, d1-write, dns-edit, dns-read, kv-write, pages-deploy, r2-upload, workers-deploy, workers-deploy-routes, zone-read) or permissions (for example "DNS Write")`},
		{"unknown preset", Ask{Preset: "deploy-all"}, `input "preset": "deploy-all" is not a preset; use one of analytics-read, cache-purge, d1-write, dns-edit, dns-read, kv-write, pages-deploy, r2-upload, workers-deploy, workers-deploy-routes, zone-read`},
		{"unknown permission", Ask{Permissions: []string{"Workers Script Write"}}, `input "permissions": "Workers Script Write" is not a permission group this token owner may grant; did you mean "Workers Scripts Write" or "Workers CI Write" or "Workers AI Write"?`},
		{"zones without a zone permission", Ask{Preset: "workers-deploy", Zones: []policy.Zone{exZone}, ZonesAccount: acct}, `input "zones": zones are given but no permission applies to zones; remove zones or add a zone permission such as "DNS Write"`},
		{"a token that mints tokens", Ask{Permissions: []string{"Account API Tokens Write"}}, `input "permissions": "Account API Tokens Write" would let the minted token create tokens of its own, with any permission; cfmint refuses to grant it (a job that manages tokens should use the bootstrap token's own step)`},
		{"a ttl below the minimum", Ask{Preset: "workers-deploy", TTL: 30 * time.Second}, `input "ttl": 30s is outside the allowed range 1m to 6h`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := p.Decide(github, shopClaims(), tc.ask, realGroups(t), caller)
			var den *Denial
			if !errors.As(err, &den) || den.Reason != ReasonRequest || den.Rule != "shop-deploy" {
				t.Fatalf("Decide error = %#v; want a request denial", err)
			}
			if den.Error() != tc.want {
				t.Errorf("message\n  %s\nwant\n  %s", den.Error(), tc.want)
			}
		})
	}
}

func TestDecideFirstAllowingRuleWins(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "audience: x\nrules:\n"+
		ruleItem("name: broken", "allow: {permissions: [Nope Write]}")+
		ruleItem("name: short", "max_ttl: 10m")+
		ruleItem("name: long", "max_ttl: 2h", "token_owner: user")+
		ruleItem("name: elsewhere", `claims: {repository_id: "1"}`, "max_ttl: 6h"))
	cases := []struct {
		name string
		ttl  time.Duration
		rule string
		ttlo time.Duration
	}{
		{"the default ttl is capped by max_ttl", 0, "short", 10 * time.Minute},
		{"within the first", 5 * time.Minute, "short", 5 * time.Minute},
		{"only the second allows it", time.Hour, "long", time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := p.Decide(github, shopClaims(), Ask{Preset: "workers-deploy", TTL: tc.ttl}, realGroups(t), caller)
			if err != nil {
				t.Fatal(err)
			}
			if d.Rule != tc.rule || d.TTL != tc.ttlo {
				t.Errorf("rule %s, ttl %v; want %s, %v", d.Rule, d.TTL, tc.rule, tc.ttlo)
			}
			if wantOwner := map[string]cftoken.Owner{"short": cftoken.OwnerAccount, "long": cftoken.OwnerUser}[tc.rule]; d.Owner != wantOwner {
				t.Errorf("owner %q, want %q", d.Owner, wantOwner)
			}
		})
	}

	t.Run("when none allows, every matching rule says why", func(t *testing.T) {
		t.Parallel()
		_, err := p.Decide(github, shopClaims(), Ask{Preset: "workers-deploy", TTL: 3 * time.Hour}, realGroups(t), caller)
		var den *Denial
		if !errors.As(err, &den) {
			t.Fatalf("Decide error = %v", err)
		}
		want := `repository octo-org/shop (repository_id 690011), ref refs/heads/main, environment (none): ` +
			`rule broken cannot be applied: its allow does not resolve against Cloudflare's permission groups (input "permissions": "Nope Write" is not a permission group this token owner may grant; did you mean "Zone Write" or "Apps Write" or "IOT Write"?); fix the policy. ` +
			`rule short allows workers-deploy (ttl up to 10m); ttl 3h is more than its max_ttl 10m. ` +
			`rule long allows workers-deploy (ttl up to 2h); ttl 3h is more than its max_ttl 2h`
		if den.Reason != ReasonPolicy || den.Rule != "broken" || den.Error() != want {
			t.Errorf("denial %q (rule %q):\n  %s\nwant %q (rule broken):\n  %s", den.Reason, den.Rule, den.Error(), ReasonPolicy, want)
		}
	})
}

func TestDecideIPFilter(t *testing.T) {
	t.Parallel()
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	inside := netip.MustParseAddr("198.51.100.7")
	const cidrs = "ip_filter: [198.51.100.0/24, 2001:db8::/32]"
	cases := []struct {
		name   string
		rule   string // the rule's ip_filter line; "" for the default
		ask    string // the request's ip-filter, parsed as the action parses it
		caller netip.Addr
		want   []netip.Prefix
		deny   string // else the ip-filter problem
	}{
		{"caller: empty pins the caller", "", "", caller, pfx("203.0.113.9/32"), ""},
		{"caller: runner is the caller", "ip_filter: caller", "runner", caller, pfx("203.0.113.9/32"), ""},
		{"caller: none refused", "", "none", caller, nil, "ip-filter none is not allowed (the rule pins tokens to the caller's address; leave ip-filter empty)"},
		{"caller: CIDRs refused", "", "runner, 198.51.100.0/24", caller, nil, "ip-filter 198.51.100.0/24 is not allowed (the rule pins tokens to the caller's address; leave ip-filter empty)"},
		{"caller: an unknown caller is never a reason to pin nothing", "", "", netip.Addr{}, nil, "the caller's address is unknown, so the token cannot be pinned to it"},
		{"none: none is no filter", "ip_filter: none", "none", caller, nil, ""},
		{"none: empty still pins the caller", "ip_filter: none", "", caller, pfx("203.0.113.9/32"), ""},
		{"none: CIDRs alone, as asked", "ip_filter: none", "10.0.0.0/8", caller, pfx("10.0.0.0/8"), ""},
		{"none: the caller and CIDRs", "ip_filter: none", "10.0.0.0/8, runner", caller, pfx("203.0.113.9/32", "10.0.0.0/8"), ""},
		{"CIDRs: a caller inside", cidrs, "", inside, pfx("198.51.100.7/32"), ""},
		{"CIDRs: an IPv6 caller inside", cidrs, "runner", netip.MustParseAddr("2001:db8:5::1"), pfx("2001:db8:5::1/128"), ""},
		{"CIDRs: a caller outside", cidrs, "", caller, nil, "the caller's address 203.0.113.9 is not within 198.51.100.0/24, 2001:db8::/32"},
		{"CIDRs: a range holding the caller, as asked", cidrs, "198.51.100.0/25", inside, pfx("198.51.100.0/25"), ""},
		{"CIDRs: the rule's whole range, asked from inside", cidrs, "198.51.100.0/24", inside, pfx("198.51.100.0/24"), ""},
		{"CIDRs: the caller with a range holding it", cidrs, "runner, 198.51.100.0/25", inside, pfx("198.51.100.7/32", "198.51.100.0/25"), ""},
		// The attack: a caller outside asks for the rule's range and would get a token for it.
		{"CIDRs: the rule's range asked from outside", cidrs, "198.51.100.0/24", netip.MustParseAddr("203.0.113.5"), nil,
			"ip-filter 198.51.100.0/24 does not hold the caller's address 203.0.113.5; the rule allows a range only if it holds the caller's address"},
		{"CIDRs: ranges inside, the caller in neither", cidrs, "198.51.100.128/25, 2001:db8:1::/48", caller, nil,
			"ip-filter 198.51.100.128/25 does not hold the caller's address 203.0.113.9; the rule allows a range only if it holds the caller's address, ip-filter 2001:db8:1::/48 does not hold the caller's address 203.0.113.9; the rule allows a range only if it holds the caller's address"},
		{"CIDRs: a caller inside asks for a range beside it", cidrs, "198.51.100.128/25", inside, nil,
			"ip-filter 198.51.100.128/25 does not hold the caller's address 198.51.100.7; the rule allows a range only if it holds the caller's address"},
		{"CIDRs: an IPv6 range for an IPv4 caller", cidrs, "runner, 2001:db8:1::/48", inside, nil,
			"ip-filter 2001:db8:1::/48 does not hold the caller's address 198.51.100.7; the rule allows a range only if it holds the caller's address"},
		{"CIDRs: a range for an unknown caller", cidrs, "198.51.100.0/25", netip.Addr{}, nil,
			"ip-filter 198.51.100.0/25 cannot be checked: the caller's address is unknown, and a range is allowed only if it holds the caller's"},
		{"CIDRs: an IPv4-mapped caller is its IPv4 address", cidrs, "198.51.100.0/25", netip.MustParseAddr("::ffff:198.51.100.7"), pfx("198.51.100.0/25"), ""},
		{"CIDRs: the caller's own address listed once", cidrs, "runner, 198.51.100.7", inside, pfx("198.51.100.7/32"), ""},
		{"CIDRs: a wider CIDR that starts inside", cidrs, "198.51.100.0/23", inside, nil, "ip-filter 198.51.100.0/23 is not within 198.51.100.0/24, 2001:db8::/32"},
		{"CIDRs: none refused", cidrs, "none", inside, nil, "ip-filter none is not allowed (the rule allows addresses within 198.51.100.0/24, 2001:db8::/32 only)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var edits []string
			if tc.rule != "" {
				edits = append(edits, tc.rule)
			}
			p := mustParse(t, ruleYAML(edits...))
			d, err := p.Decide(github, shopClaims(), Ask{Preset: "workers-deploy", IPFilter: ipAsked(tc.ask)}, realGroups(t), tc.caller)
			if tc.deny != "" {
				var den *Denial
				if !errors.As(err, &den) || den.Reason != ReasonIPFilter || !strings.HasSuffix(den.Error(), "; "+tc.deny) {
					t.Fatalf("Decide = %+v, %v; want an ip-filter denial ending %q", d, err, tc.deny)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.CIDRs, tc.want) {
				t.Errorf("CIDRs = %v, want %v", d.CIDRs, tc.want)
			}
		})
	}
}

// One *Policy serves every request at once; -race checks that deciding changes nothing shared.
func TestDecideConcurrently(t *testing.T) {
	t.Parallel()
	p := examplePolicy(t)
	groups := realGroups(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ask := Ask{Preset: "workers-deploy", TTL: time.Duration(i+1) * time.Minute}
			if d, err := p.Decide(github, shopClaims(), ask, groups, caller); err != nil || d.TTL != ask.TTL {
				t.Errorf("Decide = %+v, %v", d, err)
			}
		})
	}
	wg.Wait()
	if got := p.Issuers(); !slices.Equal(got, []string{github}) {
		t.Errorf("Issuers after use = %q", got)
	}
}

// TestDecideWithEachRulesOwnList: a later rule of another owner is resolved against its own
// owner's group list, not the first rule's.
func TestDecideWithEachRulesOwnList(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "audience: x\nrules:\n"+ruleItem("name: first", "allow: {presets: [dns-edit], zones: [example.com]}")+ruleItem("name: second", "token_owner: user", "allow: {presets: [workers-deploy]}"))
	all := realGroups(t)
	var seen []string
	groupsFor := func(r *Rule) []policy.Group {
		seen = append(seen, r.Name())
		return all
	}
	d, err := p.DecideWith(github, Claims{"repository_id": "690011"}, Ask{Preset: "workers-deploy"}, groupsFor, caller)
	if err != nil || d.Rule != "second" || d.Owner != "user" {
		t.Fatalf("DecideWith = %+v, %v; want rule second, owned by the user", d, err)
	}
	if !slices.Equal(seen, []string{"first", "second"}) {
		t.Errorf("groups were asked for %v; want each rule's own, in order", seen)
	}
	if p.Rules()[0].AllowsZone("example.org") || !p.Rules()[0].AllowsZone("Example.COM.") || p.Rules()[1].AllowsZone("example.com") {
		t.Errorf("AllowsZone does not follow the rules' zone lists")
	}
}

// TestDecideR2UploadWithoutBuckets: a rule of preset r2-upload without r2_buckets allows the
// preset's account-wide grant, which a request without buckets asks for; the bucket-level grant
// is for rules and requests that name buckets.
func TestDecideR2UploadWithoutBuckets(t *testing.T) {
	t.Parallel()
	p := mustParse(t, ruleYAML("allow: {presets: [r2-upload]}"))
	if err := p.Check(realGroups(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	d, err := p.Decide(github, shopClaims(), Ask{Preset: "r2-upload"}, realGroups(t), caller)
	if err != nil {
		t.Fatal(err)
	}
	storage := policy.Group{ID: groupID(t, "Workers R2 Storage Write", policy.ScopeAccount), Name: "Workers R2 Storage Write", Scopes: []string{policy.ScopeAccount}}
	if want := []policy.Policy{{Groups: []policy.Group{storage}, Resources: map[string]any{policy.AccountKey(acct): "*"}}}; !reflect.DeepEqual(d.Policies, want) {
		t.Errorf("Policies =\n%#v\nwant\n%#v", d.Policies, want)
	}
}

// TestDecideTTLBounds: a ttl of exactly 1m or 6h is within the allowed range; past them the
// request is refused whatever the rule allows.
func TestDecideTTLBounds(t *testing.T) {
	t.Parallel()
	p := mustParse(t, ruleYAML("max_ttl: 6h"))
	for _, ttl := range []time.Duration{config.MinTTL, config.MaxTTL} {
		if d, err := p.Decide(github, shopClaims(), Ask{Preset: "workers-deploy", TTL: ttl}, realGroups(t), caller); err != nil || d.TTL != ttl {
			t.Errorf("ttl %v: Decide = %+v, %v", ttl, d, err)
		}
	}
	for _, ttl := range []time.Duration{config.MinTTL - time.Second, config.MaxTTL + time.Second} {
		var den *Denial
		if _, err := p.Decide(github, shopClaims(), Ask{Preset: "workers-deploy", TTL: ttl}, realGroups(t), caller); !errors.As(err, &den) || den.Reason != ReasonRequest {
			t.Errorf("ttl %v: Decide error = %v, want a request denial", ttl, err)
		}
	}
}
