package action_test

import (
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
)

// use is an API call a token is (or is not) allowed to make.
type use struct{ method, path string }

func (a *api) scripts() use {
	return use{http.MethodGet, "/accounts/" + a.fx.Account.ID + "/workers/scripts"}
}
func (a *api) dns(z cfapitest.Zone) use {
	return use{http.MethodGet, "/zones/" + z.ID + "/dns_records"}
}

// refusedAddress is the code Cloudflare answers a call from an address the token's IP filter
// refuses: 9109 "Cannot use the access token from location", but 10000 on the Workers API.
func (u use) refusedAddress() int {
	if strings.Contains(u.path, "/workers/") {
		return 10000
	}
	return 9109
}

// groupsOf lists "group@resource" for each grant of a stored token, sorted.
func groupsOf(tk cfapitest.TokenInfo) []string {
	var out []string
	for _, p := range tk.Policies {
		var keys []string
		for k, v := range p.Resources {
			if m, ok := v.(map[string]any); ok {
				for ik := range m {
					k += ">" + ik
				}
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, g := range p.Groups {
			out = append(out, g.Name+"@"+strings.Join(keys, "+"))
		}
	}
	sort.Strings(out)
	return out
}

// TestMintUseRevoke runs the whole life of a token per preset and per owner: main mints exactly
// the asked permissions, pinned to the runner's address; the token works where granted, is
// refused from another address (9109, 10000 on Workers) and gets 10000 where not granted; post
// revokes it and then the product APIs answer it 401 / 10000.
func TestMintUseRevoke(t *testing.T) {
	t.Parallel()
	// The rows are literals: Seed's accounts and zones have fixed ids.
	const (
		acct  = "com.cloudflare.api.account." + cfapitest.SeedAccountID
		zone  = "com.cloudflare.api.account.zone." + cfapitest.SeedZoneID
		zone2 = "com.cloudflare.api.account.zone." + cfapitest.SeedZone2ID
	)
	var (
		scripts  = use{http.MethodGet, "/accounts/" + cfapitest.SeedAccountID + "/workers/scripts"}
		buckets  = use{http.MethodGet, "/accounts/" + cfapitest.SeedAccountID + "/r2/buckets"}
		dns      = use{http.MethodGet, "/zones/" + cfapitest.SeedZoneID + "/dns_records"}
		dns2     = use{http.MethodGet, "/zones/" + cfapitest.SeedZone2ID + "/dns_records"}
		dnsWrite = use{http.MethodPost, "/zones/" + cfapitest.SeedZoneID + "/dns_records"}
		purge    = use{http.MethodPost, "/zones/" + cfapitest.SeedZoneID + "/purge_cache"}
		purge2   = use{http.MethodPost, "/zones/" + cfapitest.SeedZone2ID + "/purge_cache"}
	)
	// both is the two zones' resource keys as groupsOf joins them, sorted.
	both := zone + "+" + zone2
	if zone2 < zone {
		both = zone2 + "+" + zone
	}
	cases := []struct {
		name string
		with map[string]string
		// owner "user" also sets the user's bootstrap token, whose secret is fresh in every Seed.
		owner   string
		grants  []string
		allowed *use // nil: the grant has no call to try
		denied  use
	}{
		{name: "workers-deploy", with: map[string]string{"preset": "workers-deploy"}, owner: "account",
			grants: []string{"Workers Scripts Write@" + acct}, allowed: &scripts, denied: dns},
		{name: "r2-upload", with: map[string]string{"preset": "r2-upload"}, owner: "account",
			grants: []string{"Workers R2 Storage Write@" + acct}, allowed: &buckets, denied: scripts},
		{name: "dns-edit", with: map[string]string{"preset": "dns-edit", "zones": "example.com"}, owner: "account",
			grants: []string{"DNS Write@" + zone}, allowed: &dnsWrite, denied: dns2},
		{name: "cache-purge", with: map[string]string{"preset": "cache-purge", "zones": cfapitest.SeedZone2ID}, owner: "account",
			grants: []string{"Cache Purge@" + zone2}, allowed: &purge2, denied: purge},
		{name: "analytics-read", with: map[string]string{"preset": "analytics-read"}, owner: "account",
			grants: []string{"Account Analytics Read@" + acct}, denied: scripts},
		{name: "explicit permissions on two zones, mixed with a preset",
			with:  map[string]string{"preset": "workers-deploy", "permissions": "dns write\nZone Read", "zones": "example.com, " + cfapitest.SeedZone2ID},
			owner: "account",
			grants: []string{
				"DNS Write@" + both,
				"Workers Scripts Write@" + acct,
				"Zone Read@" + both,
			},
			allowed: &dns2, denied: purge},
		{name: "every zone of the account", with: map[string]string{"permissions": "DNS Read", "zones": "*"}, owner: "account",
			grants: []string{"DNS Read@" + acct + ">com.cloudflare.api.account.zone.*"}, allowed: &dns2, denied: scripts},
		{name: "user-owned", with: map[string]string{"token-owner": "user", "preset": "dns-edit", "zones": "example.net"}, owner: "user",
			grants: []string{"DNS Write@" + zone2}, allowed: &dns2, denied: dns},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, nil)
			with := maps.Clone(c.with)
			if c.owner == "user" {
				with["bootstrap-token"] = a.fx.UserBootstrap.Secret
			}
			s := a.step("cf", with)
			m := runMain(t, j, s)
			mustSucceed(t, m)

			token, id, name := m.Outputs["token"], m.Outputs["token-id"], m.Outputs["name"]
			if token == "" || id == "" || name == "" {
				t.Fatalf("outputs missing: %v", keys(m.Outputs))
			}
			if m.Env["CLOUDFLARE_API_TOKEN"] != token || m.Env["CLOUDFLARE_ACCOUNT_ID"] != a.fx.Account.ID {
				t.Errorf("env = %v, want the token and the account id", keys(m.Env))
			}
			if m.Outputs["ip-filter"] != "127.0.0.1/32" {
				t.Errorf("ip-filter output = %q, want 127.0.0.1/32", m.Outputs["ip-filter"])
			}
			tk, ok := a.Token(id)
			if !ok {
				t.Fatalf("token %s not in the API", id)
			}
			if tk.OwnerKind != c.owner || tk.Name != name || tk.Status != "active" {
				t.Errorf("stored token: owner %s name %q status %s", tk.OwnerKind, tk.Name, tk.Status)
			}
			if got, want := groupsOf(tk), c.grants; !slices.Equal(got, want) {
				t.Errorf("grants = %v, want %v", got, want)
			}
			if !slices.Equal(tk.IPIn, []string{"127.0.0.1/32"}) || len(tk.IPNotIn) > 0 {
				t.Errorf("IP condition in=%v not_in=%v, want in=[127.0.0.1/32]", tk.IPIn, tk.IPNotIn)
			}
			if d := time.Until(tk.ExpiresOn); d < 14*time.Minute || d > 15*time.Minute+2*time.Second {
				t.Errorf("expires in %v, want 15m", d)
			}
			if m.Outputs["expires-on"] != tk.ExpiresOn.UTC().Format(time.RFC3339) {
				t.Errorf("expires-on output %q, token expires %s", m.Outputs["expires-on"], tk.ExpiresOn)
			}
			if !strings.Contains(m.Summary, id) || !strings.Contains(m.Summary, "127.0.0.1/32") {
				t.Errorf("summary lacks id or filter:\n%s", m.Summary)
			}

			if c.allowed != nil {
				u := *c.allowed
				if got := a.call(t, token, u.method, u.path, "127.0.0.1"); got.Status != 200 {
					t.Errorf("granted %s %s from the runner: %+v, want 200", u.method, u.path, got)
				}
				if got := a.call(t, token, u.method, u.path, "127.0.0.2"); got.Status != 403 || !got.has(u.refusedAddress()) {
					t.Errorf("granted call from 127.0.0.2: %+v, want 403 %d", got, u.refusedAddress())
				}
			}
			u := c.denied
			if got := a.call(t, token, u.method, u.path, "127.0.0.1"); got.Status != 403 || !got.has(10000) {
				t.Errorf("ungranted %s %s: %+v, want 403 10000", u.method, u.path, got)
			}

			p := runPost(t, j, s, m)
			mustSucceed(t, p)
			if !strings.Contains(p.Summary, "revoked") {
				t.Errorf("post summary %q does not say revoked", p.Summary)
			}
			use := scripts
			if c.allowed != nil {
				use = *c.allowed
			}
			if got := a.call(t, token, use.method, use.path, "127.0.0.1"); got.Status != 401 || !got.has(10000) {
				t.Errorf("after post: %+v, want 401 10000", got)
			}
			if left := a.tokensNamed(name); len(left) > 0 {
				t.Errorf("tokens left after post: %v", left)
			}
			checkSecrets(t, a, token, m, p)
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestTTL checks the bounds, and that the expiry is set on Cloudflare's clock, not the runner's.
func TestTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl  string
		want time.Duration
		skew time.Duration // how far Cloudflare's clock is ahead of the runner's
	}{
		{"1m", time.Minute, 0},
		{"6h", 6 * time.Hour, 0},
		{"20m", 20 * time.Minute, 3 * time.Hour},
		{"20m", 20 * time.Minute, -47 * time.Minute},
	} {
		t.Run(tc.ttl+"/skew"+tc.skew.String(), func(t *testing.T) {
			t.Parallel()
			now := func() time.Time { return time.Now().Add(tc.skew) }
			a := startAPI(t, cfapitest.WithClock(now))
			j := a.job(t, nil)
			s := a.step("cf", map[string]string{"preset": "workers-deploy", "ttl": tc.ttl})
			// The expiry is Cloudflare's time when cfmint planned the token (its Date header,
			// whole seconds) plus ttl: between these two readings of Cloudflare's clock.
			before := now().Truncate(time.Second)
			m := runMain(t, j, s)
			after := now()
			mustSucceed(t, m)
			tk, _ := a.Token(m.Outputs["token-id"])
			if tk.ExpiresOn.Before(before.Add(tc.want)) || tk.ExpiresOn.After(after.Add(tc.want)) {
				t.Errorf("expires %s, want between %s and %s (ttl %v on Cloudflare's clock)", tk.ExpiresOn, before.Add(tc.want), after.Add(tc.want), tc.want)
			}
			mustSucceed(t, runPost(t, j, s, m))
		})
	}
}

// TestIPFilterForms covers runner, none, CIDRs alone and runner with CIDRs.
func TestIPFilterForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		filter  string
		in      []string
		works   bool // from 127.0.0.1
		warning string
	}{
		{"runner", []string{"127.0.0.1/32"}, true, ""},
		{"none", nil, true, "ip-filter is none"},
		{"198.51.100.0/24", []string{"198.51.100.0/24"}, false, ""},
		{"runner, 198.51.100.0/24, 2001:db8::/48", []string{"127.0.0.1/32", "198.51.100.0/24", "2001:db8::/48"}, true, ""},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, nil)
			s := a.step("cf", map[string]string{"preset": "workers-deploy", "ip-filter": tc.filter})
			m := runMain(t, j, s)
			mustSucceed(t, m)
			tk, _ := a.Token(m.Outputs["token-id"])
			got := slices.Clone(tk.IPIn)
			slices.Sort(got)
			want := slices.Clone(tc.in)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("IP condition %v, want %v", tk.IPIn, tc.in)
			}
			if m.Outputs["ip-filter"] != strings.Join(tc.in, ",") {
				t.Errorf("ip-filter output %q, want %q", m.Outputs["ip-filter"], strings.Join(tc.in, ","))
			}
			// The log says where the token works: the filter, or any address without one.
			where := "any address"
			if len(tc.in) > 0 {
				where = strings.Join(tc.in, ",")
			}
			if !strings.Contains(m.Log, "usable from "+where+".") {
				t.Errorf("the log does not say the token is usable from %s:\n%s", where, m.Log)
			}
			res := a.call(t, m.Outputs["token"], http.MethodGet, a.scripts().path, "127.0.0.1")
			if tc.works != (res.Status == 200) {
				t.Errorf("call from the runner: %+v, want works=%v", res, tc.works)
			}
			if !tc.works && (res.Status != 403 || !res.has(a.scripts().refusedAddress())) {
				t.Errorf("refused call %+v, want 403 %d", res, a.scripts().refusedAddress())
			}
			if tc.warning != "" && !hasAnnotation(m, "warning", tc.warning) {
				t.Errorf("no warning %q in %+v", tc.warning, m.Annotations)
			}
			mustSucceed(t, runPost(t, j, s, m))
		})
	}
}

func hasAnnotation(p *runner.Phase, level, text string) bool {
	for _, an := range p.Annotations {
		if an.Level == level && strings.Contains(an.Message, text) {
			return true
		}
	}
	return false
}

// TestRevokeFalse leaves the token to its expiry.
func TestRevokeFalse(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	s := a.step("cf", map[string]string{"preset": "workers-deploy", "revoke": "false"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if tk, ok := a.Token(m.Outputs["token-id"]); !ok || tk.Status != "active" {
		t.Errorf("token should be left active, got %+v (present %v)", tk, ok)
	}
	if !strings.Contains(p.Log, "left to expire") {
		t.Errorf("post log does not say the token is left:\n%s", p.Log)
	}
	if len(a.Deleted()) != 0 {
		t.Errorf("post deleted %d tokens", len(a.Deleted()))
	}
}

// TestTwoStepsInOneJob mints two tokens in one job; names differ by step and both are revoked
// by their own post phase (which the runner runs in reverse order at the end of the job).
func TestTwoStepsInOneJob(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	s1 := a.step("deploy-token", map[string]string{"preset": "workers-deploy"})
	s2 := a.step("dns-token", map[string]string{"preset": "dns-edit", "zones": "example.com", "export-env": "DNS_TOKEN"})
	m1 := runMain(t, j, s1)
	mustSucceed(t, m1)
	m2 := runMain(t, j, s2)
	mustSucceed(t, m2)
	if m1.Outputs["name"] == m2.Outputs["name"] || m1.Outputs["token-id"] == m2.Outputs["token-id"] {
		t.Fatalf("both steps minted %q", m1.Outputs["name"])
	}
	env := j.Env()
	if env["CLOUDFLARE_API_TOKEN"] != m1.Outputs["token"] || env["DNS_TOKEN"] != m2.Outputs["token"] {
		t.Errorf("job env does not hold both tokens under their names")
	}
	for m, want := range map[*runner.Phase]string{m1: "CLOUDFLARE_API_TOKEN", m2: "DNS_TOKEN"} {
		if line := "Exported to later steps: " + want + ", CLOUDFLARE_ACCOUNT_ID."; !strings.Contains(m.Log, line) {
			t.Errorf("the log does not say %q:\n%s", line, m.Log)
		}
	}
	mustSucceed(t, runPost(t, j, s2, m2))
	// Each post revokes its own step's token only.
	if got := a.call(t, m1.Outputs["token"], http.MethodGet, a.scripts().path, "127.0.0.1"); got.Status != 200 {
		t.Errorf("the first step's token after the second step's post: %+v, want 200", got)
	}
	if got := a.call(t, m2.Outputs["token"], http.MethodGet, a.dns(a.fx.Zone).path, "127.0.0.1"); got.Status != 401 || !got.has(10000) {
		t.Errorf("the second step's token after its post: %+v, want 401 10000", got)
	}
	mustSucceed(t, runPost(t, j, s1, m1))
	for _, m := range []*runner.Phase{m1, m2} {
		if left := a.tokensNamed(m.Outputs["name"]); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	}
}

// TestExportEnvEmpty: an empty export-env exports nothing, and the log says nothing was.
func TestExportEnvEmpty(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	s := a.step("cf", map[string]string{"preset": "workers-deploy", "export-env": ""})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if m.Outputs["token"] == "" {
		t.Fatal("no token output")
	}
	if len(m.Env) != 0 {
		t.Errorf("exported %v with export-env empty", slices.Collect(maps.Keys(m.Env)))
	}
	if strings.Contains(m.Log, "Exported") {
		t.Errorf("the log says something was exported:\n%s", m.Log)
	}
	mustSucceed(t, runPost(t, j, s, m))
}

// TestPostNeverMints runs only the post entrypoint, as the runner does when main died before
// saving state: it must not create anything, whatever the inputs say.
func TestPostNeverMints(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	s := a.step("cf", map[string]string{"preset": "workers-deploy"})
	// A main phase that saved nothing: what the runner hands post when main failed early.
	p := runPost(t, j, s, &runner.Phase{Name: "main", ExitCode: 1, State: map[string]string{}})
	mustSucceed(t, p)
	if n := a.creates(); n != 0 {
		t.Errorf("post made %d create calls", n)
	}
	if len(a.Requests()) != 0 {
		t.Errorf("post made %d API calls with no state", len(a.Requests()))
	}
	if !strings.Contains(p.Log, "Nothing to revoke") {
		t.Errorf("post log does not say there was nothing to revoke:\n%s", p.Log)
	}
	// No state at all is no planted state: nothing to warn about.
	if len(p.Annotations) != 0 {
		t.Errorf("post with no state annotated %+v", p.Annotations)
	}
}

// TestPostAlreadyGone succeeds when the token was deleted elsewhere.
func TestPostAlreadyGone(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	s := a.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	id := m.Outputs["token-id"]
	if got := a.call(t, a.fx.AccountBootstrap.Secret, http.MethodDelete, "/accounts/"+a.fx.Account.ID+"/tokens/"+id, ""); got.Status != 200 {
		t.Fatalf("deleting behind cfmint's back: %+v", got)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if !strings.Contains(p.Log, "already gone") {
		t.Errorf("post log:\n%s", p.Log)
	}
}

// TestSecretsWithDebug runs a full cycle with RUNNER_DEBUG=1 and scans everything for secrets.
func TestSecretsWithDebug(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, map[string]string{"RUNNER_DEBUG": "1"})
	s := a.step("cf", map[string]string{"preset": "dns-edit", "zones": "example.com"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if !strings.Contains(m.Stdout, "::debug::") {
		t.Errorf("no debug output with RUNNER_DEBUG=1")
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	checkSecrets(t, a, m.Outputs["token"], m, p)
}

// TestBadInputCreatesNothing: each bad input fails main with an error naming the input, exit
// code 1, and no token created.
func TestBadInputCreatesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		with  func(a *api) map[string]string
		input string
		want  string
	}{
		{"empty bootstrap", func(a *api) map[string]string {
			return map[string]string{"bootstrap-token": "", "preset": "workers-deploy"}
		}, "bootstrap-token", "forks"},
		{"unknown preset", func(a *api) map[string]string { return map[string]string{"preset": "deploy-everything"} }, "preset", "workers-deploy"},
		{"ttl without unit", func(a *api) map[string]string { return map[string]string{"preset": "workers-deploy", "ttl": "90"} }, "ttl", "has no unit"},
		{"ttl too long", func(a *api) map[string]string { return map[string]string{"preset": "workers-deploy", "ttl": "7h"} }, "ttl", "1m to 6h"},
		{"unknown permission", func(a *api) map[string]string {
			return map[string]string{"permissions": "DNS Wirte", "zones": "example.com"}
		}, "permissions", `did you mean "DNS Write"`},
		{"zone permission without zones", func(a *api) map[string]string { return map[string]string{"preset": "dns-edit"} }, "zones", "is empty"},
		{"unknown zone", func(a *api) map[string]string {
			return map[string]string{"preset": "dns-edit", "zones": "nope.example"}
		}, "zones", `"nope.example" was not found`},
		{"zone of another account", func(a *api) map[string]string {
			return map[string]string{"preset": "dns-edit", "zones": a.fx.OtherZone.ID}
		}, "zones", "Zone Read"},
		{"bootstrap without the create permission", func(a *api) map[string]string {
			_, secret, err := a.IssueToken(cfapitest.TokenSpec{Name: "zone reader", OwnerAccount: a.fx.Account.ID, Policies: []cfapitest.Policy{
				{Groups: []string{"Zone Read"}, Resources: map[string]any{"com.cloudflare.api.account." + a.fx.Account.ID: map[string]any{"com.cloudflare.api.account.zone.*": "*"}}},
			}})
			if err != nil {
				panic(err)
			}
			return map[string]string{"preset": "workers-deploy", "bootstrap-token": secret}
		}, "bootstrap-token", "give it Account API Tokens Write"},
		{"bootstrap of another account", func(a *api) map[string]string {
			return map[string]string{"preset": "workers-deploy", "account-id": a.fx.OtherAccount.ID}
		}, "bootstrap-token", "check account-id"},
		{"bad export-env", func(a *api) map[string]string {
			return map[string]string{"preset": "workers-deploy", "export-env": "X=1\nGITHUB_PATH"}
		}, "export-env", "not a valid environment variable name"},
		{"export-env with =", wd("export-env", "A=B"), "export-env", "not a valid environment variable name"},
		{"export-env with a newline", wd("export-env", "A\nB"), "export-env", "not a valid environment variable name"},
		{"whitespace bootstrap", func(a *api) map[string]string {
			return map[string]string{"bootstrap-token": "  \t ", "preset": "workers-deploy"}
		}, "bootstrap-token", "is empty"},
		{"whitespace preset", func(a *api) map[string]string { return map[string]string{"preset": "   "} }, "preset", "no permissions asked for"},
		{"ttl negative", wd("ttl", "-5m"), "ttl", "1m to 6h"},
		{"ttl zero", wd("ttl", "0s"), "ttl", "1m to 6h"},
		{"ttl overflowing", wd("ttl", "1e9h"), "ttl", "not a duration"},
		{"CIDR out of range", wd("ip-filter", "10.0.0.0/33"), "ip-filter", "not a CIDR"},
		{"CIDR with host bits", wd("ip-filter", "runner, 198.51.100.7/24"), "ip-filter", "write 198.51.100.0/24"},
		{"IPv6 prefix out of range", wd("ip-filter", "2001:db8::/129"), "ip-filter", "not a CIDR"},
		{"IPv6 with a zone", wd("ip-filter", "fe80::1%eth0"), "ip-filter", "not an IP address"},
		{"IPv4-mapped IPv6", wd("ip-filter", "::ffff:198.51.100.0/120"), "ip-filter", "IPv4-mapped"},
		{"none with CIDRs", wd("ip-filter", "none, 10.0.0.0/8"), "ip-filter", "cannot be combined"},
		{"account id not 32 hex", func(a *api) map[string]string {
			return map[string]string{"preset": "workers-deploy", "account-id": "my-account"}
		}, "account-id", "32 hex"},
		{"name over 120 once filled in", wd("name", strings.Repeat("n", 100)+"-{repository}-{job}"), "name", "at most 120"},
		{"name with a control character", wd("name", "deploy\x1b[31m"), "name", "control characters"},
		{"name with a newline (output injection)", wd("name", "x\ntoken=stolen"), "name", "control characters"},
		{"name with the file-command delimiter", wd("name", "x_GitHubActionsFileCommandDelimeter_\ntoken=1"), "name", "control characters"},
		{"name template with an unknown placeholder", wd("name", "deploy-{branch}"), "name", "not a placeholder"},
		{"token-owner", wd("token-owner", "team"), "token-owner", "use account or user"},
		{"revoke not a boolean", wd("revoke", "yes"), "revoke", "use true or false"},
		{"export-r2 not a boolean", wd("export-r2", "1"), "export-r2", "use true or false"},
		{"dry-run not a boolean", wd("dry-run", "maybe"), "dry-run", "use true or false"},
		{"sweep not a boolean", func(a *api) map[string]string { return map[string]string{"sweep": "please"} }, "sweep", "use true or false"},
		{"timeout out of range", wd("timeout", "1h"), "timeout", "10s to 30m"},
		{"token-id not an id", func(a *api) map[string]string { return map[string]string{"token-id": "abc"} }, "token-id", "32 hex"},
		{"token-id with a preset", wd("token-id", "0123456789abcdef0123456789abcdef"), "token-id", "cannot be combined with preset"},
		{"sweep-older-than too short", func(a *api) map[string]string {
			return map[string]string{"sweep": "true", "sweep-older-than": "30s"}
		}, "sweep-older-than", "at least 1m"},
		{"sweep-repository not owner/repo", func(a *api) map[string]string {
			return map[string]string{"sweep": "true", "sweep-repository": "just-a-name"}
		}, "sweep-repository", "owner/repo"},
		{"R2 jurisdiction", func(a *api) map[string]string {
			return map[string]string{"preset": "r2-upload", "r2-buckets": "mars:assets"}
		}, "r2-buckets", "use default, eu, fedramp"},
		{"R2 bucket name", func(a *api) map[string]string {
			return map[string]string{"preset": "r2-upload", "r2-buckets": "Assets_2"}
		}, "r2-buckets", "not a bucket name"},
		{"user-owned bootstrap for an account-owned token", func(a *api) map[string]string {
			return map[string]string{"preset": "workers-deploy", "bootstrap-token": a.fx.UserBootstrap.Secret}
		}, "bootstrap-token", "not an account-owned token"},
		{"account-owned bootstrap for a user-owned token", func(a *api) map[string]string {
			return map[string]string{"preset": "workers-deploy", "token-owner": "user"}
		}, "bootstrap-token", "not a user token"},
		{"zone that belongs to another account", func(a *api) map[string]string {
			// A user in both accounts, whose bootstrap token can read both accounts' zones.
			u := a.AddUser("both@example.com", a.fx.Account.ID, a.fx.OtherAccount.ID)
			_, secret, err := a.IssueToken(cfapitest.TokenSpec{Name: "bootstrap (both)", OwnerUserID: u.ID, Policies: []cfapitest.Policy{
				{Groups: []string{"API Tokens Write"}, Resources: map[string]any{"com.cloudflare.api.user." + u.ID: "*"}},
				{Groups: []string{"Zone Read"}, Resources: map[string]any{"com.cloudflare.api.account." + a.fx.OtherAccount.ID: map[string]any{"com.cloudflare.api.account.zone.*": "*"}}},
			}})
			if err != nil {
				panic(err)
			}
			return map[string]string{"preset": "dns-edit", "token-owner": "user", "bootstrap-token": secret, "zones": a.fx.OtherZone.Name}
		}, "zones", "belongs to account " + "OTHER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, map[string]string{"RUNNER_DEBUG": "1"})
			step := a.step("cf", tc.with(a))
			m := runMain(t, j, step)
			if m.ExitCode != 1 {
				t.Fatalf("exit code %d, want 1; log:\n%s", m.ExitCode, m.Log)
			}
			// The step's own bootstrap token (some rows make their own) appears nowhere either.
			if tok := strings.TrimSpace(step.With["bootstrap-token"]); len(tok) > 8 {
				for what, v := range map[string]string{"stdout": m.Stdout, "stderr": m.Stderr, "summary": m.Summary} {
					if strings.Contains(v, tok) {
						t.Errorf("%s holds the step's bootstrap token", what)
					}
				}
				for name, b := range m.Files {
					if strings.Contains(string(b), tok) {
						t.Errorf("file %s holds the step's bootstrap token", name)
					}
				}
			}
			want := strings.ReplaceAll(tc.want, "OTHER", a.fx.OtherAccount.ID)
			if !hasAnnotation(m, "error", `input "`+tc.input+`"`) || !hasAnnotation(m, "error", want) {
				t.Errorf("errors %+v do not name input %q with %q", m.Annotations, tc.input, want)
			}
			if n := a.creates(); n != 0 {
				t.Errorf("%d create calls for bad input", n)
			}
			if len(m.Outputs) != 0 || len(m.Env) != 0 || m.State["token-id"] != "" {
				t.Errorf("bad input left outputs %v env %v state %v", m.Outputs, keys(m.Env), m.State)
			}
			checkSecrets(t, a, "", m)
		})
	}
}

// wd is a workers-deploy step with one input changed.
func wd(input, value string) func(*api) map[string]string {
	return func(*api) map[string]string { return map[string]string{"preset": "workers-deploy", input: value} }
}

// TestRunnerAddressUnknown: when the trace endpoint fails, nothing is minted.
func TestRunnerAddressUnknown(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	a.InjectFault(cfapitest.Fault{Path: "/cdn-cgi/trace", Status: 503})
	j := a.job(t, nil)
	m := runMain(t, j, a.step("cf", map[string]string{"preset": "workers-deploy"}))
	if m.ExitCode != 1 || !hasAnnotation(m, "error", "never falls back to an unfiltered token") {
		t.Errorf("exit %d, annotations %+v", m.ExitCode, m.Annotations)
	}
	if n := a.creates(); n != 0 {
		t.Errorf("%d create calls without the runner's address", n)
	}
}
