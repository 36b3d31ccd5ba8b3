// Package cfapitest is an in-memory Cloudflare API for tests and the demo:
// API tokens, permission groups, zones and the resource endpoints a minted
// token is used on, served over plain HTTP in the real API's shape.
//
// It enforces what cfmint depends on: bearer authentication, IP filters,
// expiry and revocation, permission groups on resources, owner quotas and
// rate limits, and it refuses in the words of the product API that serves
// the path (see access), as Cloudflare does. The behaviour follows the
// project's Cloudflare reference; where Cloudflare's answer is not known,
// the choice is marked "unverified" where it is made.
package cfapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiPrefix is where the API lives on the host, as on api.cloudflare.com.
const apiPrefix = "/client/v4"

// maxBody bounds request bodies; every real request is far smaller.
const maxBody = 1 << 20

// Option configures a Server.
type Option func(*Server)

// WithClock sets the fake's clock: the Date header, issued_on, expiry,
// activation and rate-limit windows all read it. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithQuotas sets how many tokens a user and an account may own (default 50
// and 500, Cloudflare's documented limits). Expired tokens count until they
// are deleted.
func WithQuotas(userTokens, accountTokens int) Option {
	return func(s *Server) { s.userQuota, s.accountQuota = userTokens, accountTokens }
}

// WithRateLimit allows n authenticated requests per token owner (user or
// account) per window, Cloudflare's documented 1200 per 5 minutes by default.
// Past it every request of that owner gets 429 with Retry-After until the
// window ends. n = 0 disables the limit.
func WithRateLimit(n int, window time.Duration) Option {
	return func(s *Server) { s.rateN, s.rateWindow = n, window }
}

// WithGroupPages sets how the permission-group lists page: perPage groups
// when the caller sends no per_page, and at most maxPerPage whatever it
// sends (a larger per_page is cut to it, and result_info says so). The
// default is 20 and 500: Cloudflare's spec shows one page, 2026 reports say
// a caller needs per_page for all 392 groups (unverified which sizes it
// takes), so a client must send per_page and follow result_info.
func WithGroupPages(perPage, maxPerPage int) Option {
	return func(s *Server) { s.groupPerPage, s.groupMaxPerPage = perPage, maxPerPage }
}

// WithAddr sets the listen address for Start; the default "127.0.0.1:0"
// picks a free loopback port.
func WithAddr(addr string) Option {
	return func(s *Server) { s.addr = addr }
}

// WithActivationDelay makes a token created through the API valid only d
// after its creation (by the fake's clock). Until then it answers like an
// unknown token, which is how a propagation delay would look to cfmint.
func WithActivationDelay(d time.Duration) Option {
	return func(s *Server) { s.activationDelay = d }
}

// Server is the fake API. All its API state sits behind one mutex, and
// every request is handled while holding it, so concurrent clients see the
// same consistent world the real API would show them one call at a time.
type Server struct {
	// Settings, fixed after New.
	now             func() time.Time
	addr            string
	userQuota       int
	accountQuota    int
	rateN           int
	rateWindow      time.Duration
	groupPerPage    int
	groupMaxPerPage int
	activationDelay time.Duration
	handler         http.Handler
	mux             *http.ServeMux
	routes          []route
	closed          chan struct{}
	closeOnce       sync.Once

	lifecycle sync.Mutex // guards srv and ln
	srv       *http.Server
	ln        net.Listener

	mu           sync.Mutex
	accounts     map[string]*account
	accountOrder []string
	users        map[string]*userRec
	zones        map[string]*zone
	zoneOrder    []string
	buckets      []*bucket
	tokens       map[string]*token // live tokens by id
	tokenOrder   []string          // live token ids in creation order
	secrets      map[string]string // every secret ever issued -> token id
	deleted      []*token
	rate         map[string]*rateWindow
	workersState workersState // versions, deployments and workers.dev switches (workers_deploy.go)
	faults       []*faultState
	latency      time.Duration
	log          []Request
}

// rateWindow counts one owner's requests in the current window.
type rateWindow struct {
	start time.Time
	count int
}

// New returns a Server with an empty world; call Seed for the usual one and
// Start to serve it on loopback.
func New(opts ...Option) *Server {
	s := &Server{
		now:             time.Now,
		addr:            "127.0.0.1:0",
		userQuota:       50,
		accountQuota:    500,
		rateN:           1200,
		rateWindow:      5 * time.Minute,
		groupPerPage:    20,
		groupMaxPerPage: 500,
		closed:          make(chan struct{}),
		accounts:        map[string]*account{},
		users:           map[string]*userRec{},
		zones:           map[string]*zone{},
		tokens:          map[string]*token{},
		secrets:         map[string]string{},
		rate:            map[string]*rateWindow{},
		workersState:    workersState{subdomains: map[string]string{}, workers: map[*script]*worker{}},
	}
	for _, o := range opts {
		o(s)
	}
	s.mux = http.NewServeMux()
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.HandleFunc(rt.method+" "+rt.fullPath(), s.wrap(rt))
	}
	s.mux.HandleFunc("/", s.noRoute)
	s.handler = http.HandlerFunc(s.serve)
	return s
}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	if s.srv != nil {
		return errors.New("failed to start: already started")
	}
	select {
	case <-s.closed:
		return errors.New("failed to start: server is closed")
	default:
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", s.addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		// Serve returns ErrServerClosed after Close; nothing else is expected
		// on a loopback listener, and there is no caller left to tell.
		_ = s.srv.Serve(ln)
	}()
	return nil
}

// URL is the API base URL, e.g. "http://127.0.0.1:41234/client/v4"; empty
// before Start.
func (s *Server) URL() string {
	if h := s.Host(); h != "" {
		return "http://" + h + apiPrefix
	}
	return ""
}

// Host is the listen address, e.g. "127.0.0.1:41234"; empty before Start.
func (s *Server) Host() string {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Handler serves /client/v4/..., /cdn-cgi/trace and the R2 S3 endpoint
// below /r2/ (see R2Endpoint); usable without Start,
// e.g. under httptest.NewServer.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops serving and releases every request held by a fault.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	if s.srv != nil {
		// Close, not Shutdown: hanging requests are meant never to finish.
		_ = s.srv.Close()
	}
}

// Request is one logged request.
type Request struct {
	Method, Path, RawQuery string
	Status                 int // 0 when no answer was sent (a hang, or a client that left)
	ClientIP               string
	// TokenID names the token whose secret was in the Authorization header,
	// when it was one the fake issued; on the S3 endpoint, the token whose
	// S3 secret signed the request. The secret itself is never logged.
	TokenID string
	// Body and Response are the request and response bodies. They are for
	// tests only: a create answer holds the new secret.
	Body, Response []byte
	Header         http.Header // request headers, credentials removed
	Fault          string      // the injected fault that shaped the answer: "status", "malformed", "hang", "lose-answer", "latency" or ""
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		r.Body = bytes.Clone(r.Body)
		r.Response = bytes.Clone(r.Response)
		r.Header = r.Header.Clone()
		out[i] = r
	}
	return out
}

// credentialHeaders never reach the log.
var credentialHeaders = []string{"Authorization", "X-Auth-Key", "X-Auth-Email", "X-Auth-User-Service-Key", "Cookie"}

// serve is the outer handler: it applies latency and faults, dispatches,
// and logs.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, bodyLimit(r.URL.Path)))
	r.Body = io.NopCloser(bytes.NewReader(body))

	s.mu.Lock()
	tokenID := s.secrets[bearer(r)]
	if isR2Path(r.URL.Path) {
		tokenID = s.s3SignerID(r)
	}
	f := s.takeFault(r, tokenID)
	delay := s.latency
	s.mu.Unlock()

	entry := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		ClientIP: clientIP(r.RemoteAddr).String(),
		TokenID:  tokenID,
		Body:     body,
		Header:   r.Header.Clone(),
		Fault:    f.kind(),
	}
	for _, h := range credentialHeaders {
		entry.Header.Del(h)
	}

	if f != nil {
		delay += f.Latency
	}
	if !s.wait(r.Context(), delay) {
		s.record(entry)
		abort(w)
		return
	}

	rec := &recorder{header: http.Header{}}
	switch {
	case f != nil && f.Hang:
		s.wait(r.Context(), -1)
		s.record(entry)
		abort(w)
		return
	case f != nil && (f.Status != 0 || f.Malformed) && isR2Path(r.URL.Path):
		s.setDate(rec)
		f.answerS3(rec)
	case f != nil && f.Status != 0:
		s.setDate(rec)
		f.answer(rec, s.ratePolicy)
	case f != nil && f.Malformed:
		s.setDate(rec)
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(http.StatusOK)
		// A truncated envelope: what a proxy cutting the answer short leaves.
		_, _ = rec.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":{"id":`))
	case readErr != nil && isR2Path(r.URL.Path):
		s.setDate(rec)
		writeS3Error(rec, errS3TooLarge)
	case readErr != nil:
		s.setDate(rec)
		// Unverified: Cloudflare's answer to an oversized body is not known.
		writeErr(rec, http.StatusRequestEntityTooLarge, codeInvalidRequest, "Request body too large")
	default:
		s.dispatch(rec, r)
	}

	entry.Status = rec.statusCode()
	entry.Response = bytes.Clone(rec.body.Bytes())
	s.record(entry)
	if f != nil && f.Hold > 0 && !s.wait(r.Context(), f.Hold) {
		abort(w)
		return
	}
	if f != nil && f.LoseAnswer {
		// The request took effect; only the answer is lost, as when a
		// connection drops after the server committed.
		abort(w)
		return
	}
	rec.copyTo(w)
}

// dispatch routes a request to its endpoint. Endpoints run under s.mu, so
// each sees and changes the world atomically.
func (s *Server) dispatch(w *recorder, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setDate(w)
	if isR2Path(r.URL.Path) {
		// Not through the mux: it would redirect keys with "//" or "..".
		s.serveR2(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
	if strings.HasPrefix(r.URL.Path, apiPrefix+"/") {
		// After the handler, so the count includes this request. w is the
		// recorder, whose headers are sent only after this.
		s.setRateHeaders(w.Header(), r)
	}
}

func (s *Server) record(e Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, e)
}

func (s *Server) setDate(w http.ResponseWriter) {
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
}

// wait sleeps for d (forever when d < 0) unless the client leaves or the
// server closes first; it reports whether the full time passed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d == 0 {
		return true
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// abort closes the client's connection without an answer.
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, or a test calling the handler directly):
		// the server then resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// recorder buffers an answer so it can be logged, and dropped for LoseAnswer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

func (r *recorder) copyTo(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.statusCode())
	_, _ = w.Write(r.body.Bytes())
}

// bearer returns the token of an "Authorization: Bearer <token>" header, or "".
func bearer(r *http.Request) string {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" || strings.ContainsAny(secret, " \t") {
		return ""
	}
	return secret
}

// clientIP is the TCP peer's address as Cloudflare would see it: no IPv6
// zone, and IPv4-mapped IPv6 addresses as IPv4.
func clientIP(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// access says what a route checks before its handler runs, and in whose
// words it refuses. Cloudflare's answer to the same dead token or refused
// address depends on which product's API serves the path, so each route
// names its family.
type access int

const (
	public access = iota // no authentication (the trace)
	// verifyAPI: the verify endpoints. A valid token, IP filter not applied;
	// a dead token is 401 / 1000 "Invalid API Token".
	verifyAPI
	// accountsAPI: /accounts, /user, /zones and the token endpoints. A dead
	// token is 403 / 9109 "Invalid access token"; a refused address 403 /
	// 9109 "Cannot use the access token from location: <ip>" (seen on zones
	// and accounts; unverified for /user and the token endpoints, taken to
	// answer like their /accounts neighbours).
	accountsAPI
	// productAPI: DNS records, cache purge, R2. A dead token is 401 / 10000
	// "Authentication error"; a refused address 403 / 9109 with the
	// location, as on DNS records (seen; unverified for purge and R2).
	productAPI
	// workersAPI: the Workers scripts API. A dead token is 401 / 10000; a
	// refused address 403 / 10000 "Authentication error", which does not
	// say that the address was the reason (seen in the wild).
	workersAPI
)

// refuseDead answers a token that is unknown, deleted, expired, disabled,
// revoked or not yet valid.
func (a access) refuseDead(w http.ResponseWriter) {
	switch a {
	case verifyAPI:
		writeErr(w, http.StatusUnauthorized, codeInvalidToken, msgInvalidToken)
	case accountsAPI:
		writeErr(w, http.StatusForbidden, codeForbidden, msgInvalidAccessToken)
	default:
		writeErr(w, http.StatusUnauthorized, codeAuthError, msgAuthError)
	}
}

// refuseAddress answers a live token used from an address its IP filter
// does not allow.
func (a access) refuseAddress(w http.ResponseWriter, ip netip.Addr) {
	if a == workersAPI {
		writeErr(w, http.StatusForbidden, codeAuthError, msgAuthError)
		return
	}
	writeErr(w, http.StatusForbidden, codeForbidden, msgLocation+ip.String())
}

// route is one endpoint of the fake.
type route struct {
	method string
	path   string // below /client/v4, or /cdn-cgi/... at the host root
	access access
	handle func(*call)
}

func (rt route) fullPath() string {
	if strings.HasPrefix(rt.path, "/cdn-cgi/") {
		return rt.path
	}
	return apiPrefix + rt.path
}

// call is one request on its way through a route; it runs under s.mu.
type call struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	now  time.Time
	tok  *token
	ip   netip.Addr
	need groupKey // from endpointGroups; zero for routes without one
}

// wrap runs the checks every endpoint shares, in Cloudflare's order:
// routing (malformed ids), authentication, rate limit, IP filter.
func (s *Server) wrap(rt route) http.HandlerFunc {
	need := endpointGroups[rt.method+" "+rt.path]
	return func(w http.ResponseWriter, r *http.Request) {
		c := &call{s: s, w: w, r: r, now: s.now(), ip: clientIP(r.RemoteAddr), need: need}
		for _, name := range []string{"account_id", "zone_id", "token_id"} {
			if v := r.PathValue(name); v != "" && !isID(v) {
				c.notFound()
				return
			}
		}
		if rt.access != public {
			if !c.authenticate(rt.access) || !c.throttle() {
				return
			}
			if rt.access != verifyAPI && !c.tok.ipAllowed(c.ip) {
				rt.access.refuseAddress(w, c.ip)
				return
			}
		}
		rt.handle(c)
	}
}

// authenticate accepts only "Authorization: Bearer <token>". API keys
// (X-Auth-Key / X-Auth-Email) are not supported: without an Authorization
// header they count as no credentials at all (unverified: Cloudflare would
// check the key instead).
func (c *call) authenticate(a access) bool {
	if _, ok := c.r.Header["Authorization"]; !ok {
		writeErr(c.w, http.StatusBadRequest, codeMissingAuth, msgMissingAuth)
		return false
	}
	secret := bearer(c.r)
	if !wellFormed(secret) {
		writeError(c.w, http.StatusBadRequest, apiError{
			Code:       codeBadHeaders,
			Message:    msgBadHeaders,
			ErrorChain: []apiError{{Code: codeBadAuthFormat, Message: msgBadAuthFormat}},
		})
		return false
	}
	t := c.s.tokens[c.s.secrets[secret]]
	if t == nil || !t.usable(c.now) {
		a.refuseDead(c.w)
		return false
	}
	t.lastUsed = c.now.UTC().Truncate(time.Second)
	c.tok = t
	return true
}

// minSecretLength is the shortest bearer the fake takes for a token rather
// than for a malformed header: legacy tokens have 40 characters, cfut_ and
// cfat_ ones more. Unverified: Cloudflare does not publish its rule; the
// reference only says that a bearer of the wrong length or with bad
// characters is 6003 / 6111, while a well-formed unknown one is refused as
// a dead token.
const minSecretLength = 40

// wellFormed reports whether a bearer has the shape of a Cloudflare token:
// long enough, and only letters, digits, "_" and "-".
func wellFormed(secret string) bool {
	if len(secret) < minSecretLength {
		return false
	}
	for _, c := range secret {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// throttle counts the request against the token owner's window. Once the
// count passes the limit, every request of that owner is refused until the
// window ends, revokes and verifies included: Cloudflare's lockout.
func (c *call) throttle() bool {
	s := c.s
	if s.rateN <= 0 {
		return true
	}
	key := rateKey(c.tok)
	rw := s.rate[key]
	if rw == nil || !c.now.Before(rw.start.Add(s.rateWindow)) {
		rw = &rateWindow{start: c.now}
		s.rate[key] = rw
	}
	rw.count++
	if rw.count <= s.rateN {
		return true
	}
	c.w.Header().Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(rw.start.Add(s.rateWindow).Sub(c.now)))))
	writeErr(c.w, http.StatusTooManyRequests, codeRateLimited, msgRateLimited)
	return false
}

// rateKey names the window a token's requests count in: its owner's.
func rateKey(t *token) string { return string(t.ownerKind) + ":" + t.owner }

// ratePolicyName names the fake's one quota in the RateLimit headers.
const ratePolicyName = "default"

// setRateHeaders writes the RateLimit headers Cloudflare sends on every
// answer of its API since 2025-09, errors included. Their syntax is that of
// draft-ietf-httpapi-ratelimit-headers (Structured Fields naming the policy):
//
//	Ratelimit-Policy: "default";q=1200;w=300   quota q requests per window of w seconds
//	Ratelimit: "default";r=1187;t=241          r requests left, the window resets in t seconds
//
// The window is that of the owner of the bearer's token when the fake knows
// the token (dead ones included: their requests are not counted, but the
// answer shows their owner's window); otherwise a fresh window (unverified:
// Cloudflare would also count by client address). t is whole seconds,
// rounded up so a client waiting it out is not early. With the limit off
// (WithRateLimit(0, ...)) no header is sent, like an API from before the
// headers, so a client's fallback can be tested. Retry-After is the 429's
// alone (throttle).
func (s *Server) setRateHeaders(h http.Header, r *http.Request) {
	if s.rateN <= 0 {
		return
	}
	now := s.now()
	left, reset := s.rateN, s.rateWindow
	if t := s.tokens[s.secrets[bearer(r)]]; t != nil {
		if rw := s.rate[rateKey(t)]; rw != nil && now.Before(rw.start.Add(s.rateWindow)) {
			left, reset = max(0, s.rateN-rw.count), rw.start.Add(s.rateWindow).Sub(now)
		}
	}
	setRateLimit(h, s.rateN, s.rateWindow, left, reset)
}

// setRateLimit writes Ratelimit and Ratelimit-Policy.
func setRateLimit(h http.Header, quota int, window time.Duration, left int, reset time.Duration) {
	h.Set("Ratelimit", fmt.Sprintf("%q;r=%d;t=%d", ratePolicyName, left, max(1, ceilSeconds(reset))))
	h.Set("Ratelimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", ratePolicyName, quota, ceilSeconds(window)))
}

// setRateLimited writes the headers of an injected 429 that stands for
// Cloudflare's own (see Fault.RetryAfter): Retry-After and the RateLimit
// headers with nothing left.
func setRateLimited(h http.Header, quota int, window, reset time.Duration) {
	h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(reset))))
	setRateLimit(h, quota, window, 0, reset)
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// ratePolicy is the quota the RateLimit-Policy header states: the
// configured one, or Cloudflare's documented 1200 per 5 minutes when the
// fake does not enforce one (an injected 429 still states a policy).
func (s *Server) ratePolicy() (int, time.Duration) {
	if s.rateN <= 0 {
		return 1200, 5 * time.Minute
	}
	return s.rateN, s.rateWindow
}

// notFound is Cloudflare's answer to a path it cannot route, including one
// whose identifier is malformed.
func (c *call) notFound() {
	writeErr(c.w, http.StatusNotFound, codeNoRoute, noRouteMessage(c.r.URL.Path))
}

func noRouteMessage(path string) string {
	return fmt.Sprintf("Could not route to %s, perhaps your object identifier is invalid?", strings.TrimPrefix(path, apiPrefix))
}

// noRoute answers every request no route matched: 405 when the path exists
// with another method (unverified code), else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range s.routes {
		if matchPattern(rt.fullPath(), r.URL.Path) && !slices.Contains(allow, rt.method) {
			allow = append(allow, rt.method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeErr(w, http.StatusMethodNotAllowed, codeBadMethod, "Method not allowed")
		return
	}
	writeErr(w, http.StatusNotFound, codeNoRoute, noRouteMessage(r.URL.Path))
}

// matchPattern matches a path against a ServeMux-style path pattern:
// literal segments, {name} for one segment, {name...} for the rest, and a
// trailing slash for "this prefix".
func matchPattern(pattern, path string) bool {
	if pattern == "/" {
		return true
	}
	if !strings.HasPrefix(path, "/") {
		return false
	}
	prefix := strings.HasSuffix(pattern, "/")
	ps := strings.Split(strings.TrimSuffix(pattern[1:], "/"), "/")
	xs := strings.Split(path[1:], "/")
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "...}") {
			return true
		}
		if i >= len(xs) {
			return false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	if prefix {
		return len(xs) > len(ps)
	}
	return len(xs) == len(ps)
}
