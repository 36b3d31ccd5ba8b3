package cftoken

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/policy"
)

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		limit, policy []string
		want          RateLimit
		ok            bool
	}{
		{"Cloudflare's form", []string{`"default";r=1187;t=241`}, []string{`"default";q=1200;w=300`},
			RateLimit{Policy: "default", Remaining: 1187, Reset: 241 * time.Second, Quota: 1200, Window: 300 * time.Second}, true},
		{"no policy header", []string{`"default";r=0;t=1`}, nil,
			RateLimit{Policy: "default", Remaining: 0, Reset: time.Second}, true},
		{"token name, spaces, other params", []string{`default;pk=:Zm9v:; r=5;t=10;x="a;b,c"`}, []string{` default;q=10;w=60 `},
			RateLimit{Policy: "default", Remaining: 5, Reset: 10 * time.Second, Quota: 10, Window: time.Minute}, true},
		{"parameter order", []string{`"default";t=30;r=7`}, []string{`"default";w=60;q=100`},
			RateLimit{Policy: "default", Remaining: 7, Reset: 30 * time.Second, Quota: 100, Window: time.Minute}, true},
		{"two policies: the tighter binds", []string{`"burst";r=50;t=1, "default";r=3;t=200`}, []string{`"burst";q=200;w=1, "default";q=1200;w=300`},
			RateLimit{Policy: "default", Remaining: 3, Reset: 200 * time.Second, Quota: 1200, Window: 300 * time.Second}, true},
		{"two header lines", []string{`"a";r=9;t=1`, `"b";r=2;t=5`}, []string{`"b";q=4;w=5`},
			RateLimit{Policy: "b", Remaining: 2, Reset: 5 * time.Second, Quota: 4, Window: 5 * time.Second}, true},
		{"a broken member is skipped", []string{`"x";r=oops;t=1, "default";r=4;t=2`}, nil,
			RateLimit{Policy: "default", Remaining: 4, Reset: 2 * time.Second}, true},
		{"escaped quote in a name", []string{`"de\"f";r=1;t=1`}, []string{`"de\"f";q=2;w=3`},
			RateLimit{Policy: `de"f`, Remaining: 1, Reset: time.Second, Quota: 2, Window: 3 * time.Second}, true},
		{"policy of another name", []string{`"default";r=1;t=1`}, []string{`"other";q=2;w=3`},
			RateLimit{Policy: "default", Remaining: 1, Reset: time.Second}, true},
		{"absent", nil, []string{`"default";q=1200;w=300`}, RateLimit{}, false},
		{"empty", []string{""}, nil, RateLimit{}, false},
		{"no remaining", []string{`"default";t=5`}, nil, RateLimit{}, false},
		{"negative", []string{`"default";r=-1;t=5`}, nil, RateLimit{}, false},
		{"decimal", []string{`"default";r=1.5;t=5`}, nil, RateLimit{}, false},
		{"too many digits", []string{`"default";r=1234567890123456;t=5`}, nil, RateLimit{}, false},
		{"unterminated string", []string{`"default;r=1;t=5`}, nil, RateLimit{}, false},
		{"old draft dictionary", []string{`limit=100, remaining=50, reset=30`}, nil, RateLimit{}, false},
		{"garbage after the item", []string{`"default";r=1;t=5 junk`}, nil, RateLimit{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tc.limit {
				h.Add("Ratelimit", v)
			}
			for _, v := range tc.policy {
				h.Add("Ratelimit-Policy", v)
			}
			got, ok := ParseRateLimit(h)
			if ok != tc.ok || got != tc.want {
				t.Errorf("ParseRateLimit(%q, %q) = %+v, %v; want %+v, %v", tc.limit, tc.policy, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// fakeAPI starts the built-in API and a client of its account bootstrap token.
func fakeAPI(t *testing.T, o Options, opts ...cfapitest.Option) (*cfapitest.Server, cfapitest.Fixture, *Client) {
	t.Helper()
	s := cfapitest.New(opts...)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f := s.Seed()
	o.BaseURL = s.URL()
	o.HTTPClient = &http.Client{}
	o.Backoff = 10 * time.Millisecond
	return s, f, New(f.AccountBootstrap.Secret, o)
}

// TestRateLimitSeen reports Cloudflare's count after every answer, refusals included.
func TestRateLimitSeen(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []RateLimit
	o := Options{Attempts: 1, OnRateLimit: func(rl RateLimit) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, rl)
	}}
	_, f, c := fakeAPI(t, o, cfapitest.WithRateLimit(3, time.Minute))
	if _, ok := c.LastRateLimit(); ok {
		t.Error("LastRateLimit before any call")
	}
	ctx := context.Background()
	if _, err := c.Verify(ctx, OwnerAccount, f.Account.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, OwnerAccount, f.Account.ID, strings.Repeat("0", 32)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete = %v, want ErrNotFound", err)
	}
	_, _, _ = c.PermissionGroups(ctx, OwnerAccount, f.Account.ID)
	_, err := c.Verify(ctx, OwnerAccount, f.Account.ID, "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 {
		t.Fatalf("fourth call: %v, want a 429", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var left []int
	for _, rl := range seen {
		left = append(left, rl.Remaining)
		if rl.Quota != 3 || rl.Window != time.Minute || rl.Policy != "default" {
			t.Errorf("seen %+v, want quota 3 a minute", rl)
		}
	}
	if want := []int{2, 1, 0, 0}; !equalInts(left, want) {
		t.Errorf("remaining as seen = %v, want %v", left, want)
	}
	// Reset counts down on the fake's real clock: a second may pass between the calls.
	if last, ok := c.LastRateLimit(); !ok || last.Remaining != 0 || last.Reset <= 0 || last.Reset > time.Minute {
		t.Errorf("LastRateLimit = %+v, %v", last, ok)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPermissionGroupsFollowPages reads a list that pages, sending per_page and following
// result_info to the last page.
func TestPermissionGroupsFollowPages(t *testing.T) {
	t.Parallel()
	s, f, c := fakeAPI(t, Options{}, cfapitest.WithGroupPages(20, 100))
	got, clock, err := c.PermissionGroups(context.Background(), OwnerAccount, f.Account.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := clock.Now(); !ok {
		t.Error("no server clock")
	}
	if len(got) != 326 {
		t.Errorf("%d groups, want the account's 326", len(got))
	}
	seen := map[string]bool{}
	for _, g := range got {
		if seen[g.ID] {
			t.Errorf("group %s twice", g.ID)
		}
		seen[g.ID] = true
	}
	var pages []string
	for _, r := range s.Requests() {
		q, _ := url.ParseQuery(r.RawQuery)
		if strings.HasSuffix(r.Path, "/permission_groups") {
			pages = append(pages, q.Get("page")+"/"+q.Get("per_page"))
		}
	}
	if want := "1/500 2/500 3/500 4/500"; strings.Join(pages, " ") != want {
		t.Errorf("pages asked = %v, want %s", pages, want)
	}
	// With the default sizes, one page holds them all.
	s2, f2, c2 := fakeAPI(t, Options{})
	if got, _, err := c2.PermissionGroups(context.Background(), OwnerAccount, f2.Account.ID); err != nil || len(got) != 326 {
		t.Errorf("default paging: %d groups, %v", len(got), err)
	}
	n := 0
	for _, r := range s2.Requests() {
		if strings.HasPrefix(r.Path, "/client/v4/accounts/") && strings.HasSuffix(r.Path, "/permission_groups") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d requests for the account's groups, want 1", n)
	}
}

// TestPermissionGroupsShortList fails a list that ends before its own total_count.
func TestPermissionGroupsShortList(t *testing.T) {
	t.Parallel()
	c, _ := serve(t, Options{Attempts: 1}, reply{status: 200, body: `{"success":true,"errors":[],"messages":[],"result":[{"id":"4755a26eedb94da69e1066d98aa820be","name":"DNS Write","scopes":["com.cloudflare.api.account.zone"]}],"result_info":{"page":1,"per_page":500,"count":1,"total_count":2,"total_pages":1}}`})
	_, _, err := c.PermissionGroups(context.Background(), OwnerAccount, testAccount)
	var te *TransportError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "counted 2 groups but 1 pages held only 1") {
		t.Errorf("err = %v, want a short list refused", err)
	}
}

// TestQuotaFull types Cloudflare's answer to a create past the token quota.
func TestQuotaFull(t *testing.T) {
	t.Parallel()
	_, f, c := fakeAPI(t, Options{}, cfapitest.WithQuotas(50, 2))
	req := fakeRequest(t, c, f)
	var errs []error
	for range 2 {
		_, err := c.Create(context.Background(), OwnerAccount, f.Account.ID, req)
		errs = append(errs, err)
	}
	// The bootstrap token is one of the account's two.
	if errs[0] != nil || !errors.Is(errs[1], ErrQuotaFull) || errors.Is(errs[1], ErrAboveRole) {
		t.Errorf("creates = %v, want one token, then ErrQuotaFull", errs)
	}
	if errors.Is(&APIError{Status: 403, Details: []Detail{{Code: 9109, Message: "Unauthorized to access requested resource"}}}, ErrQuotaFull) {
		t.Error("a 9109 is ErrQuotaFull")
	}
}

// TestAboveRole types a create above the creator's role and names the group.
func TestAboveRole(t *testing.T) {
	t.Parallel()
	s, f, _ := fakeAPI(t, Options{})
	s.SetMemberRole(f.User.ID, f.Account.ID, "Zone reader", "Zone Read")
	c := New(f.UserBootstrap.Secret, Options{BaseURL: s.URL(), HTTPClient: &http.Client{}})
	groups, _, err := c.PermissionGroups(context.Background(), OwnerUser, "")
	if err != nil {
		t.Fatal(err)
	}
	req := policy.Request{Name: "above", ExpiresOn: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		Policies: []policy.Policy{{Groups: []policy.Group{find(t, groups, "DNS Write", "com.cloudflare.api.account.zone")},
			Resources: map[string]any{"com.cloudflare.api.account." + f.Account.ID: map[string]any{"com.cloudflare.api.account.zone.*": "*"}}}}}
	_, err = c.Create(context.Background(), OwnerUser, "", req)
	if !errors.Is(err, ErrAboveRole) {
		t.Fatalf("Create = %v, want ErrAboveRole", err)
	}
	if g, ok := RefusedGroup(err); !ok || g != "DNS Write" {
		t.Errorf("RefusedGroup = %q, %v; want DNS Write", g, ok)
	}
	if _, ok := RefusedGroup(errors.New("x")); ok {
		t.Error("RefusedGroup of a plain error")
	}
}

func fakeRequest(t *testing.T, c *Client, f cfapitest.Fixture) policy.Request {
	t.Helper()
	groups, _, err := c.PermissionGroups(context.Background(), OwnerAccount, f.Account.ID)
	if err != nil {
		t.Fatal(err)
	}
	return policy.Request{Name: "quota", ExpiresOn: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		Policies: []policy.Policy{{Groups: []policy.Group{find(t, groups, "DNS Write", "com.cloudflare.api.account.zone")},
			Resources: map[string]any{"com.cloudflare.api.account.zone." + f.Zone.ID: "*"}}}}
}

func find(t *testing.T, groups []policy.Group, name, scope string) policy.Group {
	t.Helper()
	for _, g := range groups {
		if g.Name == name && len(g.Scopes) == 1 && g.Scopes[0] == scope {
			return g
		}
	}
	t.Fatalf("no group %q (%s)", name, scope)
	return policy.Group{}
}
