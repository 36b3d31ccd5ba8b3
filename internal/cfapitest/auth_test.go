package cfapitest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/accounts"
)

// refusal is an error answer as a test expects it.
type refusal struct {
	status  int
	code    int
	message string
}

// TestRefusals drives every API family through every way a request can fail before its handler
// runs, and checks the answer Cloudflare gives in that family: the code depends on which
// product's API answers, not only on what went wrong.
func TestRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acct := map[string]any{acctKey(w.Account.ID): "*"}
	// Everything the endpoints below need, so that a refusal can only come from the situation.
	everything := []Policy{
		{Groups: []string{"Account API Tokens Write", "Workers Scripts Write", "Workers R2 Storage Write"}, Resources: acct},
		{Groups: []string{"Zone Read", "DNS Write", "Cache Purge"}, Resources: allZonesOf(w.Account.ID)},
	}
	spec := func(name string) TokenSpec {
		return TokenSpec{Name: name, OwnerAccount: w.Account.ID, Policies: everything}
	}
	withSpec := func(name string, edit func(*TokenSpec)) TokenSpec {
		s := spec(name)
		edit(&s)
		return s
	}
	live := w.issue(t, spec("live"))
	expired := w.issue(t, withSpec("expired", func(s *TokenSpec) { s.ExpiresOn = testStart.Add(-time.Minute) }))
	notYet := w.issue(t, withSpec("not yet valid", func(s *TokenSpec) { s.NotBefore = testStart.Add(time.Hour) }))
	disabled := w.issue(t, spec("disabled"))
	revoked := w.issue(t, spec("revoked"))
	deleted := w.issue(t, spec("deleted"))
	elsewhere := w.issue(t, withSpec("filtered", func(s *TokenSpec) { s.IPIn = []string{"192.0.2.0/24"} }))
	w.DisableToken(disabled.ID)
	w.RevokeToken(revoked.ID)
	wantOK(t, w.do(t, defaultClient, http.MethodDelete, "/accounts/"+w.Account.ID+"/tokens/"+deleted.ID, w.AccountBootstrap.Secret, nil))

	type endpoint struct {
		family       access
		method, path string
	}
	a, z := "/accounts/"+w.Account.ID, "/zones/"+w.Zone.ID
	endpoints := []endpoint{
		{verifyAPI, "GET", a + "/tokens/verify"},
		{verifyAPI, "GET", "/user/tokens/verify"},
		{accountsAPI, "GET", "/accounts"},
		{accountsAPI, "GET", "/user"},
		{accountsAPI, "GET", "/zones"},
		{accountsAPI, "GET", z},
		{accountsAPI, "GET", "/user/tokens"},
		{accountsAPI, "POST", "/user/tokens"},
		{accountsAPI, "GET", a + "/tokens"},
		{accountsAPI, "POST", a + "/tokens"},
		{accountsAPI, "GET", a + "/tokens/permission_groups"},
		{accountsAPI, "DELETE", a + "/tokens/" + live.ID},
		{productAPI, "GET", z + "/dns_records"},
		{productAPI, "POST", z + "/dns_records"},
		{productAPI, "POST", z + "/purge_cache"},
		{productAPI, "GET", a + "/r2/buckets"},
		{workersAPI, "GET", a + "/workers/scripts"},
		{workersAPI, "PUT", a + "/workers/scripts/hello"},
		{workersAPI, "GET", a + "/workers/services/hello"},
		{workersAPI, "GET", a + "/workers/scripts/hello/secrets"},
		{workersAPI, "POST", a + "/workers/scripts/hello/versions"},
		{workersAPI, "POST", a + "/workers/scripts/hello/deployments"},
		{workersAPI, "PATCH", a + "/workers/scripts/hello/script-settings"},
	}

	dead := map[access]refusal{
		verifyAPI:   {401, 1000, "Invalid API Token"},
		accountsAPI: {403, 9109, "Invalid access token"},
		productAPI:  {401, 10000, "Authentication error"},
		workersAPI:  {401, 10000, "Authentication error"},
	}
	noHeader := refusal{400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"}
	malformed := refusal{400, 6003, "Invalid request headers"}
	location := refusal{403, 9109, "Cannot use the access token from location: 127.0.0.1"}
	situations := []struct {
		name   string
		header http.Header
		want   func(endpoint) refusal // status 200: not refused here
	}{
		{"no Authorization header", http.Header{}, func(endpoint) refusal { return noHeader }},
		{"bearer too short", bearerHeader("cfat_abc"), func(endpoint) refusal { return malformed }},
		{"bearer with bad characters", bearerHeader(live.Secret + "%"), func(endpoint) refusal { return malformed }},
		{"unknown", bearerHeader(unknownSecret), func(e endpoint) refusal { return dead[e.family] }},
		{"expired", bearerHeader(expired.Secret), func(e endpoint) refusal { return dead[e.family] }},
		{"not yet valid", bearerHeader(notYet.Secret), func(e endpoint) refusal { return dead[e.family] }},
		{"disabled", bearerHeader(disabled.Secret), func(e endpoint) refusal { return dead[e.family] }},
		{"revoked by Cloudflare", bearerHeader(revoked.Secret), func(e endpoint) refusal { return dead[e.family] }},
		{"deleted", bearerHeader(deleted.Secret), func(e endpoint) refusal { return dead[e.family] }},
		{"from an address the filter refuses", bearerHeader(elsewhere.Secret), func(e endpoint) refusal {
			switch {
			case e.path == "/user/tokens/verify":
				// An account-owned token on the user verify endpoint, filter or not.
				return dead[verifyAPI]
			case e.family == verifyAPI:
				return refusal{status: 200} // verify does not apply the filter
			case e.family == workersAPI:
				return refusal{403, 10000, "Authentication error"}
			}
			return location
		}},
	}
	before := len(w.Tokens())
	t.Run("answers", func(t *testing.T) {
		for _, sit := range situations {
			for _, e := range endpoints {
				want := sit.want(e)
				t.Run(sit.name+"/"+e.method+" "+e.path, func(t *testing.T) {
					t.Parallel()
					got := w.doHeader(t, defaultClient, e.method, e.path, nil, sit.header)
					if want.status == 200 {
						wantOK(t, got)
						return
					}
					if got.Status != want.status || got.code() != want.code || got.message() != want.message || got.Env.Success {
						t.Fatalf("answer = %d %s, want %d %d %q", got.Status, got.Body, want.status, want.code, want.message)
					}
					if want.code == 6003 {
						if ch := got.Env.Errors[0].ErrorChain; len(ch) != 1 || ch[0].Code != 6111 {
							t.Errorf("error_chain = %+v, want 6111", ch)
						}
					}
				})
			}
		}
	})
	// t.Run returns once its parallel subtests are done: none of the refused calls may have
	// changed anything.
	if _, ok := w.Token(live.ID); !ok || len(w.Tokens()) != before {
		t.Errorf("refused calls changed the tokens: live token present %v, %d tokens, want %d", ok, len(w.Tokens()), before)
	}
	if info, _ := w.Script(w.Account.ID, "hello"); info.Versions != 0 {
		t.Errorf("refused calls uploaded %d versions of hello", info.Versions)
	}
}

func bearerHeader(secret string) http.Header {
	return http.Header{"Authorization": {"Bearer " + secret}}
}

// TestRevokeToken checks Cloudflare's own revocation: the token stays listed as revoked, is
// refused everywhere like a deleted one, and can still be deleted by its owner.
func TestRevokeToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	tok := w.issue(t, TokenSpec{Name: "leaked", OwnerAccount: w.Account.ID, Policies: []Policy{
		{Groups: []string{"Account API Tokens Read"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}},
		{Groups: []string{"DNS Write"}, Resources: allZonesOf(w.Account.ID)},
	}})
	acct := "/accounts/" + w.Account.ID
	wantOK(t, w.do(t, defaultClient, http.MethodGet, acct+"/tokens/verify", tok.Secret, nil))
	w.clock.Advance(time.Minute)

	if w.RevokeToken(newID()) {
		t.Error("RevokeToken found a token that does not exist")
	}
	if !w.RevokeToken(tok.ID) {
		t.Fatal("RevokeToken did not find the token")
	}
	info, ok := w.Token(tok.ID)
	if !ok || info.Status != "revoked (exposed)" || !info.ModifiedOn.Equal(testStart.Add(time.Minute)) {
		t.Errorf("Token = %+v, %v; want status \"revoked (exposed)\", modified at the revocation", info, ok)
	}

	for _, tc := range []struct {
		path string
		want refusal
	}{
		{acct + "/tokens/verify", refusal{401, 1000, "Invalid API Token"}},
		{acct + "/tokens", refusal{403, 9109, "Invalid access token"}},
		{"/zones", refusal{403, 9109, "Invalid access token"}},
		{"/zones/" + w.Zone.ID + "/dns_records", refusal{401, 10000, "Authentication error"}},
	} {
		got := w.do(t, defaultClient, http.MethodGet, tc.path, tok.Secret, nil)
		if got.Status != tc.want.status || got.code() != tc.want.code || got.message() != tc.want.message {
			t.Errorf("GET %s with the revoked token = %d %s, want %d %d %s", tc.path, got.Status, got.Body, tc.want.status, tc.want.code, tc.want.message)
		}
	}

	// Listed by default (it is not expired), with its status, in the SDK's terms too.
	page, err := w.accountTokens(w.AccountBootstrap.Secret).List(ctx, accounts.TokenListParams{AccountID: cloudflare.F(w.Account.ID)})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var status []string
	for _, tk := range page.Result {
		if tk.ID == tok.ID {
			status = append(status, string(tk.Status))
		}
	}
	if !slices.Equal(status, []string{"revoked (exposed)"}) {
		t.Errorf("listed statuses of the revoked token = %v, want [revoked (exposed)]", status)
	}
	got := w.do(t, defaultClient, http.MethodGet, acct+"/tokens/"+tok.ID, w.AccountBootstrap.Secret, nil)
	conforms(t, http.MethodGet, acct+"/tokens/"+tok.ID, got.Status, got.Body)
	var details struct{ Status string }
	got.result(t, &details)
	if details.Status != "revoked (exposed)" {
		t.Errorf("token details status = %q, want \"revoked (exposed)\"", details.Status)
	}
	list := w.do(t, defaultClient, http.MethodGet, acct+"/tokens", w.AccountBootstrap.Secret, nil)
	conforms(t, http.MethodGet, acct+"/tokens", list.Status, list.Body)
	// A sweep lists with include_expired=true: the revoked token is there too.
	all := w.do(t, defaultClient, http.MethodGet, acct+"/tokens?include_expired=true", w.AccountBootstrap.Secret, nil)
	var listed []struct{ ID, Status string }
	all.result(t, &listed)
	if !slices.ContainsFunc(listed, func(l struct{ ID, Status string }) bool { return l.ID == tok.ID && l.Status == "revoked (exposed)" }) {
		t.Errorf("list with include_expired = %s, want the revoked token with status \"revoked (exposed)\"", all.Body)
	}

	wantOK(t, w.do(t, defaultClient, http.MethodDelete, acct+"/tokens/"+tok.ID, w.AccountBootstrap.Secret, nil))
	if d := w.Deleted(); len(d) != 1 || d[0].ID != tok.ID || d[0].Status != "revoked (exposed)" {
		t.Errorf("Deleted = %+v, want the revoked token", d)
	}
	if w.RevokeToken(tok.ID) {
		t.Error("RevokeToken found a deleted token")
	}
}

// TestVerifyMessage checks the message a successful verify carries beside its result.
func TestVerifyMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, tc := range []struct{ path, secret string }{
		{"/user/tokens/verify", w.UserBootstrap.Secret},
		{"/accounts/" + w.Account.ID + "/tokens/verify", w.AccountBootstrap.Secret},
	} {
		a := w.do(t, defaultClient, http.MethodGet, tc.path, tc.secret, nil)
		wantOK(t, a)
		conforms(t, http.MethodGet, tc.path, a.Status, a.Body)
		if len(a.Env.Messages) != 1 || a.Env.Messages[0].Code != 10000 || a.Env.Messages[0].Message != "This API Token is valid and active" {
			t.Errorf("%s: messages = %+v, want [10000 This API Token is valid and active]", tc.path, a.Env.Messages)
		}
	}
	// Other successes carry no messages.
	if a := w.do(t, defaultClient, http.MethodGet, "/zones", w.UserBootstrap.Secret, nil); len(a.Env.Messages) != 0 {
		t.Errorf("zones messages = %+v, want none", a.Env.Messages)
	}
}

// TestAccountsAndUser covers GET /accounts and GET /user, which wrangler asks when a Workers call
// failed with 10000.
func TestAccountsAndUser(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	both := w.AddUser("both@example.com", w.Account.ID, w.OtherAccount.ID)
	third := w.AddAccount("Third Account")
	details := w.issue(t, TokenSpec{Name: "details", OwnerUserID: both.ID, Policies: []Policy{
		{Groups: []string{"User Details Read"}, Resources: map[string]any{userKey(both.ID): "*"}},
		{Groups: []string{"DNS Read"}, Resources: map[string]any{zoneKey(w.OtherZone.ID): "*"}},
	}})
	wide := w.issue(t, TokenSpec{Name: "every account", OwnerUserID: both.ID, Policies: []Policy{
		{Groups: []string{"Workers Scripts Read"}, Resources: map[string]any{prefixAccount + "*": "*"}},
	}})
	userOnly := w.issue(t, TokenSpec{Name: "user only", OwnerUserID: both.ID, Policies: []Policy{
		{Groups: []string{"User Details Read"}, Resources: map[string]any{userKey(both.ID): "*"}},
	}})
	denied := w.issue(t, TokenSpec{Name: "deny only", OwnerUserID: both.ID, Policies: []Policy{
		{Effect: "deny", Groups: []string{"Workers Scripts Read"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}},
	}})

	t.Run("accounts", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, secret string
			want         []string
		}{
			{"account-owned token", w.AccountBootstrap.Secret, []string{w.Account.ID}},
			{"user token with zones of one account", w.UserBootstrap.Secret, []string{w.Account.ID}},
			{"user token with one zone of the other account", details.Secret, []string{w.OtherAccount.ID}},
			{"every account of the user", wide.Secret, []string{w.Account.ID, w.OtherAccount.ID}},
			{"no account permission", userOnly.Secret, []string{}},
			{"only a deny", denied.Secret, []string{}},
		} {
			a := w.do(t, defaultClient, http.MethodGet, "/accounts", tc.secret, nil)
			wantOK(t, a)
			var got []struct{ ID, Name, Type string }
			a.result(t, &got)
			ids := []string{}
			for _, g := range got {
				ids = append(ids, g.ID)
				if g.Name == "" || g.Type != "standard" {
					t.Errorf("%s: account %+v lacks its name or type", tc.name, g)
				}
			}
			if !slices.Equal(ids, tc.want) || a.Env.ResultInfo == nil || a.Env.ResultInfo.TotalCount != len(tc.want) {
				t.Errorf("%s: accounts = %v (%+v), want %v", tc.name, ids, a.Env.ResultInfo, tc.want)
			}
			if slices.Contains(ids, third.ID) {
				t.Errorf("%s: listed an account the user is not a member of", tc.name)
			}
		}
		a := w.do(t, defaultClient, http.MethodGet, "/accounts?name=Other+Account", wide.Secret, nil)
		var got []struct{ ID string }
		a.result(t, &got)
		if len(got) != 1 || got[0].ID != w.OtherAccount.ID {
			t.Errorf("accounts named Other Account = %+v", got)
		}
		wantError(t, w.do(t, defaultClient, http.MethodGet, "/accounts?per_page=500", wide.Secret, nil), 400, 1001)
	})

	t.Run("user", func(t *testing.T) {
		t.Parallel()
		a := w.do(t, defaultClient, http.MethodGet, "/user", details.Secret, nil)
		wantOK(t, a)
		var u struct{ ID, Email string }
		a.result(t, &u)
		if u.ID != both.ID || u.Email != "both@example.com" {
			t.Errorf("user = %+v, want %s both@example.com", u, both.ID)
		}
		for _, tc := range []struct {
			name, secret string
			want         refusal
		}{
			{"without User Details Read", w.UserBootstrap.Secret, refusal{403, 9109, "Unauthorized to access requested resource"}},
			{"account-owned token", w.AccountBootstrap.Secret, refusal{403, 9109, "Valid user-level authentication not found"}},
		} {
			a := w.do(t, defaultClient, http.MethodGet, "/user", tc.secret, nil)
			if a.Status != tc.want.status || a.code() != tc.want.code || a.message() != tc.want.message {
				t.Errorf("%s: %d %s, want %d %d %s", tc.name, a.Status, a.Body, tc.want.status, tc.want.code, tc.want.message)
			}
		}
	})
}

// TestRateLimitHeaders checks the three headers of a 429, from the fake's own limit and from an
// injected fault, and that a 429 without Retry-After (a proxy's) carries none of them.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		opts   []Option
		fault  *Fault
		header map[string]string // "" means absent
	}{
		{"own limit", []Option{WithRateLimit(2, 5*time.Minute)}, nil, map[string]string{
			"Retry-After": "300", "Ratelimit": `"default";r=0;t=300`, "Ratelimit-Policy": `"default";q=2;w=300`}},
		{"injected, with Retry-After", []Option{WithRateLimit(0, 0)}, &Fault{Status: 429, RetryAfter: 1500 * time.Millisecond}, map[string]string{
			"Retry-After": "2", "Ratelimit": `"default";r=0;t=2`, "Ratelimit-Policy": `"default";q=1200;w=300`}},
		{"injected, configured limit", []Option{WithRateLimit(600, time.Minute)}, &Fault{Status: 429, RetryAfter: 20 * time.Second}, map[string]string{
			"Retry-After": "20", "Ratelimit": `"default";r=0;t=20`, "Ratelimit-Policy": `"default";q=600;w=60`}},
		{"injected, like a proxy", nil, &Fault{Status: 429}, map[string]string{
			"Retry-After": "", "Ratelimit": "", "Ratelimit-Policy": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tc.opts...)
			if tc.fault != nil {
				w.InjectFault(*tc.fault)
			}
			var a answer
			for range 3 {
				if a = w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", w.UserBootstrap.Secret, nil); a.Status == 429 {
					break
				}
			}
			wantError(t, a, 429, 971)
			for k, v := range tc.header {
				if got := a.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if a.Header.Get("Ratelimit") != "" && !strings.HasPrefix(a.Header.Get("Ratelimit"), `"default";`) {
				t.Errorf("Ratelimit %q does not name the policy", a.Header.Get("Ratelimit"))
			}
		})
	}
}
