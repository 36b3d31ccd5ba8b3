package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/policy"
	"github.com/cfmint/cfmint/internal/runner"
)

// TestPermissionForms mints with each way of writing a permission and checks the exact grant.
func TestPermissionForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, perms, zones string
		want               string // "group@scope-word"
	}{
		{"dashboard name", "Workers Scripts Edit", "", "Workers Scripts Write@account"},
		{"dropdowns with slashes", "Zone / DNS / Edit", "example.com", "DNS Write@zone"},
		{"dropdowns with bars", "Account | Workers R2 Storage | Edit", "", "Workers R2 Storage Write@account"},
		{"name with a colon", "Access: Apps and Policies Write", "", ""},
		{"two scopes, picked by the zones", "Logs Write", "example.com", "Logs Write@zone"},
		{"two scopes, picked by the words", "Account / Logs / Edit", "", "Logs Write@account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, nil)
			s := a.step("cf", map[string]string{"permissions": tc.perms, "zones": tc.zones})
			m := runMain(t, j, s)
			if tc.want == "" {
				// Exists at account and zone scope, and no zones are named: the error says how to pick.
				if m.ExitCode != 1 || !hasAnnotation(m, "error", `"Account / Access: Apps and Policies / Edit" or "Zone / Access: Apps and Policies / Edit"`) {
					t.Errorf("exit %d, annotations %+v", m.ExitCode, m.Annotations)
				}
				if a.creates() != 0 {
					t.Error("created a token for an ambiguous name")
				}
				return
			}
			mustSucceed(t, m)
			tk, _ := a.Token(m.Outputs["token-id"])
			var got []string
			for _, p := range tk.Policies {
				for _, g := range p.Groups {
					for k := range p.Resources {
						scope := "account"
						if strings.HasPrefix(k, policy.ScopeZone+".") {
							scope = "zone"
						}
						got = append(got, g.Name+"@"+scope)
					}
				}
			}
			if !slices.Equal(got, []string{tc.want}) {
				t.Errorf("grants %v, want [%s]", got, tc.want)
			}
			mustSucceed(t, runPost(t, j, s, m))
		})
	}
}

// TestPermissionFailures: each bad request fails before anything is created, and says how to fix it.
func TestPermissionFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		with map[string]string
		want []string
	}{
		{"unknown name with suggestions", map[string]string{"permissions": "Workers Script Write"}, []string{`input "permissions"`, `did you mean "Workers Scripts Write"`}},
		{"ambiguous scope", map[string]string{"permissions": "Logs Write"}, []string{`"Account / Logs / Edit" or "Zone / Logs / Edit"`}},
		{"ungrantable group", map[string]string{"permissions": "API Tokens Write"}, []string{"user-level permission", "token-owner: user"}},
		{"unknown zone", map[string]string{"preset": "dns-edit", "zones": "missing.example"}, []string{`input "zones"`, `"missing.example" was not found`}},
		{"bucket group without buckets", map[string]string{"permissions": "Workers R2 Storage Bucket Item Read"}, []string{`input "r2-buckets": is empty`}},
		{"unknown bucket", map[string]string{"preset": "r2-upload", "r2-buckets": "no-such-bucket"}, []string{`input "r2-buckets"`, "no-such-bucket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			m := runMain(t, a.job(t, nil), a.step("cf", tc.with))
			if m.ExitCode != 1 {
				t.Fatalf("exit %d, want 1:\n%s", m.ExitCode, m.Log)
			}
			for _, w := range tc.want {
				if !hasAnnotation(m, "error", w) {
					t.Errorf("no error with %q in %+v", w, m.Annotations)
				}
			}
			// Only the unknown bucket gets as far as Cloudflare, which refuses it: nothing is left.
			if n := len(a.Tokens()); n != 2 {
				t.Errorf("the API holds %d tokens, want only the 2 bootstrap tokens", n)
			}
		})
	}
}

// TestMorePresets checks each preset grants exactly its table row.
func TestMorePresets(t *testing.T) {
	t.Parallel()
	for _, name := range policy.PresetNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, nil)
			with := map[string]string{"preset": name}
			needsZones := false
			for _, g := range policy.Presets[name].Groups {
				if g == "DNS Write" || g == "DNS Read" || g == "Zone Read" || g == "Cache Purge" || g == "Workers Routes Write" {
					needsZones = true
				}
			}
			if needsZones {
				with["zones"] = "example.com"
			}
			s := a.step("cf", with)
			m := runMain(t, j, s)
			mustSucceed(t, m)
			tk, _ := a.Token(m.Outputs["token-id"])
			var got []string
			for _, p := range tk.Policies {
				for _, g := range p.Groups {
					got = append(got, g.Name)
				}
			}
			sort.Strings(got)
			want := slices.Clone(policy.Presets[name].Groups)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("grants %v, want %v", got, want)
			}
			mustSucceed(t, runPost(t, j, s, m))
		})
	}
}

// TestR2Bucket mints r2-upload narrowed to one bucket, exports S3 credentials, and has a real
// AWS SigV4 signer sign an upload that the built-in API checks with the derived secret.
func TestR2Bucket(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	other := a.AddBucket(a.fx.Account.ID, "default", "other")
	eu := a.AddBucket(a.fx.Account.ID, "eu", "logs")
	s := a.step("cf", map[string]string{"preset": "r2-upload", "r2-buckets": "assets", "export-r2": "true"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	id, token := m.Outputs["token-id"], m.Outputs["token"]
	tk, _ := a.Token(id)
	if len(tk.Policies) != 1 || tk.Policies[0].Groups[0].Name != "Workers R2 Storage Bucket Item Write" {
		t.Fatalf("policies %+v, want Bucket Item Write", tk.Policies)
	}
	if _, ok := tk.Policies[0].Resources["com.cloudflare.edge.r2.bucket."+a.fx.Account.ID+"_default_assets"]; !ok || len(tk.Policies[0].Resources) != 1 {
		t.Errorf("resources %v, want the assets bucket only", tk.Policies[0].Resources)
	}
	secret := m.Outputs["r2-secret-access-key"]
	if m.Outputs["r2-access-key-id"] != id || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) {
		t.Errorf("r2 outputs: key id %q, secret of %d chars", m.Outputs["r2-access-key-id"], len(secret))
	}
	if m.Outputs["r2-endpoint"] != "https://"+a.fx.Account.ID+".r2.cloudflarestorage.com" {
		t.Errorf("r2-endpoint %q", m.Outputs["r2-endpoint"])
	}
	if m.Env["AWS_ACCESS_KEY_ID"] != id || m.Env["AWS_SECRET_ACCESS_KEY"] != secret || m.Env["AWS_ENDPOINT_URL_S3"] != m.Outputs["r2-endpoint"] {
		t.Errorf("export-r2 env: %v", keys(m.Env))
	}
	if !slices.Contains(m.Masks, secret) {
		t.Error("the S3 secret was not masked")
	}
	checkSecrets(t, a, token, m)
	checkSecrets(t, a, secret, m) // the derived S3 secret gets the same treatment

	put := func(bucket cfapitest.Bucket, key, body string) int {
		return s3Put(t, a.r2(a.fx.Account.ID, bucket.Jurisdiction), bucket.Name, key, body, id, secret, "")
	}
	if got := put(a.fx.Bucket, "site/index.html", "<h1>hi</h1>"); got != 200 {
		t.Errorf("upload to the granted bucket: %d", got)
	}
	if b, ok := a.Object(a.fx.Account.ID, "default", "assets", "site/index.html"); !ok || string(b) != "<h1>hi</h1>" {
		t.Errorf("object not stored: %q %v", b, ok)
	}
	if got := put(other, "x", "y"); got != 403 {
		t.Errorf("upload to another bucket: %d, want 403", got)
	}
	if got := put(eu, "x", "y"); got != 403 {
		t.Errorf("upload to an eu bucket: %d, want 403", got)
	}
	if got := s3Put(t, a.r2(a.fx.Account.ID, "default"), "assets", "x", "y", id, strings.Repeat("0", 64), ""); got != 403 {
		t.Errorf("upload with a wrong secret: %d, want 403", got)
	}
	if got := s3Put(t, a.r2(a.fx.Account.ID, "default"), "assets", "x", "y", id, secret, "127.0.0.2"); got != 403 {
		t.Errorf("upload from another address: %d, want 403", got)
	}
	mustSucceed(t, runPost(t, j, s, m))
	if got := put(a.fx.Bucket, "after", "x"); got != 403 {
		t.Errorf("upload after post: %d, want 403", got)
	}
}

// TestR2WithoutBuckets keeps the account-wide grant and says a bucket would be narrower.
func TestR2WithoutBuckets(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	s := a.step("cf", map[string]string{"preset": "r2-upload"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if !hasAnnotation(m, "notice", "r2-buckets") {
		t.Errorf("no notice about r2-buckets: %+v", m.Annotations)
	}
	if m.Outputs["r2-access-key-id"] == "" || len(m.Env["AWS_ACCESS_KEY_ID"]) != 0 {
		t.Errorf("want r2 outputs and no AWS env without export-r2")
	}
	mustSucceed(t, runPost(t, j, s, m))
}

// TestDryRun resolves everything, prints the request, and creates nothing.
func TestDryRun(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	s := a.step("cf", map[string]string{"preset": "dns-edit", "zones": "example.com", "dry-run": "true", "ip-filter": "runner, 198.51.100.0/24"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if a.creates() != 0 || len(a.Tokens()) != 2 {
		t.Fatalf("dry run created a token")
	}
	for _, want := range []string{`"url": "` + a.url + `/accounts/` + a.fx.Account.ID + `/tokens"`, `"request_ip"`, "127.0.0.1/32", "198.51.100.0/24", a.fx.Zone.ID, "4755a26eedb94da69e1066d98aa820be"} {
		if !strings.Contains(m.Log, want) {
			t.Errorf("dry-run log lacks %q:\n%s", want, m.Log)
		}
	}
	if m.Outputs["token"] != "" || m.Env["CLOUDFLARE_API_TOKEN"] != "" || !strings.Contains(m.Summary, "dry run") {
		t.Errorf("dry run outputs %v env %v summary %q", m.Outputs, keys(m.Env), m.Summary)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if !strings.Contains(p.Log, "Nothing to revoke") {
		t.Errorf("post after a dry run:\n%s", p.Log)
	}
}

// TestRevokeMode: a later job revokes by id a token an earlier job minted with revoke: false.
func TestRevokeMode(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j1 := a.job(t, nil)
	s1 := a.step("cf", map[string]string{"preset": "workers-deploy", "revoke": "false"})
	m := runMain(t, j1, s1)
	mustSucceed(t, m)
	mustSucceed(t, runPost(t, j1, s1, m))
	id := m.Outputs["token-id"]
	if _, ok := a.Token(id); !ok {
		t.Fatal("token gone before the revoke job")
	}
	j2 := a.job(t, map[string]string{"GITHUB_JOB": "cleanup"})
	s2 := a.step("revoke", map[string]string{"token-id": id})
	r := runMain(t, j2, s2)
	mustSucceed(t, r)
	if _, ok := a.Token(id); ok {
		t.Error("token still there after revoke mode")
	}
	if a.creates() != 1 {
		t.Errorf("%d creates, want 1", a.creates())
	}
	p := runPost(t, j2, s2, r)
	mustSucceed(t, p)
	if !strings.Contains(p.Log, "Nothing to revoke") {
		t.Errorf("post of the revoke step:\n%s", p.Log)
	}
	// Again: already gone is success.
	again := runMain(t, a.job(t, nil), s2)
	mustSucceed(t, again)
	if !strings.Contains(again.Log, "already gone") {
		t.Errorf("second revoke:\n%s", again.Log)
	}
}

// TestSweep deletes only cfmint's expired tokens of this repository.
func TestSweep(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	acct := a.fx.Account.ID
	past := time.Now().Add(-time.Hour)
	seed := func(name string, expires time.Time) string {
		id, _, err := a.IssueToken(cfapitest.TokenSpec{Name: name, OwnerAccount: acct, ExpiresOn: expires,
			Policies: []cfapitest.Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{"com.cloudflare.api.account." + acct: "*"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ours := seed("cfmint:octo-org/site:workers-deploy:7.1:deploy:cf", past)
	live := seed("cfmint:octo-org/site:workers-deploy:8.1:deploy:cf", time.Now().Add(time.Hour))
	otherRepo := seed("cfmint:octo-org/site-two:workers-deploy:7.1:deploy:cf", past)
	notOurs := seed("deploy token (hand made)", past)

	// Dry run first: lists, deletes nothing.
	dry := runMain(t, a.job(t, nil), a.step("sweep", map[string]string{"sweep": "true", "dry-run": "true"}))
	mustSucceed(t, dry)
	if !strings.Contains(dry.Log, ours) || len(a.Deleted()) != 0 {
		t.Errorf("dry run: log lacks %s or deleted %d:\n%s", ours, len(a.Deleted()), dry.Log)
	}

	m := runMain(t, a.job(t, nil), a.step("sweep", map[string]string{"sweep": "true"}))
	mustSucceed(t, m)
	if m.Outputs["swept"] != "1" || m.Outputs["swept-ids"] != ours {
		t.Errorf("swept %q ids %q, want 1 %s", m.Outputs["swept"], m.Outputs["swept-ids"], ours)
	}
	for id, want := range map[string]bool{ours: false, live: true, otherRepo: true, notOurs: true} {
		if _, ok := a.Token(id); ok != want {
			t.Errorf("token %s present=%v, want %v", id, ok, want)
		}
	}
	// Every repository's expired ones.
	all := runMain(t, a.job(t, nil), a.step("sweep", map[string]string{"sweep": "true", "sweep-repository": "*"}))
	mustSucceed(t, all)
	if _, ok := a.Token(otherRepo); ok {
		t.Error("sweep-repository: * left another repository's expired token")
	}
	for id, what := range map[string]string{notOurs: "a token cfmint did not name", live: "a live token without sweep-older-than"} {
		if _, ok := a.Token(id); !ok {
			t.Errorf("sweep deleted %s", what)
		}
	}
}

// TestSweepOlderThan also takes live tokens issued longer ago than sweep-older-than.
func TestSweepOlderThan(t *testing.T) {
	t.Parallel()
	clock := cfapitest.NewClock(time.Now().Add(-2 * time.Hour))
	a := startAPI(t, cfapitest.WithClock(clock.Now))
	acct := a.fx.Account.ID
	issue := func(name string) string {
		id, _, err := a.IssueToken(cfapitest.TokenSpec{Name: name, OwnerAccount: acct, ExpiresOn: clock.Now().Add(6 * time.Hour),
			Policies: []cfapitest.Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{"com.cloudflare.api.account." + acct: "*"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	old := issue("cfmint:octo-org/site:workers-deploy:7.1:deploy:cf")
	oldNotOurs := issue("hand made, old")
	clock.Set(time.Now())
	recent := issue("cfmint:octo-org/site:workers-deploy:9.1:deploy:cf")

	m := runMain(t, a.job(t, nil), a.step("sweep", map[string]string{"sweep": "true", "sweep-older-than": "1h"}))
	mustSucceed(t, m)
	if m.Outputs["swept-ids"] != old {
		t.Errorf("swept %q, want only the old cfmint token %s", m.Outputs["swept-ids"], old)
	}
	for _, id := range []string{recent, oldNotOurs} {
		if _, ok := a.Token(id); !ok {
			t.Errorf("token %s was swept", id)
		}
	}
}

// TestSweepOnCloudflaresClock: a sweep decides expired and old on Cloudflare's clock (its
// status, and the Date of its answer), not the runner's. The runner's clock cannot be set
// forward, so Cloudflare's runs 12 minutes behind instead: to the runner, a token Cloudflare
// lists as active with 10 minutes left is past its expiry, and one issued 55 minutes ago is
// older than 1h. Neither may go; an expired one must. Nor may a token of another repository
// whose name shares the first 64 characters.
func TestSweepOnCloudflaresClock(t *testing.T) {
	t.Parallel()
	behind := func(d time.Duration) time.Time { return time.Now().Add(-12*time.Minute - d) }
	clock := cfapitest.NewClock(behind(55 * time.Minute))
	a := startAPI(t, cfapitest.WithClock(clock.Now))
	acct := a.fx.Account.ID
	long := "octo-org/" + strings.Repeat("a", 64)
	issue := func(name string, expires time.Time) string {
		id, _, err := a.IssueToken(cfapitest.TokenSpec{Name: name, OwnerAccount: acct, ExpiresOn: expires,
			Policies: []cfapitest.Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{"com.cloudflare.api.account." + acct: "*"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	aging := issue(config.RepoNamePrefix(long)+"workers-deploy:6.1:deploy:cf", behind(-time.Hour))
	clock.Set(behind(5 * time.Minute))
	live := issue(config.RepoNamePrefix(long)+"workers-deploy:7.1:deploy:cf", behind(-10*time.Minute))
	dead := issue(config.RepoNamePrefix(long)+"workers-deploy:8.1:deploy:cf", behind(time.Minute))
	neighbour := issue(config.RepoNamePrefix(long+"-two")+"workers-deploy:8.1:deploy:cf", behind(time.Minute))
	clock.Set(behind(0))
	if tk, _ := a.Token(live); tk.Status != "active" {
		t.Fatalf("the live token is %q to Cloudflare", tk.Status)
	}

	j := a.job(t, map[string]string{"GITHUB_REPOSITORY": long})
	m := runMain(t, j, a.step("sweep", map[string]string{"sweep": "true", "sweep-older-than": "1h"}))
	mustSucceed(t, m)
	if m.Outputs["swept-ids"] != dead {
		t.Errorf("swept %q, want only the expired token %s", m.Outputs["swept-ids"], dead)
	}
	for id, what := range map[string]string{live: "active with 10 minutes left", aging: "issued 55 minutes ago", neighbour: "of another repository"} {
		if _, ok := a.Token(id); !ok {
			t.Errorf("the sweep deleted the token %s", what)
		}
	}
}

// TestZoneNameWithoutAccount: without account-id, a zone name must name one active zone the
// bootstrap token can read. Anyone can add a zone of any name to an account of their own (it
// stays pending there), so a second zone of that name, or a pending one, is an error that lists
// the candidates, and nothing is minted; account-id settles it.
func TestZoneNameWithoutAccount(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	u := a.AddUser("ops@example.com", a.fx.Account.ID, a.fx.OtherAccount.ID)
	allZones := func(acct string) map[string]any {
		return map[string]any{"com.cloudflare.api.account." + acct: map[string]any{"com.cloudflare.api.account.zone.*": "*"}}
	}
	_, boot, err := a.IssueToken(cfapitest.TokenSpec{Name: "bootstrap of a user in two accounts", OwnerUserID: u.ID, Policies: []cfapitest.Policy{
		{Groups: []string{"API Tokens Write"}, Resources: map[string]any{"com.cloudflare.api.user." + u.ID: "*"}},
		{Groups: []string{"Zone Read"}, Resources: allZones(a.fx.Account.ID)},
		{Groups: []string{"Zone Read"}, Resources: allZones(a.fx.OtherAccount.ID)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	shared := a.AddZone(a.fx.Account.ID, "shared.example")
	copycat := a.AddZone(a.fx.OtherAccount.ID, "shared.example")
	a.SetZoneStatus(copycat.ID, "pending")
	lone := a.AddZone(a.fx.OtherAccount.ID, "lone.example")
	a.SetZoneStatus(lone.ID, "pending")

	cases := []struct {
		name, zones, account string
		errs                 []string // empty: the mint succeeds
	}{
		{name: "two zones of the name", zones: "shared.example", errs: []string{"names 2 zones", shared.ID, copycat.ID, "(pending, account " + a.fx.OtherAccount.ID + ")", "set account-id", "write the zone id"}},
		{name: "a pending zone", zones: "lone.example", errs: []string{lone.ID, `"pending", not active`, "set account-id"}},
		{name: "account-id settles it", zones: "shared.example", account: a.fx.Account.ID},
		{name: "the zone id settles it", zones: shared.ID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := a.job(t, nil)
			s := a.step("cf", map[string]string{"token-owner": "user", "bootstrap-token": boot, "account-id": tc.account, "preset": "dns-edit", "zones": tc.zones})
			before := a.creates()
			m := runMain(t, j, s)
			if len(tc.errs) == 0 {
				mustSucceed(t, m)
				if tk, ok := a.Token(m.Outputs["token-id"]); !ok || !strings.Contains(fmt.Sprint(tk.Policies), shared.ID) || strings.Contains(fmt.Sprint(tk.Policies), copycat.ID) {
					t.Errorf("token %+v, want it on zone %s only", tk, shared.ID)
				}
				mustSucceed(t, runPost(t, j, s, m))
				return
			}
			if m.ExitCode != 1 || a.creates() != before {
				t.Errorf("exit %d after %d creates; want a failure and none", m.ExitCode, a.creates()-before)
			}
			for _, want := range tc.errs {
				if !hasAnnotation(m, "error", want) {
					t.Errorf("no error says %q:\n%s", want, errorsOf(m))
				}
			}
		})
	}
}

// cli runs the binary as a terminal user would.
func (a *api) cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CLOUDFLARE_API_BASE_URL=" + a.url, "CFMINT_TRACE_FALLBACK_URL=" + noFallback, "CLOUDFLARE_ACCOUNT_ID=" + a.fx.Account.ID, "CLOUDFLARE_BOOTSTRAP_TOKEN=" + a.fx.AccountBootstrap.Secret}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("cfmint %v: %v", args, err)
	}
	for _, s := range []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret} {
		if strings.Contains(o.String()+e.String(), s) {
			t.Errorf("cfmint %v printed a bootstrap token", args)
		}
	}
	return o.String(), e.String(), code
}

func TestCLI(t *testing.T) {
	t.Parallel()
	a := startAPI(t)

	// Shell use: the token alone on stdout.
	out, errOut, code := a.cli(t, nil, "mint", "--preset", "dns-edit", "--zones", "example.com", "--ttl", "5m")
	if code != 0 {
		t.Fatalf("mint: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	if strings.Contains(token, "\n") || !strings.HasPrefix(token, "cfat_") {
		t.Fatalf("stdout is not one token: %q", out)
	}
	if strings.Contains(errOut, token) {
		t.Error("stderr holds the token")
	}
	if got := a.call(t, token, http.MethodGet, a.dns(a.fx.Zone).path, "127.0.0.1"); got.Status != 200 {
		t.Errorf("minted token: %+v", got)
	}
	id := regexp.MustCompile(`cfmint revoke ([0-9a-f]{32})`).FindStringSubmatch(errOut)
	if id == nil {
		t.Fatalf("stderr does not say how to revoke: %s", errOut)
	}
	tk, _ := a.Token(id[1])
	if d := time.Until(tk.ExpiresOn); d > 5*time.Minute+2*time.Second || d < 4*time.Minute {
		t.Errorf("--ttl 5m gave %v", d)
	}
	if !strings.HasPrefix(tk.Name, "cfmint:local:dns-edit:") {
		t.Errorf("terminal name %q", tk.Name)
	}

	// JSON.
	out, errOut, code = a.cli(t, nil, "mint", "--preset", "workers-deploy", "--format", "json", "--ip-filter", "runner,198.51.100.0/24")
	var j struct {
		Token, ID, Name string
		ExpiresOn       string   `json:"expires_on"`
		IPFilter        []string `json:"ip_filter"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Token == "" || j.ID == "" || len(j.IPFilter) != 2 {
		t.Fatalf("mint --format json: exit %d, %q, %s", code, out, errOut)
	}
	if _, err := time.Parse(time.RFC3339, j.ExpiresOn); err != nil {
		t.Errorf("expires_on %q", j.ExpiresOn)
	}

	// Revoke, twice.
	for _, want := range []string{"Revoked token", "already gone"} {
		_, errOut, code = a.cli(t, nil, "revoke", j.ID)
		if code != 0 || !strings.Contains(errOut, want) {
			t.Errorf("revoke: exit %d, %s", code, errOut)
		}
	}

	// Dry run.
	out, _, code = a.cli(t, nil, "mint", "--permissions", "Zone / DNS / Edit", "--zones", "example.net", "--dry-run")
	if code != 0 || !strings.Contains(out, a.fx.Zone2.ID) || !strings.Contains(out, `"method": "POST"`) {
		t.Errorf("dry run: exit %d:\n%s", code, out)
	}

	// Permissions.
	out, _, code = a.cli(t, nil, "permissions", "dns")
	if code != 0 || !strings.Contains(out, "DNS Write") || !strings.Contains(out, "account.zone") || strings.Contains(out, "Workers") {
		t.Errorf("permissions dns: exit %d:\n%s", code, out)
	}
	out, _, code = a.cli(t, map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": a.fx.UserBootstrap.Secret}, "permissions", "--owner", "user", "api tokens")
	if code != 0 || !strings.Contains(out, "API Tokens Write") {
		t.Errorf("permissions --owner user: exit %d:\n%s", code, out)
	}

	// Sweep: the terminal's own tokens are named cfmint:local:...
	out, errOut, code = a.cli(t, nil, "sweep", "--dry-run", "--older-than", "1m")
	if code != 0 || !strings.Contains(errOut, "token(s) would delete") {
		t.Errorf("sweep --dry-run: exit %d: %s %s", code, out, errOut)
	}

	// Bad flags and inputs: exit 2, the flag named, nothing created.
	before := a.creates()
	for _, args := range [][]string{
		{"mint", "--ttl", "90", "--preset", "workers-deploy"},
		{"mint", "--preset", "nope"},
		{"mint", "--format", "yaml", "--preset", "workers-deploy"},
		{"mint", "--no-such-flag"},
		{"revoke"},
		{"revoke", "not-an-id"},
		{"frobnicate"},
	} {
		_, errOut, code := a.cli(t, nil, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
		if strings.Contains(errOut, "input \"") {
			t.Errorf("%v: says input instead of the flag: %s", args, errOut)
		}
	}
	_, errOut, _ = a.cli(t, nil, "mint", "--ttl", "90", "--preset", "workers-deploy")
	if !strings.Contains(errOut, "--ttl") {
		t.Errorf("ttl error does not name --ttl: %s", errOut)
	}
	_, errOut, code = a.cli(t, map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": ""}, "mint", "--preset", "workers-deploy")
	if code != 2 || !strings.Contains(errOut, "CLOUDFLARE_BOOTSTRAP_TOKEN") {
		t.Errorf("no bootstrap token: exit %d: %s", code, errOut)
	}
	if a.creates() != before {
		t.Error("bad flags created a token")
	}

	// Help for each command, exit 0, with its exit codes.
	for _, cmd := range []string{"mint", "revoke", "permissions", "sweep"} {
		_, errOut, code := a.cli(t, nil, cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "Exit codes") || !strings.Contains(errOut, "-bootstrap-token") {
			t.Errorf("%s --help: exit %d:\n%s", cmd, code, errOut)
		}
	}
	out, _, code = a.cli(t, nil, "help")
	if code != 0 || !strings.Contains(out, "cfmint mint") {
		t.Errorf("help: %d %s", code, out)
	}
}

// TestCLIShellUse runs the README's shell line through a real shell.
func TestCLIShellUse(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	script := `CLOUDFLARE_API_TOKEN=$("$CFMINT" mint --preset dns-edit --zones example.com --ttl 5m) || exit 3
test -n "$CLOUDFLARE_API_TOKEN" || exit 4
printf '%s' "$CLOUDFLARE_API_TOKEN" | wc -c`
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CFMINT=" + binPath, "CLOUDFLARE_API_BASE_URL=" + a.url, "CFMINT_TRACE_FALLBACK_URL=" + noFallback, "CLOUDFLARE_ACCOUNT_ID=" + a.fx.Account.ID, "CLOUDFLARE_BOOTSTRAP_TOKEN=" + a.fx.AccountBootstrap.Secret}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shell use failed: %v\n%s", err, stderr.String())
	}
	if n := strings.TrimSpace(string(out)); n == "0" || n == "" {
		t.Errorf("token length %q", n)
	}
}

// TestCLIMintMasksInWorkflow: `cfmint mint` in a workflow step (GITHUB_ACTIONS=true) masks the
// token and its S3 secret on stderr, which the runner reads commands from, before any line
// about the token; stdout keeps the output alone for capture. In a terminal it prints no mask.
func TestCLIMintMasksInWorkflow(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	for _, inWorkflow := range []bool{true, false} {
		env := map[string]string{}
		if inWorkflow {
			env["GITHUB_ACTIONS"] = "true"
		}
		out, errOut, code := a.cli(t, env, "mint", "--preset", "r2-upload", "--r2-buckets", "assets", "--format", "json")
		if code != 0 {
			t.Fatalf("mint: exit %d: %s", code, errOut)
		}
		var got struct {
			Token string `json:"token"`
			S3    string `json:"r2_secret_access_key"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.Token == "" || got.S3 == "" {
			t.Fatalf("stdout %q: %v", out, err)
		}
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		masks := map[string]int{}
		minted := -1
		for i, line := range lines {
			if name, ok := runner.FindCommand(line); ok {
				if name != "add-mask" {
					t.Errorf("stderr line %d is a %s command: %q", i+1, name, line)
				}
				masks[strings.TrimPrefix(line, "::add-mask::")] = i
				continue
			}
			if strings.Contains(line, got.Token) || strings.Contains(line, got.S3) {
				t.Errorf("stderr line %d holds a secret", i+1)
			}
			if strings.HasPrefix(line, "Minted token") {
				minted = i
			}
		}
		if !inWorkflow {
			if len(masks) > 0 {
				t.Errorf("a terminal run printed %d mask commands", len(masks))
			}
			continue
		}
		for what, secret := range map[string]string{"token": got.Token, "S3 secret": got.S3} {
			if i, ok := masks[secret]; !ok || i > minted {
				t.Errorf("the %s is not masked before the line about the token (mask at %d, mint line at %d):\n%s", what, i, minted, strings.NewReplacer(got.Token, "<TOKEN>", got.S3, "<S3>").Replace(errOut))
			}
		}
	}
}

// TestREADMEPresets checks the README's presets table against the code.
func TestREADMEPresets(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m := regexp.MustCompile("^\\| `([a-z0-9-]+)` \\| ([^|]+) \\|").FindStringSubmatch(line)
		if m != nil {
			if _, ok := policy.Presets[m[1]]; ok {
				rows[m[1]] = strings.TrimSpace(m[2])
			}
		}
	}
	for _, name := range policy.PresetNames() {
		p := policy.Presets[name]
		want := strings.Join(p.Groups, ", ")
		if len(p.BucketGroups) > 0 {
			want = strings.Join(p.BucketGroups, ", ") + " (with `r2-buckets`), else " + want
		}
		if rows[name] != want {
			t.Errorf("README row for %s grants %q, code grants %q", name, rows[name], want)
		}
	}
	if len(rows) != len(policy.Presets) {
		t.Errorf("README lists %d presets, code has %d", len(rows), len(policy.Presets))
	}
}

// TestCLIPermissionFailures runs the permission failures through the terminal interface: exit 1,
// the flag named, nothing left behind.
func TestCLIPermissionFailures(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--permissions", "Workers Script Write"}, []string{"--permissions", `did you mean "Workers Scripts Write"`}},
		{[]string{"--permissions", "Logs Write"}, []string{`"Account / Logs / Edit" or "Zone / Logs / Edit"`}},
		{[]string{"--permissions", "API Tokens Write"}, []string{"user-level permission"}},
		{[]string{"--preset", "dns-edit", "--zones", "missing.example"}, []string{"--zones", `"missing.example" was not found`}},
		{[]string{"--preset", "r2-upload", "--r2-buckets", "no-such-bucket"}, []string{"--r2-buckets", "no-such-bucket"}},
	} {
		_, errOut, code := a.cli(t, nil, append([]string{"mint"}, tc.args...)...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1: %s", tc.args, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr lacks %q: %s", tc.args, w, errOut)
			}
		}
	}
	if n := len(a.Tokens()); n != 2 {
		t.Errorf("the API holds %d tokens, want only the 2 bootstrap tokens", n)
	}
}
