package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

// Fair shares: each rule's max_mints and max_active hold per repository (per issuer and
// repository id, GitLab's project_id), counted in the replay store so that replicas sharing it
// share the counts; and each repository may try to revoke only a few tokens that are not its own
// (strangerRevokes per strangerWindow) before its revokes by id are refused without asking
// Cloudflare. A store that is not a ShareStore (a test's own) counts nothing.

// The limit on revokes of tokens that were not minted for the caller's run, or that no longer
// exist: a job revokes its own tokens once each, so ten in five minutes is far above honest use,
// and far below what would spend the bootstrap token's rate limit.
const (
	strangerRevokes = 10
	strangerWindow  = 5 * time.Minute
)

// storeRetry is the Retry-After of a refusal because the store could not count.
const storeRetry = 5 * time.Second

func (s *Server) shareStore() ShareStore {
	ss, _ := s.o.Replay.(ShareStore)
	return ss
}

// shareKey is one repository under one rule: the issuer's hash (as in the token's name), the
// repository id and the rule.
func shareKey(issuer, repositoryID, rule string) string {
	return issuer + ":" + repositoryID + ":" + rule
}

// shareKeyOfName is the shareKey of a token the broker minted, read from its name.
func shareKeyOfName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, mint.BrokerNamePrefix)
	if !ok {
		return "", false
	}
	parts := strings.SplitN(rest, ":", 6)
	if len(parts) < 5 || parts[4] == "" {
		return "", false
	}
	return shareKey(parts[0], parts[1], parts[4]), true
}

// shareSlot is a mint counted before it is made; done confirms or cancels it.
type shareSlot struct {
	s           *Server
	key, member string
}

// reserveShare counts the mint plan allows against its rule's shares for the repository, or
// refuses it with a 429 that names the limit. A nil slot (no ShareStore) counts nothing.
func (s *Server) reserveShare(ctx context.Context, st *state, plan *Plan) (*shareSlot, error) {
	ss := s.shareStore()
	if ss == nil {
		return nil, nil
	}
	rule := findRule(st.policy, plan.Decision.Rule)
	if rule == nil {
		return nil, nil
	}
	n, window := rule.MaxMints()
	l := Shares{Mints: n, Window: window, Active: rule.MaxActive()}
	var b [12]byte
	_, _ = rand.Read(b[:])
	slot := &shareSlot{s: s, key: shareKey(plan.Run.Issuer, plan.Run.RepositoryID, rule.Name()), member: "pending:" + hex.EncodeToString(b[:])}
	now := s.o.Now()
	v, err := ss.Reserve(ctx, slot.key, slot.member, l, now, now.Add(exchangeTimeout))
	if err != nil {
		s.o.Logger.Error("the replay store could not count a mint", "event", "mint", "rule", rule.Name(), "error", err.Error())
		return nil, &apiError{status: http.StatusServiceUnavailable, msg: "the broker cannot count the repository's tokens right now, and never skips that count; try again shortly", retryAfter: storeRetry}
	}
	if v.Over == "" {
		return slot, nil
	}
	wait := max(v.Wait, time.Second)
	repo := fmt.Sprintf("repository %s (id %s)", logsafe.String(plan.Run.Repository), plan.Run.RepositoryID)
	s.metrics.denial(strings.ReplaceAll(v.Over, "_", "-"))
	var msg string
	if v.Over == "max_mints" {
		msg = fmt.Sprintf("%s has minted %d tokens in the last %s under rule %s, its max_mints; retry in %s", repo, v.Count, mint.Human(window), rule.Name(), roundUp(wait))
	} else {
		msg = fmt.Sprintf("%s holds %d live tokens under rule %s, its max_active; revoke one, or retry in %s, when the first expires", repo, v.Count, rule.Name(), roundUp(wait))
	}
	return nil, &apiError{status: http.StatusTooManyRequests, msg: msg, retryAfter: wait}
}

// done confirms the slot with the token minted, or cancels it when the mint failed: only
// successful mints count, and a token counts as live until it expires or is revoked.
func (sl *shareSlot) done(ctx context.Context, t *mint.Issued, err error) {
	if sl == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	ss := sl.s.shareStore()
	if err != nil || t == nil {
		err = ss.Cancel(ctx, sl.key, sl.member)
	} else {
		err = ss.Confirm(ctx, sl.key, sl.member, t.ID, t.ExpiresOn)
	}
	if err != nil {
		// The reservation lapses by itself (exchangeTimeout): the count errs low for a moment.
		sl.s.o.Logger.Warn("the replay store could not record a mint's outcome", "event", "mint", "error", err.Error())
	}
}

// releaseShare frees the live slot of a token the broker deleted before it expired.
func (s *Server) releaseShare(ctx context.Context, name, tokenID string) {
	if key, ok := shareKeyOfName(name); ok {
		s.releaseShareKey(ctx, key, tokenID)
	}
}

// releaseShareKey frees the max_active slot of tokenID under key (a revoke ticket carries the
// parts of the key, so a ticketed revoke frees it without the token's name).
func (s *Server) releaseShareKey(ctx context.Context, key, tokenID string) {
	ss := s.shareStore()
	if ss == nil {
		return
	}
	if err := ss.Release(context.WithoutCancel(ctx), key, tokenID); err != nil {
		// The slot frees itself when the token would have expired.
		s.o.Logger.Warn("the replay store could not free a revoked token's slot", "event", "revoke", "token_id", tokenID, "error", err.Error())
	}
}

// strangerGate refuses a revoke by id, before any Cloudflare call, when the caller's repository
// has already tried to revoke strangerRevokes tokens in the window that were not its own.
func (s *Server) strangerGate(ctx context.Context, id *Identity, run mint.BrokerRun) *apiError {
	ss := s.shareStore()
	if ss == nil {
		return nil
	}
	n, left, err := ss.Strangers(ctx, run.Issuer+":"+run.RepositoryID, 0, strangerWindow, s.o.Now())
	if err != nil {
		return &apiError{status: http.StatusServiceUnavailable, msg: "the broker cannot count the repository's revokes right now; try again shortly", retryAfter: storeRetry}
	}
	if n < strangerRevokes {
		return nil
	}
	wait := max(left, time.Second)
	s.metrics.denial("stranger-revokes")
	s.audit(ctx, "denial", id, "reason", "stranger-revokes", "why", "too many revokes of tokens not the caller's")
	return &apiError{status: http.StatusTooManyRequests, retryAfter: wait, msg: fmt.Sprintf("repository %s (id %s) has asked to revoke %d tokens in %s that were not minted for its runs or no longer exist, the broker's limit; retry in %s",
		logsafe.String(run.Repository), run.RepositoryID, n, mint.Human(strangerWindow), roundUp(wait))}
}

// countStranger counts a revoke by id of a token that was not the caller's, or was gone.
func (s *Server) countStranger(ctx context.Context, run mint.BrokerRun) {
	if ss := s.shareStore(); ss != nil {
		if _, _, err := ss.Strangers(context.WithoutCancel(ctx), run.Issuer+":"+run.RepositoryID, 1, strangerWindow, s.o.Now()); err != nil {
			s.o.Logger.Warn("the replay store could not count a revoke", "event", "revoke", "error", err.Error())
		}
	}
}

func findRule(p *trust.Policy, name string) *trust.Rule {
	for _, r := range p.Rules() {
		if r.Name() == name {
			return r
		}
	}
	return nil
}

// roundUp prints a wait as a person reads it: whole seconds under a minute, else whole minutes,
// never less than it is.
func roundUp(d time.Duration) string {
	if d <= time.Minute {
		return mint.Human(((d + time.Second - 1) / time.Second) * time.Second)
	}
	return mint.Human(((d + time.Minute - 1) / time.Minute) * time.Minute)
}
