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
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"
)

// sdkPolicy is one allow policy in the SDK's terms.
func sdkPolicy(groupID string, resources map[string]string) shared.TokenPolicyParam {
	return shared.TokenPolicyParam{
		Effect:           cloudflare.F(shared.TokenPolicyEffectAllow),
		PermissionGroups: cloudflare.F([]shared.TokenPolicyPermissionGroupParam{{ID: cloudflare.F(groupID)}}),
		Resources:        cloudflare.F[shared.TokenPolicyResourcesUnionParam](shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam(resources)),
	}
}

func TestCreateToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	expires := testStart.Add(time.Hour)
	dnsWrite := gid(t, "DNS Write", scopeZone)
	in := []string{"203.0.113.7/32", "2001:db8::/64"}

	// created is what both owners' create answers have in common.
	type created struct {
		id, value string
		in        []string
		expires   time.Time
		issued    time.Time
		status    string
		policyID  string
		group     string
	}
	cases := []struct {
		name      string
		prefix    string
		ownerKind string
		owner     string
		createdBy string
		create    func(t *testing.T) created
		verify    func(secret string) error
	}{
		{
			name: "user", prefix: "cfut_", ownerKind: "user", owner: w.User.ID, createdBy: w.UserBootstrap.ID,
			create: func(t *testing.T) created {
				res, err := w.userTokens(w.UserBootstrap.Secret).New(ctx, user.TokenNewParams{
					Name:     cloudflare.F("ci user"),
					Policies: cloudflare.F([]shared.TokenPolicyParam{sdkPolicy(dnsWrite, map[string]string{zoneKey(w.Zone.ID): "*"})}),
					Condition: cloudflare.F(user.TokenNewParamsCondition{
						RequestIP: cloudflare.F(user.TokenNewParamsConditionRequestIP{In: cloudflare.F(in)}),
					}),
					ExpiresOn: cloudflare.F(expires),
				})
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return created{res.ID, res.Value, res.Condition.RequestIP.In, res.ExpiresOn, res.IssuedOn, string(res.Status), res.Policies[0].ID, res.Policies[0].PermissionGroups[0].Name}
			},
			verify: func(secret string) error {
				_, err := w.userTokens(secret).Verify(ctx)
				return err
			},
		},
		{
			name: "account", prefix: "cfat_", ownerKind: "account", owner: w.Account.ID, createdBy: w.AccountBootstrap.ID,
			create: func(t *testing.T) created {
				res, err := w.accountTokens(w.AccountBootstrap.Secret).New(ctx, accounts.TokenNewParams{
					AccountID: cloudflare.F(w.Account.ID),
					Name:      cloudflare.F("ci account"),
					Policies:  cloudflare.F([]shared.TokenPolicyParam{sdkPolicy(dnsWrite, map[string]string{zoneKey(w.Zone.ID): "*"})}),
					Condition: cloudflare.F(accounts.TokenNewParamsCondition{
						RequestIP: cloudflare.F(accounts.TokenNewParamsConditionRequestIP{In: cloudflare.F(in)}),
					}),
					ExpiresOn: cloudflare.F(expires),
				})
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return created{res.ID, res.Value, res.Condition.RequestIP.In, res.ExpiresOn, res.IssuedOn, string(res.Status), res.Policies[0].ID, res.Policies[0].PermissionGroups[0].Name}
			},
			verify: func(secret string) error {
				_, err := w.accountTokens(secret).Verify(ctx, accounts.TokenVerifyParams{AccountID: cloudflare.F(w.Account.ID)})
				return err
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.create(t)
			if !isID(got.id) || !isID(got.policyID) {
				t.Errorf("ids = %q, %q, want 32 hex each", got.id, got.policyID)
			}
			if !strings.HasPrefix(got.value, tc.prefix) || len(got.value) < len(tc.prefix)+40 || strings.Trim(got.value[len(tc.prefix):], base62) != "" {
				t.Errorf("value = %q, want %s and at least 40 base62 characters", got.value, tc.prefix)
			}
			if !slices.Equal(got.in, in) {
				t.Errorf("condition.request_ip.in = %v, want %v", got.in, in)
			}
			if !got.expires.Equal(expires) || !got.issued.Equal(testStart) || got.status != "active" || got.group != "DNS Write" {
				t.Errorf("expires, issued, status, group = %v, %v, %q, %q; want %v, %v, active, DNS Write", got.expires, got.issued, got.status, got.group, expires, testStart)
			}
			info, ok := w.Token(got.id)
			if !ok || info.OwnerKind != tc.ownerKind || info.Owner != tc.owner || info.CreatedBy != tc.createdBy || !slices.Equal(info.IPIn, in) {
				t.Errorf("Token(%s) = %+v, %v; want owner %s %s created by %s", got.id, info, ok, tc.ownerKind, tc.owner, tc.createdBy)
			}
			if err := tc.verify(got.value); err != nil {
				t.Errorf("the new secret does not verify: %v", err)
			}
		})
	}
}

func TestCreateTokenRejects(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	other := w.AddUser("other@example.com", w.OtherAccount.ID)
	dnsWrite := gid(t, "DNS Write", scopeZone)
	zoneRead := gid(t, "Zone Read", scopeZone)
	scripts := gid(t, "Workers Scripts Write", scopeAccount)
	bucketItem := gid(t, "Workers R2 Storage Bucket Item Write", scopeBucket)
	apiTokens := gid(t, "API Tokens Write", scopeUser)
	missing := newID()
	onZone := map[string]any{zoneKey(w.Zone.ID): "*"}
	bucketRes := map[string]any{prefixBucket + w.Bucket.resourceName(): "*"}

	acct := "/accounts/" + w.Account.ID + "/tokens"
	cases := []struct {
		name    string
		path    string // "" means the account endpoint
		body    any
		status  int
		code    int
		message string // substring of the error message
	}{
		{name: "not JSON", body: `{"name":`, status: 400, code: 6007, message: "Malformed JSON"},
		{name: "JSON array", body: `[]`, status: 400, code: 6007, message: "Malformed JSON"},
		{name: "no name", body: map[string]any{"policies": []any{allowPolicy(onZone, dnsWrite)}}, status: 400, code: 1001, message: "name is required"},
		{name: "blank name", body: createBody("  ", allowPolicy(onZone, dnsWrite)), status: 400, code: 1001, message: "name is required"},
		{name: "name of 121", body: createBody(strings.Repeat("n", 121), allowPolicy(onZone, dnsWrite)), status: 400, code: 1001, message: "limit is 120"},
		{name: "name of 120", body: createBody(strings.Repeat("n", 120), allowPolicy(onZone, dnsWrite)), status: 200},
		{name: "no policies", body: map[string]any{"name": "x"}, status: 400, code: 1001, message: "at least one policy"},
		{name: "empty policies", body: createBody("x"), status: 400, code: 1001, message: "at least one policy"},
		{name: "policy with id", body: createBody("x", map[string]any{"id": newID(), "effect": "allow", "permission_groups": []any{map[string]any{"id": dnsWrite}}, "resources": onZone}), status: 400, code: 1001, message: "Reusing existing policies"},
		{name: "bad effect", body: createBody("x", map[string]any{"effect": "maybe", "permission_groups": []any{map[string]any{"id": dnsWrite}}, "resources": onZone}), status: 400, code: 1001, message: `effect "maybe"`},
		{name: "no groups", body: createBody("x", allowPolicy(onZone)), status: 400, code: 1001, message: "at least one permission group"},
		{name: "unknown group", body: createBody("x", allowPolicy(onZone, missing)), status: 400, code: 1001, message: "does not exist"},
		{name: "user group on account token", body: createBody("x", allowPolicy(map[string]any{userKey(w.User.ID): "*"}, apiTokens)), status: 400, code: 1001, message: "cannot be granted to an account-owned token"},
		{name: "no resources", body: createBody("x", allowPolicy(map[string]any{}, dnsWrite)), status: 400, code: 1001, message: "at least one resource"},
		{name: "malformed key", body: createBody("x", allowPolicy(map[string]any{"com.cloudflare.api.account.zone.example": "*"}, dnsWrite)), status: 400, code: 1001, message: "is not valid"},
		{name: "unknown key kind", body: createBody("x", allowPolicy(map[string]any{"com.example.thing": "*"}, dnsWrite)), status: 400, code: 1001, message: "is not valid"},
		{name: "value not star", body: createBody("x", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "read"}, dnsWrite)), status: 400, code: 1001, message: `must be "*"`},
		{name: "nested under a zone key", body: createBody("x", allowPolicy(map[string]any{zoneKey(w.Zone.ID): map[string]any{"com.cloudflare.api.account.zone.*": "*"}}, dnsWrite)), status: 400, code: 1001, message: "cannot hold nested"},
		{name: "nested non-zone key", body: createBody("x", allowPolicy(map[string]any{acctKey(w.Account.ID): map[string]any{"com.cloudflare.api.user.*": "*"}}, dnsWrite)), status: 400, code: 1001, message: "not a zone key"},
		{name: "missing account", body: createBody("x", allowPolicy(map[string]any{acctKey(missing): "*"}, scripts)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "another account", body: createBody("x", allowPolicy(map[string]any{acctKey(w.OtherAccount.ID): "*"}, scripts)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "another account's zones", body: createBody("x", allowPolicy(allZonesOf(w.OtherAccount.ID), dnsWrite)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "another account's zone", body: createBody("x", allowPolicy(map[string]any{zoneKey(w.OtherZone.ID): "*"}, dnsWrite)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "missing zone", body: createBody("x", allowPolicy(map[string]any{zoneKey(missing): "*"}, dnsWrite)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "nested zone of another account", body: createBody("x", allowPolicy(map[string]any{acctKey(w.Account.ID): map[string]any{zoneKey(w.OtherZone.ID): "*"}}, dnsWrite)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "missing bucket", body: createBody("x", allowPolicy(map[string]any{prefixBucket + w.Account.ID + "_eu_assets": "*"}, bucketItem)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "bad jurisdiction", body: createBody("x", allowPolicy(map[string]any{prefixBucket + w.Account.ID + "_mars_assets": "*"}, bucketItem)), status: 400, code: 1001, message: "is not valid"},
		{name: "user key on account token", body: createBody("x", allowPolicy(map[string]any{userKey(w.User.ID): "*"}, dnsWrite)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "zone group on account key", body: createBody("x", allowPolicy(map[string]any{acctKey(w.Account.ID): "*"}, zoneRead)), status: 400, code: 1001, message: "applies to com.cloudflare.api.account.zone resources"},
		{name: "account group on zone key", body: createBody("x", allowPolicy(onZone, scripts)), status: 400, code: 1001, message: "applies to com.cloudflare.api.account resources"},
		{name: "account group on all zones", body: createBody("x", allowPolicy(allZonesOf(w.Account.ID), scripts)), status: 400, code: 1001, message: "applies to com.cloudflare.api.account resources"},
		{name: "bucket group on account key", body: createBody("x", allowPolicy(map[string]any{acctKey(w.Account.ID): "*"}, bucketItem)), status: 400, code: 1001, message: "applies to com.cloudflare.edge.r2.bucket resources"},
		{name: "two scopes in one policy", body: createBody("x", allowPolicy(map[string]any{acctKey(w.Account.ID): "*", zoneKey(w.Zone.ID): "*"}, dnsWrite)), status: 400, code: 1001, message: "put each scope in its own policy"},
		{name: "bare address", body: withCondition(createBody("x", allowPolicy(onZone, dnsWrite)), map[string]any{"request_ip": map[string]any{"in": []string{"203.0.113.7"}}}), status: 400, code: 1001, message: "is not a CIDR"},
		{name: "host bits set", body: withCondition(createBody("x", allowPolicy(onZone, dnsWrite)), map[string]any{"request_ip": map[string]any{"in": []string{"10.0.0.1/24"}}}), status: 400, code: 1001, message: "is not a CIDR"},
		{name: "not_in garbage", body: withCondition(createBody("x", allowPolicy(onZone, dnsWrite)), map[string]any{"request_ip": map[string]any{"not_in": []string{"anywhere"}}}), status: 400, code: 1001, message: "condition.request_ip.not_in"},
		{name: "old condition key", body: withCondition(createBody("x", allowPolicy(onZone, dnsWrite)), map[string]any{"request.ip": map[string]any{"in": []string{"203.0.113.7/32"}}}), status: 400, code: 1001, message: `"request.ip" is not supported`},
		{name: "unknown request_ip key", body: withCondition(createBody("x", allowPolicy(onZone, dnsWrite)), map[string]any{"request_ip": map[string]any{"only": []string{"203.0.113.7/32"}}}), status: 400, code: 1001, message: "request_ip.only"},
		{name: "expires_on not RFC 3339", body: withField(createBody("x", allowPolicy(onZone, dnsWrite)), "expires_on", "tomorrow"), status: 400, code: 1001, message: "not an RFC 3339 time"},
		{name: "expires_on in the past", body: withField(createBody("x", allowPolicy(onZone, dnsWrite)), "expires_on", testStart.Add(-time.Minute).Format(time.RFC3339)), status: 400, code: 1001, message: "not in the future"},
		{name: "expires_on now", body: withField(createBody("x", allowPolicy(onZone, dnsWrite)), "expires_on", testStart.Format(time.RFC3339)), status: 400, code: 1001, message: "not in the future"},
		{name: "not_before after expires_on", body: withField(withField(createBody("x", allowPolicy(onZone, dnsWrite)), "expires_on", testStart.Add(time.Hour).Format(time.RFC3339)), "not_before", testStart.Add(2*time.Hour).Format(time.RFC3339)), status: 400, code: 1001, message: "not before expires_on"},
		{name: "nested all zones", body: createBody("x", allowPolicy(allZonesOf(w.Account.ID), dnsWrite)), status: 200},
		{name: "bucket", body: createBody("x", allowPolicy(bucketRes, bucketItem)), status: 200},
		{name: "allow and deny", body: createBody("x", allowPolicy(allZonesOf(w.Account.ID), dnsWrite), map[string]any{"effect": "deny", "permission_groups": []any{map[string]any{"id": dnsWrite}}, "resources": map[string]any{zoneKey(w.Zone2.ID): "*"}}), status: 200},
		{name: "IPv6 and not_in", body: withCondition(createBody("x", allowPolicy(onZone, dnsWrite)), map[string]any{"request_ip": map[string]any{"in": []string{"2001:db8::/32"}, "not_in": []string{"2001:db8:1::/48"}}}), status: 200},

		{name: "user: another user", path: "/user/tokens", body: createBody("x", allowPolicy(map[string]any{userKey(other.ID): "*"}, apiTokens)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "user: account not a member of", path: "/user/tokens", body: createBody("x", allowPolicy(map[string]any{acctKey(w.OtherAccount.ID): "*"}, scripts)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "user: zone of another account", path: "/user/tokens", body: createBody("x", allowPolicy(map[string]any{zoneKey(w.OtherZone.ID): "*"}, dnsWrite)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "user: missing user", path: "/user/tokens", body: createBody("x", allowPolicy(map[string]any{userKey(missing): "*"}, apiTokens)), status: 403, code: 9109, message: msgUnauthorized},
		{name: "user: user group on own user", path: "/user/tokens", body: createBody("x", allowPolicy(map[string]any{userKey(w.User.ID): "*"}, apiTokens)), status: 200},
		{name: "user: member account", path: "/user/tokens", body: createBody("x", allowPolicy(map[string]any{acctKey(w.Account.ID): "*"}, scripts)), status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, secret := acct, w.AccountBootstrap.Secret
			if tc.path != "" {
				path, secret = tc.path, w.UserBootstrap.Secret
			}
			a := w.do(t, defaultClient, http.MethodPost, path, secret, tc.body)
			if tc.status == http.StatusOK {
				wantOK(t, a)
				return
			}
			wantError(t, a, tc.status, tc.code)
			if !strings.Contains(a.message(), tc.message) {
				t.Errorf("message = %q, want it to contain %q", a.message(), tc.message)
			}
			// Cloudflare does not say which resource it refused.
			if tc.code == 9109 && a.message() != msgUnauthorized {
				t.Errorf("message = %q, want exactly %q", a.message(), msgUnauthorized)
			}
		})
	}
}

func withCondition(body map[string]any, cond map[string]any) map[string]any {
	return withField(body, "condition", cond)
}

func withField(body map[string]any, key string, v any) map[string]any {
	body[key] = v
	return body
}

func TestQuota(t *testing.T) {
	t.Parallel()
	// The bootstrap tokens are owned by the same user and account, so each
	// owner has room for exactly one more token.
	w := newWorld(t, WithQuotas(2, 2))
	dnsWrite := gid(t, "DNS Write", scopeZone)
	cases := []struct {
		name   string
		path   string
		secret string
	}{
		{"user", "/user/tokens", w.UserBootstrap.Secret},
		{"account", "/accounts/" + w.Account.ID + "/tokens", w.AccountBootstrap.Secret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := withField(createBody("short", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite)),
				"expires_on", testStart.Add(time.Minute).Format(time.RFC3339))
			a := w.do(t, defaultClient, http.MethodPost, tc.path, tc.secret, body)
			wantOK(t, a)
			var tok struct{ ID string }
			a.result(t, &tok)

			full := w.do(t, defaultClient, http.MethodPost, tc.path, tc.secret, createBody("one too many", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite)))
			wantError(t, full, 400, 1001)
			if full.message() != "Exceeded the maximum number of API tokens" {
				t.Errorf("message = %q, want Cloudflare's quota message", full.message())
			}

			// Deleting the token frees its slot.
			wantOK(t, w.do(t, defaultClient, http.MethodDelete, tc.path+"/"+tok.ID, tc.secret, nil))
			wantOK(t, w.do(t, defaultClient, http.MethodPost, tc.path, tc.secret, createBody("fits again", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite))))
		})
	}
}

func TestQuotaCountsExpiredTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t, WithQuotas(2, 2))
	dnsWrite := gid(t, "DNS Write", scopeZone)
	path := "/accounts/" + w.Account.ID + "/tokens"
	body := withField(createBody("short", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite)),
		"expires_on", testStart.Add(time.Minute).Format(time.RFC3339))
	wantOK(t, w.do(t, defaultClient, http.MethodPost, path, w.AccountBootstrap.Secret, body))
	w.clock.Advance(time.Hour)
	a := w.do(t, defaultClient, http.MethodPost, path, w.AccountBootstrap.Secret, createBody("next", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite)))
	wantError(t, a, 400, 1001)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	filtered := w.issue(t, TokenSpec{
		Name: "filtered", OwnerAccount: w.Account.ID, IPIn: []string{"192.0.2.0/24"},
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}},
	})
	userFiltered := w.issue(t, TokenSpec{
		Name: "user filtered", OwnerUserID: w.User.ID, IPNotIn: []string{"127.0.0.0/8"},
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}},
	})
	expiring := w.issue(t, TokenSpec{
		Name: "expiring", OwnerUserID: w.User.ID, ExpiresOn: testStart.Add(time.Hour),
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}},
	})
	userVerify := "/user/tokens/verify"
	acctVerify := "/accounts/" + w.Account.ID + "/tokens/verify"
	otherVerify := "/accounts/" + w.OtherAccount.ID + "/tokens/verify"
	cases := []struct {
		name   string
		path   string
		tok    Bootstrap
		status int
		code   int
	}{
		{"user token on user verify", userVerify, w.UserBootstrap, 200, 0},
		{"account token on user verify", userVerify, w.AccountBootstrap, 401, 1000},
		{"account token on its account", acctVerify, w.AccountBootstrap, 200, 0},
		{"account token on another account", otherVerify, w.AccountBootstrap, 401, 1000},
		{"user token on account verify", acctVerify, w.UserBootstrap, 401, 1000},
		{"IP filter is not applied (account)", acctVerify, filtered, 200, 0},
		{"IP filter is not applied (user)", userVerify, userFiltered, 200, 0},
		{"unknown secret", userVerify, Bootstrap{Secret: "cfut_" + strings.Repeat("x", 40)}, 401, 1000},
		{"expiring token shows expires_on", userVerify, expiring, 200, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := w.do(t, defaultClient, http.MethodGet, tc.path, tc.tok.Secret, nil)
			if tc.status != 200 {
				wantError(t, a, tc.status, tc.code)
				return
			}
			wantOK(t, a)
			var got struct{ ID, Status, ExpiresOn string }
			a.result(t, &got)
			info, _ := w.Token(tc.tok.ID)
			if got.ID != tc.tok.ID || got.Status != "active" {
				t.Errorf("result = %+v, want id %s active", got, tc.tok.ID)
			}
			if want := formatTime(info.ExpiresOn); !strings.Contains(string(a.Env.Result), `"expires_on":"`+want+`"`) && want != "" {
				t.Errorf("result %s lacks expires_on %s", a.Env.Result, want)
			}
		})
	}

	// The filter still applies everywhere else.
	wantError(t, w.do(t, defaultClient, http.MethodGet, "/zones", filtered.Secret, nil), 403, 9109)
	wantError(t, w.do(t, defaultClient, http.MethodGet, "/zones", userFiltered.Secret, nil), 403, 9109)
}

func TestVerifyWithSDK(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	res, err := w.userTokens(w.UserBootstrap.Secret).Verify(ctx)
	if err != nil || res.ID != w.UserBootstrap.ID || res.Status != user.TokenVerifyResponseStatusActive {
		t.Errorf("user Verify = %+v, %v; want %s active", res, err, w.UserBootstrap.ID)
	}
	_, err = w.userTokens(w.AccountBootstrap.Secret).Verify(ctx)
	wantAPIError(t, err, 401, 1000)
	ares, err := w.accountTokens(w.AccountBootstrap.Secret).Verify(ctx, accounts.TokenVerifyParams{AccountID: cloudflare.F(w.Account.ID)})
	if err != nil || ares.ID != w.AccountBootstrap.ID {
		t.Errorf("account Verify = %+v, %v; want %s", ares, err, w.AccountBootstrap.ID)
	}
}

func TestNotBeforeAndExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := w.issue(t, TokenSpec{
		Name: "window", OwnerUserID: w.User.ID,
		NotBefore: testStart.Add(time.Minute), ExpiresOn: testStart.Add(time.Hour),
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}},
	})
	steps := []struct {
		advance time.Duration
		status  int
		state   string
	}{
		{0, 403, "active"}, // not yet valid, yet listed as active
		{time.Minute, 200, "active"},
		{59 * time.Minute, 403, "expired"},
	}
	// Steps share one clock, so they run in order.
	for _, st := range steps {
		w.clock.Advance(st.advance)
		a := w.do(t, defaultClient, http.MethodGet, "/zones", tok.Secret, nil)
		if a.Status != st.status {
			t.Fatalf("after %v: status = %d %s, want %d", w.clock.Now().Sub(testStart), a.Status, a.Body, st.status)
		}
		if st.status == 403 {
			wantError(t, a, 403, 9109)
			if a.message() != "Invalid access token" {
				t.Errorf("after %v: message = %q, want Invalid access token", w.clock.Now().Sub(testStart), a.message())
			}
		}
		if info, _ := w.Token(tok.ID); info.Status != st.state {
			t.Fatalf("after %v: status = %q, want %q", w.clock.Now().Sub(testStart), info.Status, st.state)
		}
	}
}

func TestActivationDelay(t *testing.T) {
	t.Parallel()
	w := newWorld(t, WithActivationDelay(30*time.Second))
	dnsWrite := gid(t, "DNS Write", scopeZone)
	a := w.do(t, defaultClient, http.MethodPost, "/accounts/"+w.Account.ID+"/tokens", w.AccountBootstrap.Secret,
		createBody("slow", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite)))
	wantOK(t, a)
	var tok struct{ ID, Value string }
	a.result(t, &tok)
	verify := "/accounts/" + w.Account.ID + "/tokens/verify"
	wantError(t, w.do(t, defaultClient, http.MethodGet, verify, tok.Value, nil), 401, 1000)
	wantError(t, w.do(t, defaultClient, http.MethodGet, "/zones/"+w.Zone.ID+"/dns_records", tok.Value, nil), 401, 10000)
	w.clock.Advance(29 * time.Second)
	wantError(t, w.do(t, defaultClient, http.MethodGet, verify, tok.Value, nil), 401, 1000)
	w.clock.Advance(time.Second)
	wantOK(t, w.do(t, defaultClient, http.MethodGet, verify, tok.Value, nil))
	wantOK(t, w.do(t, defaultClient, http.MethodGet, "/zones/"+w.Zone.ID+"/dns_records", tok.Value, nil))
}

func TestDeleteToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	dnsWrite := gid(t, "DNS Write", scopeZone)
	svc := w.accountTokens(w.AccountBootstrap.Secret)
	res, err := svc.New(ctx, accounts.TokenNewParams{
		AccountID: cloudflare.F(w.Account.ID),
		Name:      cloudflare.F("to delete"),
		Policies:  cloudflare.F([]shared.TokenPolicyParam{sdkPolicy(dnsWrite, map[string]string{zoneKey(w.Zone.ID): "*"})}),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	wantOK(t, w.do(t, defaultClient, http.MethodGet, "/zones/"+w.Zone.ID+"/dns_records", res.Value, nil))

	del, err := svc.Delete(ctx, res.ID, accounts.TokenDeleteParams{AccountID: cloudflare.F(w.Account.ID)})
	if err != nil || del.ID != res.ID {
		t.Fatalf("Delete = %+v, %v; want id %s", del, err, res.ID)
	}
	if _, ok := w.Token(res.ID); ok {
		t.Errorf("Token(%s) still live after delete", res.ID)
	}
	if d := w.Deleted(); len(d) != 1 || d[0].ID != res.ID {
		t.Errorf("Deleted() = %+v, want [%s]", d, res.ID)
	}

	_, err = svc.Delete(ctx, res.ID, accounts.TokenDeleteParams{AccountID: cloudflare.F(w.Account.ID)})
	wantAPIError(t, err, 404, 7003)
	_, err = svc.Get(ctx, res.ID, accounts.TokenGetParams{AccountID: cloudflare.F(w.Account.ID)})
	wantAPIError(t, err, 404, 7003)
	wantError(t, w.do(t, defaultClient, http.MethodGet, "/zones/"+w.Zone.ID+"/dns_records", res.Value, nil), 401, 10000)
	wantError(t, w.do(t, defaultClient, http.MethodGet, "/accounts/"+w.Account.ID+"/tokens/verify", res.Value, nil), 401, 1000)
}

func TestTokensOfOtherOwnersAreNotFound(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acctPath := "/accounts/" + w.Account.ID + "/tokens/"
	cases := []struct {
		name, method, path, secret string
	}{
		{"user token through the account endpoint", http.MethodDelete, acctPath + w.UserBootstrap.ID, w.AccountBootstrap.Secret},
		{"account token through the user endpoint", http.MethodDelete, "/user/tokens/" + w.AccountBootstrap.ID, w.UserBootstrap.Secret},
		{"get a user token through the account endpoint", http.MethodGet, acctPath + w.UserBootstrap.ID, w.AccountBootstrap.Secret},
		{"unknown id", http.MethodGet, acctPath + newID(), w.AccountBootstrap.Secret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, w.do(t, defaultClient, tc.method, tc.path, tc.secret, nil), 404, 7003)
		})
	}
	if len(w.Tokens()) != 2 {
		t.Errorf("Tokens() = %d tokens, want both bootstraps still there", len(w.Tokens()))
	}
}

func TestGetToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	res, err := w.userTokens(w.UserBootstrap.Secret).Get(context.Background(), w.UserBootstrap.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if res.ID != w.UserBootstrap.ID || res.Name != "cfmint bootstrap (user)" || len(res.Policies) != 2 {
		t.Errorf("Get = %+v", res)
	}
	nested, ok := res.Policies[1].Resources.(shared.TokenPolicyResourcesIAMResourcesTypeObjectNested)
	if !ok || nested[acctKey(w.Account.ID)]["com.cloudflare.api.account.zone.*"] != "*" {
		t.Errorf("policy 2 resources = %#v, want all zones of the account", res.Policies[1].Resources)
	}
	a := w.do(t, defaultClient, http.MethodGet, "/user/tokens/"+w.UserBootstrap.ID, w.UserBootstrap.Secret, nil)
	if strings.Contains(string(a.Body), `"value"`) || strings.Contains(string(a.Body), w.UserBootstrap.Secret) {
		t.Errorf("token details leak the secret: %s", a.Body)
	}
}

func TestListTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	dnsWrite := gid(t, "DNS Write", scopeZone)
	path := "/accounts/" + w.Account.ID + "/tokens"
	var secrets []string
	for i := range 7 {
		body := createBody("t"+string(rune('a'+i)), allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite))
		if i == 0 {
			withField(body, "expires_on", testStart.Add(time.Minute).Format(time.RFC3339))
		}
		a := w.do(t, defaultClient, http.MethodPost, path, w.AccountBootstrap.Secret, body)
		wantOK(t, a)
		var tok struct{ Value string }
		a.result(t, &tok)
		secrets = append(secrets, tok.Value)
	}
	w.clock.Advance(time.Hour) // "ta" is now expired, but not deleted

	pages := []struct {
		query     string
		status    int
		count     int
		first     string
		firstStat string
	}{
		{"?per_page=5&page=1&include_expired=true", 200, 5, "cfmint bootstrap (account)", "active"},
		{"?per_page=5&page=2&include_expired=true", 200, 3, "te", "active"},
		{"?per_page=5&page=3&include_expired=true", 200, 0, "", ""},
		{"?per_page=5&page=1&direction=desc&include_expired=true", 200, 5, "tg", "active"},
		{"?page=1&include_expired=true", 200, 8, "cfmint bootstrap (account)", "active"},
		// Without include_expired=true (the spec's default is false), "ta" is left out.
		{"?per_page=50&page=1&include_expired=false", 200, 7, "cfmint bootstrap (account)", "active"},
		{"?per_page=50", 200, 7, "cfmint bootstrap (account)", "active"},
		{"?per_page=4", 400, 0, "", ""},
		{"?per_page=51", 400, 0, "", ""},
		{"?page=0", 400, 0, "", ""},
		{"?direction=sideways", 400, 0, "", ""},
	}
	for _, p := range pages {
		a := w.do(t, defaultClient, http.MethodGet, path+p.query, w.AccountBootstrap.Secret, nil)
		if p.status != 200 {
			wantError(t, a, p.status, 1001)
			continue
		}
		wantOK(t, a)
		var got []struct{ Name, Status string }
		a.result(t, &got)
		info := a.Env.ResultInfo
		total := 8
		if !strings.Contains(p.query, "include_expired=true") {
			total = 7
		}
		if len(got) != p.count || info == nil || info.Count != p.count || info.TotalCount != total {
			t.Fatalf("%s: %d tokens, result_info %+v; want %d of %d", p.query, len(got), info, p.count, total)
		}
		if p.count > 0 && (got[0].Name != p.first || got[0].Status != p.firstStat) {
			t.Errorf("%s: first = %+v, want %s %s", p.query, got[0], p.first, p.firstStat)
		}
		for _, s := range secrets {
			if strings.Contains(string(a.Body), s) {
				t.Fatalf("%s: list leaks a secret", p.query)
			}
		}
	}
	a := w.do(t, defaultClient, http.MethodGet, path+"?per_page=5", w.AccountBootstrap.Secret, nil)
	if a.Env.ResultInfo.TotalPages != 2 || a.Env.ResultInfo.PerPage != 5 || a.Env.ResultInfo.Page != 1 {
		t.Errorf("result_info = %+v, want page 1 of 2 by 5", a.Env.ResultInfo)
	}

	// The SDK's auto-pager walks every page, the expired token included when asked for (the
	// SDK's params have no field for include_expired; a query option adds it).
	iter := w.accountTokens(w.AccountBootstrap.Secret).ListAutoPaging(ctx, accounts.TokenListParams{
		AccountID: cloudflare.F(w.Account.ID),
		PerPage:   cloudflare.F(5.0),
	}, option.WithQuery("include_expired", "true"))
	var names []string
	expired := 0
	for iter.Next() {
		names = append(names, iter.Current().Name)
		if iter.Current().Status == shared.TokenStatusExpired {
			expired++
		}
	}
	if err := iter.Err(); err != nil || len(names) != 8 || expired != 1 {
		t.Errorf("ListAutoPaging = %v (%d expired), %v; want 8 tokens, 1 expired", names, expired, err)
	}
}

func TestPermissionGroups(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	userPath := "/user/tokens/permission_groups"
	acctPath := "/accounts/" + w.Account.ID + "/tokens/permission_groups"
	cases := []struct {
		name     string
		path     string
		secret   string
		want     int
		userOnly bool // whether user-only groups may appear
	}{
		{"user: all", userPath, w.UserBootstrap.Secret, 332, true},
		{"account: no user-only groups", acctPath, w.AccountBootstrap.Secret, 326, false},
		{"user: by name", userPath + "?name=DNS%20Write", w.UserBootstrap.Secret, 1, true},
		{"user: name shared by two scopes", userPath + "?name=Logs+Write", w.UserBootstrap.Secret, 2, true},
		{"user: name encoded twice", userPath + "?name=DNS%2520Write", w.UserBootstrap.Secret, 1, true},
		{"user: by scope", userPath + "?scope=com.cloudflare.api.account.zone", w.UserBootstrap.Secret, 86, true},
		{"user: user scope", userPath + "?scope=com.cloudflare.api.user", w.UserBootstrap.Secret, 6, true},
		{"account: user scope", acctPath + "?scope=com.cloudflare.api.user", w.AccountBootstrap.Secret, 0, false},
		{"account: user group by name", acctPath + "?name=API%20Tokens%20Write", w.AccountBootstrap.Secret, 0, false},
		{"account: by name and scope", acctPath + "?name=Logs%20Write&scope=com.cloudflare.api.account", w.AccountBootstrap.Secret, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One page that holds them all (the default page is small: TestPermissionGroupPages).
			sep := "?"
			if strings.Contains(tc.path, "?") {
				sep = "&"
			}
			a := w.do(t, defaultClient, http.MethodGet, tc.path+sep+"per_page=500", tc.secret, nil)
			wantOK(t, a)
			var got []groupOut
			a.result(t, &got)
			if len(got) != tc.want {
				t.Fatalf("%d groups, want %d", len(got), tc.want)
			}
			for _, g := range got {
				if !tc.userOnly && slices.Equal(g.Scopes, []string{scopeUser}) {
					t.Errorf("user-only group %q listed for an account", g.Name)
				}
				if !isID(g.ID) || g.Name == "" {
					t.Errorf("group %+v lacks an id or a name", g)
				}
			}
		})
	}
}

func TestPermissionGroupsWithSDK(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	page, err := w.userTokens(w.UserBootstrap.Secret).PermissionGroups.List(ctx, user.TokenPermissionGroupListParams{
		Name: cloudflare.F("Workers Scripts Write"),
	})
	if err != nil || len(page.Result) != 1 || page.Result[0].ID != "e086da7e2179491d91ee5f35b3ca210a" {
		t.Errorf("user List = %+v, %v; want Workers Scripts Write", page, err)
	}
	apage, err := w.accountTokens(w.AccountBootstrap.Secret).PermissionGroups.List(ctx, accounts.TokenPermissionGroupListParams{
		AccountID: cloudflare.F(w.Account.ID),
		Scope:     cloudflare.F("com.cloudflare.edge.r2.bucket"),
	})
	if err != nil || len(apage.Result) != 2 {
		t.Errorf("account List = %+v, %v; want the two bucket groups", apage, err)
	}
}

func TestTokenEndpointAccess(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	acct := "/accounts/" + w.Account.ID + "/tokens"
	zoneReadOnly := w.issue(t, TokenSpec{Name: "zones only", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}}})
	acctRead := w.issue(t, TokenSpec{Name: "tokens read", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Account API Tokens Read"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	userRead := w.issue(t, TokenSpec{Name: "user tokens read", OwnerUserID: w.User.ID,
		Policies: []Policy{{Groups: []string{"API Tokens Read"}, Resources: map[string]any{userKey(w.User.ID): "*"}}}})
	userOnAccount := w.issue(t, TokenSpec{Name: "user with account tokens", OwnerUserID: w.User.ID,
		Policies: []Policy{{Groups: []string{"Account API Tokens Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	denied := w.issue(t, TokenSpec{Name: "allowed then denied", OwnerAccount: w.Account.ID,
		Policies: []Policy{
			{Groups: []string{"Account API Tokens Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}},
			{Effect: "deny", Groups: []string{"Account API Tokens Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}},
		}})
	allAccounts := w.issue(t, TokenSpec{Name: "every account", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Account API Tokens Write"}, Resources: map[string]any{"com.cloudflare.api.account.*": "*"}}}})
	body := createBody("new", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, gid(t, "DNS Write", scopeZone)))

	cases := []struct {
		name    string
		method  string
		path    string
		secret  string
		status  int
		message string
	}{
		{"account token on user endpoint", http.MethodGet, "/user/tokens", w.AccountBootstrap.Secret, 403, msgNoUserAuth},
		{"account token creates on user endpoint", http.MethodPost, "/user/tokens", w.AccountBootstrap.Secret, 403, msgNoUserAuth},
		{"account token on another account", http.MethodGet, "/accounts/" + w.OtherAccount.ID + "/tokens", w.AccountBootstrap.Secret, 403, msgUnauthorized},
		{"account token on a missing account", http.MethodGet, "/accounts/" + newID() + "/tokens", w.AccountBootstrap.Secret, 403, msgUnauthorized},
		{"user bootstrap on account endpoint", http.MethodGet, acct, w.UserBootstrap.Secret, 403, msgUnauthorized},
		{"without the group", http.MethodPost, acct, zoneReadOnly.Secret, 403, msgUnauthorized},
		{"read lists", http.MethodGet, acct, acctRead.Secret, 200, ""},
		{"read reads groups", http.MethodGet, acct + "/permission_groups", acctRead.Secret, 200, ""},
		{"read cannot create", http.MethodPost, acct, acctRead.Secret, 403, msgUnauthorized},
		{"read cannot delete", http.MethodDelete, acct + "/" + acctRead.ID, acctRead.Secret, 403, msgUnauthorized},
		{"user read lists", http.MethodGet, "/user/tokens", userRead.Secret, 200, ""},
		{"user read cannot create", http.MethodPost, "/user/tokens", userRead.Secret, 403, msgUnauthorized},
		{"user token with the account group", http.MethodPost, acct, userOnAccount.Secret, 200, ""},
		{"user token with the account group, not on the user", http.MethodGet, "/user/tokens", userOnAccount.Secret, 403, msgUnauthorized},
		{"deny wins", http.MethodGet, acct, denied.Secret, 403, msgUnauthorized},
		{"account wildcard", http.MethodGet, acct, allAccounts.Secret, 200, ""},
		{"account wildcard stays in its account", http.MethodGet, "/accounts/" + w.OtherAccount.ID + "/tokens", allAccounts.Secret, 403, msgUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b any
			if tc.method == http.MethodPost {
				b = body
			}
			a := w.do(t, defaultClient, tc.method, tc.path, tc.secret, b)
			if tc.status == 200 {
				wantOK(t, a)
				return
			}
			wantError(t, a, tc.status, 9109)
			if a.message() != tc.message {
				t.Errorf("message = %q, want %q", a.message(), tc.message)
			}
		})
	}

	// What a user-owned token creates on an account belongs to the account.
	for _, ti := range w.Tokens() {
		if ti.CreatedBy == userOnAccount.ID && (ti.OwnerKind != "account" || ti.Owner != w.Account.ID) {
			t.Errorf("token %s created by a user token is owned by %s %s, want the account", ti.ID, ti.OwnerKind, ti.Owner)
		}
	}
}

func TestIssueTokenRejects(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	zones := allZonesOf(w.Account.ID)
	cases := []struct {
		name string
		spec TokenSpec
		want string
	}{
		{"no owner", TokenSpec{Name: "x", Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: zones}}}, "exactly one"},
		{"two owners", TokenSpec{Name: "x", OwnerUserID: w.User.ID, OwnerAccount: w.Account.ID}, "exactly one"},
		{"unknown owner", TokenSpec{Name: "x", OwnerAccount: newID(), Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: zones}}}, "does not exist"},
		{"unknown group", TokenSpec{Name: "x", OwnerAccount: w.Account.ID, Policies: []Policy{{Groups: []string{"Zone Rule"}, Resources: zones}}}, `no permission group "Zone Rule"`},
		{"group of another scope", TokenSpec{Name: "x", OwnerAccount: w.Account.ID, Policies: []Policy{{Groups: []string{"Workers Scripts Write"}, Resources: zones}}}, "no permission group"},
		{"mixed scopes", TokenSpec{Name: "x", OwnerAccount: w.Account.ID, Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: map[string]any{acctKey(w.Account.ID): "*", zoneKey(w.Zone.ID): "*"}}}}, "mixes"},
		{"bad CIDR", TokenSpec{Name: "x", OwnerAccount: w.Account.ID, IPIn: []string{"127.0.0.1"}, Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: zones}}}, "not a CIDR"},
		{"no name", TokenSpec{OwnerAccount: w.Account.ID, Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: zones}}}, "name is required"},
		{"outside the owner", TokenSpec{Name: "x", OwnerAccount: w.Account.ID, Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.OtherAccount.ID)}}}, "outside"},
		{"bad effect", TokenSpec{Name: "x", OwnerAccount: w.Account.ID, Policies: []Policy{{Effect: "block", Groups: []string{"Zone Read"}, Resources: zones}}}, `effect "block"`},
		{"window inverted", TokenSpec{Name: "x", OwnerAccount: w.Account.ID, NotBefore: testStart.Add(time.Hour), ExpiresOn: testStart, Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: zones}}}, "NotBefore"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := w.IssueToken(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("IssueToken = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
