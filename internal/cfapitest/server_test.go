package cfapitest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"
)

func TestTrace(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	req, err := http.NewRequest(http.MethodGet, "http://"+w.Host()+"/cdn-cgi/trace", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "cfmint-test/1.0")
	res, err := clientFrom("127.0.0.2").Do(req)
	if err != nil {
		t.Fatalf("trace: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("trace = %d %q, want 200 text/plain", res.StatusCode, res.Header.Get("Content-Type"))
	}
	got := map[string]string{}
	var keys []string
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("line %q is not key=value", line)
		}
		got[k] = v
		keys = append(keys, k)
	}
	want := map[string]string{
		"h": w.Host(), "ip": "127.0.0.2", "ts": "1772366400.000", "visit_scheme": "http", "uag": "cfmint-test/1.0",
		"colo": "LHR", "sliver": "none", "http": "http/1.1", "loc": "GB", "tls": "off", "sni": "off",
		"warp": "off", "gateway": "off", "rbi": "off", "kex": "none",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if strings.Join(keys, ",") != "fl,h,ip,ts,visit_scheme,uag,colo,sliver,http,loc,tls,sni,warp,gateway,rbi,kex" {
		t.Errorf("keys = %v, want the real trace's order", keys)
	}
}

func TestRequestsNeverHoldCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	res, err := w.userTokens(w.UserBootstrap.Secret).New(ctx, user.TokenNewParams{
		Name:     cloudflare.F("logged"),
		Policies: cloudflare.F([]shared.TokenPolicyParam{sdkPolicy(gid(t, "DNS Write", scopeZone), map[string]string{zoneKey(w.Zone.ID): "*"})}),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, _ = w.userTokens(res.Value).Verify(ctx)
	w.doHeader(t, defaultClient, http.MethodGet, "/zones", nil, http.Header{"X-Auth-Key": {"global-key-123"}, "X-Auth-Email": {"ci@example.com"}})
	w.do(t, clientFrom("127.0.0.2"), http.MethodGet, "/user/tokens/verify", unknownSecret, nil)

	reqs := w.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests logged, want 4", len(reqs))
	}
	wantIDs := []string{w.UserBootstrap.ID, res.ID, "", ""}
	wantStatus := []int{200, 200, 400, 401}
	wantIP := []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"}
	for i, r := range reqs {
		if r.TokenID != wantIDs[i] || r.Status != wantStatus[i] || r.ClientIP != wantIP[i] {
			t.Errorf("request %d: token %q status %d ip %s, want %q %d %s", i, r.TokenID, r.Status, r.ClientIP, wantIDs[i], wantStatus[i], wantIP[i])
		}
		for _, h := range []string{"Authorization", "X-Auth-Key", "X-Auth-Email"} {
			if r.Header.Get(h) != "" {
				t.Errorf("request %d logs %s", i, h)
			}
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				for _, secret := range []string{w.UserBootstrap.Secret, res.Value, "global-key-123"} {
					if strings.Contains(v, secret) {
						t.Errorf("request %d header %s holds a secret", i, k)
					}
				}
			}
		}
		if strings.Contains(string(r.Body), w.UserBootstrap.Secret) {
			t.Errorf("request %d body holds the bootstrap secret", i)
		}
	}
	if reqs[0].Method != http.MethodPost || reqs[0].Path != "/client/v4/user/tokens" || !strings.Contains(string(reqs[0].Body), `"logged"`) {
		t.Errorf("request 0 = %s %s %s", reqs[0].Method, reqs[0].Path, reqs[0].Body)
	}
	// The log is a copy.
	reqs[0].Header.Set("Authorization", "x")
	if w.Requests()[0].Header.Get("Authorization") != "" {
		t.Error("Requests() shares its headers with the log")
	}
}

func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	dnsWrite := gid(t, "DNS Write", scopeZone)
	const clients = 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := w.accountTokens(w.AccountBootstrap.Secret)
			res, err := svc.New(ctx, accounts.TokenNewParams{
				AccountID: cloudflare.F(w.Account.ID),
				Name:      cloudflare.F(fmt.Sprintf("job %d", i)),
				Policies:  cloudflare.F([]shared.TokenPolicyParam{sdkPolicy(dnsWrite, map[string]string{zoneKey(w.Zone.ID): "*"})}),
				Condition: cloudflare.F(accounts.TokenNewParamsCondition{RequestIP: cloudflare.F(accounts.TokenNewParamsConditionRequestIP{
					In: cloudflare.F([]string{"127.0.0.1/32"}),
				})}),
			})
			if err != nil {
				errs <- fmt.Errorf("client %d: New: %w", i, err)
				return
			}
			if _, err := w.accountTokens(res.Value).Verify(ctx, accounts.TokenVerifyParams{AccountID: cloudflare.F(w.Account.ID)}); err != nil {
				errs <- fmt.Errorf("client %d: Verify: %w", i, err)
				return
			}
			if _, err := svc.Delete(ctx, res.ID, accounts.TokenDeleteParams{AccountID: cloudflare.F(w.Account.ID)}); err != nil {
				errs <- fmt.Errorf("client %d: Delete: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, d := len(w.Tokens()), len(w.Deleted()); n != 2 || d != clients {
		t.Errorf("%d live and %d deleted tokens, want 2 and %d", n, d, clients)
	}
}

func TestEndpointTable(t *testing.T) {
	t.Parallel()
	s := New()
	seen := map[string]bool{}
	for _, rt := range s.routes {
		key := rt.method + " " + rt.path
		seen[key] = true
		_, listed := endpointGroups[key]
		// GET /accounts lists what the token can see, whatever its groups.
		checks := rt.access != public && rt.access != verifyAPI && key != "GET /accounts"
		switch {
		case checks && !listed:
			t.Errorf("%s checks permissions but has no entry in endpointGroups", key)
		case !checks && listed:
			t.Errorf("%s needs no permission but has an entry in endpointGroups", key)
		}
	}
	for key, g := range endpointGroups {
		if !seen[key] {
			t.Errorf("endpointGroups lists %s, which is not a route", key)
		}
		if _, ok := catalog().byNameScope[g]; !ok {
			t.Errorf("%s needs %v, which is not a seed group", key, g)
		}
	}
}

func TestSeedGroups(t *testing.T) {
	t.Parallel()
	c := catalog()
	userOnly := 0
	for _, g := range c.list {
		if g.userOnly() {
			userOnly++
		}
	}
	if len(c.list) != 332 || userOnly != 6 {
		t.Errorf("%d groups, %d user-only; want 332 and 6", len(c.list), userOnly)
	}
	cases := []struct {
		name, scope, implies string
	}{
		{"DNS Write", scopeZone, "DNS Read"},
		{"API Tokens Write", scopeUser, "API Tokens Read"},
		{"Account API Tokens Write", scopeAccount, "Account API Tokens Read"},
		{"Logs Write", scopeZone, "Logs Read"},
		{"Logs Write", scopeAccount, "Logs Read"},
		{"Cache Purge", scopeZone, ""},
	}
	for _, tc := range cases {
		g := c.byNameScope[groupKey{tc.name, tc.scope}]
		imp := c.implied(g)
		switch {
		case tc.implies == "" && len(imp) != 1:
			t.Errorf("%s implies %d groups, want only itself", tc.name, len(imp))
		case tc.implies != "" && (len(imp) != 2 || imp[1].Name != tc.implies || imp[1].scope() != tc.scope):
			t.Errorf("%s (%s) implies %+v, want %s of the same scope", tc.name, tc.scope, imp, tc.implies)
		}
	}
	if _, err := loadGroups([]byte(`[{"id":"a","name":"x","scopes":[]}]`)); err == nil {
		t.Error("loadGroups accepted a group without a scope")
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	s := New()
	if s.URL() != "" || s.Host() != "" {
		t.Errorf("URL, Host before Start = %q, %q; want empty", s.URL(), s.Host())
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/client/v4") {
		t.Errorf("URL = %q", s.URL())
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	s.Close()
	s.Close() // twice is fine
	if _, err := http.Get(s.URL() + "/user/tokens/verify"); err == nil {
		t.Error("server still answers after Close")
	}
	if err := New(WithAddr("256.0.0.1:0")).Start(); err == nil {
		t.Error("Start on a bad address succeeded")
	}
}

func TestHandlerWithoutStart(t *testing.T) {
	t.Parallel()
	s := New()
	f := s.Seed()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(s.Close)
	res, err := user.NewTokenService(
		option.WithBaseURL(ts.URL+"/client/v4"),
		option.WithAPIToken(f.UserBootstrap.Secret),
		option.WithMaxRetries(0),
		option.WithHTTPClient(ts.Client()),
	).Verify(context.Background())
	if err != nil || res.ID != f.UserBootstrap.ID {
		t.Errorf("Verify = %+v, %v", res, err)
	}
}

func TestDateHeaderFollowsTheClock(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.clock.Advance(90 * time.Minute)
	a := w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", w.UserBootstrap.Secret, nil)
	if got, want := a.Header.Get("Date"), "Sun, 01 Mar 2026 13:30:00 GMT"; got != want {
		t.Errorf("Date = %q, want %q", got, want)
	}
	if got := a.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
}

func TestMatchPattern(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"/client/v4/user/tokens", "/client/v4/user/tokens", true},
		{"/client/v4/user/tokens", "/client/v4/user/tokens/", false},
		{"/client/v4/user/tokens", "/client/v4/user", false},
		{"/client/v4/accounts/{account_id}/tokens", "/client/v4/accounts/abc/tokens", true},
		{"/client/v4/accounts/{account_id}/tokens", "/client/v4/accounts//tokens", false},
		{"/client/v4/accounts/{account_id}/tokens", "/client/v4/accounts/abc/tokens/verify", false},
		{"/client/v4/accounts/", "/client/v4/accounts/abc/tokens", true},
		{"/client/v4/accounts/", "/client/v4/accounts", false},
		{"/client/v4/{rest...}", "/client/v4/zones/x", true},
		{"/", "/anything", true},
	}
	for _, tc := range cases {
		if got := matchPattern(tc.pattern, tc.path); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"127.0.0.1:5000":            "127.0.0.1",
		"[::ffff:203.0.113.7]:5000": "203.0.113.7",
		"[::ffff:7f00:1]:1":         "127.0.0.1",
		"[fe80::1%eth0]:5000":       "fe80::1",
		"[2001:db8::1]:443":         "2001:db8::1",
		"192.0.2.1":                 "192.0.2.1",
		"not-an-address":            "invalid IP",
	}
	for in, want := range cases {
		if got := clientIP(in).String(); got != want {
			t.Errorf("clientIP(%q) = %q, want %q", in, got, want)
		}
	}
}
