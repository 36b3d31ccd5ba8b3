package action_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/policy"
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
		{"two scopes, picked by the zones", "Logs Read", "example.com", "Logs Read@zone"},
		{"two scopes, picked by the words", "Account / Logs / Read", "", "Logs Read@account"},
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
	aging := issue(mint.RepoNamePrefix(long)+"workers-deploy:6.1:deploy:cf", behind(-time.Hour))
	clock.Set(behind(5 * time.Minute))
	live := issue(mint.RepoNamePrefix(long)+"workers-deploy:7.1:deploy:cf", behind(-10*time.Minute))
	dead := issue(mint.RepoNamePrefix(long)+"workers-deploy:8.1:deploy:cf", behind(time.Minute))
	neighbour := issue(mint.RepoNamePrefix(long+"-two")+"workers-deploy:8.1:deploy:cf", behind(time.Minute))
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
