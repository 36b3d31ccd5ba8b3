package cfapitest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/apispec"
)

// TestAnswersMatchSpec validates the fake's answers against the schemas of
// Cloudflare's OpenAPI spec, so that field names, types and the envelope
// cannot drift from what the real API sends.
func TestAnswersMatchSpec(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	filtered := w.issue(t, TokenSpec{Name: "filtered", OwnerAccount: w.Account.ID, IPIn: []string{"192.0.2.0/24"},
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}}})
	expiring := w.issue(t, TokenSpec{Name: "expiring", OwnerUserID: w.User.ID,
		ExpiresOn: testStart.Add(time.Hour), NotBefore: testStart.Add(-time.Hour),
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}}})
	// Listed with status "revoked (exposed)", which the spec's enum lacks (apispec amends it).
	leaked := w.issue(t, TokenSpec{Name: "leaked", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Zone Read"}, Resources: allZonesOf(w.Account.ID)}}})
	w.RevokeToken(leaked.ID)
	acct := "/accounts/" + w.Account.ID + "/tokens"
	dnsWrite := gid(t, "DNS Write", scopeZone)
	fullCreate := withCondition(withField(createBody("full",
		allowPolicy(allZonesOf(w.Account.ID), dnsWrite),
		map[string]any{"effect": "deny", "permission_groups": []any{map[string]any{"id": dnsWrite}}, "resources": map[string]any{zoneKey(w.Zone2.ID): "*"}},
	), "expires_on", testStart.Add(time.Hour).Format(time.RFC3339)),
		map[string]any{"request_ip": map[string]any{"in": []string{"203.0.113.0/24"}, "not_in": []string{"203.0.113.9/32"}}})

	// Deleting needs a token to delete.
	a := w.do(t, defaultClient, http.MethodPost, acct, w.AccountBootstrap.Secret, createBody("doomed", allowPolicy(map[string]any{zoneKey(w.Zone.ID): "*"}, dnsWrite)))
	var doomed struct{ ID string }
	a.result(t, &doomed)

	cases := []struct {
		name   string
		method string
		path   string
		secret string
		body   any
		status int
	}{
		{"create (account)", http.MethodPost, acct, w.AccountBootstrap.Secret, fullCreate, 200},
		{"create (user)", http.MethodPost, "/user/tokens", w.UserBootstrap.Secret, createBody("u", allowPolicy(map[string]any{userKey(w.User.ID): "*"}, gid(t, "API Tokens Read", scopeUser))), 200},
		{"token details", http.MethodGet, acct + "/" + w.AccountBootstrap.ID, w.AccountBootstrap.Secret, nil, 200},
		{"user token details", http.MethodGet, "/user/tokens/" + expiring.ID, w.UserBootstrap.Secret, nil, 200},
		{"list (account)", http.MethodGet, acct + "?per_page=5", w.AccountBootstrap.Secret, nil, 200},
		{"list (user)", http.MethodGet, "/user/tokens", w.UserBootstrap.Secret, nil, 200},
		{"revoked token details", http.MethodGet, acct + "/" + leaked.ID, w.AccountBootstrap.Secret, nil, 200},
		{"revoked token", http.MethodGet, acct, leaked.Secret, nil, 403},
		{"create naming another account", http.MethodPost, acct, w.AccountBootstrap.Secret, createBody("x", allowPolicy(map[string]any{acctKey(w.OtherAccount.ID): "*"}, gid(t, "Workers Scripts Write", scopeAccount))), 403},
		{"verify (user)", http.MethodGet, "/user/tokens/verify", expiring.Secret, nil, 200},
		{"verify (account)", http.MethodGet, acct + "/verify", w.AccountBootstrap.Secret, nil, 200},
		{"permission groups (user)", http.MethodGet, "/user/tokens/permission_groups", w.UserBootstrap.Secret, nil, 200},
		{"permission groups (account)", http.MethodGet, acct + "/permission_groups?scope=com.cloudflare.api.account.zone", w.AccountBootstrap.Secret, nil, 200},
		{"delete", http.MethodDelete, acct + "/" + doomed.ID, w.AccountBootstrap.Secret, nil, 200},
		{"zones", http.MethodGet, "/zones?name=example.com", w.AccountBootstrap.Secret, nil, 200},
		{"zones, none", http.MethodGet, "/zones?name=other.example", w.AccountBootstrap.Secret, nil, 200},

		{"invalid token", http.MethodGet, "/user/tokens", unknownSecret, nil, 403},
		{"invalid token on verify", http.MethodGet, "/user/tokens/verify", unknownSecret, nil, 401},
		{"malformed token", http.MethodGet, "/user/tokens", "cfut_nope", nil, 400},
		{"no Authorization header", http.MethodGet, "/user/tokens", "", nil, 400},
		{"user-level authentication", http.MethodGet, "/user/tokens", w.AccountBootstrap.Secret, nil, 403},
		{"IP filter", http.MethodGet, acct + "/permission_groups", filtered.Secret, nil, 403},
		{"invalid create", http.MethodPost, acct, w.AccountBootstrap.Secret, createBody("x"), 400},
		{"malformed JSON", http.MethodPost, acct, w.AccountBootstrap.Secret, "{", 400},
		{"unknown token id", http.MethodDelete, acct + "/" + doomed.ID, w.AccountBootstrap.Secret, nil, 404},
		{"no route", http.MethodGet, "/nope", w.AccountBootstrap.Secret, nil, 404},
		{"wrong method", http.MethodPatch, acct, w.AccountBootstrap.Secret, nil, 405},
		{"zones, IP filter", http.MethodGet, "/zones", filtered.Secret, nil, 403},
		{"hidden zone", http.MethodGet, "/zones/" + w.OtherZone.ID, w.AccountBootstrap.Secret, nil, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Sequential: "delete" and "unknown token id" act on one token.
			h := http.Header{}
			if tc.secret != "" {
				h.Set("Authorization", "Bearer "+tc.secret)
			}
			a := w.doHeader(t, defaultClient, tc.method, tc.path, tc.body, h)
			if a.Status != tc.status {
				t.Fatalf("status = %d %s, want %d", a.Status, a.Body, tc.status)
			}
			conforms(t, tc.method, tc.path, a.Status, a.Body)
		})
	}
}

// conforms validates an answer against the spec's schema for the operation, or, for a path or
// method the spec does not describe, checks the failure envelope by hand.
func conforms(t *testing.T, method, path string, status int, body []byte) {
	t.Helper()
	spec, err := apispec.Load()
	if err != nil {
		t.Fatalf("failed to load the OpenAPI spec: %v", err)
	}
	path, _, _ = strings.Cut(path, "?")
	if op, ok := spec.Operation(method, path); ok {
		if err := op.ValidateResponse(status, "application/json", body); err != nil {
			t.Fatalf("answer does not match %s: %v\n%s", op.OperationID, err, body)
		}
		return
	}
	failureEnvelope(t, body)
}

// failureEnvelope checks Cloudflare's failure envelope by hand, for answers the spec does not
// describe (unknown routes, and the 5xx of injected faults: the spec documents no 5xx).
func failureEnvelope(t *testing.T, body []byte) {
	t.Helper()
	var env struct {
		Success *bool             `json:"success"`
		Errors  []json.RawMessage `json:"errors"`
		Result  json.RawMessage   `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Success == nil || *env.Success || len(env.Errors) == 0 || string(env.Result) != "null" {
		t.Fatalf("answer is not a failure envelope: %s", body)
	}
}
