package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/trust"
)

// exchangeTimeout bounds one exchange, clean-up included. It is detached from the caller's
// connection: a caller that hangs up mid-mint must not leave a half-made token behind, and the
// step's post finds a token whose answer it never read by its nonce.
const exchangeTimeout = 45 * time.Second

// exchange is POST /v1/tokens: an ID token in, a Cloudflare token out.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	start := s.o.Now()
	rule, outcome := "", "error"
	defer func() { s.metrics.exchange(rule, outcome, s.o.Now().Sub(start)) }()

	ctx, cancel := s.work()
	defer cancel()
	st := s.state.Load()
	body, aerr := readBody(w, r)
	if aerr != nil {
		outcome = "bad-request"
		writeErr(w, aerr)
		return
	}
	caller, aerr := s.caller(r)
	if aerr != nil {
		outcome = "bad-request"
		writeErr(w, aerr)
		return
	}
	id, aerr := s.identify(ctx, r, st)
	if aerr != nil {
		outcome = "unauthenticated"
		switch aerr.status {
		case http.StatusServiceUnavailable:
			outcome = "unavailable"
		case http.StatusForbidden:
			outcome = "denied"
		}
		writeErr(w, aerr)
		return
	}
	t, err := s.mint(ctx, st, id, body, caller)
	var denial *trust.Denial
	switch {
	case errors.As(err, &denial):
		outcome, rule = "denied", denial.Rule
		s.metrics.denial(string(denial.Reason))
		status := http.StatusForbidden
		if denial.Reason == trust.ReasonRequest {
			status = http.StatusBadRequest
		}
		s.audit(ctx, "denial", id, "rule", denial.Rule, "reason", string(denial.Reason), "why", denial.Audit(), "ip", caller.String())
		writeErr(w, fail(status, "%s", denial.Msg))
		return
	case err != nil:
		aerr := asAPIError(err)
		outcome, rule = statusOutcome(aerr.status), aerr.rule
		s.audit(ctx, "mint", id, "outcome", outcome, "error", aerr.msg, "detail", aerr.detail, "ip", caller.String())
		writeErr(w, aerr)
		return
	}
	rule, outcome = t.Rule, "minted"
	var perms []string
	for _, g := range t.Grants {
		perms = append(perms, g.Permission)
	}
	s.audit(ctx, "mint", id, "outcome", "minted", "rule", t.Rule, "token_id", t.ID, "name", t.Name,
		"permissions", perms, "expires_on", t.ExpiresOn.Format(time.RFC3339), "ip_filter", mint.CIDRList(t.CIDRs), "ip", caller.String())
	writeJSON(w, http.StatusCreated, t)
}

// asAPIError is err as the answer it gives: an *apiError as it is, anything else a 500.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return fail(http.StatusInternalServerError, "%v", err)
}

func statusOutcome(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad-request"
	case http.StatusForbidden:
		return "denied"
	case http.StatusTooManyRequests:
		return "rate-limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "error"
}

// readBody reads a request body: a JSON object of strings, keyed by the action's input names.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]string, *apiError) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, fail(http.StatusBadRequest, "the request body is over %d bytes, or could not be read", maxBody)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, fail(http.StatusBadRequest, "the request body must be a JSON object whose keys are the action's inputs (%s) and whose values are strings", strings.Join(requestKeys, ", "))
	}
	if dup := duplicateKeys(raw); len(dup) > 0 {
		return nil, fail(http.StatusBadRequest, "the request body names %s more than once; a key may appear once, so that whatever reads the body before the broker cannot see another value than it", strings.Join(dup, ", "))
	}
	out := map[string]string{}
	var bad []string
	for k, v := range fields {
		if !slices.Contains(requestKeys, k) {
			bad = append(bad, fmt.Sprintf("%q is not a request key (allowed: %s)", k, strings.Join(requestKeys, ", ")))
			continue
		}
		sv, ok := v.(string)
		if !ok {
			bad = append(bad, fmt.Sprintf("%q must be a string, as a workflow writes it", k))
			continue
		}
		out[k] = sv
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return nil, fail(http.StatusBadRequest, "%s", strings.Join(bad, "; "))
	}
	return out, nil
}

// duplicateKeys returns, quoted and in order, the top-level keys a JSON object names twice;
// encoding/json keeps the last value and a proxy may read the first. raw is a valid object.
func duplicateKeys(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	seen := map[string]bool{}
	var dup []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return dup
		}
		k, _ := t.(string)
		if seen[k] && !slices.Contains(dup, strconv.Quote(logsafe.Clip(k, 40))) {
			dup = append(dup, strconv.Quote(logsafe.Clip(k, 40)))
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return dup
		}
	}
	return dup
}

// ParseRequest parses a request body's fields with the action's own parsers (one parser, one
// meaning): what it asks for, its zones as written, and its nonce. `cfmint policy test` parses
// with it too.
func ParseRequest(body map[string]string) (trust.Ask, config.Zones, string, error) {
	var errs []error
	a := trust.Ask{}
	if p := strings.ToLower(strings.TrimSpace(body["preset"])); p != "" {
		a.Preset = p
	}
	for _, line := range strings.Split(body["permissions"], "\n") {
		if line = strings.TrimSpace(line); line != "" {
			a.Permissions = append(a.Permissions, line)
		}
	}
	zones, zerrs := config.ParseZones(strings.TrimSpace(body["zones"]))
	errs = append(errs, zerrs...)
	a.AllZones = zones.All
	buckets, berrs := config.ParseBuckets(strings.TrimSpace(body["r2-buckets"]))
	errs = append(errs, berrs...)
	a.Buckets = buckets
	if v := strings.TrimSpace(body["ttl"]); v != "" {
		d, err := config.ParseTTL(v)
		errs = append(errs, err)
		a.TTL = d
	}
	f, err := config.ParseIPFilter(body["ip-filter"])
	errs = append(errs, err)
	a.IPFilter = f
	nonce := strings.TrimSpace(body["nonce"])
	if nonce != "" && !NoncePattern.MatchString(nonce) {
		errs = append(errs, field.Errorf("nonce", "must be 8 to 32 lower-case letters and digits"))
	}
	return a, zones, nonce, errors.Join(errs...)
}

// mint decides and mints: the token, or a *trust.Denial (the policy's answer) or an *apiError
// (anything else).
func (s *Server) mint(ctx context.Context, st *state, id *Identity, body map[string]string, caller netip.Addr) (_ *mint.Issued, err error) {
	rule := ""
	defer func() { err = s.diagnose(ctx, rule, err) }()
	// The lookups are a mint's: they must leave the reserve, and room for the mint, untouched.
	plan, err := Decide(withPriority(ctx, ForMint), st.policy, s.cache, Request{Issuer: id.Issuer, Claims: id.Claims, Body: body, Caller: caller})
	if err != nil {
		return nil, err
	}
	d, a, nonce := plan.Decision, plan.Ask, plan.Nonce
	rule = d.Rule
	if !s.BootstrapValid() {
		return nil, deadAnswer()
	}
	// The create and the verify are held; the revoke the token will need must fit too.
	h, aerr := s.take(mintCalls, mintLater, ForMint, "mint a token")
	if aerr != nil {
		return nil, aerr
	}
	defer h.Release()
	ctx = WithHold(ctx, h)
	// After the budget: a refused mint then holds no slot of its repository's fair share.
	slot, err := s.reserveShare(ctx, st, plan) // limits.go: max_mints, max_active
	if err != nil {
		return nil, err
	}
	nonceKey := mint.BrokerRunPrefix(plan.Run, nonce)
	eng := &mint.Engine{Tokens: s.o.Tokens, Once: s.o.Once, UI: s.ui(ctx), Now: s.o.Now}
	p := mint.Assemble(d.Owner, d.AccountID, mint.BrokerName(plan.Run, nonce, d.Rule), d.Policies, d.CIDRs, a.Zones, a.Buckets, d.TTL, plan.Now(s.o.Now))
	t, err := eng.Mint(ctx, p, mint.Hooks{})
	slot.done(ctx, t, err)
	if err != nil {
		s.o.Logger.Error("a mint failed", "event", "mint", "rule", d.Rule, "error", err.Error())
		var ue *mint.UnseenError
		var de *mint.UndoError
		switch {
		case errors.As(err, &ue) || errors.As(err, &de):
			// A token may exist that nobody was handed: the caller must not retry (a second
			// token would follow), but clean up by its nonce, which must then list.
			s.rememberNonce(ctx, nonceKey, unknownRef, p.Request.ExpiresOn)
			return nil, fail(http.StatusBadGateway, "the broker's create may have minted a token it could not confirm or delete (%v); none was handed out: revoke what was minted for this nonce (DELETE /v1/tokens?nonce=%s) rather than retrying", err, nonce)
		case errors.Is(err, cftoken.ErrQuotaFull):
			return nil, &apiError{status: http.StatusServiceUnavailable, retryAfter: quotaRetry,
				msg: fmt.Sprintf("the broker cannot mint: %s reached Cloudflare's limit on API tokens (500 account-owned tokens per account, 50 user-owned per user, expired and revoked ones counted until deleted); retry later, and ask the broker's operator to delete expired and unused tokens (cfmint sweep, or the dashboard)", ownerKey{owner: d.Owner, account: d.AccountID})}
		}
		return nil, cloudflareErr(err, "mint the token")
	}
	t.Rule = d.Rule
	h.Minted()
	s.rememberNonce(ctx, nonceKey, nonceRef(t.Owner, t.AccountID, t.ID, t.Rule), t.ExpiresOn)
	if len(s.o.TicketKey) > 0 {
		t.RevokeTicket = signTicket(s.o.TicketKey, ticketFor(t, plan.Run, nonce))
	}
	return t, nil
}

// quotaRetry is the Retry-After of a full token quota: jobs' tokens expire and are revoked within
// minutes, and someone has to delete the dead ones.
const quotaRetry = 5 * time.Minute

// rememberNonce notes which token a nonce's mint made, for a revoke by that nonce. A store that
// fails costs only that revoke a list.
func (s *Server) rememberNonce(ctx context.Context, key, ref string, until time.Time) {
	if err := s.nonces.RememberNonce(context.WithoutCancel(ctx), key, ref, until); err != nil {
		s.o.Logger.Warn("could not remember a nonce's token; a revoke by that nonce will list the owner's tokens", "event", "mint", "error", err.Error())
	}
}

// maxZones bounds the zones one request may name.
const maxZones = 20

// zonesAllowed refuses, before any lookup, zones that no matching rule lists, and more than
// maxZones of them.
func zonesAllowed(rules []*trust.Rule, z config.Zones, c trust.Claims) *trust.Denial {
	if n := len(z.Names) + len(z.IDs); n > maxZones {
		return &trust.Denial{Reason: trust.ReasonRequest, Msg: fmt.Sprintf("zones: %d zones named; a request may name at most %d", n, maxZones)}
	}
	var bad []string
	for _, name := range append(slices.Clone(z.Names), z.IDs...) {
		if !slices.ContainsFunc(rules, func(r *trust.Rule) bool { return r.AllowsZone(name) }) {
			bad = append(bad, name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &trust.Denial{Reason: trust.ReasonZone, Rule: rules[0].Name(), Msg: fmt.Sprintf("repository %s (repository_id %s): no rule that matches it allows zones %s", logsafe.String(c["repository"]), logsafe.String(c["repository_id"]), strings.Join(bad, ", "))}
}

// unanswered reports whether err is Cloudflare not answering properly (a rate limit, a server
// fault, no answer), which the caller may retry, rather than a refusal of what was asked.
func unanswered(err error) bool {
	var ae *cftoken.APIError
	var te *cftoken.TransportError
	var own *apiError // the broker's own budget
	return (errors.As(err, &ae) && ae.Retryable()) || errors.As(err, &te) || errors.As(err, &own) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// keyPhrase names fields as the request's keys.
var keyPhrase = mint.Phrase{Field: func(name string) string { return name }}
