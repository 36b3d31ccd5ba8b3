package oidctest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var testNow = time.Date(2031, 5, 4, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

func get(t *testing.T, i *Issuer, path string, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		req.Header = header
	}
	resp, err := i.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func jwks(t *testing.T, i *Issuer) jose.JSONWebKeySet {
	t.Helper()
	code, b := get(t, i, i.URL()+JWKSPath, nil)
	if code != http.StatusOK {
		t.Fatalf("JWKS answered %d: %s", code, b)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS is not a key set: %v", err)
	}
	return set
}

// verify checks raw against the issuer's published keys with go-jose,
// RS256 only, and returns its header and claims.
func verify(t *testing.T, i *Issuer, raw string) (jose.Header, map[string]any, error) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return jose.Header{}, nil, err
	}
	h := jws.Signatures[0].Header
	set := jwks(t, i)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return h, nil, fmt.Errorf("the JWKS has %d keys with kid %q", len(keys), h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return h, nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return h, nil, err
	}
	return h, claims, nil
}

// unverified decodes the header and claims of a compact JWS without
// checking anything.
func unverified(t *testing.T, raw string) (map[string]any, map[string]any, string) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("part is not base64url: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("part is not JSON: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1]), parts[2]
}

func TestDiscoveryIsGitHubShaped(t *testing.T) {
	t.Parallel()
	i := New(t)
	if !strings.HasPrefix(i.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want a loopback URL", i.URL())
	}
	code, b := get(t, i, i.URL()+DiscoveryPath, nil)
	if code != http.StatusOK {
		t.Fatalf("discovery answered %d", code)
	}
	var doc struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		Subjects      []string `json:"subject_types_supported"`
		Claims        []string `json:"claims_supported"`
		Scopes        []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != i.URL() || doc.JWKSURI != i.URL()+JWKSPath {
		t.Errorf("issuer, jwks_uri = %q, %q; want %q, %q", doc.Issuer, doc.JWKSURI, i.URL(), i.URL()+JWKSPath)
	}
	if !reflect.DeepEqual(doc.Algs, []string{"RS256"}) || !reflect.DeepEqual(doc.ResponseTypes, []string{"id_token"}) ||
		!reflect.DeepEqual(doc.Scopes, []string{"openid"}) || len(doc.Subjects) != 2 {
		t.Errorf("discovery = %s, want GitHub's values", b)
	}
	for _, c := range []string{"sub", "jti", "repository_id", "repository_owner_id", "environment", "runner_environment"} {
		if !strings.Contains(string(b), `"`+c+`"`) {
			t.Errorf("claims_supported lacks %s", c)
		}
	}
	if got := i.DiscoveryFetches(); got != 1 {
		t.Errorf("DiscoveryFetches() = %d, want 1", got)
	}
}

func TestTokenVerifiesAndHasGitHubClaims(t *testing.T) {
	t.Parallel()
	i := New(t, WithClock(fixedClock))
	raw, full := i.Issue(nil)
	h, claims, err := verify(t, i, raw)
	if err != nil {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
	if h.KeyID != i.KeyIDs()[0] || h.Algorithm != "RS256" || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header = kid %q alg %q typ %v; want the current kid, RS256, JWT", h.KeyID, h.Algorithm, h.ExtraHeaders["typ"])
	}
	want := map[string]any{
		"iss":                   i.URL(),
		"aud":                   "https://github.com/octo-org",
		"sub":                   "repo:octo-org/octo-repo:ref:refs/heads/main",
		"repository":            "octo-org/octo-repo",
		"repository_owner":      "octo-org",
		"repository_id":         "892345611",
		"repository_owner_id":   "9919",
		"repository_visibility": "private",
		"ref":                   "refs/heads/main",
		"ref_type":              "branch",
		"ref_protected":         "false",
		"head_ref":              "",
		"base_ref":              "",
		"sha":                   "a7e32f2b6f5a1c9e0d4b3c2a1f0e9d8c7b6a5f40",
		"actor":                 "octocat",
		"actor_id":              "583231",
		"run_id":                "9876543210",
		"run_number":            "42",
		"run_attempt":           "1",
		"runner_environment":    "github-hosted",
		"event_name":            "push",
		"workflow":              "CI",
		"workflow_ref":          "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
		"workflow_sha":          "a7e32f2b6f5a1c9e0d4b3c2a1f0e9d8c7b6a5f40",
		"job_workflow_ref":      "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
		"job_workflow_sha":      "a7e32f2b6f5a1c9e0d4b3c2a1f0e9d8c7b6a5f40",
		"iat":                   float64(testNow.Unix()),
		"nbf":                   float64(testNow.Unix()),
		"exp":                   float64(testNow.Add(5 * time.Minute).Unix()),
	}
	jti, _ := claims["jti"].(string)
	if len(jti) != 36 {
		t.Errorf("jti = %v, want a UUID", claims["jti"])
	}
	delete(claims, "jti")
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("claims =\n%v\nwant\n%v", claims, want)
	}
	if _, ok := claims["environment"]; ok {
		t.Error("environment is set for a job without one")
	}
	if full["jti"] != jti {
		t.Errorf("Issue returned jti %v, token has %v", full["jti"], jti)
	}
	for k, v := range claims {
		if _, isString := v.(string); !isString && k != "iat" && k != "nbf" && k != "exp" {
			t.Errorf("claim %s = %v (%T), want a string like all of GitHub's", k, v, v)
		}
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	i := New(t)
	cases := []struct {
		name   string
		claims Claims
		want   string
	}{
		{"branch", Claims{"ref": "refs/heads/dev"}, "repo:octo-org/octo-repo:ref:refs/heads/dev"},
		{"tag", Claims{"ref": "refs/tags/v1"}, "repo:octo-org/octo-repo:ref:refs/tags/v1"},
		{"environment wins over the ref", Claims{"environment": "prod", "ref": "refs/heads/dev"}, "repo:octo-org/octo-repo:environment:prod"},
		{"environment wins over pull_request", Claims{"environment": "prod", "event_name": "pull_request"}, "repo:octo-org/octo-repo:environment:prod"},
		{"pull request", Claims{"event_name": "pull_request", "ref": "refs/pull/7/merge"}, "repo:octo-org/octo-repo:pull_request"},
		{"pull_request_target uses the ref", Claims{"event_name": "pull_request_target"}, "repo:octo-org/octo-repo:ref:refs/heads/main"},
		{"colons are escaped", Claims{"environment": "prod:eu"}, "repo:octo-org/octo-repo:environment:prod%3Aeu"},
		{"explicit sub wins", Claims{"sub": "custom"}, "custom"},
		{"other repository", Claims{"repository": "acme/app"}, "repo:acme/app:ref:refs/heads/main"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := i.Complete(tc.claims)["sub"]; got != tc.want {
				t.Errorf("sub = %v, want %q", got, tc.want)
			}
		})
	}
}

func TestCompleteDerivesAndRemoves(t *testing.T) {
	t.Parallel()
	i := New(t, WithClock(fixedClock))
	in := Claims{"repository": "acme/app", "ref": "refs/tags/v2", "jti": nil, "iat": testNow.Add(-time.Minute), "extra": 7}
	c := i.Complete(in)
	if _, ok := c["jti"]; ok {
		t.Error("jti set to nil is still in the claims")
	}
	if c["repository_owner"] != "acme" || c["ref_type"] != "tag" || c["aud"] != "https://github.com/acme" {
		t.Errorf("derived claims = owner %v, ref_type %v, aud %v", c["repository_owner"], c["ref_type"], c["aud"])
	}
	iat := testNow.Add(-time.Minute).Unix()
	if c["iat"] != iat || c["nbf"] != iat || c["exp"] != iat+300 {
		t.Errorf("iat, nbf, exp = %v, %v, %v; want %d, %d, %d", c["iat"], c["nbf"], c["exp"], iat, iat, iat+300)
	}
	if c["extra"] != 7 {
		t.Errorf("extra = %v, want 7 kept", c["extra"])
	}
	if _, changed := in["sub"]; changed || in["jti"] != nil {
		t.Error("Complete changed its argument")
	}
}

func TestJTIIsUnique(t *testing.T) {
	t.Parallel()
	i := New(t)
	seen := map[any]bool{}
	for range 200 {
		jti := i.Complete(nil)["jti"]
		if seen[jti] {
			t.Fatalf("jti %v issued twice", jti)
		}
		seen[jti] = true
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	i := New(t)
	oldTok := i.Token(nil)
	first := i.KeyIDs()[0]
	kid := i.Rotate()
	if kid == first || !reflect.DeepEqual(i.KeyIDs(), []string{first, kid}) {
		t.Fatalf("KeyIDs() after Rotate = %v, want [%s %s]", i.KeyIDs(), first, kid)
	}
	newTok := i.Token(nil)
	if h, _, err := verify(t, i, newTok); err != nil || h.KeyID != kid {
		t.Errorf("new token: kid %q, err %v; want kid %q and a valid signature", h.KeyID, err, kid)
	}
	if _, _, err := verify(t, i, oldTok); err != nil {
		t.Errorf("old token no longer verifies while its key is published: %v", err)
	}
	i.RetireOldKeys()
	if !reflect.DeepEqual(i.KeyIDs(), []string{kid}) {
		t.Errorf("KeyIDs() after RetireOldKeys = %v, want [%s]", i.KeyIDs(), kid)
	}
	if _, _, err := verify(t, i, oldTok); err == nil {
		t.Error("old token verifies after its key was retired")
	}
	set := jwks(t, i)
	if len(set.Keys) != 1 || set.Keys[0].Algorithm != "RS256" || set.Keys[0].Use != "sig" || !set.Keys[0].IsPublic() {
		t.Errorf("JWKS = %+v, want one public RS256 signing key", set.Keys)
	}
}

func TestForgeries(t *testing.T) {
	t.Parallel()
	i := New(t, WithClock(fixedClock))
	now := testNow.Unix()
	kid := i.KeyIDs()[0]
	for _, f := range Forgeries() {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			raw := i.Forge(f, Claims{"aud": "cfmint"})
			switch f {
			case NotJWT:
				if strings.Count(raw, ".") == 2 {
					t.Errorf("NotJWT = %q has the shape of a JWT", raw)
				}
				return
			case ManyDots:
				if strings.Count(raw, ".") < 1000 || strings.Trim(raw, ".") != "" {
					t.Errorf("ManyDots is not a run of dots")
				}
				return
			case TooLarge:
				if len(raw) <= 64<<10 {
					t.Errorf("TooLarge is %d bytes", len(raw))
				}
			}
			header, claims, sig := unverified(t, raw)
			_, _, verr := verify(t, i, raw)
			switch f {
			case AlgNone:
				if header["alg"] != "none" || sig != "" {
					t.Errorf("header %v, signature %q; want alg none and no signature", header, sig)
				}
			case HS256WithPublicKey:
				if header["alg"] != "HS256" || header["kid"] != kid {
					t.Errorf("header = %v, want HS256 under the current kid", header)
				}
				der, _ := x509.MarshalPKIXPublicKey(&i.current().priv.PublicKey)
				mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
				mac.Write([]byte(raw[:strings.LastIndex(raw, ".")]))
				if got := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != sig {
					t.Error("the HMAC is not keyed with the public key's PEM")
				}
			case OtherKey:
				if header["kid"] != kid || verr == nil {
					t.Errorf("kid %v, verify error %v; want the current kid and a bad signature", header["kid"], verr)
				}
			case UnknownKID:
				if header["kid"] == kid || verr == nil {
					t.Errorf("kid %v, verify error %v; want an unpublished kid", header["kid"], verr)
				}
			default:
				if verr != nil {
					t.Errorf("%s should be validly signed: %v", f, verr)
				}
			}
			num := func(k string) int64 { v, _ := claims[k].(float64); return int64(v) }
			switch f {
			case Expired:
				if num("exp") >= now || num("iat") < now-600 {
					t.Errorf("exp %d, iat %d; want exp past and iat recent (now %d)", num("exp"), num("iat"), now)
				}
			case FutureIssuedAt:
				if num("iat") <= now+300 || num("nbf") > now || num("exp") <= now {
					t.Errorf("iat %d nbf %d exp %d; want only iat wrong", num("iat"), num("nbf"), num("exp"))
				}
			case TooOld:
				if now-num("iat") < 15*60 || num("exp") <= now {
					t.Errorf("iat %d exp %d; want iat 20m ago and exp ahead", num("iat"), num("exp"))
				}
			case WrongAudience:
				if claims["aud"] != "https://wrong.example" {
					t.Errorf("aud = %v", claims["aud"])
				}
			case WrongIssuer:
				if claims["iss"] != GitHubIssuer {
					t.Errorf("iss = %v", claims["iss"])
				}
			case NoJTI:
				if _, ok := claims["jti"]; ok {
					t.Error("jti is present")
				}
			case NoExpiry:
				if _, ok := claims["exp"]; ok {
					t.Error("exp is present")
				}
			default:
				if claims["aud"] != "cfmint" || claims["iss"] != i.URL() || num("exp") <= now {
					t.Errorf("claims = %v, want the given aud, this issuer, not expired", claims)
				}
			}
		})
	}
	if len(Forgeries()) != 14 || Forgery(99).String() != "unknown forgery" {
		t.Errorf("Forgeries() = %v", Forgeries())
	}
}

func TestIDTokenEndpoint(t *testing.T) {
	t.Parallel()
	i := New(t, WithClock(fixedClock))
	u, reqToken := i.IDTokenEndpoint(func() map[string]string {
		return map[string]string{"repository": "acme/app", "environment": "prod"}
	})
	if !strings.HasSuffix(u, "/idtoken?api-version=2.0") || !strings.HasPrefix(u, i.URL()+"/_apis/") {
		t.Errorf("URL = %q, want the runner's shape", u)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	const aud = "https://broker.example/x?y=1 2"
	cases := []struct {
		name    string
		url     string
		header  http.Header
		code    int
		wantAud string
	}{
		{"audience", u + "&audience=" + url.QueryEscape(aud), bearer(reqToken), 200, aud},
		{"no audience: the owner's URL", u, bearer(reqToken), 200, "https://github.com/acme"},
		{"lower-case scheme", u, http.Header{"Authorization": {"bearer " + reqToken}}, 200, "https://github.com/acme"},
		{"wrong bearer", u, bearer("nope"), 401, ""},
		{"no bearer", u, nil, 401, ""},
		{"basic scheme", u, http.Header{"Authorization": {"Basic " + reqToken}}, 401, ""},
		{"no api-version", strings.TrimSuffix(u, "?api-version=2.0"), bearer(reqToken), 400, ""},
		{"unknown job", strings.Replace(u, "/jobs/", "/jobs/x", 1), bearer(reqToken), 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, b := get(t, i, tc.url, tc.header)
			if code != tc.code {
				t.Fatalf("status = %d (%s), want %d", code, b, tc.code)
			}
			if tc.code != 200 {
				if strings.Contains(string(b), reqToken) {
					t.Error("a refusal echoes the request token")
				}
				return
			}
			var answer struct{ Value string }
			if err := json.Unmarshal(b, &answer); err != nil {
				t.Fatal(err)
			}
			_, claims, err := verify(t, i, answer.Value)
			if err != nil {
				t.Fatalf("answered token does not verify: %v", err)
			}
			if claims["aud"] != tc.wantAud || claims["sub"] != "repo:acme/app:environment:prod" || claims["environment"] != "prod" {
				t.Errorf("aud %v, sub %v; want %q and the job's environment sub", claims["aud"], claims["sub"], tc.wantAud)
			}
		})
	}
	t.Cleanup(func() {
		if got := len(i.Issued()); got != 3 {
			t.Errorf("Issued() has %d tokens, want 3", got)
		}
		if got := i.TokenRequests(); got != len(cases) {
			t.Errorf("TokenRequests() = %d, want %d", got, len(cases))
		}
	})
}

func TestEndpointsAreSeparate(t *testing.T) {
	t.Parallel()
	i := New(t)
	u1, tok1 := i.IDTokenEndpoint(nil)
	u2, tok2 := i.IDTokenEndpoint(nil)
	if u1 == u2 || tok1 == tok2 {
		t.Fatal("two jobs share an endpoint or a request token")
	}
	if code, _ := get(t, i, u2, http.Header{"Authorization": {"Bearer " + tok1}}); code != 401 {
		t.Errorf("one job's request token opens another's endpoint: %d", code)
	}
}

func TestUnavailableAndHook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	i := New(t, WithRequestHook(func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.URL.Path)
	}))
	i.SetKeysUnavailable(true)
	if code, _ := get(t, i, i.URL()+DiscoveryPath, nil); code != 200 {
		t.Errorf("discovery answered %d with only the keys down", code)
	}
	if code, _ := get(t, i, i.URL()+JWKSPath, nil); code != 503 {
		t.Errorf("JWKS answered %d while down", code)
	}
	i.SetKeysUnavailable(false)
	i.SetUnavailable(true)
	if code, _ := get(t, i, i.URL()+DiscoveryPath, nil); code != 503 {
		t.Errorf("discovery answered %d while down", code)
	}
	i.SetUnavailable(false)
	if code, _ := get(t, i, i.URL()+JWKSPath, nil); code != 200 {
		t.Errorf("JWKS answered %d when up", code)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{DiscoveryPath, JWKSPath, DiscoveryPath, JWKSPath}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("hook saw %v, want %v", seen, want)
	}
	if i.DiscoveryFetches() != 2 || i.KeyFetches() != 2 {
		t.Errorf("counts = %d discovery, %d keys; want 2 and 2 (refused requests count)", i.DiscoveryFetches(), i.KeyFetches())
	}
}

// failRecorder stands in for a test, to see the issuer fail it.
type failRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (f *failRecorder) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func TestUnexpectedRequestFailsTheTest(t *testing.T) {
	t.Parallel()
	rec := &failRecorder{TB: t}
	i := New(rec)
	if code, _ := get(t, i, i.URL()+"/tokens", nil); code != 404 {
		t.Errorf("unexpected path answered %d", code)
	}
	if code, _ := get(t, i, i.URL()+"/.well-known/openid-configuration/", nil); code != 404 {
		t.Errorf("unexpected path answered %d", code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 2 || !strings.Contains(rec.errs[0], "unexpected request GET /tokens") {
		t.Errorf("errors = %q, want one per unexpected request", rec.errs)
	}
}

func TestImmutableSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ env, event, ref, want string }{
		{"", "push", "refs/heads/main", "repo:octo-org@9919/octo-repo@892345611:ref:refs/heads/main"},
		{"prod:eu", "push", "refs/heads/main", "repo:octo-org@9919/octo-repo@892345611:environment:prod%3Aeu"},
		{"", "pull_request", "refs/pull/1/merge", "repo:octo-org@9919/octo-repo@892345611:pull_request"},
	} {
		if got := ImmutableSubject("octo-org", "9919", "octo-repo", "892345611", tc.env, tc.event, tc.ref); got != tc.want {
			t.Errorf("ImmutableSubject(%q, %q, %q) = %q, want %q", tc.env, tc.event, tc.ref, got, tc.want)
		}
	}
}

func TestGitLabClaims(t *testing.T) {
	t.Parallel()
	iss := New(t, WithPath("/gitlab"))
	_, full := iss.Issue(GitLab(Claims{"aud": "x", "ref": "v1", "ref_type": "tag", "ref_path": "refs/tags/v1"}))
	for k, want := range map[string]any{"project_id": "4711", "namespace_id": "42", "job_id": "55443322", "ref": "v1", "ref_type": "tag", "ref_path": "refs/tags/v1", "ref_protected": "true", "iss": iss.URL()} {
		if full[k] != want {
			t.Errorf("%s = %v, want %v", k, full[k], want)
		}
	}
	for _, k := range []string{"repository", "repository_id", "run_id", "run_attempt", "event_name", "workflow_ref"} {
		if _, ok := full[k]; ok {
			t.Errorf("a GitLab token has GitHub's %s", k)
		}
	}
	if !strings.HasSuffix(iss.URL(), "/gitlab") {
		t.Errorf("URL() = %s", iss.URL())
	}
}

func TestTokenPath(t *testing.T) {
	t.Parallel()
	i := New(t, WithClock(fixedClock), WithPath("/_services/token"))
	const aud = "http://127.0.0.1:8080"
	code, b := get(t, i, i.URL()+TokenPath+"?audience="+url.QueryEscape(aud)+"&repository_id=4242001&environment=prod", nil)
	if code != 200 {
		t.Fatalf("status %d (%s)", code, b)
	}
	var answer struct{ Value string }
	if err := json.Unmarshal(b, &answer); err != nil {
		t.Fatal(err)
	}
	_, claims, err := verify(t, i, answer.Value)
	if err != nil {
		t.Fatalf("the token does not verify: %v", err)
	}
	// Chosen claims win; the rest are GitHub's shape, with numeric run ids as strings.
	for k, want := range map[string]any{"aud": aud, "repository_id": "4242001", "environment": "prod", "iss": i.URL(), "run_id": Defaults["run_id"], "run_attempt": "1", "repository_owner_id": Defaults["repository_owner_id"], "sub": "repo:octo-org/octo-repo:environment:prod"} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %v", k, claims[k], want)
		}
	}
	if code, _ := get(t, i, i.URL()+TokenPath+"?ref=a&ref=b", nil); code != 400 {
		t.Errorf("a claim given twice: status %d, want 400", code)
	}
}
