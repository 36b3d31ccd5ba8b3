package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

const serveUsage = `Usage: cfmint serve --policy FILE [flags]

Runs the keyless broker: it holds the bootstrap token and a trust policy, verifies
a CI job's OIDC ID token, and mints only what the matching rule allows, pinned to
the caller's address, for that run. The bootstrap token comes from
--bootstrap-token-file or $CLOUDFLARE_BOOTSTRAP_TOKEN; $CLOUDFLARE_API_BASE_URL
points it at another API host.

  POST   /v1/tokens           exchange an ID token for a Cloudflare token
  DELETE /v1/tokens/{id}      revoke a token minted for the caller's run
  DELETE /v1/tokens?nonce=N   revoke what was minted for the caller's run and nonce
  GET    /healthz /readyz /metrics

SIGHUP reloads the policy (a policy that does not validate is refused and the old
one stays); SIGTERM stops accepting, lets exchanges in flight finish, and exits 0.

Exit codes: 0 stopped cleanly, 1 failed to start or to stop, 2 bad flags or policy.
`

func serveCmd(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "serve", serveUsage)
	listen := fs.String("listen", ":8080", "the address to listen on")
	policyFile := fs.String("policy", "", "the trust policy (YAML); required")
	tokenFile := fs.String("bootstrap-token-file", "", "a file holding the bootstrap token (default $CLOUDFLARE_BOOTSTRAP_TOKEN)")
	ipHeader := fs.String("client-ip-header", "", "the header a trusted proxy puts the caller's address in: CF-Connecting-IP behind Cloudflare, X-Forwarded-For (its last entry) behind a load balancer; empty: the connection's address")
	replay := fs.String("replay-store", "memory", "where single use of ID tokens is recorded: memory (one replica) or redis://host:port/db")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long SIGTERM waits for exchanges in flight")
	rateLimit := fs.Int("rate-limit", 1200, "Cloudflare requests the bootstrap token may make per 5 minutes (shared with its other users)")
	rateReserve := fs.Int("rate-reserve", 100, "requests kept for revokes and clean-ups: mints stop when fewer are left")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(e.Stderr, "cfmint serve: --log-level: %q is not a level; use debug, info, warn or error\n", *logLevel)
		return ExitUsage
	}
	logger := slog.New(slog.NewJSONHandler(e.Stderr, &slog.HandlerOptions{Level: lvl}))

	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *policyFile == "" {
		bad = append(bad, "--policy: is empty; name the trust policy file (see docs/broker.md)")
	}
	if *shutdown <= 0 || *shutdown > 5*time.Minute {
		bad = append(bad, fmt.Sprintf("--shutdown-timeout: %s is outside 1s to 5m", *shutdown))
	}
	if *rateLimit < 10 || *rateReserve < 0 || *rateReserve >= *rateLimit {
		bad = append(bad, fmt.Sprintf("--rate-limit %d and --rate-reserve %d: the limit must be at least 10 and the reserve between 0 and the limit", *rateLimit, *rateReserve))
	}
	token := strings.TrimSpace(getenv(e, "CLOUDFLARE_BOOTSTRAP_TOKEN"))
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			bad = append(bad, fmt.Sprintf("--bootstrap-token-file: %v", err))
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" && *tokenFile == "" {
		bad = append(bad, "no bootstrap token: set $CLOUDFLARE_BOOTSTRAP_TOKEN or --bootstrap-token-file")
	}
	base, err := config.ParseAPIBase(getenv(e, "CLOUDFLARE_API_BASE_URL"))
	if err != nil {
		bad = append(bad, "$CLOUDFLARE_API_BASE_URL: "+err.Error())
	}
	var pol *trust.Policy
	if *policyFile != "" {
		pol, err = loadPolicy(*policyFile)
		if err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintf(e.Stderr, "cfmint serve: %s\n", b)
		}
		return ExitUsage
	}
	if !config.IsCloudflareHost(base) {
		logger.Warn("the API base is not Cloudflare's API: the bootstrap token goes there", "api_base", base)
	}

	budget := broker.NewBudget(*rateLimit, 5*time.Minute, *rateReserve)
	metrics := broker.NewMetrics(budget)
	cfHTTP := &http.Client{Transport: broker.Instrument(pooled(e.HTTPClient.Transport), metrics, budget)}
	tokens := cftoken.New(token, cftoken.Options{BaseURL: base, HTTPClient: cfHTTP})
	once := cftoken.New(token, cftoken.Options{BaseURL: base, HTTPClient: cfHTTP, Attempts: 1})
	// ID-token issuers get a client of their own: their calls are not Cloudflare's budget.
	oidcHTTP := &http.Client{Transport: e.HTTPClient.Transport, Timeout: 15 * time.Second}
	store, closer, err := broker.OpenReplayStore(*replay, broker.ReplayStoreOptions{Logger: logger})
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint serve: %v\n", err)
		return ExitUsage
	}
	defer closer.Close()
	ver, err := broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: pol.Issuers(), Audience: pol.Audience(), HTTPClient: oidcHTTP})
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint serve: --policy: %v\n", err)
		return ExitUsage
	}
	srv, err := broker.New(broker.Options{Policy: pol, Verifier: ver, Replay: store, Tokens: tokens, Once: once, Logger: logger, ClientIPHeader: *ipHeader, Budget: budget, Metrics: metrics})
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint serve: %v\n", err)
		return ExitFail
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = srv.Prepare(pctx, pol)
	cancel()
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(e.Stderr, "cfmint serve: %s\n", line)
		}
		return ExitFail
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint serve: --listen: %v\n", err)
		return ExitFail
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
	var reloading atomic.Bool
	go func() { served <- hs.Serve(ln) }()
	logger.Info("listening", "event", "start", "addr", ln.Addr().String(), "rules", len(pol.Rules()), "issuers", pol.Issuers(), "replay_store", broker.RedactReplayStore(*replay))

	for {
		select {
		case err := <-served:
			logger.Error("the server stopped", "error", err.Error())
			return ExitFail
		case <-e.Hangup:
			// A reload fetches keys and permission groups, which can take a while: the loop
			// stays free for SIGTERM meanwhile, and one reload runs at a time.
			if reloading.CompareAndSwap(false, true) {
				go func() {
					defer reloading.Store(false)
					reload(ctx, srv, *policyFile, oidcHTTP, logger)
				}()
			} else {
				logger.Warn("a reload is already under way; this SIGHUP is ignored", "event", "reload")
			}
		case <-ctx.Done():
			logger.Info("draining", "event", "stop", "timeout", shutdown.String())
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *shutdown)
			err := hs.Shutdown(sctx)
			cancel()
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				// Cut the stragglers short: each deletes what it created before it ends.
				actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mint.CleanupBudget+time.Second)
				aerr := srv.Abort(actx)
				cancel()
				logger.Error("exchanges were still in flight at the shutdown timeout; they were cancelled, and deleted what they had created", "error", err.Error(), "abort", fmt.Sprint(aerr))
				return ExitFail
			}
			logger.Info("stopped", "event", "stop")
			return ExitOK
		}
	}
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

func loadPolicy(file string) (*trust.Policy, error) {
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

// reload swaps in the policy file's new version, or keeps the old one with one line saying why.
func reload(ctx context.Context, srv *broker.Server, file string, hc *http.Client, logger *slog.Logger) {
	p, err := loadPolicy(file)
	if err == nil {
		var v *broker.Verifier
		v, err = broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: p.Issuers(), Audience: p.Audience(), HTTPClient: hc})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			err = srv.Prepare(pctx, p)
			cancel()
			if err == nil {
				srv.Reload(p, v)
				logger.Info("reloaded the policy", "event", "reload", "rules", len(p.Rules()))
				return
			}
		}
	}
	logger.Error("refused the new policy; the old one stays", "event", "reload", "error", strings.ReplaceAll(err.Error(), "\n", "; "))
}
