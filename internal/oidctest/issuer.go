// Package oidctest is an OIDC issuer for tests, shaped like GitHub Actions'
// (https://token.actions.githubusercontent.com), with forgeries and the
// runner's ID-token request endpoint.
//
// It serves on 127.0.0.1 over plain HTTP: a loopback address cannot be
// reached from elsewhere, and a subprocess under test (the cfmint binary run
// by internal/runner) can talk to it without trusting a test certificate.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Paths of the issuer's documents, relative to URL().
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks"
)

// Lifetime is how long GitHub's ID tokens usually live.
const Lifetime = 5 * time.Minute

// keyBits is the RSA size GitHub uses; go-jose refuses to sign with less
// than 2048 bits.
const keyBits = 2048

// TB is what the issuer needs of a test: *testing.T and *testing.B are one; a benchmark program
// can bring its own.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Issuer is a running test issuer. Its methods are safe for concurrent use.
type Issuer struct {
	t    TB
	srv  *httptest.Server
	now  func() time.Time
	hook func(*http.Request)
	path string // under which the issuer is served, or ""

	mu          sync.Mutex
	keys        []*signingKey // published, oldest first; the last one signs
	stranger    *signingKey   // never published: signs "another key" forgeries
	counts      map[string]int
	unavailable bool // discovery and JWKS answer 503
	keysDown    bool // the JWKS answers 503
	endpoints   map[string]*jobEndpoint
	issued      []string
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// Option configures an Issuer.
type Option func(*Issuer)

// WithClock makes the issuer stamp iat, nbf and exp from now instead of
// time.Now, so a verifier with the same clock sees tokens as fresh.
func WithClock(now func() time.Time) Option {
	return func(i *Issuer) { i.now = now }
}

// WithPath serves the issuer under path, so that its URL is the server's and path: GitHub
// Enterprise Server's issuer is https://HOST/_services/token, GHEC's with a unique issuer
// https://token.actions.githubusercontent.com/<enterpriseSlug>.
func WithPath(path string) Option {
	return func(i *Issuer) { i.path = strings.TrimSuffix(path, "/") }
}

// WithRequestHook calls hook with every request the issuer receives, before
// it answers, so a test can observe or block key fetches.
func WithRequestHook(hook func(*http.Request)) Option {
	return func(i *Issuer) { i.hook = hook }
}

// New starts an issuer on 127.0.0.1 with one signing key. It stops when the
// test ends. A request for a path it does not serve fails the test.
func New(t TB, opts ...Option) *Issuer {
	t.Helper()
	i := &Issuer{
		t:         t,
		now:       time.Now,
		counts:    map[string]int{},
		endpoints: map[string]*jobEndpoint{},
	}
	for _, o := range opts {
		o(i)
	}
	i.keys = []*signingKey{newKey(t)}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DiscoveryPath, i.serveDiscovery)
	mux.HandleFunc("GET "+JWKSPath, i.serveJWKS)
	mux.HandleFunc("GET "+idTokenPattern, i.serveIDToken)
	mux.HandleFunc("GET "+TokenPath, i.serveToken)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("oidctest: unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	var h http.Handler = mux
	if i.path != "" {
		h = http.StripPrefix(i.path, mux)
	}
	i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i.hook != nil {
			i.hook(r)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(i.srv.Close)
	return i
}

func newKey(t TB) *signingKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		t.Fatalf("oidctest: failed to generate an RSA key: %v", err)
	}
	return &signingKey{kid: randomHex(20), priv: priv}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// URL is the issuer identifier: the iss of its tokens and the base of its
// discovery document.
func (i *Issuer) URL() string { return i.srv.URL + i.path }

// Client returns an HTTP client for the issuer's server.
func (i *Issuer) Client() *http.Client { return i.srv.Client() }

// Rotate makes a new key the signing key, as GitHub rotates: the previous
// keys stay published, so tokens they signed still verify. It returns the new
// key's kid.
func (i *Issuer) Rotate() string {
	k := newKey(i.t)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
	return k.kid
}

// RetireOldKeys stops publishing every key but the signing key.
func (i *Issuer) RetireOldKeys() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = i.keys[len(i.keys)-1:]
}

// KeyIDs returns the kids the JWKS publishes, the signing key's last.
func (i *Issuer) KeyIDs() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	ids := make([]string, len(i.keys))
	for n, k := range i.keys {
		ids[n] = k.kid
	}
	return ids
}

// SetUnavailable makes the discovery and JWKS documents answer 503 (or
// answer again), as during an outage of the issuer.
func (i *Issuer) SetUnavailable(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.unavailable = down
}

// SetKeysUnavailable makes only the JWKS answer 503 (or answer again), so a
// verifier can discover the issuer and then fail to fetch its keys.
func (i *Issuer) SetKeysUnavailable(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keysDown = down
}

// DiscoveryFetches counts the requests for the discovery document.
func (i *Issuer) DiscoveryFetches() int { return i.count(DiscoveryPath) }

// KeyFetches counts the requests for the JWKS.
func (i *Issuer) KeyFetches() int { return i.count(JWKSPath) }

// TokenRequests counts the requests to the runner's ID-token endpoints,
// refused ones included.
func (i *Issuer) TokenRequests() int { return i.count(idTokenPattern) }

func (i *Issuer) count(route string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.counts[route]
}

// Issued returns every ID token the request endpoints handed out, so a test
// can assert that none of them leaked into a log or an output.
func (i *Issuer) Issued() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.issued...)
}

// countAndCheck records a request for route and reports whether the issuer
// is up.
func (i *Issuer) countAndCheck(route string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.counts[route]++
	return !i.unavailable && !(route == JWKSPath && i.keysDown)
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if !i.countAndCheck(DiscoveryPath) {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	// The fields GitHub's document has, with GitHub's values.
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                i.URL(),
		"jwks_uri":                              i.URL() + JWKSPath,
		"subject_types_supported":               []string{"public", "pairwise"},
		"response_types_supported":              []string{"id_token"},
		"claims_supported":                      claimsSupported,
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid"},
	})
}

var claimsSupported = []string{
	"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha", "repository", "repository_id",
	"repository_owner", "repository_owner_id", "enterprise", "enterprise_id", "run_id", "run_number",
	"run_attempt", "actor", "actor_id", "workflow", "workflow_ref", "workflow_sha", "head_ref",
	"base_ref", "event_name", "ref_type", "ref_protected", "environment", "environment_node_id",
	"job_workflow_ref", "job_workflow_sha", "repository_visibility", "runner_environment", "issuer_scope",
	"check_run_id",
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if !i.countAndCheck(JWKSPath) {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	i.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
	}
	i.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (i *Issuer) current() *signingKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1]
}

func (i *Issuer) strangerKey() *signingKey {
	i.mu.Lock()
	k := i.stranger
	i.mu.Unlock()
	if k != nil {
		return k
	}
	k = newKey(i.t)
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stranger == nil {
		i.stranger = k
	}
	return i.stranger
}

// sign signs claims RS256 with key under kid, as GitHub's header has it.
func (i *Issuer) sign(key *rsa.PrivateKey, kid string, claims Claims) string {
	i.t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		i.t.Fatalf("oidctest: failed to encode claims: %v", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		i.t.Fatalf("oidctest: failed to make a signer: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		i.t.Fatalf("oidctest: failed to sign: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		i.t.Fatalf("oidctest: failed to serialize: %v", err)
	}
	return s
}

// Token returns an ID token for c (completed as Complete does), signed RS256
// with the current key.
func (i *Issuer) Token(c Claims) string {
	raw, _ := i.Issue(c)
	return raw
}

// Issue is Token that also returns the claims it signed.
func (i *Issuer) Issue(c Claims) (string, Claims) {
	full := i.Complete(c)
	k := i.current()
	return i.sign(k.priv, k.kid, full), full
}

func (i *Issuer) String() string { return fmt.Sprintf("oidctest issuer %s", i.URL()) }
