package cfapitest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRateLimitHeadersOnEveryAnswer checks that every API answer states the
// owner's window, successes and refusals of every product alike, that the
// count falls with each counted request, and that Retry-After is the 429's
// alone.
func TestRateLimitHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	w := newWorld(t, WithRateLimit(10, time.Minute))
	acct := "/accounts/" + w.Account.ID
	cases := []struct {
		name         string
		method, path string
		secret       string
		status       int
		limit        string
	}{
		{"verify", http.MethodGet, acct + "/tokens/verify", w.AccountBootstrap.Secret, 200, `"default";r=9;t=60`},
		{"list tokens", http.MethodGet, acct + "/tokens", w.AccountBootstrap.Secret, 200, `"default";r=8;t=60`},
		{"missing permission", http.MethodGet, acct + "/workers/scripts", w.AccountBootstrap.Secret, 403, `"default";r=7;t=60`},
		{"DNS records", http.MethodGet, "/zones/" + w.Zone.ID + "/dns_records", w.AccountBootstrap.Secret, 403, `"default";r=6;t=60`},
		{"unknown token id", http.MethodDelete, acct + "/tokens/" + newID(), w.AccountBootstrap.Secret, 404, `"default";r=5;t=60`},
		// Answered before authentication: the owner's window, not counted.
		{"malformed id", http.MethodGet, "/accounts/acme/tokens", w.AccountBootstrap.Secret, 404, `"default";r=5;t=60`},
		{"unknown path", http.MethodGet, "/nothing/here", w.AccountBootstrap.Secret, 404, `"default";r=5;t=60`},
		// Another owner has its own window; an unknown bearer a fresh one.
		{"other owner", http.MethodGet, "/user/tokens/verify", w.UserBootstrap.Secret, 200, `"default";r=9;t=60`},
		{"unknown token", http.MethodGet, "/user/tokens/verify", unknownSecret, 401, `"default";r=10;t=60`},
		{"no credentials", http.MethodGet, "/zones", "", 400, `"default";r=10;t=60`},
	}
	for _, tc := range cases {
		var a answer
		if tc.secret == "" {
			a = w.doHeader(t, defaultClient, tc.method, tc.path, nil, nil)
		} else {
			a = w.do(t, defaultClient, tc.method, tc.path, tc.secret, nil)
		}
		if a.Status != tc.status {
			t.Errorf("%s: status %d %s, want %d", tc.name, a.Status, a.Body, tc.status)
		}
		if got := a.Header.Get("Ratelimit"); got != tc.limit {
			t.Errorf("%s: Ratelimit = %q, want %q", tc.name, got, tc.limit)
		}
		if got := a.Header.Get("Ratelimit-Policy"); got != `"default";q=10;w=60` {
			t.Errorf("%s: Ratelimit-Policy = %q", tc.name, got)
		}
		if got := a.Header.Get("Retry-After"); got != "" {
			t.Errorf("%s: Retry-After = %q on a %d", tc.name, got, a.Status)
		}
	}
	// The trace is not the API.
	if a := w.doHeader(t, defaultClient, http.MethodGet, "/cdn-cgi/trace", nil, nil); a.Header.Get("Ratelimit") != "" {
		t.Errorf("trace carries Ratelimit %q", a.Header.Get("Ratelimit"))
	}
	w.clock.Advance(20 * time.Second)
	a := w.do(t, defaultClient, http.MethodGet, acct+"/tokens/verify", w.AccountBootstrap.Secret, nil)
	if got := a.Header.Get("Ratelimit"); got != `"default";r=4;t=40` {
		t.Errorf("20 s later: Ratelimit = %q, want r=4;t=40", got)
	}
}

// TestLockout checks Cloudflare's lockout: past the limit every call of the
// owner is refused for the rest of the window, revokes included, and a
// token of the same owner shares it.
func TestLockout(t *testing.T) {
	t.Parallel()
	w := newWorld(t, WithRateLimit(3, 5*time.Minute))
	acct := "/accounts/" + w.Account.ID
	dnsWrite := gid(t, "DNS Write", scopeZone)
	a := w.do(t, defaultClient, http.MethodPost, acct+"/tokens", w.AccountBootstrap.Secret, createBody("live", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite)))
	wantOK(t, a)
	var tok struct{ ID, Value string }
	a.result(t, &tok)
	for range 2 {
		wantOK(t, w.do(t, defaultClient, http.MethodGet, acct+"/tokens/verify", w.AccountBootstrap.Secret, nil))
	}
	w.clock.Advance(time.Minute)
	for _, tc := range []struct{ method, path, secret string }{
		{http.MethodGet, acct + "/tokens/verify", w.AccountBootstrap.Secret},
		{http.MethodDelete, acct + "/tokens/" + tok.ID, w.AccountBootstrap.Secret},
		{http.MethodGet, acct + "/tokens/verify", tok.Value},
		{http.MethodGet, "/zones/" + w.Zone.ID + "/dns_records", tok.Value},
	} {
		a := w.do(t, defaultClient, tc.method, tc.path, tc.secret, nil)
		wantError(t, a, 429, 971)
		if a.Header.Get("Retry-After") != "240" || a.Header.Get("Ratelimit") != `"default";r=0;t=240` {
			t.Errorf("%s %s: Retry-After %q, Ratelimit %q; want 240 and r=0;t=240", tc.method, tc.path, a.Header.Get("Retry-After"), a.Header.Get("Ratelimit"))
		}
	}
	if _, ok := w.Token(tok.ID); !ok {
		t.Fatal("the refused revoke deleted the token")
	}
	w.clock.Advance(4 * time.Minute)
	wantOK(t, w.do(t, defaultClient, http.MethodDelete, acct+"/tokens/"+tok.ID, w.AccountBootstrap.Secret, nil))
}

func TestRevokedExposedToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.issue(t, TokenSpec{Name: "leaked", OwnerUserID: w.User.ID,
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}}})
	w.RevokeToken(tok.ID)
	a := w.do(t, defaultClient, http.MethodGet, "/user/tokens/"+tok.ID, w.UserBootstrap.Secret, nil)
	wantOK(t, a)
	var got struct{ ID, Status string }
	a.result(t, &got)
	if got.ID != tok.ID || got.Status != "revoked (exposed)" {
		t.Errorf("GET = %+v, want the token with status \"revoked (exposed)\"", got)
	}
	a = w.do(t, defaultClient, http.MethodGet, "/user/tokens?include_expired=true&per_page=50", w.UserBootstrap.Secret, nil)
	var listed []struct{ ID, Status string }
	a.result(t, &listed)
	found := false
	for _, l := range listed {
		found = found || (l.ID == tok.ID && l.Status == "revoked (exposed)")
	}
	if !found {
		t.Errorf("list with include_expired = %s, want the revoked token", a.Body)
	}
}

func TestPermissionGroupPages(t *testing.T) {
	t.Parallel()
	w := newWorld(t, WithGroupPages(20, 100))
	path := "/user/tokens/permission_groups"
	total := len(catalog().list)

	first := w.do(t, defaultClient, http.MethodGet, path, w.UserBootstrap.Secret, nil)
	wantOK(t, first)
	var page []groupOut
	first.result(t, &page)
	want := resultInfo{Page: 1, PerPage: 20, Count: 20, TotalCount: total, TotalPages: (total + 19) / 20}
	if len(page) != 20 || first.Env.ResultInfo == nil || *first.Env.ResultInfo != want {
		t.Errorf("default page: %d groups, result_info %+v; want 20, %+v", len(page), first.Env.ResultInfo, want)
	}

	second := w.do(t, defaultClient, http.MethodGet, path+"?page=2&per_page=500", w.UserBootstrap.Secret, nil)
	wantOK(t, second)
	second.result(t, &page)
	want = resultInfo{Page: 2, PerPage: 100, Count: 100, TotalCount: total, TotalPages: (total + 99) / 100}
	if len(page) != 100 || *second.Env.ResultInfo != want || page[0].ID != catalog().list[100].ID {
		t.Errorf("page 2 of 100: %d groups from %v, result_info %+v; want 100 from %s, %+v", len(page), page[0], second.Env.ResultInfo, catalog().list[100].ID, want)
	}
	wantError(t, w.do(t, defaultClient, http.MethodGet, path+"?per_page=2", w.UserBootstrap.Secret, nil), 400, 1001)
}

func TestMemberships(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	member := w.issue(t, TokenSpec{Name: "memberships", OwnerUserID: w.User.ID,
		Policies: []Policy{{Groups: []string{"Memberships Read"}, Resources: map[string]any{userKey(w.User.ID): "*"}}}})
	a := w.do(t, defaultClient, http.MethodGet, "/memberships", member.Secret, nil)
	wantOK(t, a)
	var got []struct {
		Status  string
		Account struct{ ID, Name string }
		Roles   []string
	}
	a.result(t, &got)
	if len(got) != 1 || got[0].Account.ID != w.Account.ID || got[0].Status != "accepted" {
		t.Errorf("memberships = %s, want the user's one account", a.Body)
	}

	a = w.do(t, defaultClient, http.MethodGet, "/memberships", w.AccountBootstrap.Secret, nil)
	wantError(t, a, 400, 9106)
	if a.Header.Get("Ratelimit") == "" {
		t.Error("the 9106 answer carries no Ratelimit")
	}
	a = w.do(t, defaultClient, http.MethodGet, "/memberships", w.UserBootstrap.Secret, nil)
	wantError(t, a, 403, 9109)
}

func TestCreateAboveRole(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.SetMemberRole(w.User.ID, w.Account.ID, "DNS editor", "DNS Write")
	dnsRead, dnsWrite := gid(t, "DNS Read", scopeZone), gid(t, "DNS Write", scopeZone)
	purge := gid(t, "Cache Purge", scopeZone)

	wantOK(t, w.do(t, defaultClient, http.MethodPost, "/user/tokens", w.UserBootstrap.Secret,
		createBody("within", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite, dnsRead))))
	before := len(w.Tokens())

	a := w.do(t, defaultClient, http.MethodPost, "/user/tokens", w.UserBootstrap.Secret,
		createBody("above", allowPolicy(allZonesOf(w.Account.ID), dnsWrite, purge)))
	wantError(t, a, 403, 9109)
	if want := `Failed common permission check against resources. (Permission group: "Cache Purge")`; a.message() != want {
		t.Errorf("message = %q, want %q", a.message(), want)
	}
	if len(w.Tokens()) != before {
		t.Error("the refused create stored a token")
	}
	// The account-owned bootstrap has no member role: it may grant it.
	wantOK(t, w.do(t, defaultClient, http.MethodPost, "/accounts/"+w.Account.ID+"/tokens", w.AccountBootstrap.Secret,
		createBody("account", allowPolicy(allZonesOf(w.Account.ID), purge))))
}

func TestForbiddenCarriesDocumentationURL(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/tokens", w.UserBootstrap.Secret, nil)
	wantError(t, a, 403, 9109)
	if !strings.HasPrefix(a.Env.Errors[0].DocumentationURL, "https://developers.cloudflare.com/") {
		t.Errorf("403 errors = %+v, want a documentation_url", a.Env.Errors)
	}
	a = w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", unknownSecret, nil)
	wantError(t, a, 401, 1000)
	if a.Env.Errors[0].DocumentationURL != "" {
		t.Errorf("401 errors = %+v, want no documentation_url", a.Env.Errors)
	}
}
