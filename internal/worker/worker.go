// Package worker is the broker as a Cloudflare Worker: the broker's own verification, decision
// and minting (broker.Server), given what a Worker has instead of what `cfmint serve` has. The
// bootstrap token and the policy come from the Worker's bindings, the replay store is a Durable
// Object, the caller's address is CF-Connecting-IP, and the sweeper runs on a cron trigger.
//
// This file is plain Go, tested natively; js.go binds it to the JavaScript entry
// (deploy/cloudflare/src/index.js) when built for js/wasm.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/trust"
)

// ClientIPHeader is where Cloudflare puts the caller's address: its edge sets it on every request
// from the Internet, and a client cannot choose it.
const ClientIPHeader = "CF-Connecting-IP"

// retryPrepare is how long a failed check of the policy against Cloudflare stands before the
// next request tries again: every try costs calls from Cloudflare's rate budget.
const retryPrepare = time.Minute

// Config is what the Worker's environment gives the broker.
type Config struct {
	// BootstrapToken is the Secrets Store binding's value, or the Worker secret's.
	BootstrapToken string
	// APIBase is $CLOUDFLARE_API_BASE_URL; empty: Cloudflare's.
	APIBase string
	// Policy is the bundled trust policy's text, and PolicyName its file's name.
	Policy     []byte
	PolicyName string
	// Replay is the broker's store: the Durable Object (Store), which records the single use of
	// ID tokens and, being a broker.ShareStore, counts the fair shares and holds the sweep lock.
	Replay broker.ReplayStore
	// RateLimit and RateReserve are $RATE_LIMIT and $RATE_RESERVE, serve's --rate-limit and
	// --rate-reserve; empty: 1200 and 100.
	RateLimit, RateReserve string
	// Transport carries the calls to Cloudflare and the issuers; nil: http.DefaultTransport,
	// which on js/wasm is the runtime's fetch.
	Transport http.RoundTripper
	// Log receives the JSON log and audit lines (Workers Logs).
	Log io.Writer
	// LogLevel is debug, info, warn or error; empty: info.
	LogLevel string
}

// Worker is the broker behind a Worker's fetch and scheduled handlers.
type Worker struct {
	logger *slog.Logger
	// bad is the configuration's problems, every one: the Worker then refuses every request.
	bad    error
	policy *trust.Policy
	srv    *broker.Server
	routes http.Handler

	mu         sync.Mutex
	prepared   bool
	prepErr    error
	prepAt     time.Time
	preparing  chan struct{}
	now        func() time.Time
	rateLogged time.Time
}

// New makes the Worker that c describes. It never fails: a bad configuration is logged, and
// every request is then refused with a clear error, since a Worker cannot refuse to start.
func New(c Config) *Worker {
	var level slog.Level
	var bad []error
	if c.LogLevel != "" {
		if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
			bad = append(bad, fmt.Errorf("LOG_LEVEL: %q is not a level; use debug, info, warn or error", c.LogLevel))
		}
	}
	out := c.Log
	if out == nil {
		out = io.Discard
	}
	w := &Worker{logger: slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})), now: time.Now}
	token := strings.TrimSpace(c.BootstrapToken)
	if token == "" {
		bad = append(bad, errors.New("no bootstrap token: bind it from Secrets Store as CLOUDFLARE_BOOTSTRAP_TOKEN, or set the Worker secret CLOUDFLARE_BOOTSTRAP_TOKEN (see docs/broker.md)"))
	}
	base, err := config.ParseAPIBase(c.APIBase)
	if err != nil {
		bad = append(bad, errors.New("CLOUDFLARE_API_BASE_URL: "+err.Error()))
	}
	name := c.PolicyName
	if name == "" {
		name = "policy.yaml"
	}
	if len(c.Policy) == 0 {
		bad = append(bad, fmt.Errorf("the bundled policy %s is empty; build the Worker with deploy/cloudflare/build --policy FILE", name))
	} else if w.policy, err = trust.Parse(c.Policy); err != nil {
		bad = append(bad, fmt.Errorf("the bundled policy %s:\n%v", name, err))
		w.policy = nil
	}
	rate, err := parseRate(c.RateLimit, c.RateReserve)
	if err != nil {
		bad = append(bad, err)
	}
	if c.Replay == nil {
		bad = append(bad, errors.New("no replay store: bind the Durable Object class ReplayStore as REPLAY (see wrangler.jsonc)"))
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	var ver *broker.Verifier
	if w.policy != nil {
		ver, err = broker.NewVerifier(context.Background(), broker.VerifierOptions{Issuers: w.policy.Issuers(), Audience: w.policy.Audience(), HTTPClient: &http.Client{Transport: rt, Timeout: 15 * time.Second}})
		if err != nil {
			bad = append(bad, fmt.Errorf("the bundled policy %s: %v", name, err))
		}
	}
	if len(bad) > 0 {
		w.bad = errors.Join(bad...)
		w.logger.Error("the Worker's configuration is bad; it refuses every request until it is fixed and deployed again", "event", "start", "error", strings.ReplaceAll(w.bad.Error(), "\n", "; "))
		return w
	}
	if !config.IsCloudflareHost(base) {
		w.logger.Warn("the API base is not Cloudflare's API: the bootstrap token goes there", "api_base", base)
	}
	// The budget starts from Cloudflare's own count (its Ratelimit header) as soon as an answer
	// states it, so every isolate keeps to what the bootstrap token's user has left in all.
	budget := broker.NewBudget(rate.limit, 5*time.Minute, rate.reserve)
	cf := &http.Client{Transport: broker.Instrument(rt, nil, budget)}
	co := cftoken.Options{BaseURL: base, HTTPClient: cf, OnRateLimit: w.rateLimit}
	tokens := cftoken.New(token, co)
	co.Attempts = 1
	once := cftoken.New(token, co)
	w.srv, err = broker.New(broker.Options{Policy: w.policy, Verifier: ver, Replay: c.Replay, Tokens: tokens, Once: once, Logger: w.logger, ClientIPHeader: ClientIPHeader, Budget: budget, Now: func() time.Time { return w.now() }, TicketKey: broker.TicketKey(token)})
	if err != nil { // every option is set above
		w.bad = err
		return w
	}
	w.routes = w.srv.Routes()
	w.logger.Info("started", "event", "start", "rules", len(w.policy.Rules()), "issuers", w.policy.Issuers(), "replay_store", "durable-object")
	return w
}

// rate is the Worker's budget of Cloudflare calls.
type rate struct{ limit, reserve int }

// parseRate reads RATE_LIMIT and RATE_RESERVE, with serve's defaults and bounds.
func parseRate(limit, reserve string) (rate, error) {
	r := rate{limit: 1200, reserve: 100}
	var bad []error
	for _, v := range []struct {
		name, text string
		to         *int
	}{{"RATE_LIMIT", limit, &r.limit}, {"RATE_RESERVE", reserve, &r.reserve}} {
		if v.text == "" {
			continue
		}
		n, err := strconv.Atoi(v.text)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %q is not a whole number", v.name, v.text))
			continue
		}
		*v.to = n
	}
	if len(bad) == 0 && (r.limit < 10 || r.reserve < 0 || r.reserve >= r.limit) {
		bad = append(bad, fmt.Errorf("RATE_LIMIT %d and RATE_RESERVE %d: the limit must be at least 10 and the reserve between 0 and the limit", r.limit, r.reserve))
	}
	return r, errors.Join(bad...)
}

// rateLimit logs Cloudflare's count when little is left, at most once a minute, for the
// operator: the budget (broker.Instrument) is what keeps the isolate within it.
func (w *Worker) rateLimit(rl cftoken.RateLimit) {
	if rl.Quota == 0 || rl.Remaining*10 > rl.Quota {
		return
	}
	w.mu.Lock()
	now := w.now()
	due := now.Sub(w.rateLogged) >= time.Minute
	if due {
		w.rateLogged = now
	}
	w.mu.Unlock()
	if due {
		w.logger.Warn("Cloudflare's rate budget for the bootstrap token is nearly spent", "event", "rate_limit", "remaining", rl.Remaining, "quota", rl.Quota, "reset", rl.Reset.String())
	}
}

// ServeHTTP serves the broker's HTTP contract, the same as `cfmint serve`'s: GET /healthz, GET
// /readyz, POST /v1/tokens, DELETE /v1/tokens/{id} and DELETE /v1/tokens?nonce=. There is no
// /metrics: counts are in the audit lines (Workers Logs).
func (w *Worker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if w.bad != nil {
		refuse(rw, "the broker's configuration is bad, so it refuses every request; its operator finds why in the Worker's logs (event start)")
		return
	}
	if err := w.prepare(r.Context()); err != nil {
		refuse(rw, "the broker's policy did not check out against Cloudflare, so it refuses every request; its operator finds why in the Worker's logs (event prepare)")
		return
	}
	w.routes.ServeHTTP(rw, r)
}

func refuse(rw http.ResponseWriter, msg string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Retry-After", "60")
	rw.WriteHeader(http.StatusServiceUnavailable)
	_, _ = fmt.Fprintf(rw, "{\"error\":%q}\n", msg)
}

// prepare checks the policy against Cloudflare's permission groups once per isolate, as serve
// does before it listens. A failure stands for retryPrepare, then the next request tries again.
func (w *Worker) prepare(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.prepared {
			w.mu.Unlock()
			return nil
		}
		if w.prepErr != nil && w.now().Sub(w.prepAt) < retryPrepare {
			err := w.prepErr
			w.mu.Unlock()
			return err
		}
		if ch := w.preparing; ch != nil {
			w.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ch := make(chan struct{})
		w.preparing = ch
		w.mu.Unlock()

		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := w.srv.Prepare(pctx, w.policy)
		cancel()
		w.mu.Lock()
		w.preparing = nil
		w.prepared, w.prepErr, w.prepAt = err == nil, err, w.now()
		w.mu.Unlock()
		close(ch)
		if err != nil {
			w.logger.Error("the policy does not check out against Cloudflare; every request is refused until it does", "event", "prepare", "unchecked", broker.Unchecked(err), "error", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return err
	}
}

// sweepHold is how long one sweep holds the store's sweep lock: a sweep that overlaps another (a
// cron retry, a second trigger) finds it held and leaves the tokens to the one running. It is
// shorter than any sensible cron interval, so that every trigger from five minutes apart sweeps.
const sweepHold = 5 * time.Minute

// Sweep is the cron trigger's work: broker.Server.Sweep, which deletes the broker's own dead
// tokens (expired, revoked, disabled, or older than their rule's max_ttl) in every account the
// policy mints in, under the store's sweep lock, and stops early when the rate budget runs low.
func (w *Worker) Sweep(ctx context.Context) error {
	if w.bad != nil {
		return errors.New("the broker's configuration is bad; nothing was swept (see the start event)")
	}
	res, err := w.srv.Sweep(ctx, sweepHold*10/9)
	deleted := 0
	for _, t := range res.Swept {
		if t.Err == nil {
			deleted++
		}
	}
	switch {
	case err != nil:
		w.logger.Error("the sweep failed", "event", "sweep", "deleted", deleted, "error", strings.ReplaceAll(err.Error(), "\n", "; "))
	case !res.Locked:
		w.logger.Info("another sweep holds the lock; this one left the tokens to it", "event", "sweep", "locked", false)
	default:
		w.logger.Info("swept", "event", "sweep", "deleted", deleted)
	}
	return err
}
