package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
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
	Listen             string        // --listen
	MetricsListen      string        // --metrics-listen: where GET /metrics is served; empty: nowhere
	PolicyFile         string        // --policy
	PolicyPoll         time.Duration // --policy-poll: how often the policy file's content is checked; 0: only on SIGHUP
	BootstrapToken     string        // $CLOUDFLARE_BOOTSTRAP_TOKEN; BootstrapTokenFile wins
	BootstrapTokenFile string        // --bootstrap-token-file
	APIBase            string        // $CLOUDFLARE_API_BASE_URL; empty: Cloudflare's
	ClientIPHeader     string        // --client-ip-header
	ReplayStore        string        // --replay-store
	ShutdownTimeout    time.Duration // --shutdown-timeout: the whole stop, clean-up included
	RateLimit          int           // --rate-limit
	RateReserve        int           // --rate-reserve
	LogLevel           string        // --log-level
	// BootstrapCheck is how often Cloudflare is asked whether the bootstrap token still works;
	// 0: BootstrapCheckEvery.
	BootstrapCheck time.Duration

	// SweepInterval is how often the broker deletes its own dead tokens (--sweep-interval, see
	// sweeper.go); 0: never.
	SweepInterval time.Duration
	// Log receives the JSON log lines; nil: os.Stderr.
	Log io.Writer
	// Transport carries the calls to Cloudflare and to the ID tokens' issuers; nil:
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Hangup reloads the policy file on each value (SIGHUP).
	Hangup <-chan os.Signal
	// Listening, when set, is told the address once the broker listens (a test listens on
	// 127.0.0.1:0), and MetricsListening the metrics' address.
	Listening, MetricsListening func(net.Addr)
}

// loaded is a Config read and parsed: the token, the API base, the policy.
type loaded struct {
	token  string
	base   string
	policy *trust.Policy
	sum    string // the sha256 of the policy file's content
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
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad = append(bad, fmt.Errorf("--metrics-listen: %q is not HOST:PORT (:9464 for every address, 127.0.0.1:9464 for this host only); write \"\" to serve no metrics", c.MetricsListen))
		} else if c.MetricsListen == c.Listen && port != "0" {
			bad = append(bad, fmt.Errorf("--metrics-listen: %q is --listen's address; the metrics need a port of their own, which the callers' ingress does not reach", c.MetricsListen))
		}
	}
	if c.ShutdownTimeout < time.Second || c.ShutdownTimeout > 5*time.Minute {
		bad = append(bad, fmt.Errorf("--shutdown-timeout: %s is outside 1s to 5m", c.ShutdownTimeout))
	}
	if c.PolicyPoll < 0 || c.PolicyPoll > time.Hour {
		bad = append(bad, fmt.Errorf("--policy-poll: %s is outside 0 (only SIGHUP reloads) to 1h", c.PolicyPoll))
	}
	if c.RateLimit < 10 || c.RateReserve < 0 || c.RateReserve >= c.RateLimit {
		bad = append(bad, fmt.Errorf("--rate-limit %d and --rate-reserve %d: the limit must be at least 10 and the reserve between 0 and the limit", c.RateLimit, c.RateReserve))
	}
	if c.SweepInterval != 0 && (c.SweepInterval < time.Minute || c.SweepInterval > 24*time.Hour) {
		bad = append(bad, fmt.Errorf("--sweep-interval: %s is outside 1m to 24h; write 0 to sweep never", c.SweepInterval))
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
		l.policy, l.sum, err = readPolicy(c.PolicyFile)
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
	p, _, err := readPolicy(file)
	return p, err
}

// readPolicy is LoadPolicy, and the sha256 of the file's content.
func readPolicy(file string) (*trust.Policy, string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("--policy: %v", err)
	}
	p, err := parsePolicy(file, b)
	return p, sum(b), err
}

func parsePolicy(file string, b []byte) (*trust.Policy, error) {
	p, err := trust.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("--policy %s:\n%v", file, err)
	}
	return p, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Serve runs the broker that cfg describes until ctx ends, then drains within
// cfg.ShutdownTimeout: exchanges in flight get most of it to finish, and those still running
// after it are cancelled and delete what they created in the rest (see shutdownSplit). Meanwhile
// it reloads the policy when its file's content changes (every cfg.PolicyPoll) and on
// cfg.Hangup, and checks the bootstrap token every cfg.BootstrapCheck. It returns nil when it
// stopped cleanly; an error when cfg does not validate (see Validate), the policy does not
// resolve at Cloudflare (DeadBootstrapStart when the bootstrap token is no longer valid), it
// cannot listen, the server fails, or the drain ran out.
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
	srv, err := New(Options{Policy: pol, Verifier: ver, Replay: store, Tokens: tokens, Once: once, Logger: logger, ClientIPHeader: cfg.ClientIPHeader, Budget: budget, TicketKey: TicketKey(l.token), Metrics: metrics})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = srv.Prepare(pctx, pol)
	if err != nil {
		// A dead bootstrap token fails the permission groups' call first: say what is wrong.
		if valid, verr := srv.CheckBootstrap(pctx); verr == nil && !valid {
			err = errors.New(DeadBootstrapStart)
		}
	}
	cancel()
	if err != nil {
		return err
	}
	metrics.policyLoaded(l.sum)
	if cfg.SweepInterval > 0 {
		go srv.RunSweeper(ctx, cfg.SweepInterval)
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
	// The metrics say which rules exist and how much of the rate budget is left: they are
	// served on a port of their own, for Prometheus, never on the callers' one.
	var ms *http.Server
	var maddr net.Addr
	metricsAddr := ""
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		maddr, metricsAddr = mln.Addr(), mln.Addr().String()
		go func() { _ = ms.Serve(mln) }()
		defer ms.Close()
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("listening", "event", "start", "addr", ln.Addr().String(), "metrics_addr", metricsAddr, "rules", len(pol.Rules()), "issuers", pol.Issuers(), "replay_store", RedactReplayStore(cfg.ReplayStore))
	if cfg.Listening != nil {
		cfg.Listening(ln.Addr())
	}
	if maddr != nil && cfg.MetricsListening != nil {
		cfg.MetricsListening(maddr)
	}
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	every := cfg.BootstrapCheck
	if every <= 0 {
		every = BootstrapCheckEvery
	}
	go srv.watchBootstrap(wctx, every)
	r := &reloader{srv: srv, file: cfg.PolicyFile, hc: oidcHTTP, logger: logger, metrics: metrics, seen: l.sum}
	var poll <-chan time.Time
	if cfg.PolicyPoll > 0 {
		t := time.NewTicker(cfg.PolicyPoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case err := <-served:
			logger.Error("the server stopped", "error", err.Error())
			return fmt.Errorf("the server stopped: %w", err)
		case <-cfg.Hangup:
			r.start(wctx, true)
		case <-poll:
			r.start(wctx, false)
		case <-ctx.Done():
			stopWatching()
			return drain(ctx, hs, srv, cfg.ShutdownTimeout, logger)
		}
	}
}

// shutdownSplit divides the shutdown timeout: exchanges in flight get grace to finish, and
// those still running then are cancelled and get cleanup to delete what they created (a mint's
// clean-up takes up to mint.CleanupBudget, and a second's margin), so that the whole stop
// takes at most timeout. Clean-up gets at most half of a short timeout.
func shutdownSplit(timeout time.Duration) (grace, cleanup time.Duration) {
	cleanup = min(mint.CleanupBudget+time.Second, timeout/2)
	return timeout - cleanup, cleanup
}

// drain stops accepting and lets the exchanges in flight finish; those still running after
// their grace are cancelled, and delete what they created. All of it takes at most timeout
// (see shutdownSplit).
func drain(ctx context.Context, hs *http.Server, srv *Server, timeout time.Duration, logger *slog.Logger) error {
	grace, cleanup := shutdownSplit(timeout)
	logger.Info("draining", "event", "stop", "timeout", timeout.String(), "grace", grace.String(), "cleanup", cleanup.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	err := hs.Shutdown(sctx)
	cancel()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		// Cut the stragglers short: each deletes what it created before it ends.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanup)
		aerr := srv.Abort(actx)
		cancel()
		logger.Error("exchanges were still in flight at the shutdown timeout; they were cancelled, and deleted what they had created", "error", err.Error(), "abort", fmt.Sprint(aerr))
		return fmt.Errorf("exchanges were still in flight %s into the shutdown timeout (%s): %w", grace, timeout, err)
	}
	logger.Info("stopped", "event", "stop")
	return nil
}

// reloader runs one reload at a time: on SIGHUP, and when a poll finds the policy file's
// content changed (a ConfigMap's update swaps a symlink: the content is what counts).
type reloader struct {
	srv     *Server
	file    string
	hc      *http.Client
	logger  *slog.Logger
	metrics *Metrics
	running atomic.Bool

	mu sync.Mutex
	// seen is the sha256 of the content last settled: in force, or refused for its own fault. A
	// poll reloads only content other than it, so a bad file is not tried again until it
	// changes.
	seen string
	// told is the sha256 of the content whose refusal was last logged and counted: a refusal
	// for a passing cause (Cloudflare or an issuer not answering) is retried at each poll, and
	// logged once.
	told string
	// read is the sha256 of the content the last poll read, when it differed from seen: content
	// is reloaded once two polls in a row read it, so that a file being written (truncated,
	// then filled) is not taken for a bad policy.
	read string
}

// start reloads in the background: a reload fetches keys and permission groups, which can take
// a while, and the caller's loop stays free for a stop meanwhile. forced (SIGHUP) reloads
// whatever the content; a poll only changed content.
func (r *reloader) start(ctx context.Context, forced bool) {
	if !r.running.CompareAndSwap(false, true) {
		if forced {
			r.logger.Warn("a reload is already under way; this SIGHUP is ignored", "event", "reload")
		}
		return
	}
	go func() {
		defer r.running.Store(false)
		r.reload(ctx, forced)
	}()
}

// reload swaps in the policy file's new version, or keeps the old one with one line saying why.
func (r *reloader) reload(ctx context.Context, forced bool) {
	b, err := os.ReadFile(r.file)
	key := ""
	if err != nil {
		err = fmt.Errorf("--policy: %v", err)
		key = "unreadable: " + err.Error()
	} else {
		key = sum(b)
	}
	r.mu.Lock()
	settled := key == r.seen || key != r.read
	r.read = key
	if key == r.seen {
		r.read = ""
	}
	r.mu.Unlock()
	if settled && !forced {
		return
	}
	passing := false
	if err == nil {
		passing, err = r.apply(ctx, b, key)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.seen, r.told = key, ""
		return
	}
	if !passing {
		r.seen = key
	}
	if key == r.told && !forced {
		return
	}
	r.told = key
	r.metrics.policyReloadError()
	attrs := []any{"event", "reload", "error", oneLine(err)}
	if !strings.HasPrefix(key, "unreadable") {
		attrs = append(attrs, "sha256", key)
	}
	if passing {
		attrs = append(attrs, "retry", "at the next poll")
	}
	r.logger.Error("refused the new policy; the old one stays", attrs...)
}

// apply checks the policy b as a start does and puts it in force; passing says that a refusal
// came from Cloudflare or an issuer not answering, not from the policy.
func (r *reloader) apply(ctx context.Context, b []byte, key string) (passing bool, err error) {
	p, err := parsePolicy(r.file, b)
	if err != nil {
		return false, err
	}
	v, err := NewVerifier(ctx, VerifierOptions{Issuers: p.Issuers(), Audience: p.Audience(), HTTPClient: r.hc})
	if err != nil {
		// The issuers' discovery: a wrong issuer URL and an issuer that is down look alike.
		return true, fmt.Errorf("--policy: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = r.srv.Prepare(pctx, p)
	cancel()
	if err != nil {
		return passingErr(err), err
	}
	r.srv.Reload(p, v)
	r.metrics.policyLoaded(key)
	r.logger.Info("reloaded the policy", "event", "reload", "rules", len(p.Rules()), "sha256", key)
	return false, nil
}

// passingErr reports whether err holds Cloudflare not answering properly, which a later try
// may not meet.
func passingErr(err error) bool {
	var ae *apiError
	return unanswered(err) || (errors.As(err, &ae) && (ae.status == http.StatusServiceUnavailable || ae.status == http.StatusTooManyRequests))
}

// oneLine is a multi-line error as one log line: its lines joined by "; ", and a heading line
// ("--policy FILE:") joined to the first of its items by a space.
func oneLine(err error) string {
	var out strings.Builder
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if out.Len() > 0 {
			if strings.HasSuffix(out.String(), ":") {
				out.WriteString(" ")
			} else {
				out.WriteString("; ")
			}
		}
		out.WriteString(line)
	}
	return out.String()
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
