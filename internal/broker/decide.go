package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/brokerclient"
	"github.com/cfmint/cfmint/internal/cfgroups"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/policy"
	"github.com/cfmint/cfmint/internal/trust"
)

// Request is one exchange's question: whom the ID token names (its issuer and claims), what it
// asks for (a body keyed by the action's inputs) and the address it comes from.
type Request struct {
	Issuer string
	Claims map[string]string
	Body   map[string]string
	Caller netip.Addr
}

// Plan is what Decide allows: the rule's decision and the request as parsed, its zones looked up.
type Plan struct {
	Decision *trust.Decision
	Ask      trust.Ask
	// Nonce is the request's nonce, or a fresh one when it named none: every name carries one.
	Nonce string
	Run   mint.BrokerRun
	// clock is Cloudflare's clock as the owner's group list was answered with.
	clock cftoken.ServerClock
}

// Now is Cloudflare's time as the permission-group answer the plan was decided with gave it,
// or local's when that answer carried none.
func (p *Plan) Now(local func() time.Time) time.Time {
	if now, ok := p.clock.Now(); ok {
		return now
	}
	return local().UTC()
}

// Lookup is where a decision finds permission groups and zones: Cloudflare through the
// broker's cache (LiveLookup), or the snapshot compiled into the binary (SnapshotLookup).
type Lookup interface {
	// groups is k's permission groups and the clock of their answer; refresh asks again.
	groups(ctx context.Context, k ownerKey, refresh bool) ([]policy.Group, cftoken.ServerClock, error)
	// zones resolves zone names and ids in account.
	zones(ctx context.Context, names, ids []string, account string) ([]policy.Zone, error)
}

// LiveLookup looks permission groups and zones up at Cloudflare with tokens, keeping what it
// finds for a while.
func LiveLookup(tokens mint.Tokens) Lookup { return newLookupCache(tokens, time.Now) }

// SnapshotLookup resolves permission names against the list of Cloudflare's permission groups
// compiled into the binary (dated cfgroups.Date), and takes zones as written: it asks nobody.
func SnapshotLookup() Lookup { return snapshot{} }

type snapshot struct{}

func (snapshot) groups(_ context.Context, k ownerKey, _ bool) ([]policy.Group, cftoken.ServerClock, error) {
	return cfgroups.Groups(k.owner == cftoken.OwnerUser), cftoken.ServerClock{}, nil
}

func (snapshot) zones(_ context.Context, names, ids []string, _ string) ([]policy.Zone, error) {
	out := make([]policy.Zone, 0, len(names)+len(ids))
	for _, n := range names {
		out = append(out, policy.Zone{Name: n})
	}
	for _, id := range ids {
		out = append(out, policy.Zone{ID: id})
	}
	return out, nil
}

// Decide is the broker's decision on one request, made as every exchange makes it: the plan a
// rule allows; a *trust.Denial when the policy refuses; an error Denied reports for a request
// refused whatever the policy (it does not parse, it names zones that do not exist); any other
// error when the decision could not be made (Cloudflare did not answer, or refused the lookup).
func Decide(ctx context.Context, p *trust.Policy, look Lookup, req Request) (*Plan, error) {
	a, zones, nonce, err := ParseRequest(req.Body)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "%s", strings.Join(keyPhrase.Lines(err), "; "))
	}
	if nonce == "" {
		// Every name carries a nonce, so that the rule is always its fifth part.
		nonce = brokerclient.NewNonce()
	}
	run, ok := runOf(req.Issuer, req.Claims)
	if !ok {
		return nil, &trust.Denial{Reason: trust.ReasonClaims, Msg: "the ID token carries no numeric repository_id, run_id and run_attempt (or GitLab's project_id, pipeline_id and job_id); the broker binds every token it mints to a run"}
	}
	claims := trust.Claims(req.Claims)
	rules := p.Match(req.Issuer, claims)
	if len(rules) == 0 {
		_, err := p.Decide(req.Issuer, claims, a, nil, req.Caller)
		var d *trust.Denial
		if errors.As(err, &d) {
			return nil, d
		}
		return nil, fail(http.StatusForbidden, "%v", err)
	}
	// Zones cost a Cloudflare call each to look up: only those a matching rule lists are looked
	// up at all, and only a few, so that no request can spend the bootstrap token's rate limit.
	if den := zonesAllowed(rules, zones, claims); den != nil {
		return nil, den
	}
	k := ruleKey(rules[0])
	if len(zones.Names)+len(zones.IDs) > 0 {
		zs, err := look.zones(ctx, zones.Names, zones.IDs, k.account)
		if err != nil {
			if unanswered(err) {
				return nil, cloudflareErr(err, "look the zones up")
			}
			return nil, fail(http.StatusBadRequest, "%s", strings.Join(keyPhrase.Lines(err), "; "))
		}
		a.Zones, a.ZonesAccount = zs, k.account
	}
	// Each rule is resolved against its own owner's permission groups.
	lists := map[ownerKey]groupEntry{}
	load := func(refresh bool) error {
		for _, r := range rules {
			k := ruleKey(r)
			if _, ok := lists[k]; ok && !refresh {
				continue
			}
			g, clock, err := look.groups(ctx, k, refresh)
			if err != nil {
				return cloudflareErr(err, "list the permission groups")
			}
			lists[k] = groupEntry{groups: g, clock: clock}
		}
		return nil
	}
	if err := load(false); err != nil {
		return nil, err
	}
	groupsFor := func(r *trust.Rule) []policy.Group { return lists[ruleKey(r)].groups }
	d, err := p.DecideWith(req.Issuer, claims, a, groupsFor, req.Caller)
	var den *trust.Denial
	if errors.As(err, &den) && den.Reason == trust.ReasonRequest {
		// A permission the cached list does not know may be new at Cloudflare: ask once more
		// (at most once a refresh gap, whatever the requests ask).
		if load(true) == nil {
			d, err = p.DecideWith(req.Issuer, claims, a, groupsFor, req.Caller)
		}
	}
	if errors.As(err, &den) {
		return nil, den
	}
	if err != nil {
		return nil, fail(http.StatusForbidden, "%v", err)
	}
	return &Plan{Decision: d, Ask: a, Nonce: nonce, Run: run, clock: lists[ownerKey{owner: d.Owner, account: d.AccountID}].clock}, nil
}

// Denied reports whether err, from Decide, refuses the request: the policy denies it, or the
// request is wrong whatever the policy. Any other error means the decision could not be made.
func Denied(err error) bool {
	var d *trust.Denial
	var ae *apiError
	return errors.As(err, &d) || (errors.As(err, &ae) && (ae.status == http.StatusBadRequest || ae.status == http.StatusForbidden))
}

// CheckPolicy resolves each rule of p against its own owner's permission groups (an account's
// and a user's lists differ), as the broker does before it starts and before a reload: a
// policy whose rules do not resolve must not serve. Errors Unchecked reports are lists that
// could not be had; the others are the policy's problems, every one at once.
func CheckPolicy(ctx context.Context, p *trust.Policy, look Lookup) error {
	var errs []error
	lists := map[ownerKey][]policy.Group{}
	for _, k := range ownersOf(p) {
		if k.owner == cftoken.OwnerAccount && k.account == "" {
			// A rule whose account_id has a problem of its own (trust.ParsePartial): a lookup
			// for no account would only fail.
			continue
		}
		groups, _, err := look.groups(ctx, k, true)
		if err != nil {
			errs = append(errs, &lookupError{fmt.Errorf("failed to list the permission groups of %s: %w", k, err)})
			continue
		}
		lists[k] = groups
	}
	errs = append(errs, p.CheckWith(func(r *trust.Rule) []policy.Group { return lists[ruleKey(r)] }))
	return errors.Join(errs...)
}

// CheckPolicyFile parses a policy file's content and checks it as CheckPolicy does, reporting
// every problem of both in one run: a rule with a parse problem is still checked for the rest
// (trust.ParsePartial). It returns the policy only when it has no problem.
func CheckPolicyFile(ctx context.Context, data []byte, look Lookup) (*trust.Policy, error) {
	p, perr := trust.ParsePartial(data)
	if p == nil {
		return nil, perr
	}
	if perr == nil {
		if err := CheckPolicy(ctx, p, look); err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, errors.Join(perr, CheckPolicy(ctx, p, look))
}

// Unchecked reports whether err, from CheckPolicy, says only that permission groups could not
// be listed, so that nothing could be checked against them; it finds no problem of the policy.
func Unchecked(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !Unchecked(e) {
				return false
			}
		}
		return true
	}
	var le *lookupError
	return errors.As(err, &le)
}

// lookupError is a permission-group list that could not be had.
type lookupError struct{ err error }

func (e *lookupError) Error() string { return e.err.Error() }
func (e *lookupError) Unwrap() error { return e.err }
