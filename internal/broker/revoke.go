package broker

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

// revoke is DELETE /v1/tokens/{id}: the token goes if it was minted for the caller's run. The
// broker keeps no record: the revoke ticket the mint answered with, or else the token's name at
// Cloudflare, says whom it was minted for. With a ticket the revoke is one call (DELETE); without
// one, a GET per owner the caller's rules name, then the DELETE.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	rule, outcome := "", "error"
	defer func() { s.metrics.revoke(rule, outcome) }()
	ctx, cancel := s.work()
	defer cancel()
	tid := r.PathValue("id")
	if !cftoken.ValidID(tid) {
		outcome = "bad-request"
		writeErr(w, fail(http.StatusBadRequest, "%q is not a token id (32 lower-case hex characters)", logsafe.Clip(tid, 40)))
		return
	}
	id, run, keys, aerr := s.revoker(ctx, r)
	if aerr != nil {
		outcome = statusOutcome(aerr.status)
		writeErr(w, aerr)
		return
	}
	answer := func(aerr *apiError) {
		outcome = statusOutcome(aerr.status)
		writeErr(w, aerr)
	}
	if raw := strings.TrimSpace(r.Header.Get(TicketHeader)); raw != "" {
		tk, ok := openTicket(s.o.TicketKey, raw)
		switch {
		case ok && tk.binds(tid, run, s.o.Now()):
			rule = tk.Rule
			if _, aerr := s.deleteHeld(ctx, ownerKey{owner: tk.Owner, account: tk.Account}, tid); aerr != nil {
				answer(aerr)
				return
			}
			s.releaseShareKey(ctx, shareKey(tk.Issuer, tk.Repo, tk.Rule), tid) // limits.go
			outcome = "revoked"
			s.audit(ctx, "revoke", id, "outcome", "revoked", "rule", rule, "token_id", tid, "by", "ticket")
			w.WriteHeader(http.StatusNoContent)
			return
		case ok && tk.ID == tid && s.o.Now().Unix() >= tk.Expires:
			// The token has expired: it may still be listed (and count toward the quota), so
			// the name check below deletes it.
		case ok:
			// A ticket this broker signed, for another token or another run: a caller showing
			// it knows it is not theirs.
			outcome = "denied"
			s.metrics.denial("not-yours")
			s.audit(ctx, "revoke", id, "outcome", "denied", "token_id", tid, "why", "the revoke ticket is for another token or run")
			answer(fail(http.StatusForbidden, "the revoke ticket is for another token or another run than token %s of this run (repository_id %s, run_id %s, run_attempt %s); send the ticket the mint answered with, or none", tid, run.RepositoryID, run.RunID, run.Attempt))
			return
		default:
			// Not signed by this broker's key (altered, or signed before the bootstrap token was
			// replaced): the name check decides, as without a ticket.
			s.audit(ctx, "revoke", id, "outcome", "ticket-refused", "token_id", tid, "why", "the revoke ticket's signature does not verify; checking the token's name instead")
		}
	}
	// Without a ticket: a repository past its count of revokes of others' tokens is refused
	// before any Cloudflare call; then a GET per owner before anything is known, then the DELETE.
	if aerr := s.strangerGate(ctx, id, run); aerr != nil { // limits.go
		answer(aerr)
		return
	}
	h, aerr := s.take(len(keys), 1, ForUnproven, "check whom the token was minted for")
	if aerr != nil {
		answer(aerr)
		return
	}
	defer h.Release()
	hctx := WithHold(ctx, h)
	for _, k := range keys {
		t, err := s.o.Tokens.Get(hctx, k.owner, k.account, tid)
		if errors.Is(err, cftoken.ErrNotFound) {
			continue
		}
		if err != nil {
			answer(cloudflareErr(err, "read the token"))
			return
		}
		if !mintedFor(t.Name, run) {
			outcome = "denied"
			s.countStranger(ctx, run)
			s.metrics.denial("not-yours")
			s.audit(ctx, "revoke", id, "outcome", "denied", "token_id", tid, "name", t.Name)
			writeErr(w, fail(http.StatusForbidden, "token %s was not minted for this run (repository_id %s, run_id %s, run_attempt %s); only the run it was minted for may revoke it", tid, run.RepositoryID, run.RunID, run.Attempt))
			return
		}
		rule = mint.BrokerRule(t.Name)
		h.Release()
		if _, aerr := s.deleteHeld(ctx, k, tid); aerr != nil {
			answer(aerr)
			return
		}
		outcome = "revoked"
		s.releaseShare(ctx, t.Name, tid)
		s.audit(ctx, "revoke", id, "outcome", "revoked", "rule", rule, "token_id", tid, "name", t.Name)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// Gone already (expired and deleted, or revoked before): the goal is met.
	outcome = "gone"
	s.countStranger(ctx, run)
	s.audit(ctx, "revoke", id, "outcome", "gone", "token_id", tid)
	w.WriteHeader(http.StatusNoContent)
}

// deleteHeld deletes a token known to be the caller's, its call reserved at ForRevoke: the
// reserve is for this. A token already gone is no error: deleted says whether this call deleted it.
func (s *Server) deleteHeld(ctx context.Context, k ownerKey, tid string) (deleted bool, _ *apiError) {
	h, aerr := s.take(1, 0, ForRevoke, "delete the token")
	if aerr != nil {
		return false, aerr
	}
	defer h.Release()
	err := s.o.Tokens.Delete(WithHold(ctx, h), k.owner, k.account, tid)
	if err != nil && !errors.Is(err, cftoken.ErrNotFound) {
		return false, cloudflareErr(err, "delete the token")
	}
	if s.o.Budget != nil {
		s.o.Budget.Paid()
	}
	return err == nil, nil
}

// revokeNonce is DELETE /v1/tokens?nonce=N: every token minted for the caller's run with that
// nonce goes. A step's post asks for it when its main never learned the token's id. The broker
// remembers which tokens each nonce's mints made (NonceStore), and deletes those by id; it lists
// the owners' tokens only when it does not know, or a mint of the nonce lost its create's answer.
func (s *Server) revokeNonce(w http.ResponseWriter, r *http.Request) {
	rule, outcome := "", "error"
	defer func() { s.metrics.revoke(rule, outcome) }()
	ctx, cancel := s.work()
	defer cancel()
	nonce := r.URL.Query().Get("nonce")
	if !NoncePattern.MatchString(nonce) {
		outcome = "bad-request"
		writeErr(w, fail(http.StatusBadRequest, "query parameter nonce: give the step's nonce, 8 to 32 lower-case letters and digits"))
		return
	}
	id, run, keys, aerr := s.revoker(ctx, r)
	if aerr != nil {
		outcome = statusOutcome(aerr.status)
		writeErr(w, aerr)
		return
	}
	answer := func(aerr *apiError) {
		outcome = statusOutcome(aerr.status)
		writeErr(w, aerr)
	}
	prefix := mint.BrokerRunPrefix(run, nonce)
	refs, err := s.nonces.NonceRefs(ctx, prefix)
	if err != nil {
		s.o.Logger.Warn("could not read a nonce's tokens; listing instead", "event", "revoke", "error", err.Error())
		refs = nil
	}
	n := 0
	if len(refs) > 0 && !slices.Contains(refs, unknownRef) {
		for _, ref := range refs {
			k, tid, refRule, ok := parseNonceRef(ref)
			if !ok {
				continue
			}
			deleted, aerr := s.deleteHeld(ctx, k, tid)
			if aerr != nil {
				answer(aerr)
				return
			}
			if !deleted {
				continue // revoked already, by its id
			}
			n++
			rule = refRule
			// The nonce's tokens are the caller's run's: its repository's slot under the rule.
			s.releaseShareKey(ctx, shareKey(run.Issuer, run.RepositoryID, refRule), tid) // limits.go
			s.audit(ctx, "revoke", id, "outcome", "revoked", "rule", rule, "token_id", tid, "nonce", nonce, "by", "nonce")
		}
		outcome = "revoked"
		if n == 0 {
			outcome = "gone"
		}
		writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
		return
	}
	h, aerr := s.take(len(keys), 0, ForUnproven, "list the tokens minted for the nonce")
	if aerr != nil {
		answer(aerr)
		return
	}
	defer h.Release()
	hctx := WithHold(ctx, h)
	for _, k := range keys {
		ts, _, err := s.o.Tokens.List(hctx, k.owner, k.account)
		if err != nil {
			answer(cloudflareErr(err, "list tokens"))
			return
		}
		for _, t := range ts {
			if !strings.HasPrefix(t.Name, prefix) {
				continue
			}
			if _, aerr := s.deleteHeld(ctx, k, t.ID); aerr != nil {
				answer(aerr)
				return
			}
			n++
			s.releaseShare(ctx, t.Name, t.ID)
			rule = mint.BrokerRule(t.Name)
			s.audit(ctx, "revoke", id, "outcome", "revoked", "rule", rule, "token_id", t.ID, "name", t.Name, "nonce", nonce)
		}
	}
	outcome = "revoked"
	if n == 0 {
		outcome = "gone"
	}
	writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
}

// revoker authenticates a revoke: a fresh ID token whose claims match at least one rule, whose
// owners (accounts) are where the token can be.
func (s *Server) revoker(ctx context.Context, r *http.Request) (*Identity, mint.BrokerRun, []ownerKey, *apiError) {
	st := s.state.Load()
	id, aerr := s.identify(ctx, r, st)
	if aerr != nil {
		return nil, mint.BrokerRun{}, nil, aerr
	}
	run, ok := runOf(id.Issuer, id.Claims)
	if !ok {
		s.audit(ctx, "denial", id, "reason", "claims", "why", "no run to bind the revoke to", "path", r.URL.Path)
		return nil, mint.BrokerRun{}, nil, fail(http.StatusForbidden, "the ID token carries no numeric repository_id, run_id and run_attempt; the broker revokes only tokens of the caller's run")
	}
	rules := st.policy.Match(id.Issuer, trust.Claims(id.Claims))
	if len(rules) == 0 {
		_, err := st.policy.Decide(id.Issuer, trust.Claims(id.Claims), trust.Ask{}, nil, netip.Addr{})
		var d *trust.Denial
		if errors.As(err, &d) {
			s.metrics.denial(string(d.Reason))
			s.audit(ctx, "denial", id, "reason", string(d.Reason), "why", d.Audit(), "path", r.URL.Path)
			return nil, mint.BrokerRun{}, nil, fail(http.StatusForbidden, "%s", d.Msg)
		}
		return nil, mint.BrokerRun{}, nil, fail(http.StatusForbidden, "no rule of the broker's policy matches this ID token")
	}
	var keys []ownerKey
	for _, ru := range rules {
		if k := ruleKey(ru); !containsKey(keys, k) {
			keys = append(keys, k)
		}
	}
	return id, run, keys, nil
}

func containsKey(keys []ownerKey, k ownerKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}
