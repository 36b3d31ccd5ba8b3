package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

// Config is how a broker runs: what `cfmint serve` reads from its flags and environment, each
// field named after its flag, and what a front end or a test gives it besides.
type Config struct {
	Listen             string // --listen
	PolicyFile         string // --policy
	BootstrapToken     string // $CLOUDFLARE_BOOTSTRAP_TOKEN; BootstrapTokenFile wins
	BootstrapTokenFile string // --bootstrap-token-file
	APIBase            string // $CLOUDFLARE_API_BASE_URL; empty: Cloudflare's
	ClientIPHeader     string // --client-ip-header
	ReplayStore        string // --replay-store
	ShutdownTimeout    time.Duration
	RateLimit          int    // --rate-limit
	RateReserve        int    // --rate-reserve
	LogLevel           string // --log-level

	// Log receives the JSON log lines; nil: os.Stderr.
	Log io.Writer
	// Transport carries the calls to Cloudflare and to the ID tokens' issuers; nil:
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Hangup reloads the policy file on each value (SIGHUP).
	Hangup <-chan os.Signal
	// Listening, when set, is told the address once the broker listens (a test listens on
	// 127.0.0.1:0).
	Listening func(net.Addr)
}

// loaded is a Config read and parsed: the token, the API base, the policy.
type loaded struct {
	token  string
	base   string
	policy *trust.Policy
	level  slog.Level
}

// Validate reports every problem of c at once, one line each, naming the flag (or variable).
func (c Config) Validate() error {
	_, err := c.load()
	return err
}

func (c Config) load() (*loaded, error) {
	var bad []error
	l := &loaded{}
	if err := l.level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad = append(bad, fmt.Errorf("--log-level: %q is not a level; use debug, info, warn or error", c.LogLevel))
	}
	if c.PolicyFile == "" {
		bad = append(bad, errors.New("--policy: is empty; name the trust policy file (see docs/broker.md)"))
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 5*time.Minute {
		bad = append(bad, fmt.Errorf("--shutdown-timeout: %s is outside 1s to 5m", c.ShutdownTimeout))
	}
	if c.RateLimit < 10 || c.RateReserve < 0 || c.RateReserve >= c.RateLimit {
		bad = append(bad, fmt.Errorf("--rate-limit %d and --rate-reserve %d: the limit must be at least 10 and the reserve between 0 and the limit", c.RateLimit, c.RateReserve))
	}
	l.token = strings.TrimSpace(c.BootstrapToken)
	if c.BootstrapTokenFile != "" {
		b, err := os.ReadFile(c.BootstrapTokenFile)
		if err != nil {
			bad = append(bad, fmt.Errorf("--bootstrap-token-file: %v", err))
		}
		l.token = strings.TrimSpace(string(b))
	}
	if l.token == "" && c.BootstrapTokenFile == "" {
		bad = append(bad, errors.New("no bootstrap token: set $CLOUDFLARE_BOOTSTRAP_TOKEN or --bootstrap-token-file"))
	}
	base, err := config.ParseAPIBase(c.APIBase)
	if err != nil {
		bad = append(bad, errors.New("$CLOUDFLARE_API_BASE_URL: "+err.Error()))
	}
	l.base = base
	if c.PolicyFile != "" {
		l.policy, err = LoadPolicy(c.PolicyFile)
		if err != nil {
			bad = append(bad, err)
		} else if _, err := NewVerifier(context.Background(), VerifierOptions{Issuers: l.policy.Issuers(), Audience: l.policy.Audience(), HTTPClient: &http.Client{}}); err != nil {
			bad = append(bad, fmt.Errorf("--policy: %v", err))
		}
	}
	// Opening a store dials nothing: this checks the value only.
	if _, closer, err := OpenReplayStore(c.ReplayStore, ReplayStoreOptions{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		bad = append(bad, err)
	} else {
		_ = closer.Close()
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	return l, nil
}

// LoadPolicy reads and parses a trust policy file; its errors name --policy.
func LoadPolicy(file string) (*trust.Policy, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--policy: %v", err)
	}
	p, err := trust.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("--policy %s:\n%v", file, err)
	}
	return p, nil
}

// Serve runs the broker that cfg describes until ctx ends, then drains: exchanges in flight get
// cfg.ShutdownTimeout to finish, and those still running after it are cancelled and delete what
// they created. It returns nil when it stopped cleanly; an error when cfg does not validate (see
// Validate), the policy does not resolve at Cloudflare, it cannot listen, the server fails, or
// the drain ran out.
func Serve(ctx context.Context, cfg Config) error {
	l, err := cfg.load()
	if err != nil {
		return err
	}
	out := cfg.Log
	if out == nil {
		out = os.Stderr
	}
	logger := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: l.level}))
	if !config.IsCloudflareHost(l.base) {
		logger.Warn("the API base is not Cloudflare's API: the bootstrap token goes there", "api_base", l.base)
	}
	rt := cfg.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	budget := NewBudget(cfg.RateLimit, 5*time.Minute, cfg.RateReserve)
	metrics := NewMetrics(budget)
	cfHTTP := &http.Client{Transport: Instrument(pooled(rt), metrics, budget)}
	tokens := cftoken.New(l.token, cftoken.Options{BaseURL: l.base, HTTPClient: cfHTTP})
	once := cftoken.New(l.token, cftoken.Options{BaseURL: l.base, HTTPClient: cfHTTP, Attempts: 1})
	// ID-token issuers get a client of their own: their calls are not Cloudflare's budget.
	oidcHTTP := &http.Client{Transport: rt, Timeout: 15 * time.Second}
	store, closer, err := OpenReplayStore(cfg.ReplayStore, ReplayStoreOptions{Logger: logger})
	if err != nil {
		return err
	}
	defer closer.Close()
	if cfg.ReplayStore == "memory" {
		logger.Warn("the replay store is this process's memory: a restart forgets it, so an ID token used before a restart is accepted once more until it expires (at most 10 minutes after it was issued); use --replay-store redis://... where that is not acceptable", "event", "start", "replay_store", "memory")
	}
	pol := l.policy
	ver, err := NewVerifier(ctx, VerifierOptions{Issuers: pol.Issuers(), Audience: pol.Audience(), HTTPClient: oidcHTTP})
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	srv, err := New(Options{Policy: pol, Verifier: ver, Replay: store, Tokens: tokens, Once: once, Logger: logger, ClientIPHeader: cfg.ClientIPHeader, Budget: budget, Metrics: metrics})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = srv.Prepare(pctx, pol)
	cancel()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    256 << 10, // room for an oversized ID token to be refused with 401, not cut off
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("listening", "event", "start", "addr", ln.Addr().String(), "rules", len(pol.Rules()), "issuers", pol.Issuers(), "replay_store", RedactReplayStore(cfg.ReplayStore))
	if cfg.Listening != nil {
		cfg.Listening(ln.Addr())
	}
	r := &reloader{srv: srv, file: cfg.PolicyFile, hc: oidcHTTP, logger: logger}
	for {
		select {
		case err := <-served:
			logger.Error("the server stopped", "error", err.Error())
			return fmt.Errorf("the server stopped: %w", err)
		case <-cfg.Hangup:
			r.start(ctx)
		case <-ctx.Done():
			return drain(ctx, hs, srv, cfg.ShutdownTimeout, logger)
		}
	}
}

// drain stops accepting and lets the exchanges in flight finish within timeout; those still
// running after it are cancelled, and delete what they created.
func drain(ctx context.Context, hs *http.Server, srv *Server, timeout time.Duration, logger *slog.Logger) error {
	logger.Info("draining", "event", "stop", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	err := hs.Shutdown(sctx)
	cancel()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		// Cut the stragglers short: each deletes what it created before it ends.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mint.CleanupBudget+time.Second)
		aerr := srv.Abort(actx)
		cancel()
		logger.Error("exchanges were still in flight at the shutdown timeout; they were cancelled, and deleted what they had created", "error", err.Error(), "abort", fmt.Sprint(aerr))
		return fmt.Errorf("exchanges were still in flight at the shutdown timeout (%s): %w", timeout, err)
	}
	logger.Info("stopped", "event", "stop")
	return nil
}

// reloader runs one reload at a time.
type reloader struct {
	srv     *Server
	file    string
	hc      *http.Client
	logger  *slog.Logger
	running atomic.Bool
}

// start reloads in the background: a reload fetches keys and permission groups, which can take
// a while, and the caller's loop stays free for a stop meanwhile.
func (r *reloader) start(ctx context.Context) {
	if !r.running.CompareAndSwap(false, true) {
		r.logger.Warn("a reload is already under way; this SIGHUP is ignored", "event", "reload")
		return
	}
	go func() {
		defer r.running.Store(false)
		r.reload(ctx)
	}()
}

// reload swaps in the policy file's new version, or keeps the old one with one line saying why.
func (r *reloader) reload(ctx context.Context) {
	p, err := LoadPolicy(r.file)
	if err == nil {
		var v *Verifier
		v, err = NewVerifier(ctx, VerifierOptions{Issuers: p.Issuers(), Audience: p.Audience(), HTTPClient: r.hc})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			err = r.srv.Prepare(pctx, p)
			cancel()
			if err == nil {
				r.srv.Reload(p, v)
				r.logger.Info("reloaded the policy", "event", "reload", "rules", len(p.Rules()))
				return
			}
		}
	}
	r.logger.Error("refused the new policy; the old one stays", "event", "reload", "error", strings.ReplaceAll(err.Error(), "\n", "; "))
}

// pooled keeps enough idle connections to Cloudflare for the exchanges a broker runs at once:
// net/http keeps two per host by default, and every exchange past them would dial (and later
// close) a connection of its own.
func pooled(rt http.RoundTripper) http.RoundTripper {
	t, ok := rt.(*http.Transport)
	if !ok {
		if rt != nil {
			return rt
		}
		t = http.DefaultTransport.(*http.Transport)
	}
	t = t.Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 128
	return t
}
