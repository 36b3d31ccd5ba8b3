package broker

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

// revoke is DELETE /v1/tokens/{id}: the token goes if it was minted for the caller's run. The
// broker keeps no record: the token's name at Cloudflare says whom it was minted for.
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
	for _, k := range keys {
		t, err := s.o.Tokens.Get(ctx, k.owner, k.account, tid)
		if errors.Is(err, cftoken.ErrNotFound) {
			continue
		}
		if err != nil {
			aerr := cloudflareErr(err, "read the token")
			outcome = statusOutcome(aerr.status)
			writeErr(w, aerr)
			return
		}
		if !mintedFor(t.Name, run) {
			outcome = "denied"
			s.metrics.denial("not-yours")
			s.audit(ctx, "revoke", id, "outcome", "denied", "token_id", tid, "name", t.Name)
			writeErr(w, fail(http.StatusForbidden, "token %s was not minted for this run (repository_id %s, run_id %s, run_attempt %s); only the run it was minted for may revoke it", tid, run.RepositoryID, run.RunID, run.Attempt))
			return
		}
		rule = mint.BrokerRule(t.Name)
		if err := s.o.Tokens.Delete(ctx, k.owner, k.account, tid); err != nil && !errors.Is(err, cftoken.ErrNotFound) {
			aerr := cloudflareErr(err, "delete the token")
			outcome = statusOutcome(aerr.status)
			writeErr(w, aerr)
			return
		}
		outcome = "revoked"
		s.audit(ctx, "revoke", id, "outcome", "revoked", "rule", rule, "token_id", tid, "name", t.Name)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// Gone already (expired and deleted, or revoked before): the goal is met.
	outcome = "gone"
	s.audit(ctx, "revoke", id, "outcome", "gone", "token_id", tid)
	w.WriteHeader(http.StatusNoContent)
}

// revokeNonce is DELETE /v1/tokens?nonce=N: every token minted for the caller's run with that
// nonce goes. A step's post asks for it when its main never learned the token's id.
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
	prefix := mint.BrokerRunPrefix(run, nonce)
	n := 0
	for _, k := range keys {
		ts, _, err := s.o.Tokens.List(ctx, k.owner, k.account)
		if err != nil {
			aerr := cloudflareErr(err, "list tokens")
			outcome = statusOutcome(aerr.status)
			writeErr(w, aerr)
			return
		}
		for _, t := range ts {
			if !strings.HasPrefix(t.Name, prefix) {
				continue
			}
			if err := s.o.Tokens.Delete(ctx, k.owner, k.account, t.ID); err != nil && !errors.Is(err, cftoken.ErrNotFound) {
				aerr := cloudflareErr(err, "delete the token")
				outcome = statusOutcome(aerr.status)
				writeErr(w, aerr)
				return
			}
			n++
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
