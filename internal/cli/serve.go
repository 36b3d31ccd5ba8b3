package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
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
  GET    /healthz /readyz
  GET    /metrics on --metrics-listen's port (:9464), not the API's

The policy reloads when its file's content changes (checked every --policy-poll,
which follows a ConfigMap's symlink swap) and on SIGHUP; a policy that does not
validate is refused with one log line, and the last good one stays in force.
SIGTERM stops accepting, lets exchanges in flight finish, and exits 0, all within
--shutdown-timeout. While Cloudflare no longer accepts the bootstrap token
(verified every 5 minutes, and after a refused create), exchanges and /readyz
answer 503.

Exit codes: 0 stopped cleanly, 1 failed to start or to stop, 2 bad flags or policy.
`

// serveCmd turns flags and the environment into a broker.Config, and runs it.
func serveCmd(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "serve", serveUsage)
	cfg := broker.Config{
		BootstrapToken: getenv(e, "CLOUDFLARE_BOOTSTRAP_TOKEN"),
		APIBase:        getenv(e, "CLOUDFLARE_API_BASE_URL"),
		Log:            e.Stderr,
		Hangup:         e.Hangup,
	}
	if e.HTTPClient != nil {
		cfg.Transport = e.HTTPClient.Transport
	}
	fs.StringVar(&cfg.Listen, "listen", ":8080", "the address to listen on")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", ":9464", "the address GET /metrics is served on, for Prometheus: a port of its own, never the callers' (the metrics name the rules and the rate budget left); \"\": no metrics")
	fs.StringVar(&cfg.PolicyFile, "policy", "", "the trust policy (YAML); required")
	fs.StringVar(&cfg.BootstrapTokenFile, "bootstrap-token-file", "", "a file holding the bootstrap token (default $CLOUDFLARE_BOOTSTRAP_TOKEN)")
	fs.StringVar(&cfg.ClientIPHeader, "client-ip-header", "", "the header a trusted proxy puts the caller's address in: CF-Connecting-IP behind Cloudflare, X-Forwarded-For (its last entry) behind a load balancer; empty: the connection's address")
	fs.StringVar(&cfg.ReplayStore, "replay-store", "memory", "where single use of ID tokens is recorded: memory (one replica) or redis://host:port/db")
	fs.DurationVar(&cfg.PolicyPoll, "policy-poll", 5*time.Second, "how often the policy file's content is checked for a change to reload; 0: only SIGHUP reloads")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "the longest a stop takes, clean-up included: exchanges in flight get all of it but the last 7s (and at least half of it) to finish, and those still running then are cancelled and delete what they created in the rest; the platform's grace period must be at least this")
	fs.IntVar(&cfg.RateLimit, "rate-limit", 1200, "the most Cloudflare requests per 5 minutes this replica makes itself; what is left is what Cloudflare's Ratelimit header says")
	fs.IntVar(&cfg.RateReserve, "rate-reserve", 100, "requests of those left kept for revokes: mints stop when fewer are left")
	fs.DurationVar(&cfg.SweepInterval, "sweep-interval", 10*time.Minute, "how often to delete the broker's own expired, revoked and abandoned tokens (one replica at a time); 0: never")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	err := cfg.Validate()
	if fs.NArg() > 0 {
		err = errors.Join(fmt.Errorf("unexpected argument %q", fs.Arg(0)), err)
	}
	if err != nil {
		printLines(e, err)
		return ExitUsage
	}
	if err := broker.Serve(ctx, cfg); err != nil {
		printLines(e, err)
		return ExitFail
	}
	return ExitOK
}

// printLines writes err to stderr, a line each.
func printLines(e Env, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(e.Stderr, "cfmint serve: %s\n", line)
	}
}
