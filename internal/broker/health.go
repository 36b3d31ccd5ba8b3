package broker

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/mint"
)

// BootstrapCheckEvery is how often a broker asks Cloudflare whether its bootstrap token still
// works, when Config.BootstrapCheck does not say.
const BootstrapCheckEvery = 5 * time.Minute

// bootstrapRecheckGap bounds the verifies that refused creates may trigger: a storm of them
// asks Cloudflare once per gap, and the answer stands for the others.
const bootstrapRecheckGap = 30 * time.Second

// deadBootstrapAnswer is what a caller is told while the bootstrap token is dead: nothing the
// caller can change, and no retry of theirs helps until the operator acts.
const deadBootstrapAnswer = "the broker's bootstrap token is no longer valid (Cloudflare no longer accepts it: it expired, or was revoked or deleted); the broker's operator must replace it and restart the broker"

// DeadBootstrapStart is the sentence a broker that cannot start with its bootstrap token ends on.
const DeadBootstrapStart = "the bootstrap token is no longer valid: Cloudflare's verify does not know it (it expired, was revoked, Cloudflare revokes tokens it finds in public code, or was deleted), or the secret holds the wrong value; make a new one and put it in $CLOUDFLARE_BOOTSTRAP_TOKEN or the --bootstrap-token-file"

// bootstrapHealth is what the broker last learned of its bootstrap token.
type bootstrapHealth struct {
	dead   atomic.Bool
	flight singleflight.Group
	mu     sync.Mutex
	asked  time.Time // when Cloudflare was last asked
}

// errNoBudget is a verify skipped because the rate budget is down to its reserve.
var errNoBudget = errors.New("the rate budget is down to its reserve, which is kept for revokes")

// reserveCall reserves Cloudflare calls of the rate budget for a call the broker makes of its own
// accord (the bootstrap token's verify, the sweeper's list and deletes): the least urgent use,
// which must leave a mint's room (its calls and its later revoke) above the reserve. The context
// carries the hold, which the call spends; release frees what was not spent.
func (s *Server) reserveCall(ctx context.Context, n int) (_ context.Context, release func(), ok bool) {
	if s.o.Budget == nil {
		return ctx, func() {}, true
	}
	h, _, ok := s.o.Budget.Take(n, mintCalls+mintLater, ForMint)
	if !ok {
		return ctx, func() {}, false
	}
	return WithHold(ctx, h), h.Release, true
}

// BootstrapValid reports whether Cloudflare accepted the bootstrap token when last asked (or
// has not refused it yet).
func (s *Server) BootstrapValid() bool { return !s.boot.dead.Load() }

// CheckBootstrap asks Cloudflare's verify endpoints whether the bootstrap token still works,
// records the answer (the cfmint_bootstrap_token_valid gauge, /readyz, the answer to callers)
// and returns it. The token is dead only when Cloudflare does not know it: its verify answers
// 1000, and so does the other owner kind's verify (a live token of the other kind answers 1000
// to the first), as the action tells it (mint.DeadBootstrap). A verify that gets no proper
// answer (an outage, a rate limit, no budget left) changes nothing and returns its error.
// Checks that overlap ask Cloudflare once.
func (s *Server) CheckBootstrap(ctx context.Context) (valid bool, err error) {
	v, err, _ := s.boot.flight.Do("verify", func() (any, error) {
		// Two verifies at most: the first rule's owner kind, and the other's when it answers 1000.
		ctx, release, ok := s.reserveCall(ctx, 2)
		if !ok {
			return nil, errNoBudget
		}
		defer release()
		s.boot.mu.Lock()
		s.boot.asked = s.o.Now()
		s.boot.mu.Unlock()
		dead, err := s.verifyBootstrap(ctx)
		if err != nil {
			return nil, err
		}
		s.setBootstrap(!dead)
		return !dead, nil
	})
	if err != nil {
		return s.BootstrapValid(), err
	}
	return v.(bool), nil
}

// verifyBootstrap asks the verify of the first rule's owner kind and, only when that answers
// 1000, the other kind's (mint.Engine.BootstrapDead), each once.
func (s *Server) verifyBootstrap(ctx context.Context) (dead bool, err error) {
	owners := ownersOf(s.Policy())
	if len(owners) == 0 {
		return false, errors.New("the policy has no rules to verify the bootstrap token for")
	}
	k := owners[0]
	return (&mint.Engine{Tokens: s.o.Once}).BootstrapDead(ctx, k.owner, k.account)
}

// setBootstrap records the token's state, with one log line when it changes.
func (s *Server) setBootstrap(valid bool) {
	s.metrics.bootstrapValid(valid)
	if was := !s.boot.dead.Swap(!valid); was == valid {
		return
	}
	if valid {
		s.o.Logger.Info("Cloudflare accepts the bootstrap token again", "event", "bootstrap")
		return
	}
	s.o.Logger.Error(DeadBootstrapStart+"; until it is replaced, every exchange is refused with 503 and /readyz answers 503", "event", "bootstrap")
}

// watchBootstrap checks the bootstrap token every interval until ctx ends.
func (s *Server) watchBootstrap(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if _, err := s.CheckBootstrap(cctx); err != nil && ctx.Err() == nil {
				s.o.Logger.Warn("could not check the bootstrap token", "event", "bootstrap", "error", err.Error())
			}
			cancel()
		}
	}
}

// refusesBootstrap reports whether err is a refusal that may mean the bootstrap token itself is
// dead: a 401 or 403, or Cloudflare's 1000 ("Invalid API Token") or 9109 ("Invalid access
// token"). Only the verify tells (see CheckBootstrap).
func refusesBootstrap(err error) bool {
	var ae *cftoken.APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden || ae.Has(1000) || ae.Has(9109))
}

// deadAnswer is the answer to a caller while the bootstrap token is dead.
func deadAnswer() *apiError {
	return &apiError{status: http.StatusServiceUnavailable, msg: deadBootstrapAnswer, retryAfter: time.Minute}
}

// diagnose turns a failed exchange's error into its answer: after a refusal that may mean the
// bootstrap token is dead, the token's verify is asked (at most once per bootstrapRecheckGap),
// and a dead token answers 503 with what to do. rule is the rule that matched, for the metrics.
func (s *Server) diagnose(ctx context.Context, rule string, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	if ae.rule == "" {
		ae.rule = rule
	}
	if ae.status != http.StatusInternalServerError || !refusesBootstrap(ae.cause) {
		return err
	}
	s.boot.mu.Lock()
	recent := s.o.Now().Sub(s.boot.asked) < bootstrapRecheckGap
	s.boot.mu.Unlock()
	if !recent {
		_, _ = s.CheckBootstrap(ctx)
	}
	if s.BootstrapValid() {
		return err
	}
	d := deadAnswer()
	d.rule = ae.rule
	return d
}
