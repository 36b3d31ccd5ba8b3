package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/field"
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
		if aerr.status == http.StatusServiceUnavailable {
			outcome = "unavailable"
		}
		writeErr(w, aerr)
		return
	}
	t, denial, aerr := s.mint(ctx, st, id, body, caller)
	switch {
	case denial != nil:
		outcome, rule = "denied", denial.Rule
		s.metrics.denial(string(denial.Reason))
		status := http.StatusForbidden
		if denial.Reason == trust.ReasonRequest {
			status = http.StatusBadRequest
		}
		s.audit(ctx, "denial", id, "rule", denial.Rule, "reason", string(denial.Reason), "why", denial.Msg, "ip", caller.String())
		writeErr(w, fail(status, "%s", denial.Msg))
		return
	case aerr != nil:
		outcome = statusOutcome(aerr.status)
		s.audit(ctx, "mint", id, "outcome", outcome, "error", aerr.msg, "ip", caller.String())
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

// ask parses a request with the action's own parsers: one parser, one meaning.
func ask(body map[string]string) (trust.Ask, config.Zones, string, error) {
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
	f, err := config.ParseIPFilter(strings.ReplaceAll(strings.ToLower(body["ip-filter"]), "caller", "runner"))
	errs = append(errs, err)
	a.IPFilter = f
	nonce := strings.TrimSpace(body["nonce"])
	if nonce != "" && !NoncePattern.MatchString(nonce) {
		errs = append(errs, field.Errorf("nonce", "must be 8 to 32 lower-case letters and digits"))
	}
	return a, zones, nonce, errors.Join(errs...)
}

// mint decides and mints; a denial is the policy's answer, an apiError anything else.
func (s *Server) mint(ctx context.Context, st *state, id *Identity, body map[string]string, caller netip.Addr) (*mint.Issued, *trust.Denial, *apiError) {
	a, zones, nonce, err := ask(body)
	if err != nil {
		return nil, nil, fail(http.StatusBadRequest, "%s", strings.Join(keyPhrase.Lines(err), "; "))
	}
	if nonce == "" {
		// Every name carries a nonce, so that the rule is always its fourth part.
		nonce = newNonce()
	}
	run, ok := runOf(id.Claims)
	if !ok {
		return nil, &trust.Denial{Reason: trust.ReasonClaims, Msg: "the ID token carries no numeric repository_id, run_id and run_attempt (or GitLab's project_id and pipeline_id); the broker binds every token it mints to a run"}, nil
	}
	p := st.policy
	claims := trust.Claims(id.Claims)
	rules := p.Match(id.Issuer, claims)
	if len(rules) == 0 {
		_, err := p.Decide(id.Issuer, claims, a, nil, caller)
		var d *trust.Denial
		if errors.As(err, &d) {
			return nil, d, nil
		}
		return nil, nil, fail(http.StatusForbidden, "%v", err)
	}
	k := ruleKey(rules[0])
	eng := &mint.Engine{Tokens: s.o.Tokens, Once: s.o.Once, UI: s.ui(ctx), Now: s.o.Now}
	if len(zones.Names)+len(zones.IDs) > 0 {
		zs, err := s.cache.zones(ctx, eng, zones.Names, zones.IDs, k.account)
		if err != nil {
			var fe *field.Error
			if errors.As(err, &fe) {
				return nil, nil, fail(http.StatusBadRequest, "%s", strings.Join(keyPhrase.Lines(err), "; "))
			}
			return nil, nil, cloudflareErr(err, "look the zones up")
		}
		a.Zones, a.ZonesAccount = zs, k.account
	}
	groups, clock, err := s.cache.groups(ctx, k, false)
	if err != nil {
		return nil, nil, cloudflareErr(err, "list the permission groups")
	}
	d, err := p.Decide(id.Issuer, claims, a, groups, caller)
	var den *trust.Denial
	if errors.As(err, &den) && den.Reason == trust.ReasonRequest {
		// A permission the cached list does not know may be new at Cloudflare: ask once more.
		if fresh, fclock, ferr := s.cache.groups(ctx, k, true); ferr == nil {
			groups, clock = fresh, fclock
			d, err = p.Decide(id.Issuer, claims, a, groups, caller)
		}
	}
	if errors.As(err, &den) {
		return nil, den, nil
	}
	if err != nil {
		return nil, nil, fail(http.StatusForbidden, "%v", err)
	}
	if s.o.Budget != nil {
		if wait, ok := s.o.Budget.TakeMint(); !ok {
			return nil, nil, &apiError{status: http.StatusTooManyRequests, msg: "the broker is near Cloudflare's rate limit and keeps the rest for revokes; retry after the time Retry-After gives", retryAfter: wait}
		}
	}
	now, ok := clock.Now()
	if !ok {
		now = s.o.Now().UTC()
	}
	plan := mint.Assemble(cftoken.Owner(d.Owner), d.AccountID, tokenName(run, nonce, d.Rule), d.Policies, d.CIDRs, a.Zones, a.Buckets, d.TTL, now)
	t, err := eng.Mint(ctx, plan, mint.Hooks{})
	if err != nil {
		s.o.Logger.Error("a mint failed", "event", "mint", "rule", d.Rule, "error", err.Error())
		return nil, nil, cloudflareErr(err, "mint the token")
	}
	t.Rule = d.Rule
	return t, nil, nil
}

// keyPhrase names fields as the request's keys.
var keyPhrase = mint.Phrase{Field: func(name string) string { return name }}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
