package config

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/runner"
)

func ptr(s string) string { return s }

// valid is a minimal good set of inputs; cases change one thing.
func valid() *Inputs {
	return &Inputs{
		BootstrapToken: ptr("cfat_secretsecretsecret"),
		AccountID:      ptr("0123456789abcdef0123456789abcdef"),
		Preset:         ptr("workers-deploy"),
	}
}

func TestReadInputsUsesRunnerNames(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"INPUT_BOOTSTRAP-TOKEN": "tok",
		"INPUT_IP-FILTER":       "none",
		"INPUT_EXPORT-ENV":      "",
	}
	in, err := ReadInputs(context.Background(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if in.BootstrapToken != "tok" || in.IPFilter != "none" || in.TTL != "" {
		t.Errorf("inputs = %+v", in)
	}
	if !in.ExportEnvSet || in.ExportEnv != "" {
		t.Errorf("export-env = %q (set %v), want set and empty", in.ExportEnv, in.ExportEnvSet)
	}
}

func TestValidateDefaults(t *testing.T) {
	t.Parallel()
	c, err := Validate(valid(), Context{Repository: "octo/site", RunID: "7", RunAttempt: "2", Job: "deploy", Action: "cf"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Owner != cftoken.OwnerAccount || c.TTL != 15*time.Minute || !c.IPFilter.Runner || c.IPFilter.None || !c.Revoke || c.ExportEnv != "CLOUDFLARE_API_TOKEN" {
		t.Errorf("defaults wrong: %+v", c)
	}
	if want := "cfmint:octo/site:workers-deploy:7.2:deploy:cf"; c.Name != want {
		t.Errorf("name = %q, want %q", c.Name, want)
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edit  func(*Inputs)
		input string // the input the error must name
		want  string // and a phrase it must hold
	}{
		{"empty bootstrap", func(in *Inputs) { in.BootstrapToken = ptr("") }, "bootstrap-token", "forks"},
		{"whitespace bootstrap", func(in *Inputs) { in.BootstrapToken = ptr("  \t ") }, "bootstrap-token", "is empty"},
		{"bootstrap with newline", func(in *Inputs) { in.BootstrapToken = ptr("abc\ndef") }, "bootstrap-token", "white space"},
		{"owner", func(in *Inputs) { in.TokenOwner = ptr("team") }, "token-owner", `"team" is not an owner; use account or user`},
		{"account id short", func(in *Inputs) { in.AccountID = ptr("1234") }, "account-id", "32 hex"},
		{"account id missing for account owner", func(in *Inputs) { in.AccountID = ptr("") }, "account-id", "is empty"},
		{"preset", func(in *Inputs) { in.Preset = ptr("deploy-all") }, "preset", "analytics-read, cache-purge, d1-write, dns-edit"},
		{"nothing asked", func(in *Inputs) { in.Preset = ptr("") }, "preset", "no permissions asked for"},
		{"ttl no unit", func(in *Inputs) { in.TTL = ptr("90") }, "ttl", "has no unit"},
		{"ttl negative", func(in *Inputs) { in.TTL = ptr("-5m") }, "ttl", "1m to 6h"},
		{"ttl zero", func(in *Inputs) { in.TTL = ptr("0s") }, "ttl", "1m to 6h"},
		{"ttl too long", func(in *Inputs) { in.TTL = ptr("7h") }, "ttl", "1m to 6h"},
		{"ttl overflow", func(in *Inputs) { in.TTL = ptr("1e9h") }, "ttl", "not a duration"},
		{"ttl too short", func(in *Inputs) { in.TTL = ptr("30s") }, "ttl", "1m to 6h"},
		{"cidr", func(in *Inputs) { in.IPFilter = ptr("10.0.0.0/33") }, "ip-filter", `"10.0.0.0/33" is not a CIDR`},
		{"cidr host bits", func(in *Inputs) { in.IPFilter = ptr("198.51.100.7/24") }, "ip-filter", "write 198.51.100.0/24"},
		{"ipv6 zone", func(in *Inputs) { in.IPFilter = ptr("fe80::1%eth0") }, "ip-filter", "not an IP address"},
		{"ipv4-mapped", func(in *Inputs) { in.IPFilter = ptr("::ffff:10.0.0.0/104") }, "ip-filter", "IPv4-mapped"},
		{"none with runner", func(in *Inputs) { in.IPFilter = ptr("none, runner") }, "ip-filter", "cannot be combined"},
		{"word", func(in *Inputs) { in.IPFilter = ptr("everywhere") }, "ip-filter", `"everywhere" is not an IP address or CIDR`},
		{"zone", func(in *Inputs) { in.Zones = ptr("not a zone!") }, "zones", "neither a zone name"},
		{"zone star mixed", func(in *Inputs) { in.Zones = ptr("*, example.com") }, "zones", "cannot be combined"},
		{"export-env bad", func(in *Inputs) { in.ExportEnv = ptr("1TOKEN") }, "export-env", "not a valid environment variable name"},
		{"export-env equals", func(in *Inputs) { in.ExportEnv = ptr("A=B") }, "export-env", "not a valid environment variable name"},
		{"export-env newline", func(in *Inputs) { in.ExportEnv = ptr("A\nB") }, "export-env", "not a valid environment variable name"},
		{"export-env reserved", func(in *Inputs) { in.ExportEnv = ptr("GITHUB_TOKEN") }, "export-env", "reserved"},
		{"export-env path", func(in *Inputs) { in.ExportEnv = ptr("PATH") }, "export-env", "override"},
		{"name long", func(in *Inputs) { in.Name = ptr(strings.Repeat("n", 121)) }, "name", "at most 120"},
		{"name control", func(in *Inputs) { in.Name = ptr("a\x1bb") }, "name", `"a\x1bb" contains control characters or invisible ones`},
		{"name bidi override", func(in *Inputs) { in.Name = "deploy\u202egnp.exe" }, "name", "invisible ones"},
		{"name legacy command", func(in *Inputs) { in.Name = "deploy ##[set-output name=r2-endpoint]https://evil.example" }, "name", `holds ##[, which the runner reads`},
		{"name command", func(in *Inputs) { in.Name = "x::add-mask::y" }, "name", `holds ::`},
		{"name empty placeholder makes ::", func(in *Inputs) { in.Name = "deploy:{job}:x" }, "name", "placeholder that is empty"},
		{"name posing as another repository", func(in *Inputs) { in.Name = "cfmint:other/repo:x" }, "name", "start it with cfmint:local:"},
		{"api-base-url http", func(in *Inputs) { in.APIBaseURL = "http://evil.example/client/v4" }, "api-base-url", `"http://evil.example/client/v4" is http to "evil.example", which is not a loopback address`},
		{"api-base-url relative", func(in *Inputs) { in.APIBaseURL = "api.cloudflare.com/client/v4" }, "api-base-url", "not an absolute URL; write one such as https://api.cloudflare.com/client/v4"},
		{"allow-lasting-access", func(in *Inputs) { in.AllowLastingAccess = "yes" }, "allow-lasting-access", `"yes" is not a boolean; use true or false`},
		{"name delimiter", func(in *Inputs) { in.Name = ptr("x_GitHubActionsFileCommandDelimeter_y") }, "name", "delimiter"},
		{"revoke", func(in *Inputs) { in.Revoke = ptr("yes") }, "revoke", "use true or false"},
		{"bucket name", func(in *Inputs) { in.R2Buckets = ptr("Assets_1") }, "r2-buckets", "not a bucket name"},
		{"bucket jurisdiction", func(in *Inputs) { in.R2Buckets = ptr("mars:assets") }, "r2-buckets", "use default, eu, fedramp"},
		{"export-r2", func(in *Inputs) { in.ExportR2 = ptr("1") }, "export-r2", "use true or false"},
		{"dry-run", func(in *Inputs) { in.DryRun = ptr("maybe") }, "dry-run", "use true or false"},
		{"token-id", func(in *Inputs) { in.TokenID = ptr("abc"); in.Preset = "" }, "token-id", "32 hex"},
		{"token-id with preset", func(in *Inputs) { in.TokenID = ptr("0123456789abcdef0123456789abcdef") }, "token-id", "cannot be combined with preset"},
		{"token-id with sweep", func(in *Inputs) {
			in.TokenID = ptr("0123456789abcdef0123456789abcdef")
			in.Sweep = "true"
			in.Preset = ""
		}, "token-id", "cannot be combined with sweep"},
		{"sweep with preset", func(in *Inputs) { in.Sweep = ptr("true") }, "sweep", "cannot be combined with preset"},
		{"sweep older", func(in *Inputs) { in.Sweep = "true"; in.Preset = ""; in.SweepOlderThan = "30s" }, "sweep-older-than", "at least 1m"},
		{"sweep repo", func(in *Inputs) { in.Sweep = "true"; in.Preset = ""; in.SweepRepo = "not a repo" }, "sweep-repository", "owner/repo"},
		{"timeout", func(in *Inputs) { in.Timeout = ptr("1h") }, "timeout", "10s to 30m"},
		{"buckets in two jurisdictions", func(in *Inputs) { in.R2Buckets = "assets, eu:logs" }, "r2-buckets", "one token per jurisdiction"},
		{"every IPv4 address", func(in *Inputs) { in.IPFilter = "0.0.0.0/0" }, "ip-filter", "write none"},
		{"every IPv6 address", func(in *Inputs) { in.IPFilter = "runner, ::/0" }, "ip-filter", "write none"},
		{"name empty once filled in", func(in *Inputs) { in.Name = "{job}" }, "name", "is empty once"},
		{"dry-run with token-id", func(in *Inputs) { in.Preset = ""; in.TokenID = "0123456789abcdef0123456789abcdef"; in.DryRun = "true" }, "dry-run", "cannot be combined with token-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := valid()
			tc.edit(in)
			_, err := Validate(in, Context{})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, `input "`+tc.input+`"`) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name input %q with %q", msg, tc.input, tc.want)
			}
			if strings.Contains(msg, "cfat_secretsecretsecret") {
				t.Errorf("error shows the bootstrap token: %q", msg)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	in := valid()
	in.TTL = ptr("90")
	in.IPFilter = ptr("nowhere")
	in.TokenOwner = ptr("me")
	_, err := Validate(in, Context{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, input := range []string{"ttl", "ip-filter", "token-owner"} {
		if !strings.Contains(err.Error(), `input "`+input+`"`) {
			t.Errorf("error %q does not mention %s", err, input)
		}
	}
}

func TestParseIPFilter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in     string
		runner bool
		none   bool
		cidrs  []string
	}{
		{"", true, false, nil},
		{"runner", true, false, nil},
		{"none", false, true, nil},
		{"NONE", false, true, nil},
		{"runner, 198.51.100.0/24", true, false, []string{"198.51.100.0/24"}},
		{"203.0.113.7\n2001:db8::/48", false, false, []string{"203.0.113.7/32", "2001:db8::/48"}},
		{"2001:db8::1", false, false, []string{"2001:db8::1/128"}},
		{"10.0.0.0/8,10.0.0.0/8", false, false, []string{"10.0.0.0/8"}},
	}
	for _, tc := range cases {
		f, err := ParseIPFilter(tc.in)
		if err != nil {
			t.Errorf("ParseIPFilter(%q): %v", tc.in, err)
			continue
		}
		var got []string
		for _, p := range f.CIDRs {
			got = append(got, p.String())
		}
		if f.Runner != tc.runner || f.None != tc.none || strings.Join(got, " ") != strings.Join(tc.cidrs, " ") {
			t.Errorf("ParseIPFilter(%q) = %+v, want runner=%v none=%v cidrs=%v", tc.in, f, tc.runner, tc.none, tc.cidrs)
		}
	}
}

func TestParseZones(t *testing.T) {
	t.Parallel()
	z, errs := ParseZones("Example.COM., 0123456789abcdef0123456789abcdef\nsub.example.net")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if strings.Join(z.Names, " ") != "example.com sub.example.net" || len(z.IDs) != 1 || z.All {
		t.Errorf("got %+v", z)
	}
	z, errs = ParseZones("*")
	if len(errs) > 0 || !z.All {
		t.Errorf("* gave %+v %v", z, errs)
	}
}

func FuzzParseIPFilter(f *testing.F) {
	for _, s := range []string{"runner", "none", "runner, 198.51.100.0/24", "2001:db8::/48", "1.2.3.4/33", "::ffff:1.2.3.4", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseIPFilter(s)
		if err != nil {
			return
		}
		if fl.None && (fl.Runner || len(fl.CIDRs) > 0) {
			t.Fatalf("%q: none combined with others", s)
		}
		for _, p := range fl.CIDRs {
			if p != p.Masked() || !p.IsValid() {
				t.Fatalf("%q: non-canonical %v", s, p)
			}
			if _, err := netip.ParsePrefix(p.String()); err != nil {
				t.Fatalf("%q: %v does not round-trip", s, p)
			}
		}
	})
}

func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"15m", "90", "-5m", "0s", "7h", "1e9h", "1h30m", "59.9s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTTL(s)
		if err == nil && (d < MinTTL || d > MaxTTL) {
			t.Fatalf("%q accepted as %v", s, d)
		}
		if err != nil && !strings.HasPrefix(err.Error(), `input "ttl"`) {
			t.Fatalf("%q: error %q does not name the input", s, err)
		}
	})
}

func FuzzDefaultName(f *testing.F) {
	f.Add("octo/site", "1", "1", "deploy", "cf", "dns-edit")
	f.Fuzz(func(t *testing.T, repo, run, attempt, job, step, purpose string) {
		n := mint.DefaultName(Context{Repository: repo, RunID: run, RunAttempt: attempt, Job: job, Action: step}, purpose)
		if len(n) > mint.MaxNameLen || CheckName(n) != nil || !strings.HasPrefix(n, mint.NamePrefix) {
			t.Fatalf("bad name %q", n)
		}
	})
}

func TestValidateModes(t *testing.T) {
	t.Parallel()
	in := valid()
	in.Preset = ""
	in.TokenID = "0123456789ABCDEF0123456789abcdef"
	c, err := Validate(in, Context{})
	if err != nil || c.Mode != ModeRevoke || c.TokenID != "0123456789abcdef0123456789abcdef" {
		t.Errorf("revoke mode: %+v, %v", c, err)
	}
	in = valid()
	in.Preset = ""
	in.Sweep = "TRUE"
	in.SweepOlderThan = "24h"
	c, err = Validate(in, Context{Repository: "octo/site"})
	if err != nil || c.Mode != ModeSweep || c.SweepRepo != "octo/site" || c.SweepOlderThan != 24*time.Hour {
		t.Errorf("sweep mode: %+v, %v", c, err)
	}
	in = valid()
	in.R2Buckets = "eu:assets, eu:logs\neu:assets"
	in.ExportR2 = "true"
	in.DryRun = "true"
	c, err = Validate(in, Context{})
	if err != nil || len(c.Buckets) != 2 || c.Buckets[1] != (Bucket{Jurisdiction: "eu", Name: "logs"}) || c.Buckets[0] != (Bucket{Jurisdiction: "eu", Name: "assets"}) || !c.ExportR2 || !c.DryRun || c.Timeout != DefaultTimeout {
		t.Errorf("r2/dry-run: %+v, %v", c, err)
	}
}

func FuzzParseBuckets(f *testing.F) {
	for _, s := range []string{"assets", "eu:assets, fedramp:x-y", "mars:a", "A_B", ":", "eu:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bs, errs := ParseBuckets(s)
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), `input "r2-buckets"`) {
				t.Fatalf("%q: error %q does not name the input", s, e)
			}
		}
		for _, b := range bs {
			if !bucketName.MatchString(b.Name) || strings.Contains(b.Name, "_") {
				t.Fatalf("%q: bad bucket %+v accepted", s, b)
			}
		}
	})
}

func TestExpandName(t *testing.T) {
	t.Parallel()
	rc := Context{Repository: "octo/site", RunID: "77", RunAttempt: "2", Job: "deploy\n::x", Action: "cf", SHA: "0123456789abcdef0123"}
	cases := []struct{ tmpl, want, err string }{
		{"deploy-{repo}-{run_id}.{run_attempt}", "deploy-site-77.2", ""},
		{"{repository}/{purpose}@{sha}", "octo/site/dns-edit@0123456789ab", ""},
		{"{owner}:{job}:{step}", "octo:deploy___x:cf", ""},
		{"plain name", "plain name", ""},
		{"{branch}", "", "not a placeholder"},
		{"{repo", "", "without a closing"},
		{strings.Repeat("x", 110) + "{repository}{repository}", "", "at most 120"},
	}
	for _, tc := range cases {
		got, err := ExpandName(tc.tmpl, rc, "dns-edit")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), `input "name"`) {
				t.Errorf("ExpandName(%q) error = %v, want %q", tc.tmpl, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandName(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}

func FuzzExpandName(f *testing.F) {
	f.Add("deploy-{repo}-{run_id}", "octo/site", "feature/x")
	f.Add("{job}{job}{job}", "a/b", "\x00::add-mask::")
	f.Fuzz(func(t *testing.T, tmpl, repo, job string) {
		n, err := ExpandName(tmpl, Context{Repository: repo, Job: job, RunID: "1"}, "p")
		if err != nil {
			if !strings.HasPrefix(err.Error(), `input "name"`) {
				t.Fatalf("error %q does not name the input", err)
			}
			return
		}
		if CheckName(n) != nil || strings.Contains(n, "\n") {
			t.Fatalf("%q expanded to a bad name %q", tmpl, n)
		}
	})
}

func FuzzParseZones(f *testing.F) {
	for _, s := range []string{"example.com", "*", "0123456789abcdef0123456789abcdef", "a..b", "*, x.com", "EXAMPLE.COM."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		z, errs := ParseZones(s)
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), `input "zones"`) {
				t.Fatalf("%q: error %q does not name the input", s, e)
			}
		}
		for _, n := range z.Names {
			if !zoneName.MatchString(n) || strings.ToLower(n) != n {
				t.Fatalf("%q: bad zone name %q accepted", s, n)
			}
		}
		for _, id := range z.IDs {
			if !cftoken.ValidID(id) {
				t.Fatalf("%q: bad zone id %q accepted", s, id)
			}
		}
	})
}

// FuzzValidate feeds arbitrary values to every input at once: Validate either accepts them or
// names an input in every error, and never echoes the bootstrap token.
func FuzzValidate(f *testing.F) {
	f.Add("cfat_x", "0123456789abcdef0123456789abcdef", "account", "dns-edit", "", "example.com", "15m", "runner", "", "CLOUDFLARE_API_TOKEN")
	f.Add("", "x", "team", "nope", "DNS\nWrite", "*,a.com", "90", "none,runner", "{x}", "A=B")
	f.Fuzz(func(t *testing.T, tok, acct, owner, preset, perms, zones, ttl, ipf, name, exp string) {
		in := &Inputs{BootstrapToken: tok, AccountID: acct, TokenOwner: owner, Preset: preset, Permissions: perms, Zones: zones, TTL: ttl, IPFilter: ipf, Name: name, ExportEnv: exp, ExportEnvSet: true}
		c, err := Validate(in, Context{Repository: "o/r", RunID: "1"})
		if err == nil {
			if c.Name == "" || CheckName(c.Name) != nil || c.TTL < MinTTL || c.TTL > MaxTTL {
				t.Fatalf("accepted a bad config: %+v", c)
			}
			if cmd, ok := runner.FindCommand("Minted token " + c.Name + "."); ok {
				t.Fatalf("name %q reads as ::%s::", c.Name, cmd)
			}
			return
		}
		for _, e := range SplitForTest(err) {
			if !strings.HasPrefix(e.Error(), `input "`) {
				t.Fatalf("error %q does not name its input", e)
			}
			// An error may be printed as a plain line (a terminal run inside a workflow step).
			if cmd, ok := runner.FindCommand(e.Error()); ok {
				t.Fatalf("error %q reads as ::%s::", e, cmd)
			}
			secret := strings.TrimSpace(tok)
			others := strings.Join([]string{acct, owner, preset, perms, zones, ttl, ipf, name, exp}, "\x00")
			if len(secret) >= 6 && !strings.Contains(others, secret) && strings.Contains(e.Error(), secret) {
				t.Fatalf("error %q holds the bootstrap token", e)
			}
		}
	})
}

// SplitForTest lists the errors of an errors.Join.
func SplitForTest(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
