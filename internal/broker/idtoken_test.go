package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/oidctest"
)

const testAudience = "https://cfmint-broker.example"

var testNow = time.Date(2031, 5, 4, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// testClock is a clock a test moves by hand, shared by an issuer (its iat) and a verifier.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return testNow.Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func newVerifierWithClock(t *testing.T, now func() time.Time, issuers ...*oidctest.Issuer) *Verifier {
	t.Helper()
	o := VerifierOptions{Audience: testAudience, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Now: now}
	for _, i := range issuers {
		o.Issuers = append(o.Issuers, i.URL())
	}
	v, err := NewVerifier(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// countingTransport counts the requests made through it, to show the
// verifier uses the client it was given.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func newTestVerifier(t *testing.T, issuers ...*oidctest.Issuer) (*Verifier, *countingTransport) {
	t.Helper()
	ct := &countingTransport{}
	o := VerifierOptions{
		Audience:   testAudience,
		HTTPClient: &http.Client{Transport: ct, Timeout: 10 * time.Second},
		Now:        fixedClock,
	}
	for _, i := range issuers {
		o.Issuers = append(o.Issuers, i.URL())
	}
	v, err := NewVerifier(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return v, ct
}

func newIssuer(t *testing.T) *oidctest.Issuer {
	return oidctest.New(t, oidctest.WithClock(fixedClock))
}

// assertNoSecret fails when any message in err's chain holds raw or one of
// its parts.
func assertNoSecret(t *testing.T, err error, raw string) {
	t.Helper()
	var secrets []string
	for _, p := range strings.Split(raw, ".") {
		if len(p) >= 16 {
			secrets = append(secrets, p)
		}
	}
	if len(raw) >= 16 {
		secrets = append(secrets, raw)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, msg := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains the token or a part of it", msg)
					return
				}
			}
		}
	}
}

func TestVerifyValidToken(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v, ct := newTestVerifier(t, iss)
	raw, full := iss.Issue(oidctest.Claims{"aud": testAudience, "environment": "prod", "check_run_id": "31415926", "enterprise_id": "1337", "repo_property_tier": "production", "odd_number": 7, "odd_flag": true, "odd_list": []string{"a"}})
	id, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	wantClaims := map[string]string{}
	for k, val := range full {
		if s, ok := val.(string); ok {
			wantClaims[k] = s
		}
	}
	// Claims of other types are held as their type, which no rule matches.
	for _, k := range []string{"iat", "nbf", "exp", "odd_number"} {
		wantClaims[k] = "\x00number"
	}
	wantClaims["odd_flag"] = "\x00boolean"
	wantClaims["odd_list"] = "\x00array"
	iat := time.Unix(full["iat"].(int64), 0)
	want := &Identity{
		Issuer:     iss.URL(),
		Subject:    "repo:octo-org/octo-repo:environment:prod",
		Audience:   testAudience,
		JTI:        full["jti"].(string),
		IssuedAt:   iat,
		Expiry:     iat.Add(5 * time.Minute),
		ValidUntil: iat.Add(5 * time.Minute),
		Claims:     wantClaims,
	}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("Verify() =\n%+v\nwant\n%+v", id, want)
	}
	if id.Claims["check_run_id"] != "31415926" || id.Claims["enterprise_id"] != "1337" || id.Claims["repo_property_tier"] != "production" {
		t.Errorf("claims lack GitHub's 2026 claims: %v", id.Claims)
	}
	if id.Claims["repository_id"] != "892345611" || id.Claims["environment"] != "prod" || id.Claims["aud"] != testAudience {
		t.Errorf("claims lack GitHub's strings: %v", id.Claims)
	}
	if got := id.ReplayKey(); got != iss.URL()+"#"+want.JTI {
		t.Errorf("ReplayKey() = %q", got)
	}
	if ct.n.Load() != 2 || iss.DiscoveryFetches() != 1 || iss.KeyFetches() != 1 {
		t.Errorf("requests: client %d, discovery %d, keys %d; want 2 through the given client, 1, 1", ct.n.Load(), iss.DiscoveryFetches(), iss.KeyFetches())
	}
	// A second token needs no fetch.
	if _, err := v.Verify(context.Background(), iss.Token(oidctest.Claims{"aud": testAudience})); err != nil {
		t.Fatal(err)
	}
	if iss.DiscoveryFetches() != 1 || iss.KeyFetches() != 1 {
		t.Errorf("a second token fetched again: discovery %d, keys %d", iss.DiscoveryFetches(), iss.KeyFetches())
	}
}

func TestVerifyValidUntilIsCappedByMaxAge(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v, _ := newTestVerifier(t, iss)
	iat := testNow.Add(-2 * time.Minute)
	id, err := v.Verify(context.Background(), iss.Token(oidctest.Claims{"aud": testAudience, "iat": iat, "exp": iat.Add(6 * time.Hour)}))
	if err != nil {
		t.Fatal(err)
	}
	if !id.ValidUntil.Equal(iat.Add(DefaultMaxAge)) || !id.Expiry.Equal(iat.Add(6*time.Hour)) {
		t.Errorf("ValidUntil %v, Expiry %v; want iat+10m and iat+6h", id.ValidUntil, id.Expiry)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	other := newIssuer(t)
	v, _ := newTestVerifier(t, iss, other)
	good := oidctest.Claims{"aud": testAudience}
	with := func(extra oidctest.Claims) oidctest.Claims {
		c := oidctest.Claims{"aud": testAudience}
		for k, val := range extra {
			c[k] = val
		}
		return c
	}
	forged := map[oidctest.Forgery]struct {
		check Check
		words string // part of the reason
	}{
		oidctest.AlgNone:            {CheckAlgorithm, `alg "none"; only RS256`},
		oidctest.HS256WithPublicKey: {CheckAlgorithm, `alg "HS256"; only RS256`},
		oidctest.OtherKey:           {CheckSignature, "matches no key of issuer"},
		oidctest.UnknownKID:         {CheckSignature, `(kid "unknown-`},
		oidctest.Expired:            {CheckExpiry, "expired at 2031-05-04T11:59:00Z"},
		oidctest.FutureIssuedAt:     {CheckIssuedAt, "iat 2031-05-04T12:10:00Z is in the future"},
		oidctest.TooOld:             {CheckAge, "issued 20m0s ago, more than the 10m0s"},
		oidctest.WrongAudience:      {CheckAudience, `for audience "https://wrong.example", not "` + testAudience + `"`},
		oidctest.WrongIssuer:        {CheckIssuer, `issuer "https://token.actions.githubusercontent.com" is not trusted`},
		oidctest.NoJTI:              {CheckJTI, "no jti claim"},
		oidctest.NoExpiry:           {CheckExpiry, "no numeric exp claim"},
		oidctest.NotJWT:             {CheckFormat, "not a JWT"},
		oidctest.ManyDots:           {CheckFormat, "not a JWT"},
		oidctest.TooLarge:           {CheckSize, "more than the 8192 accepted"},
	}
	type tcase struct {
		name  string
		raw   string
		check Check
		words string
	}
	var cases []tcase
	for _, f := range oidctest.Forgeries() {
		w, ok := forged[f]
		if !ok {
			t.Fatalf("no expectation for forgery %s", f)
		}
		cases = append(cases, tcase{f.String(), iss.Forge(f, good), w.check, w.words})
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	cases = append(cases,
		tcase{"empty", "", CheckFormat, "no ID token was sent"},
		tcase{"header not JSON", b64("nope") + "." + b64("{}") + ".x", CheckFormat, "header is not base64url-encoded JSON"},
		tcase{"header not base64", "!!." + b64("{}") + ".x", CheckFormat, "header is not base64url-encoded JSON"},
		tcase{"claims not an object", b64(`{"alg":"RS256"}`) + "." + b64(`[1]`) + ".x", CheckFormat, "claims are not a base64url-encoded JSON object"},
		tcase{"claims null", b64(`{"alg":"RS256"}`) + "." + b64(`null`) + ".x", CheckFormat, "claims are not a base64url-encoded JSON object"},
		tcase{"no iss", iss.Token(with(oidctest.Claims{"iss": nil})), CheckIssuer, "has no iss claim; send a token from an issuer this broker's policy trusts"},
		tcase{"iss not a string", iss.Token(with(oidctest.Claims{"iss": 5})), CheckIssuer, "has no iss claim"},
		tcase{"iss with a trailing slash", iss.Token(with(oidctest.Claims{"iss": iss.URL() + "/"})), CheckIssuer, "is not trusted"},
		tcase{"another trusted issuer's name, this issuer's key", iss.Token(with(oidctest.Claims{"iss": other.URL()})), CheckSignature, "matches no key of issuer \"" + other.URL() + "\""},
		tcase{"signature cut short", cutSignature(iss.Token(good)), CheckSignature, "matches no key"},
		tcase{"claims changed after signing", swapClaims(iss.Token(good), b64(`{"iss":"`+iss.URL()+`","aud":"`+testAudience+`","sub":"x"}`)), CheckSignature, "matches no key"},
		tcase{"two audiences", iss.Token(with(oidctest.Claims{"aud": []string{testAudience, "sts.amazonaws.com"}})), CheckAudience, "names 2 audiences"},
		tcase{"audience list without ours", iss.Token(with(oidctest.Claims{"aud": []string{"a", "b"}})), CheckAudience, "not \"" + testAudience + "\""},
		tcase{"no sub", iss.Token(with(oidctest.Claims{"sub": nil})), CheckSubject, "no sub claim"},
		tcase{"empty jti", iss.Token(with(oidctest.Claims{"jti": ""})), CheckJTI, "no jti claim"},
		tcase{"jti not a string", iss.Token(with(oidctest.Claims{"jti": 12})), CheckJTI, "no jti claim"},
		tcase{"no iat", iss.Token(with(oidctest.Claims{"iat": nil, "nbf": testNow.Unix(), "exp": testNow.Add(time.Minute).Unix()})), CheckIssuedAt, "no iat claim"},
		tcase{"nbf ahead beyond go-oidc's leeway", iss.Token(with(oidctest.Claims{"nbf": testNow.Add(6 * time.Minute).Unix(), "exp": testNow.Add(10 * time.Minute).Unix()})), CheckNotBefore, "not valid before 2031-05-04T12:06:00Z"},
		tcase{"nbf 4 minutes ahead, within go-oidc's leeway", iss.Token(with(oidctest.Claims{"nbf": testNow.Add(4 * time.Minute).Unix()})), CheckNotBefore, "not valid before 2031-05-04T12:04:00Z (nbf), more than 1m0s ahead"},
		tcase{"nbf a second past the leeway", iss.Token(with(oidctest.Claims{"nbf": testNow.Add(DefaultLeeway + time.Second).Unix()})), CheckNotBefore, "more than 1m0s ahead of the broker's clock"},
		tcase{"exp a string", iss.Token(with(oidctest.Claims{"exp": "soon"})), CheckExpiry, "no numeric exp claim"},
		tcase{"sub a number", iss.Token(with(oidctest.Claims{"sub": 5})), CheckClaims, "do not have the types OIDC requires"},
		tcase{"iat just past the leeway", iss.Token(with(oidctest.Claims{"iat": testNow.Add(DefaultLeeway + time.Second).Unix(), "nbf": testNow.Unix()})), CheckIssuedAt, "in the future"},
		tcase{"exp equal to now is still valid, a second later is not", iss.Token(with(oidctest.Claims{"iat": testNow.Add(-5 * time.Minute).Unix(), "exp": testNow.Add(-time.Second).Unix()})), CheckExpiry, "expired at"},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(context.Background(), tc.raw)
			if err == nil {
				t.Fatalf("Verify() = %+v, want a rejection", id)
			}
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("error %v (%T) is not a *Rejection", err, err)
			}
			if rej.Check != tc.check {
				t.Errorf("Check = %q (%v), want %q", rej.Check, err, tc.check)
			}
			if !strings.Contains(err.Error(), tc.words) {
				t.Errorf("error = %q, want it to say %q", err, tc.words)
			}
			if strings.ContainsAny(err.Error(), "\n\r") || strings.Count(err.Error(), "; ") != 1 {
				t.Errorf("error = %q, want one line: what was wrong; what to do", err)
			}
			assertNoSecret(t, err, tc.raw)
		})
	}
}

func cutSignature(raw string) string { return raw[:len(raw)-10] }

func swapClaims(raw, claims string) string {
	parts := strings.Split(raw, ".")
	return parts[0] + "." + claims + "." + parts[2]
}

func TestChecksBeforeParsingNeedNoNetwork(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v, ct := newTestVerifier(t, iss)
	for _, f := range []oidctest.Forgery{oidctest.TooLarge, oidctest.NotJWT, oidctest.ManyDots, oidctest.AlgNone, oidctest.HS256WithPublicKey, oidctest.WrongIssuer} {
		if _, err := v.Verify(context.Background(), iss.Forge(f, oidctest.Claims{"aud": testAudience})); err == nil {
			t.Fatalf("%s accepted", f)
		}
	}
	if n := ct.n.Load(); n != 0 {
		t.Errorf("%d requests for tokens refused before their signature", n)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	iss := oidctest.New(t, oidctest.WithClock(clock.Now))
	v := newVerifierWithClock(t, clock.Now, iss)
	ctx := context.Background()
	if err := v.Ready(ctx); err != nil {
		t.Fatalf("Ready() = %v", err)
	}
	if iss.DiscoveryFetches() != 1 || iss.KeyFetches() != 1 {
		t.Fatalf("Ready fetched discovery %d, keys %d times; want 1 and 1", iss.DiscoveryFetches(), iss.KeyFetches())
	}
	oldTok := iss.Token(oidctest.Claims{"aud": testAudience})
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	iss.Rotate()
	newTok := iss.Token(oidctest.Claims{"aud": testAudience})
	// Within KeyRefetchInterval of the last fetch, a new key waits for the next one.
	var rej *Rejection
	if _, err := v.Verify(ctx, newTok); !errors.As(err, &rej) || rej.Check != CheckSignature || !strings.Contains(err.Error(), "retry in 30s") {
		t.Fatalf("token of a key newer than the last fetch, within the interval = %v, want a signature rejection saying when to retry", err)
	}
	if got := iss.KeyFetches(); got != 1 {
		t.Errorf("KeyFetches() = %d within the interval, want 1", got)
	}
	clock.Advance(KeyRefetchInterval)
	newTok = iss.Token(oidctest.Claims{"aud": testAudience})
	if _, err := v.Verify(ctx, newTok); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if got := iss.KeyFetches(); got != 2 {
		t.Errorf("KeyFetches() = %d after a new kid, want 2 (one refetch)", got)
	}
	if _, err := v.Verify(ctx, iss.Token(oidctest.Claims{"aud": testAudience})); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Errorf("token of the previous, still published key: %v", err)
	}
	if got := iss.KeyFetches(); got != 2 {
		t.Errorf("KeyFetches() = %d, want 2: known kids need no fetch", got)
	}
	iss.RetireOldKeys()
	iss.Rotate()
	clock.Advance(KeyRefetchInterval)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for n := range errs {
		wg.Go(func() {
			_, errs[n] = v.Verify(ctx, iss.Token(oidctest.Claims{"aud": testAudience}))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("concurrent tokens of a new key: %v", err)
	}
	if iss.DiscoveryFetches() != 1 || iss.KeyFetches() != 3 {
		t.Errorf("DiscoveryFetches() = %d, KeyFetches() = %d, want 1 and 3: rotation needs no discovery, concurrent tokens one fetch", iss.DiscoveryFetches(), iss.KeyFetches())
	}
}

func TestReadyAndOutages(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	up, down := oidctest.New(t, oidctest.WithClock(clock.Now)), oidctest.New(t, oidctest.WithClock(clock.Now))
	down.SetUnavailable(true)
	v := newVerifierWithClock(t, clock.Now, up, down)
	ctx := context.Background()

	err := v.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), down.URL()) || strings.Contains(err.Error(), up.URL()) {
		t.Fatalf("Ready() = %v, want an error naming only %s", err, down.URL())
	}
	_, err = v.Verify(ctx, down.Token(oidctest.Claims{"aud": testAudience}))
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Check != CheckKeys || !strings.Contains(err.Error(), "try again later") {
		t.Fatalf("Verify() while the issuer is down = %v, want a keys rejection", err)
	}

	// Discovery works, the JWKS does not: the failure is the key fetch.
	down.SetUnavailable(false)
	down.SetKeysUnavailable(true)
	raw := down.Token(oidctest.Claims{"aud": testAudience})
	_, err = v.Verify(ctx, raw)
	if !errors.As(err, &rej) || rej.Check != CheckKeys {
		t.Fatalf("Verify() while the JWKS is down = %v, want a keys rejection", err)
	}
	assertNoSecret(t, err, raw)
	if err := v.Ready(ctx); err == nil {
		t.Fatal("Ready() = nil while the JWKS is down")
	}

	down.SetKeysUnavailable(false)
	// A failed fetch, too, is tried again only after the interval.
	if err := v.Ready(ctx); err == nil {
		t.Fatal("Ready() = nil within the interval of a failed fetch")
	}
	clock.Advance(KeyRefetchInterval)
	if err := v.Ready(ctx); err != nil {
		t.Fatalf("Ready() = %v after the outage", err)
	}
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify() after the outage = %v", err)
	}
	before := up.DiscoveryFetches() + up.KeyFetches() + down.DiscoveryFetches() + down.KeyFetches()
	down.SetUnavailable(true)
	if err := v.Ready(ctx); err != nil {
		t.Errorf("Ready() = %v: keys once fetched are kept", err)
	}
	if _, err := v.Verify(ctx, down.Token(oidctest.Claims{"aud": testAudience})); err != nil {
		t.Errorf("Verify() with cached keys while the issuer is down = %v", err)
	}
	if after := up.DiscoveryFetches() + up.KeyFetches() + down.DiscoveryFetches() + down.KeyFetches(); after != before {
		t.Errorf("a ready verifier made %d more requests", after-before)
	}
}

func TestReadyCancelled(t *testing.T) {
	t.Parallel()
	release, fetching := make(chan struct{}), make(chan struct{})
	var once sync.Once
	iss := oidctest.New(t, oidctest.WithRequestHook(func(r *http.Request) {
		if r.URL.Path == oidctest.JWKSPath {
			once.Do(func() { close(fetching) })
			<-release
		}
	}))
	defer close(release)
	v, _ := newTestVerifier(t, iss)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-fetching
		cancel()
	}()
	err := v.Ready(ctx)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Ready() = %v, want it to give up with the context", err)
	}
}

func TestDocumentsAreBounded(t *testing.T) {
	t.Parallel()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge/.well-known/openid-configuration", "/mismatch/.well-known/openid-configuration":
			iss := srv.URL + "/huge"
			if strings.HasPrefix(r.URL.Path, "/mismatch") {
				iss = "https://elsewhere.example"
			}
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, iss, srv.URL+"/huge/jwks")
		case "/huge/jwks":
			w.Write([]byte(`{"keys":[`))
			w.Write([]byte(strings.Repeat(" ", 2<<20)))
			w.Write([]byte(`]}`))
		default:
			t.Errorf("unexpected request %s", r.URL.Path)
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ path, words string }{
		{"/huge", "larger than 1048576 bytes"},
		{"/mismatch", "did not match"},
	} {
		v, err := NewVerifier(context.Background(), VerifierOptions{
			Issuers: []string{srv.URL + tc.path}, Audience: testAudience, HTTPClient: srv.Client(), Now: fixedClock,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("Ready() for %s = %v, want it to say %q", tc.path, err, tc.words)
		}
	}
}

func TestNewVerifierOptions(t *testing.T) {
	t.Parallel()
	hc := &http.Client{}
	cases := []struct {
		name  string
		o     VerifierOptions
		words []string
	}{
		{"nothing", VerifierOptions{}, []string{"names no issuer", "audience is empty", "HTTPClient is nil"}},
		{"http issuer off loopback", VerifierOptions{Issuers: []string{"http://token.example"}, Audience: "a", HTTPClient: hc}, []string{`issuer "http://token.example" does not use https`}},
		{"http issuer on a zoned loopback address", VerifierOptions{Issuers: []string{"http://[::1%25lo]:8080"}, Audience: "a", HTTPClient: hc}, []string{`issuer "http://[::1%25lo]:8080" does not use https`}},
		{"not a URL", VerifierOptions{Issuers: []string{"token.actions.githubusercontent.com"}, Audience: "a", HTTPClient: hc}, []string{"is not a URL of the form https://host[/path]"}},
		{"query", VerifierOptions{Issuers: []string{"https://a.example/?x=1"}, Audience: "a", HTTPClient: hc}, []string{"is not a URL"}},
		{"twice", VerifierOptions{Issuers: []string{oidctest.GitHubIssuer, oidctest.GitHubIssuer}, Audience: "a", HTTPClient: hc}, []string{"is named twice"}},
		{"negative durations", VerifierOptions{Issuers: []string{oidctest.GitHubIssuer}, Audience: "a", HTTPClient: hc, MaxAge: -1, Leeway: -1}, []string{"age -1ns is negative", "leeway -1ns is negative"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(context.Background(), tc.o)
			if err == nil {
				t.Fatalf("NewVerifier() = %v, want an error", v)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to say %q", err, w)
				}
			}
		})
	}
	v, err := NewVerifier(context.Background(), VerifierOptions{
		Issuers: []string{oidctest.GitHubIssuer, "https://ghes.example/_services/token", "http://[::1]:8080", "http://LOCALHOST:1"}, Audience: "a", HTTPClient: hc,
	})
	if err != nil {
		t.Fatalf("NewVerifier() with good issuers = %v", err)
	}
	if got := v.Issuers(); len(got) != 4 || got[0] != oidctest.GitHubIssuer {
		t.Errorf("Issuers() = %v", got)
	}
}

func TestCustomMaxAgeAndLeeway(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v, err := NewVerifier(context.Background(), VerifierOptions{
		Issuers: []string{iss.URL()}, Audience: testAudience, HTTPClient: iss.Client(), Now: fixedClock,
		MaxAge: 2 * time.Minute, Leeway: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iat   time.Time
		check Check
	}{
		{testNow.Add(-2 * time.Minute), ""},
		{testNow.Add(-2*time.Minute - time.Second), CheckAge},
		{testNow.Add(5 * time.Second), ""},
		{testNow.Add(6 * time.Second), CheckIssuedAt},
	} {
		_, err := v.Verify(context.Background(), iss.Token(oidctest.Claims{"aud": testAudience, "iat": tc.iat, "nbf": testNow.Add(-time.Minute)}))
		var rej *Rejection
		switch {
		case tc.check == "" && err != nil:
			t.Errorf("iat %v: %v, want accepted", tc.iat, err)
		case tc.check != "" && (!errors.As(err, &rej) || rej.Check != tc.check):
			t.Errorf("iat %v: %v, want a %s rejection", tc.iat, err, tc.check)
		}
	}
}

func TestWaitingForDiscoveryHonoursTheContext(t *testing.T) {
	t.Parallel()
	release, fetching := make(chan struct{}), make(chan struct{})
	var once sync.Once
	iss := oidctest.New(t, oidctest.WithClock(fixedClock), oidctest.WithRequestHook(func(r *http.Request) {
		if r.URL.Path == oidctest.DiscoveryPath {
			once.Do(func() { close(fetching) })
			<-release
		}
	}))
	v, _ := newTestVerifier(t, iss)
	raw := iss.Token(oidctest.Claims{"aud": testAudience})
	first := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), raw)
		first <- err
	}()
	<-fetching
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, iss.Token(oidctest.Claims{"aud": testAudience}))
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Check != CheckKeys || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify() while another waits for discovery, cancelled = %v, want a keys rejection for the context", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the first Verify() = %v after discovery answered", err)
	}
	if n := iss.DiscoveryFetches(); n != 1 {
		t.Errorf("DiscoveryFetches() = %d, want 1", n)
	}
}

func TestNotBeforeLeeway(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v, _ := newTestVerifier(t, iss)
	for _, nbf := range []time.Duration{-10 * time.Minute, 0, DefaultLeeway} {
		if _, err := v.Verify(context.Background(), iss.Token(oidctest.Claims{"aud": testAudience, "nbf": testNow.Add(nbf).Unix()})); err != nil {
			t.Errorf("nbf now%+v: %v, want accepted", nbf, err)
		}
	}
}

// TestKeyRefetchBounded: anyone can send a token whose signature matches no key, and each would
// made go-oidc fetch the issuer's keys again. A flood makes at most one fetch per interval.
func TestKeyRefetchBounded(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	iss := oidctest.New(t, oidctest.WithClock(clock.Now))
	v := newVerifierWithClock(t, clock.Now, iss)
	ctx := context.Background()
	if _, err := v.Verify(ctx, iss.Token(oidctest.Claims{"aud": testAudience})); err != nil {
		t.Fatal(err)
	}
	flood := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				f := oidctest.UnknownKID
				if i%2 == 0 {
					f = oidctest.OtherKey
				}
				_, err := v.Verify(ctx, iss.Forge(f, oidctest.Claims{"aud": testAudience}))
				var rej *Rejection
				if !errors.As(err, &rej) || rej.Check != CheckSignature {
					t.Errorf("%s: %v, want a signature rejection", f, err)
				}
			})
		}
		wg.Wait()
	}
	flood(40)
	if got := iss.KeyFetches(); got != 1 {
		t.Errorf("40 bad signatures made %d key fetches in all, want 1 (the first token's)", got)
	}
	clock.Advance(KeyRefetchInterval - time.Second)
	flood(10)
	if got := iss.KeyFetches(); got != 1 {
		t.Errorf("within the interval: %d key fetches, want 1", got)
	}
	clock.Advance(time.Second)
	flood(40)
	if got := iss.KeyFetches(); got != 2 {
		t.Errorf("the next interval: %d key fetches, want 2", got)
	}
	// Good tokens of known keys are verified all along, and fetch nothing.
	if _, err := v.Verify(ctx, iss.Token(oidctest.Claims{"aud": testAudience})); err != nil || iss.KeyFetches() != 2 {
		t.Errorf("a good token after the flood: %v, %d key fetches", err, iss.KeyFetches())
	}
}

// TestKeyFetchOutlivesItsCaller: a caller that gives up does not cancel the fetch the others
// wait for, nor use up the interval with a fetch that never finished.
func TestKeyFetchOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	release, fetching := make(chan struct{}), make(chan struct{})
	var once sync.Once
	iss := oidctest.New(t, oidctest.WithClock(fixedClock), oidctest.WithRequestHook(func(r *http.Request) {
		if r.URL.Path == oidctest.JWKSPath {
			once.Do(func() { close(fetching) })
			<-release
		}
	}))
	v, _ := newTestVerifier(t, iss)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, iss.Token(oidctest.Claims{"aud": testAudience}))
		first <- err
	}()
	<-fetching
	cancel()
	var rej *Rejection
	if err := <-first; !errors.As(err, &rej) || rej.Check != CheckKeys {
		t.Errorf("the caller that gave up: %v, want a keys rejection", err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), iss.Token(oidctest.Claims{"aud": testAudience}))
		second <- err
	}()
	close(release)
	if err := <-second; err != nil {
		t.Errorf("a caller waiting for the same fetch: %v", err)
	}
	if n := iss.KeyFetches(); n != 1 {
		t.Errorf("KeyFetches() = %d, want 1", n)
	}
}

// TestJWKSOverHTTPS: an https issuer whose discovery names a plain-http key set is refused, so
// that nobody on the way can swap the keys; a loopback key set is the test issuers' exception.
func TestJWKSOverHTTPS(t *testing.T) {
	t.Parallel()
	var jwks atomic.Int32
	var srv *httptest.Server
	keysAt := map[string]string{}
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dir, ok := strings.CutSuffix(r.URL.Path, oidctest.DiscoveryPath); ok {
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, srv.URL+dir, keysAt[dir])
			return
		}
		jwks.Add(1)
		w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	keysAt["/http"] = "http://keys.example/jwks"
	keysAt["/https"] = srv.URL + "/jwks"
	keysAt["/ftp"] = "ftp://keys.example/jwks"
	for _, tc := range []struct{ dir, words string }{
		{"/http", `names the key set "http://keys.example/jwks", which is not https`},
		{"/ftp", "which is not https"},
		{"/https", ""},
	} {
		v, err := NewVerifier(context.Background(), VerifierOptions{Issuers: []string{srv.URL + tc.dir}, Audience: testAudience, HTTPClient: srv.Client(), Now: fixedClock})
		if err != nil {
			t.Fatal(err)
		}
		err = v.Ready(context.Background())
		switch {
		case tc.words == "" && err != nil:
			t.Errorf("%s: Ready() = %v", tc.dir, err)
		case tc.words != "" && (err == nil || !strings.Contains(err.Error(), tc.words)):
			t.Errorf("%s: Ready() = %v, want it to say %q", tc.dir, err, tc.words)
		}
	}
	if n := jwks.Load(); n != 1 {
		t.Errorf("%d key sets fetched, want 1 (the https one)", n)
	}
	if err := checkJWKSURL(srv.URL, "http://127.0.0.1:"+port+"/jwks"); err != nil {
		t.Errorf("a loopback key set: %v", err)
	}
}

// TestIssuerPaths: GHES (https://HOST/_services/token) and GHEC (.../<enterpriseSlug>) issuers
// have a path, under which discovery and keys are found.
func TestIssuerPaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/_services/token", "/acme-corp"} {
		iss := oidctest.New(t, oidctest.WithClock(fixedClock), oidctest.WithPath(path))
		if !strings.HasSuffix(iss.URL(), path) {
			t.Fatalf("URL() = %s, want it to end in %s", iss.URL(), path)
		}
		v, _ := newTestVerifier(t, iss)
		id, err := v.Verify(context.Background(), iss.Token(oidctest.Claims{"aud": testAudience, "sub": oidctest.ImmutableSubject("octo-org", "9919", "octo-repo", "892345611", "", "push", "refs/heads/main")}))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if id.Issuer != iss.URL() || id.Subject != "repo:octo-org@9919/octo-repo@892345611:ref:refs/heads/main" {
			t.Errorf("%s: issuer %s, subject %s", path, id.Issuer, id.Subject)
		}
	}
}

// TestGitLabToken: a GitLab job's ID token verifies, and its claims are GitLab's (job_id stands
// in for the attempt GitLab does not have).
func TestGitLabToken(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t, oidctest.WithClock(fixedClock), oidctest.WithPath("/gitlab"))
	v, _ := newTestVerifier(t, iss)
	id, err := v.Verify(context.Background(), iss.Token(oidctest.GitLab(oidctest.Claims{"aud": testAudience})))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"project_id": "4711", "namespace_id": "42", "pipeline_id": "998877", "job_id": "55443322", "ref_type": "branch", "ref_path": "refs/heads/main", "ref_protected": "true"} {
		if id.Claims[k] != want {
			t.Errorf("%s = %q, want %q", k, id.Claims[k], want)
		}
	}
	if _, ok := id.Claims["repository_id"]; ok || id.Subject != "project_path:octo-group/octo-project:ref_type:branch:ref:main" {
		t.Errorf("GitHub's claims in a GitLab token, or another sub: %s %v", id.Subject, id.Claims)
	}
}
