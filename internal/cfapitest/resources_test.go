package cfapitest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/zones"
)

func TestZones(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	dnsOnly := w.issue(t, TokenSpec{Name: "dns only", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"DNS Write"}, Resources: allZonesOf(w.Account.ID)}}})
	zoneWrite := w.issue(t, TokenSpec{Name: "zone write", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Zone Write"}, Resources: map[string]any{zoneKey(w.Zone2.ID): "*"}}}})
	cases := []struct {
		name   string
		secret string
		query  string
		want   []string
	}{
		{"account bootstrap sees its zones", w.AccountBootstrap.Secret, "", []string{"example.com", "example.net"}},
		{"user bootstrap sees its zones", w.UserBootstrap.Secret, "", []string{"example.com", "example.net"}},
		{"by name", w.AccountBootstrap.Secret, "?name=example.com", []string{"example.com"}},
		{"by name and account", w.AccountBootstrap.Secret, "?name=example.net&account.id=" + w.Account.ID, []string{"example.net"}},
		{"another account's zone is absent", w.AccountBootstrap.Secret, "?name=other.example", nil},
		{"another account is empty", w.AccountBootstrap.Secret, "?account.id=" + w.OtherAccount.ID, nil},
		{"no such zone", w.AccountBootstrap.Secret, "?name=nowhere.example", nil},
		{"DNS Write does not list zones", dnsOnly.Secret, "", nil},
		{"Zone Write implies Zone Read", zoneWrite.Secret, "", []string{"example.net"}},
		{"paging", w.AccountBootstrap.Secret, "?per_page=5&page=2", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := w.do(t, defaultClient, http.MethodGet, "/zones"+tc.query, tc.secret, nil)
			wantOK(t, a)
			var got []struct {
				Name    string
				Status  string
				Account struct{ ID, Name string }
			}
			a.result(t, &got)
			var names []string
			for _, z := range got {
				names = append(names, z.Name)
				if z.Status != "active" || z.Account.ID != w.Account.ID || z.Account.Name != "Example Account" {
					t.Errorf("zone %+v, want active in Example Account", z)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("zones = %v, want %v", names, tc.want)
			}
		})
	}

	t.Run("SDK lookup by name", func(t *testing.T) {
		t.Parallel()
		page, err := w.zoneService(w.AccountBootstrap.Secret).List(context.Background(), zones.ZoneListParams{
			Name:    cloudflare.F("example.com"),
			Account: cloudflare.F(zones.ZoneListParamsAccount{ID: cloudflare.F(w.Account.ID)}),
		})
		if err != nil || len(page.Result) != 1 || page.Result[0].ID != w.Zone.ID || page.Result[0].Account.ID != w.Account.ID {
			t.Errorf("List = %+v, %v; want %s", page, err, w.Zone.ID)
		}
	})
	t.Run("one zone", func(t *testing.T) {
		t.Parallel()
		wantOK(t, w.do(t, defaultClient, http.MethodGet, "/zones/"+w.Zone.ID, w.AccountBootstrap.Secret, nil))
		wantError(t, w.do(t, defaultClient, http.MethodGet, "/zones/"+w.OtherZone.ID, w.AccountBootstrap.Secret, nil), 403, 9109)
		wantError(t, w.do(t, defaultClient, http.MethodGet, "/zones/"+newID(), w.AccountBootstrap.Secret, nil), 403, 9109)
		wantError(t, w.do(t, defaultClient, http.MethodGet, "/zones/example.com", w.AccountBootstrap.Secret, nil), 404, 7003)
	})
}

// TestZoneStatus: a zone's status shows in its answers, and the list's status filter takes it.
func TestZoneStatus(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pending := w.AddZone(w.Account.ID, "pending.example")
	w.SetZoneStatus(pending.ID, "pending")
	for query, want := range map[string]string{
		"?name=pending.example":                "pending",
		"?name=pending.example&status=pending": "pending",
		"?name=pending.example&status=active":  "",
		"?name=example.com&status=active":      "active",
	} {
		a := w.do(t, defaultClient, http.MethodGet, "/zones"+query, w.AccountBootstrap.Secret, nil)
		wantOK(t, a)
		var got []struct{ Status string }
		a.result(t, &got)
		switch {
		case want == "" && len(got) != 0:
			t.Errorf("%s: %+v, want none", query, got)
		case want != "" && (len(got) != 1 || got[0].Status != want):
			t.Errorf("%s: %+v, want one zone, %s", query, got, want)
		}
	}
	var one struct{ Status string }
	w.do(t, defaultClient, http.MethodGet, "/zones/"+pending.ID, w.AccountBootstrap.Secret, nil).result(t, &one)
	if one.Status != "pending" {
		t.Errorf("GET the zone: status %q, want pending", one.Status)
	}
}

func TestResourceEndpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	from1, from2 := defaultClient, clientFrom("127.0.0.2")
	dnsWrite := w.issue(t, TokenSpec{Name: "dns", OwnerAccount: w.Account.ID, IPIn: []string{"127.0.0.1/32"},
		Policies: []Policy{{Groups: []string{"DNS Write"}, Resources: map[string]any{zoneKey(w.Zone.ID): "*"}}}})
	notFrom2 := w.issue(t, TokenSpec{Name: "not from .2", OwnerUserID: w.User.ID, IPNotIn: []string{"127.0.0.2/32"},
		Policies: []Policy{{Groups: []string{"DNS Read"}, Resources: allZonesOf(w.Account.ID)}}})
	dnsRead := w.issue(t, TokenSpec{Name: "dns read", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"DNS Read"}, Resources: map[string]any{zoneKey(w.Zone.ID): "*"}}}})
	purge := w.issue(t, TokenSpec{Name: "purge", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Cache Purge"}, Resources: allZonesOf(w.Account.ID)}}})
	scripts := w.issue(t, TokenSpec{Name: "scripts", OwnerUserID: w.User.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	scriptsRead := w.issue(t, TokenSpec{Name: "scripts read", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers Scripts Read"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	r2 := w.issue(t, TokenSpec{Name: "r2", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers R2 Storage Read"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	bucketOnly := w.issue(t, TokenSpec{Name: "bucket", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers R2 Storage Bucket Item Write"}, Resources: map[string]any{prefixBucket + w.Bucket.resourceName(): "*"}}}})
	denyZone2 := w.issue(t, TokenSpec{Name: "deny zone2", OwnerAccount: w.Account.ID,
		Policies: []Policy{
			{Groups: []string{"DNS Write"}, Resources: allZonesOf(w.Account.ID)},
			{Effect: "deny", Groups: []string{"DNS Write"}, Resources: map[string]any{zoneKey(w.Zone2.ID): "*"}},
		}})

	dns := func(z Zone) string { return "/zones/" + z.ID + "/dns_records" }
	record := map[string]any{"type": "TXT", "name": "_ci", "content": "hello", "ttl": 60}
	cases := []struct {
		name    string
		tok     Bootstrap
		client  *http.Client
		method  string
		path    string
		body    any
		status  int
		code    int
		message string // exact error message, when set
	}{
		{"DNS Write reads records", dnsWrite, from1, http.MethodGet, dns(w.Zone), nil, 200, 0, ""},
		{"DNS Write from another address", dnsWrite, from2, http.MethodGet, dns(w.Zone), nil, 403, 9109, "Cannot use the access token from location: 127.0.0.2"},
		{"DNS Write writes records", dnsWrite, from1, http.MethodPost, dns(w.Zone), record, 200, 0, ""},
		{"DNS Write rejects an empty record", dnsWrite, from1, http.MethodPost, dns(w.Zone), map[string]any{"type": "A"}, 400, 1004, "DNS Validation Error"},
		{"DNS Write, zone not covered", dnsWrite, from1, http.MethodGet, dns(w.Zone2), nil, 403, 10000, "Authentication error"},
		{"DNS Write, another account's zone", dnsWrite, from1, http.MethodGet, dns(w.OtherZone), nil, 403, 10000, ""},
		{"DNS Write, missing zone", dnsWrite, from1, http.MethodGet, "/zones/" + newID() + "/dns_records", nil, 403, 10000, ""},
		{"DNS Write cannot purge", dnsWrite, from1, http.MethodPost, "/zones/" + w.Zone.ID + "/purge_cache", map[string]any{"purge_everything": true}, 403, 10000, ""},
		{"DNS Write cannot list scripts", dnsWrite, from1, http.MethodGet, "/accounts/" + w.Account.ID + "/workers/scripts", nil, 403, 10000, ""},
		{"DNS Write cannot list zones' details", dnsWrite, from1, http.MethodGet, "/zones/" + w.Zone.ID, nil, 403, 9109, ""},
		{"not_in allows others", notFrom2, from1, http.MethodGet, dns(w.Zone2), nil, 200, 0, ""},
		{"not_in blocks its address", notFrom2, from2, http.MethodGet, dns(w.Zone2), nil, 403, 9109, "Cannot use the access token from location: 127.0.0.2"},
		{"DNS Read reads", dnsRead, from2, http.MethodGet, dns(w.Zone), nil, 200, 0, ""},
		{"DNS Read cannot write", dnsRead, from1, http.MethodPost, dns(w.Zone), record, 403, 10000, ""},
		{"Cache Purge purges", purge, from1, http.MethodPost, "/zones/" + w.Zone2.ID + "/purge_cache", map[string]any{"files": []string{"https://example.net/a"}}, 200, 0, ""},
		{"Cache Purge, malformed body", purge, from1, http.MethodPost, "/zones/" + w.Zone2.ID + "/purge_cache", `{"files":`, 400, 6007, ""},
		{"Cache Purge, another account", purge, from1, http.MethodPost, "/zones/" + w.OtherZone.ID + "/purge_cache", nil, 403, 10000, ""},
		{"Workers Scripts Write lists", scripts, from1, http.MethodGet, "/accounts/" + w.Account.ID + "/workers/scripts", nil, 200, 0, ""},
		{"Workers Scripts Write deploys", scripts, from1, http.MethodPut, "/accounts/" + w.Account.ID + "/workers/scripts/ci-worker", `export default {}`, 200, 0, ""},
		{"Workers Scripts Write, another account", scripts, from1, http.MethodGet, "/accounts/" + w.OtherAccount.ID + "/workers/scripts", nil, 403, 10000, ""},
		{"Workers Scripts Read lists", scriptsRead, from1, http.MethodGet, "/accounts/" + w.Account.ID + "/workers/scripts", nil, 200, 0, ""},
		{"Workers Scripts Read cannot deploy", scriptsRead, from1, http.MethodPut, "/accounts/" + w.Account.ID + "/workers/scripts/ci-worker", `x`, 403, 10000, ""},
		{"R2 Storage Read lists buckets", r2, from1, http.MethodGet, "/accounts/" + w.Account.ID + "/r2/buckets", nil, 200, 0, ""},
		{"R2 Storage Read, another account", r2, from1, http.MethodGet, "/accounts/" + w.OtherAccount.ID + "/r2/buckets", nil, 403, 10000, ""},
		{"bucket item access does not list buckets", bucketOnly, from1, http.MethodGet, "/accounts/" + w.Account.ID + "/r2/buckets", nil, 403, 10000, ""},
		{"deny: allowed zone", denyZone2, from1, http.MethodGet, dns(w.Zone), nil, 200, 0, ""},
		{"deny: denied zone", denyZone2, from1, http.MethodGet, dns(w.Zone2), nil, 403, 10000, ""},
		{"malformed zone id", dnsWrite, from1, http.MethodGet, "/zones/example.com/dns_records", nil, 404, 7003, "Could not route to /zones/example.com/dns_records, perhaps your object identifier is invalid?"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := w.do(t, tc.client, tc.method, tc.path, tc.tok.Secret, tc.body)
			if tc.status == 200 {
				wantOK(t, a)
				return
			}
			wantError(t, a, tc.status, tc.code)
			if tc.message != "" && a.message() != tc.message {
				t.Errorf("message = %q, want %q", a.message(), tc.message)
			}
		})
	}
}

func TestResourceResults(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.issue(t, TokenSpec{Name: "all", OwnerAccount: w.Account.ID, Policies: []Policy{
		{Groups: []string{"DNS Write", "Cache Purge"}, Resources: map[string]any{zoneKey(w.Zone.ID): "*"}},
		{Groups: []string{"Workers Scripts Write", "Workers R2 Storage Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}},
	}})

	a := w.do(t, defaultClient, http.MethodPost, "/zones/"+w.Zone.ID+"/dns_records", tok.Secret, map[string]any{"type": "txt", "name": "_ci", "content": "v=1"})
	wantOK(t, a)
	var rec struct {
		ID, Name, Type, Content string
		TTL                     int
	}
	a.result(t, &rec)
	if !isID(rec.ID) || rec.Name != "_ci.example.com" || rec.Type != "TXT" || rec.Content != "v=1" || rec.TTL != 1 {
		t.Errorf("record = %+v, want _ci.example.com TXT v=1 with automatic TTL", rec)
	}
	a = w.do(t, defaultClient, http.MethodGet, "/zones/"+w.Zone.ID+"/dns_records?name=_ci.example.com", tok.Secret, nil)
	var recs []struct{ ID string }
	a.result(t, &recs)
	if len(recs) != 1 || recs[0].ID != rec.ID || a.Env.ResultInfo.TotalCount != 1 {
		t.Errorf("records = %+v, want [%s]", recs, rec.ID)
	}

	a = w.do(t, defaultClient, http.MethodPost, "/zones/"+w.Zone.ID+"/purge_cache", tok.Secret, map[string]any{"purge_everything": true})
	var purged struct{ ID string }
	a.result(t, &purged)
	if purged.ID != w.Zone.ID {
		t.Errorf("purge result = %+v, want the zone id", purged)
	}

	wantOK(t, w.do(t, defaultClient, http.MethodPut, "/accounts/"+w.Account.ID+"/workers/scripts/ci-worker", tok.Secret, "export default {}"))
	a = w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/workers/scripts", tok.Secret, nil)
	var scripts []struct{ ID string }
	a.result(t, &scripts)
	if len(scripts) != 2 || scripts[0].ID != "ci-worker" || scripts[1].ID != "hello" {
		t.Errorf("scripts = %+v, want ci-worker and hello", scripts)
	}

	w.AddBucket(w.Account.ID, "eu", "eu-assets")
	for _, tc := range []struct{ juris, want string }{{"", "assets"}, {"eu", "eu-assets"}} {
		h := http.Header{"Authorization": {"Bearer " + tok.Secret}}
		if tc.juris != "" {
			h.Set("cf-r2-jurisdiction", tc.juris)
		}
		a = w.doHeader(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/r2/buckets", nil, h)
		var got struct {
			Buckets []struct{ Name, Jurisdiction string }
		}
		a.result(t, &got)
		if len(got.Buckets) != 1 || got.Buckets[0].Name != tc.want {
			t.Errorf("jurisdiction %q: buckets = %+v, want %s", tc.juris, got.Buckets, tc.want)
		}
	}
}

// TestAuthorizationHeader covers the header itself; TestRefusals covers
// what each API family answers a well-formed token it refuses.
func TestAuthorizationHeader(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cases := []struct {
		name   string
		header http.Header
		status int
		code   int
	}{
		{"missing", http.Header{}, 400, 9106},
		{"API key and email", http.Header{"X-Auth-Key": {"0123456789abcdef"}, "X-Auth-Email": {"ci@example.com"}}, 400, 9106},
		{"empty", http.Header{"Authorization": {""}}, 400, 6003},
		{"wrong scheme", http.Header{"Authorization": {"Token " + w.UserBootstrap.Secret}}, 400, 6003},
		{"scheme only", http.Header{"Authorization": {"Bearer"}}, 400, 6003},
		{"empty token", http.Header{"Authorization": {"Bearer "}}, 400, 6003},
		{"two words", http.Header{"Authorization": {"Bearer a b"}}, 400, 6003},
		{"too short", http.Header{"Authorization": {"Bearer " + w.UserBootstrap.Secret[:39]}}, 400, 6003},
		{"bad character", http.Header{"Authorization": {"Bearer " + w.UserBootstrap.Secret + "!"}}, 400, 6003},
		{"a newline's remains", http.Header{"Authorization": {"Bearer " + w.UserBootstrap.Secret + "\\n"}}, 400, 6003},
		{"unknown token", http.Header{"Authorization": {"Bearer " + unknownSecret}}, 403, 9109},
		{"legacy length, unknown", http.Header{"Authorization": {"Bearer " + strings.Repeat("a", 40)}}, 403, 9109},
		{"scheme in lower case", http.Header{"Authorization": {"bearer " + w.UserBootstrap.Secret}}, 200, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := w.doHeader(t, defaultClient, http.MethodGet, "/zones", nil, tc.header)
			if tc.status == 200 {
				wantOK(t, a)
				return
			}
			wantError(t, a, tc.status, tc.code)
			e := a.Env.Errors[0]
			switch tc.code {
			case 9106:
				if e.Message != "Missing X-Auth-Key, X-Auth-Email or Authorization headers" || len(e.ErrorChain) != 0 {
					t.Errorf("error = %+v, want 9106 Missing X-Auth-Key, X-Auth-Email or Authorization headers", e)
				}
			case 6003:
				if e.Message != "Invalid request headers" || len(e.ErrorChain) != 1 || e.ErrorChain[0].Code != 6111 || e.ErrorChain[0].Message != "Invalid format for Authorization header" {
					t.Errorf("error = %+v, want 6003 with 6111 in error_chain", e)
				}
			case 9109:
				if e.Message != "Invalid access token" {
					t.Errorf("message = %q, want Invalid access token", e.Message)
				}
			}
		})
	}
}

func TestExpiredTokenIsRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.do(t, defaultClient, http.MethodPost, "/user/tokens", w.UserBootstrap.Secret, withField(
		createBody("ttl", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, gid(t, "DNS Write", scopeZone))),
		"expires_on", testStart.Add(10*time.Minute).Format(time.RFC3339)))
	wantOK(t, a)
	var tok struct {
		ID, Value string
		ExpiresOn string `json:"expires_on"`
	}
	a.result(t, &tok)
	if tok.ExpiresOn != "2026-03-01T12:10:00Z" {
		t.Errorf("expires_on = %q, want 2026-03-01T12:10:00Z", tok.ExpiresOn)
	}
	dns := "/zones/" + w.Zone.ID + "/dns_records"
	wantOK(t, w.do(t, defaultClient, http.MethodGet, dns, tok.Value, nil))
	w.clock.Advance(10*time.Minute - time.Second)
	wantOK(t, w.do(t, defaultClient, http.MethodGet, dns, tok.Value, nil))
	w.clock.Advance(time.Second)
	wantError(t, w.do(t, defaultClient, http.MethodGet, dns, tok.Value, nil), 401, 10000)
	wantError(t, w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", tok.Value, nil), 401, 1000)
	if info, _ := w.Token(tok.ID); info.Status != "expired" {
		t.Errorf("status = %q, want expired", info.Status)
	}
	// Deleting an expired token still works: it exists until deleted.
	wantOK(t, w.do(t, defaultClient, http.MethodDelete, "/user/tokens/"+tok.ID, w.UserBootstrap.Secret, nil))
}

func TestDisabledToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	if !w.DisableToken(w.UserBootstrap.ID) || w.DisableToken(newID()) {
		t.Fatal("DisableToken reported the wrong existence")
	}
	wantError(t, w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", w.UserBootstrap.Secret, nil), 401, 1000)
	if info, _ := w.Token(w.UserBootstrap.ID); info.Status != "disabled" {
		t.Errorf("status = %q, want disabled", info.Status)
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cases := []struct {
		name    string
		method  string
		path    string
		status  int
		code    int
		message string
	}{
		{"unknown path", http.MethodGet, "/nothing/here", 404, 7003, "Could not route to /nothing/here, perhaps your object identifier is invalid?"},
		{"unknown path without a token", http.MethodGet, "/user/invites", 404, 7003, ""},
		{"trailing slash", http.MethodGet, "/user/tokens/", 404, 7003, ""},
		{"malformed account id", http.MethodGet, "/accounts/acme/tokens", 404, 7003, "Could not route to /accounts/acme/tokens, perhaps your object identifier is invalid?"},
		{"malformed token id", http.MethodDelete, "/user/tokens/abc", 404, 7003, ""},
		{"wrong method", http.MethodPatch, "/user/tokens", 405, 7001, ""},
		{"wrong method on a pattern", http.MethodPut, "/accounts/" + w.Account.ID + "/tokens/" + w.AccountBootstrap.ID, 405, 7001, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := w.do(t, defaultClient, tc.method, tc.path, w.UserBootstrap.Secret, nil)
			wantError(t, a, tc.status, tc.code)
			if tc.message != "" && a.message() != tc.message {
				t.Errorf("message = %q, want %q", a.message(), tc.message)
			}
		})
	}
	a := w.doHeader(t, defaultClient, http.MethodGet, "/cdn-cgi/nothing", nil, nil)
	wantError(t, a, 404, 7003)
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, WithRateLimit(3, time.Minute))
	verify := "/user/tokens/verify"
	for i := range 3 {
		if a := w.do(t, defaultClient, http.MethodGet, verify, w.UserBootstrap.Secret, nil); a.Status != 200 {
			t.Fatalf("request %d: %d %s", i+1, a.Status, a.Body)
		}
	}
	steps := []struct {
		advance    time.Duration
		status     int
		retryAfter string
	}{
		{0, 429, "60"},
		{45 * time.Second, 429, "15"},
		{14*time.Second + 500*time.Millisecond, 429, "1"},
		{500 * time.Millisecond, 200, ""},
	}
	for _, st := range steps {
		w.clock.Advance(st.advance)
		a := w.do(t, defaultClient, http.MethodGet, verify, w.UserBootstrap.Secret, nil)
		if st.status == 429 {
			wantError(t, a, 429, 971)
			if a.message() != "Please wait and consider throttling your request speed" {
				t.Errorf("message = %q", a.message())
			}
		} else {
			wantOK(t, a)
		}
		if got := a.Header.Get("Retry-After"); got != st.retryAfter {
			t.Errorf("at +%v: Retry-After = %q, want %q", w.clock.Now().Sub(testStart), got, st.retryAfter)
		}
		// Every answer states the window; the first request after it ends
		// opens a new one.
		wantLimit, wantPolicy := `"default";r=2;t=60`, `"default";q=3;w=60`
		if st.status == 429 {
			wantLimit = `"default";r=0;t=` + st.retryAfter
		}
		if got, pol := a.Header.Get("Ratelimit"), a.Header.Get("Ratelimit-Policy"); got != wantLimit || pol != wantPolicy {
			t.Errorf("at +%v: Ratelimit %q, Ratelimit-Policy %q; want %q, %q", w.clock.Now().Sub(testStart), got, pol, wantLimit, wantPolicy)
		}
	}

	// The SDK sees the same 429 (with retries off).
	for range 3 {
		_, _ = w.userTokens(w.UserBootstrap.Secret).Verify(context.Background())
	}
	_, err := w.userTokens(w.UserBootstrap.Secret).Verify(context.Background())
	wantAPIError(t, err, 429, 971)

	// Owners are counted apart; a token of the same user shares the count.
	wantOK(t, w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/tokens/verify", w.AccountBootstrap.Secret, nil))
	sibling := w.issue(t, TokenSpec{Name: "sibling", OwnerUserID: w.User.ID,
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}}})
	wantError(t, w.do(t, defaultClient, http.MethodGet, verify, sibling.Secret, nil), 429, 971)
	// Requests that fail authentication are not counted against anyone.
	wantError(t, w.do(t, defaultClient, http.MethodGet, verify, unknownSecret, nil), 401, 1000)
}

func TestRateLimitDisabled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, WithRateLimit(0, time.Minute))
	for i := range 30 {
		if a := w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", w.UserBootstrap.Secret, nil); a.Status != 200 {
			t.Fatalf("request %d: %d", i+1, a.Status)
		}
	}
}
