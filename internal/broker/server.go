package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

// IDVerifier verifies ID tokens; *Verifier is one.
type IDVerifier interface {
	Verify(ctx context.Context, raw string) (*Identity, error)
	Ready(ctx context.Context) error
}

// Options are what a Server is made of. Every field but ClientIPHeader, Now and Metrics is
// required.
type Options struct {
	Policy   *trust.Policy
	Verifier IDVerifier
	Replay   ReplayStore
	// Tokens calls Cloudflare with the bootstrap token, retrying what can succeed; Once is the same
	// with one attempt per call (the new token's verify loops by itself).
	Tokens, Once mint.Tokens
	Logger       *slog.Logger
	// ClientIPHeader names the header the trusted proxy in front of the broker puts the caller's
	// address in (CF-Connecting-IP, X-Forwarded-For); empty: the connection's own address.
	ClientIPHeader string
	// Budget is Cloudflare's request budget the broker keeps to; nil: no own accounting.
	Budget *Budget
	// TicketKey signs the revoke tickets of minted tokens (TicketKey(bootstrap)); nil: no tickets.
	TicketKey []byte
	// Metrics records what the broker does; nil: a private registry.
	Metrics *Metrics
	Now     func() time.Time
}

// Server is the broker's HTTP API.
type Server struct {
	o       Options
	state   atomic.Pointer[state]
	cache   *lookupCache
	nonces  NonceStore
	metrics *Metrics
	boot    bootstrapHealth

	// base is what every exchange and revoke runs under, instead of its request: a caller that
	// hangs up must not leave a half-made token behind. Abort cancels it, so that work still in
	// flight when a drain runs out deletes what it created.
	base     context.Context
	abort    context.CancelFunc
	inflight sync.WaitGroup
}

// work is the context of one exchange or revoke, and its end.
func (s *Server) work() (context.Context, func()) {
	s.inflight.Add(1)
	ctx, cancel := context.WithTimeout(s.base, exchangeTimeout)
	return ctx, func() { cancel(); s.inflight.Done() }
}

// Abort cancels the exchanges and revokes in flight (each then deletes what it created, within
// mint.CleanupBudget) and waits for them to end, at most until ctx ends.
func (s *Server) Abort(ctx context.Context) error {
	s.abort()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// state is what a reload replaces as one.
type state struct {
	policy   *trust.Policy
	verifier IDVerifier
}

// New checks o and returns a Server.
func New(o Options) (*Server, error) {
	var missing []string
	for name, nilv := range map[string]bool{"Policy": o.Policy == nil, "Verifier": o.Verifier == nil, "Replay": o.Replay == nil, "Tokens": o.Tokens == nil, "Once": o.Once == nil, "Logger": o.Logger == nil} {
		if nilv {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("broker.New: missing %s", strings.Join(missing, ", "))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	s := &Server{o: o, metrics: o.Metrics}
	s.base, s.abort = context.WithCancel(context.Background())
	s.cache = newLookupCache(o.Tokens, o.Now)
	s.cache.budget = o.Budget
	s.nonces = newMemoryNonces(o.Now)
	if ns, ok := o.Replay.(NonceStore); ok {
		s.nonces = ns
	}
	s.state.Store(&state{policy: o.Policy, verifier: o.Verifier})
	return s, nil
}

// Prepare fetches the permission groups of every owner and account the policy's rules name and
// checks the policy against them (CheckPolicy): a policy whose rules do not resolve must not
// start.
func (s *Server) Prepare(ctx context.Context, p *trust.Policy) error {
	return CheckPolicy(ctx, p, s.cache)
}

// Reload replaces the policy and the verifier at once, after Prepare has accepted the policy.
func (s *Server) Reload(p *trust.Policy, v IDVerifier) {
	s.state.Store(&state{policy: p, verifier: v})
}

// Policy is the policy in force.
func (s *Server) Policy() *trust.Policy { return s.state.Load().policy }

// Routes is the broker's HTTP API, which callers reach. It holds no /metrics: they say which
// rules exist and how much of the rate budget is left (MetricsHandler).
func (s *Server) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tokens", s.exchange)
	mux.HandleFunc("DELETE /v1/tokens/{id}", s.revoke)
	mux.HandleFunc("DELETE /v1/tokens", s.revokeNonce)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.ready)
	return mux
}

// MetricsHandler serves the broker's metrics (Prometheus' text format), for a port of their own.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st := s.state.Load()
	var why []string
	if err := st.verifier.Ready(ctx); err != nil {
		// The error names the addresses the broker reached the issuers at: the log has it, the
		// answer (which anyone who reaches the port reads) does not.
		s.o.Logger.WarnContext(ctx, "not ready: the issuers' keys could not be fetched", "event", "ready", "error", err.Error())
		why = append(why, "the issuers' keys could not be fetched")
	}
	if err := PingReplayStore(ctx, s.o.Replay); err != nil {
		// The store's error names its address, and the store logs an outage once by itself.
		why = append(why, "the replay store does not answer")
	}
	if !s.BootstrapValid() {
		why = append(why, deadBootstrapAnswer)
	}
	if len(why) > 0 {
		http.Error(w, "not ready: "+strings.Join(why, "; ")+"\n", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// maxBody bounds a request body: a request is a handful of short strings.
const maxBody = 16 << 10

// requestKeys are a request body's keys: the action's input names, and the step's nonce.
var requestKeys = append(slices.Clone(config.RequestKeys), "nonce")

// apiError is an answer other than success: a status and one sentence that says what to fix.
type apiError struct {
	status     int
	msg        string
	retryAfter time.Duration
	rule       string // the rule that matched, when one did: for the metrics
	cause      error  // Cloudflare's refusal behind a 500, for the bootstrap token's diagnosis
	// detail is what the broker's own log says beside msg, and the caller is not told: an
	// internal address, an account id.
	detail string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cfmint"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.msg})
}

// caller is the address the request came from, as the broker is told to see it.
func (s *Server) caller(r *http.Request) (netip.Addr, *apiError) {
	if h := s.o.ClientIPHeader; h != "" {
		v := r.Header.Values(h)
		if len(v) == 0 {
			return netip.Addr{}, fail(http.StatusBadRequest, "the request carries no %s header; the broker takes the caller's address from it, so it must be reached through its proxy", h)
		}
		// X-Forwarded-For is a list each proxy appends to: only the last entry, written by the
		// proxy the broker trusts, is not the caller's to choose.
		parts := strings.Split(v[len(v)-1], ",")
		a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1]))
		if err != nil {
			return netip.Addr{}, fail(http.StatusBadRequest, "header %s does not end in an IP address", h)
		}
		return a.Unmap(), nil
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, err := netip.ParseAddr(host)
		if err != nil {
			return netip.Addr{}, fail(http.StatusBadRequest, "cannot read the caller's address")
		}
		return a.Unmap(), nil
	}
	return ap.Addr().Unmap(), nil
}

// identify verifies the request's ID token, refuses a stranger's, and claims its single use.
func (s *Server) identify(ctx context.Context, r *http.Request, st *state) (*Identity, *apiError) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
	}
	if !ok || strings.TrimSpace(raw) == "" {
		s.metrics.denial("id-token")
		s.audit(ctx, "denial", nil, "reason", "id-token", "why", "no ID token", "path", r.URL.Path)
		return nil, fail(http.StatusUnauthorized, "no ID token: send the job's OIDC ID token as Authorization: Bearer <token>")
	}
	id, err := st.verifier.Verify(ctx, strings.TrimSpace(raw))
	if err != nil {
		var rj *Rejection
		if errors.As(err, &rj) && rj.Check == CheckKeys {
			return nil, &apiError{status: http.StatusServiceUnavailable, msg: "the broker could not fetch the issuer's keys; try again shortly", retryAfter: 5 * time.Second}
		}
		s.metrics.denial("id-token")
		s.audit(ctx, "denial", nil, "reason", "id-token", "check", checkOf(err), "why", err.Error(), "path", r.URL.Path)
		return nil, fail(http.StatusUnauthorized, "the ID token was refused: %v", err)
	}
	// A stranger (a token of a tenant no rule trusts) costs no entry in the replay store, and
	// learns nothing of the policy; a token that passes this is recorded before anything is
	// minted for it.
	if d := st.policy.Stranger(id.Issuer, trust.Claims(id.Claims)); d != nil {
		s.metrics.denial(string(d.Reason))
		s.audit(ctx, "denial", id, "reason", string(d.Reason), "why", d.Audit(), "path", r.URL.Path)
		return nil, fail(http.StatusForbidden, "%s", d.Msg)
	}
	first, err := s.o.Replay.Claim(ctx, id.ReplayKey(), id.ValidUntil)
	switch {
	case errors.Is(err, ErrClaimExpired):
		s.metrics.denial("id-token")
		s.audit(ctx, "denial", id, "reason", "id-token", "why", "expired before its use was recorded", "path", r.URL.Path)
		return nil, fail(http.StatusUnauthorized, "%v", err)
	case err != nil:
		s.metrics.replayError()
		return nil, &apiError{status: http.StatusServiceUnavailable, msg: "the broker cannot record the ID token's use right now, and never skips that check; try again shortly", retryAfter: 5 * time.Second}
	case !first:
		s.metrics.denial("replay")
		s.audit(ctx, "denial", id, "reason", "replay", "why", "the ID token was already used", "path", r.URL.Path)
		return nil, fail(http.StatusUnauthorized, "this ID token was already used; each exchange needs a fresh one from the CI system")
	}
	return id, nil
}

func checkOf(err error) string {
	var rj *Rejection
	if errors.As(err, &rj) {
		return string(rj.Check)
	}
	return ""
}

// cloudflareErr answers a failed Cloudflare call: rate limits and outages are the caller's to
// retry later, anything else is the broker's configuration.
func cloudflareErr(err error, what string) *apiError {
	var ae *cftoken.APIError
	var te *cftoken.TransportError
	var own *apiError
	switch {
	case errors.As(err, &own):
		// The broker's own answer (its budget): as it is.
		return own
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
		ra := ae.RetryAfter
		if ra <= 0 {
			ra = 30 * time.Second
		}
		return &apiError{status: http.StatusTooManyRequests, msg: "Cloudflare is rate limiting the broker; retry after the time Retry-After gives", retryAfter: ra}
	case errors.As(err, &ae) && ae.Status >= 500, errors.As(err, &te), errors.Is(err, context.DeadlineExceeded):
		// The error may name the address the broker reached Cloudflare at, and the account in
		// its path: the log has it, the caller is told what failed.
		return &apiError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf("Cloudflare did not answer the broker properly when it tried to %s; retry shortly", what), retryAfter: 5 * time.Second, detail: err.Error()}
	}
	// Not 502: a broker's 502 to a mint means a token may exist; this is a refusal, and the
	// broker's own configuration's fault.
	ae500 := fail(http.StatusInternalServerError, "Cloudflare refused to %s (%v); the broker's bootstrap token or policy needs its operator's attention", what, err)
	ae500.cause = err
	return ae500
}

// ownerKey is one owner of tokens: an account, or the bootstrap token's user.
type ownerKey struct {
	owner   cftoken.Owner
	account string
}

func (k ownerKey) String() string {
	if k.owner == cftoken.OwnerUser {
		return "user tokens (account " + k.account + ")"
	}
	return "account " + k.account
}

func ruleKey(r *trust.Rule) ownerKey {
	return ownerKey{owner: r.Owner(), account: r.AccountID()}
}

func ownersOf(p *trust.Policy) []ownerKey {
	var out []ownerKey
	seen := map[ownerKey]bool{}
	for _, r := range p.Rules() {
		if k := ruleKey(r); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
