package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

// The sweeper deletes the broker's own dead tokens, which count toward the account's 500-token
// quota until someone deletes them: expired ones (a GitLab job has no post phase; runners die),
// ones in any state but active (Cloudflare revokes leaked tokens itself, as `revoked (exposed)`),
// and abandoned ones, older than their rule's max_ttl. It knows its own tokens by their names
// (mint.BrokerNamePrefix) and never touches another token, live or not.

// Reasons a token is swept, as the metric's label and the audit line's reason.
const (
	SweptExpired   = "expired"   // Cloudflare says expired, or its expiry is past by Cloudflare's clock
	SweptRevoked   = "revoked"   // revoked, as Cloudflare does with leaked tokens
	SweptInactive  = "inactive"  // any other state but active (disabled)
	SweptAbandoned = "abandoned" // older than its rule's max_ttl
)

// abandonGrace is added to a rule's max_ttl before a live token counts as abandoned: Cloudflare
// writes issued_on in whole seconds, and its clock is read from one answer's Date.
const abandonGrace = time.Minute

// sweepLock is the replay store's lock that lets one replica sweep at a time.
const sweepLock = "sweep"

// SweepResult is what one sweep did: whether this replica held the lock, and the tokens it
// deleted (each with its reason, and Err when the delete failed).
type SweepResult struct {
	Locked bool
	Swept  []mint.Swept
}

// RunSweeper sweeps every interval until ctx ends, the first time one interval after it starts.
func (s *Server) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx, interval); err != nil && ctx.Err() == nil {
				s.o.Logger.Error("a sweep failed", "event", "sweep", "error", err.Error())
			}
		}
	}
}

// Sweep deletes the broker's dead tokens in every account (and user) the policy's rules mint in,
// if this replica takes the replay store's sweep lock. The lock lapses after most of interval,
// so that however many replicas tick, the tokens are swept about once an interval. The sweep
// stops early, and says so, when the rate budget runs low: it is the least urgent of the
// broker's calls.
func (s *Server) Sweep(ctx context.Context, interval time.Duration) (SweepResult, error) {
	ss := s.shareStore()
	if ss == nil {
		return SweepResult{}, errors.New("the replay store has no lock, so the broker does not sweep")
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	hold := interval * 9 / 10
	locked, err := ss.TryLock(ctx, sweepLock, hex.EncodeToString(b[:]), hold, s.o.Now())
	if err != nil || !locked {
		return SweepResult{}, err
	}
	// Bounded by the lock (at least 30 s, so that a short interval still gets a sweep done).
	ctx, cancel := context.WithTimeout(ctx, min(max(hold, 30*time.Second), 5*time.Minute))
	defer cancel()
	res := SweepResult{Locked: true}
	pol := s.Policy()
	var errs []error
	for _, k := range ownersOf(pol) {
		swept, err := s.sweepOwner(ctx, pol, k)
		res.Swept = append(res.Swept, swept...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// errSweepBudget ends a sweep that would spend what mints and revokes need.
var errSweepBudget = errors.New("the sweep stopped early: the Cloudflare rate budget is low, and mints and revokes come first")

func (s *Server) sweepOwner(ctx context.Context, pol *trust.Policy, k ownerKey) ([]mint.Swept, error) {
	lctx, release, ok := s.reserveCall(ctx, 1)
	if !ok {
		return nil, errSweepBudget
	}
	ts, clock, err := s.o.Tokens.List(lctx, k.owner, k.account)
	release()
	if err != nil {
		return nil, err
	}
	now, onClock := clock.Now()
	var out []mint.Swept
	var errs []error
	for _, t := range ts {
		reason := sweepReason(pol, t, now, onClock)
		if reason == "" {
			continue
		}
		dctx, release, ok := s.reserveCall(ctx, 1)
		if !ok {
			errs = append(errs, errSweepBudget)
			break
		}
		sw := mint.Swept{ID: t.ID, Name: t.Name, Status: t.Status, IssuedOn: t.IssuedOn, ExpiresOn: t.ExpiresOn, Reason: reason}
		err := s.o.Tokens.Delete(dctx, k.owner, k.account, t.ID)
		release()
		if err != nil && !errors.Is(err, cftoken.ErrNotFound) {
			sw.Err = err
			errs = append(errs, err)
			s.o.Logger.Warn("the sweeper could not delete a token", "event", "sweep", "reason", reason, "token_id", t.ID, "name", t.Name, "error", err.Error())
		} else {
			s.releaseShare(ctx, t.Name, t.ID)
			s.metrics.sweptToken(reason)
			s.audit(ctx, "sweep", nil, "outcome", "deleted", "reason", reason, "rule", mint.BrokerRule(t.Name), "token_id", t.ID, "name", t.Name,
				"status", t.Status, "issued_on", stamp(t.IssuedOn), "expires_on", stamp(t.ExpiresOn))
		}
		out = append(out, sw)
	}
	return out, errors.Join(errs...)
}

// sweepReason is why the sweeper deletes t, or "" when it leaves it. Expired and old are
// Cloudflare's word and clock (now, when onClock), as in mint.Sweep.
func sweepReason(pol *trust.Policy, t cftoken.Listed, now time.Time, onClock bool) string {
	if !strings.HasPrefix(t.Name, mint.BrokerNamePrefix) {
		return ""
	}
	switch {
	case t.Status == "expired" || (onClock && !t.ExpiresOn.IsZero() && !t.ExpiresOn.After(now)):
		return SweptExpired
	case strings.HasPrefix(t.Status, "revoked"):
		return SweptRevoked
	case t.Status != "active":
		return SweptInactive
	case onClock && !t.IssuedOn.IsZero() && now.Sub(t.IssuedOn) > abandonAfter(pol, mint.BrokerRule(t.Name)):
		return SweptAbandoned
	}
	return ""
}

// abandonAfter is how old a live token of rule may be: its max_ttl and a grace. A rule no longer
// in the policy (or a name without one) gets trust.MaxMaxTTL, the longest any rule can allow:
// no token the broker minted lives longer, so the sweeper never cuts one short.
func abandonAfter(pol *trust.Policy, rule string) time.Duration {
	if r := findRule(pol, rule); r != nil {
		return r.MaxTTL() + abandonGrace
	}
	return trust.MaxMaxTTL + abandonGrace
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (m *Metrics) sweptToken(reason string) { m.swept.inc("reason", reason) }
