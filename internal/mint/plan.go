package mint

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/policy"
)

// Plan performs the lookups a mint needs, concurrently (they are independent, and each is a
// round trip): the owner's permission groups (whose Date header also gives Cloudflare's clock),
// the bootstrap token's own kind, the zones, and the request's Pin. It reports every problem at
// once.
func (e *Engine) Plan(ctx context.Context, r Request) (*Plan, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     []error
		groups   []policy.Group
		boot     bootstrapAnswers
		clock    cftoken.ServerClock
		zonesOut []policy.Zone
		pinned   []netip.Prefix
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	wg.Go(func() {
		groups, clock, boot.groups = e.Tokens.PermissionGroups(ctx, r.Owner, r.AccountID)
	})
	wg.Go(func() {
		// The bootstrap token must be of the owner kind asked for: verify answers only for a
		// token of that kind (and, for account tokens, of that account).
		_, boot.verify = e.Tokens.Verify(ctx, r.Owner, r.AccountID, "")
		e.askOther(ctx, &boot, r)
	})
	if len(r.ZoneNames)+len(r.ZoneIDs) > 0 { // (>= 0 would look up no zone, and find none)
		wg.Go(func() {
			zs, err := e.Zones(ctx, r.ZoneNames, r.ZoneIDs, r.AccountID)
			if err != nil {
				fail(err)
				return
			}
			zonesOut = zs
		})
	}
	if r.Pin != nil {
		wg.Go(func() {
			ps, err := r.Pin(ctx)
			if err != nil {
				fail(err)
				return
			}
			pinned = ps
		})
	}
	wg.Wait()
	if err := explainBootstrap(boot, r); err != nil {
		errs = append([]error{err}, errs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	pols, err := policy.Build(policy.Wanted{Lines: r.Lines(), AccountID: r.AccountID, Zones: zonesOut, AllZones: r.AllZones, Buckets: r.Buckets, Owner: string(r.Owner), AllowLastingAccess: r.AllowLastingAccess}, groups)
	if err != nil {
		return nil, err
	}
	for _, l := range policy.LastingAccess(pols) {
		// Allowed, and still worth a warning on every run: the token's expiry does not end
		// what the group creates.
		e.UI.Warningf("allow-lasting-access: the token carries %s, which %s; revoking the token does not undo that, so check what the job created", logsafe.Quote(l.Name), l.Reason)
	}
	if r.Preset != "" && len(policy.Presets[r.Preset].BucketGroups) > 0 && len(r.Buckets) == 0 {
		e.UI.Noticef("preset %s without r2-buckets grants %s on every bucket of the account; naming the buckets in r2-buckets would grant %s on those only", r.Preset, strings.Join(policy.Presets[r.Preset].Groups, ", "), strings.Join(policy.Presets[r.Preset].BucketGroups, ", "))
	}

	var cidrs []netip.Prefix
	for _, p := range slices.Concat(pinned, r.CIDRs) {
		if !slices.Contains(cidrs, p) {
			cidrs = append(cidrs, p)
		}
	}

	// Expiry on Cloudflare's clock: a local clock that is off must not shorten or stretch the
	// token's life.
	now, fromServer := clock.Now()
	if !fromServer {
		now = e.now().UTC()
		e.UI.Warningf("Cloudflare's answer carried no Date header; the expiry was set by the local clock")
	}
	return &Plan{
		Owner:     r.Owner,
		AccountID: r.AccountID,
		Request: policy.Request{
			Name:      r.Name,
			Policies:  pols,
			CIDRs:     cidrs,
			ExpiresOn: now.Add(r.TTL).Truncate(time.Second),
		},
		Zones:   zonesOut,
		Buckets: r.Buckets,
		TTL:     r.TTL,
	}, nil
}

// Zones looks zone names and ids up, concurrently, among the zones the bootstrap token can read
// in the account (any account when accountID is empty), and reports every problem at once.
func (e *Engine) Zones(ctx context.Context, names, ids []string, accountID string) ([]policy.Zone, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		out  = make([]policy.Zone, len(names)+len(ids))
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i, name := range names {
		wg.Go(func() {
			z, err := e.findZone(ctx, name, accountID)
			if err != nil {
				fail(err)
				return
			}
			out[i] = z
		})
	}
	for i, id := range ids {
		wg.Go(func() {
			z, err := e.getZone(ctx, id, accountID)
			if err != nil {
				fail(err)
				return
			}
			out[len(names)+i] = z
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// bootstrapAnswers are Cloudflare's answers about the bootstrap token: the permission-groups
// call, the verify of the owner kind asked for, and, only when that verify answered 1000, the
// verify of the other owner kind (other; otherAsked is false when it could not be asked: a user
// token's account verify needs an account id).
type bootstrapAnswers struct {
	groups, verify, other error
	otherAsked            bool
	otherStatus           string // the other kind's verify's status, when it answered
}

// askOther asks the other owner kind's verify when the first answered 1000, the one answer that
// does not tell a dead token from a live one of the other kind. It costs a round trip on the
// failure path only.
func (e *Engine) askOther(ctx context.Context, b *bootstrapAnswers, r Request) {
	var ve *cftoken.APIError
	if !errors.As(b.verify, &ve) || !ve.Has(1000) {
		return
	}
	other := cftoken.OwnerUser
	if r.Owner == cftoken.OwnerUser {
		if r.AccountID == "" {
			return
		}
		other = cftoken.OwnerAccount
	}
	b.otherAsked = true
	b.otherStatus, b.other = e.Tokens.Verify(ctx, other, r.AccountID, "")
}

// BootstrapDead reports whether Cloudflare no longer accepts the bootstrap token: its verify of
// owner's kind answers 1000 and so does the other kind's (or the other cannot be asked: a user
// token's account verify needs an account id), or the kind that knows it says it is not active.
// err is a verify's failure that says neither. It is the broker's periodic check, asked with
// the same rule for telling a dead token from one of the other kind that Plan uses.
func (e *Engine) BootstrapDead(ctx context.Context, owner cftoken.Owner, accountID string) (dead bool, err error) {
	status, err := e.Tokens.Verify(ctx, owner, accountID, "")
	b := bootstrapAnswers{verify: err}
	var ae *cftoken.APIError
	if errors.As(err, &ae) && ae.Has(1000) {
		e.askOther(ctx, &b, Request{Owner: owner, AccountID: accountID})
		if !b.otherAsked || errors.As(b.other, &ae) && ae.Has(1000) {
			return true, nil
		}
		status, err = b.otherStatus, b.other
	}
	if err != nil {
		return false, err
	}
	return status != "" && status != "active", nil
}

// DeadBootstrap is the sentence for a bootstrap token Cloudflare no longer knows: it never
// suggests changing token-owner, which would change the wrong thing.
const DeadBootstrap = "the bootstrap token is not valid: it has expired, been revoked (Cloudflare revokes tokens it finds in public code) or deleted, or the secret holds the wrong value; make a new one and update the secret"

// saysDead reports whether a refusal on a non-verify endpoint is Cloudflare's answer to a token
// it does not accept at all ("Invalid access token" on the accounts, user, zones and token
// APIs; 1000 or a 401 elsewhere), rather than to a live token that lacks a permission.
func saysDead(ae *cftoken.APIError) bool {
	if ae == nil {
		return false
	}
	if ae.Has(1000) || ae.Status == 401 {
		return true
	}
	for _, d := range ae.Details {
		if d.Code == 9109 && strings.Contains(strings.ToLower(d.Message), "invalid access token") {
			return true
		}
	}
	return false
}

// explainBootstrap turns the answers about the bootstrap token into one sentence that says what
// to fix.
func explainBootstrap(b bootstrapAnswers, r Request) error {
	var ge, ve, oe *cftoken.APIError
	errors.As(b.groups, &ge)
	errors.As(b.verify, &ve)
	errors.As(b.other, &oe)
	user := r.Owner == cftoken.OwnerUser
	v1000 := ve != nil && ve.Has(1000)
	otherOK := b.otherAsked && b.other == nil
	// Both verifies refuse it (or only one could be asked) and the groups call does not know
	// it either: Cloudflare does not know the token at all.
	dead := v1000 && (!b.otherAsked || (oe != nil && oe.Has(1000))) && saysDead(ge)
	switch {
	case ge != nil && ge.Has(9109) && strings.Contains(strings.ToLower(fmt.Sprint(ge.Details)), "location"):
		return field.Errorf("bootstrap-token", "its own IP filter does not allow this runner (%v); add the runner's address or range to the bootstrap token's filter, or run on runners whose addresses it allows", ge)
	case dead:
		return field.Errorf("bootstrap-token", "%s (%v)", DeadBootstrap, ve)
	case user && v1000 && otherOK:
		return field.Errorf("bootstrap-token", "it is not a user token: it is account-owned, of account %s (its user verify answered 1000, its account verify succeeded); set token-owner: account, or make a user token with API Tokens Write (the \"Create additional tokens\" template)", r.AccountID)
	case !user && v1000 && otherOK:
		return field.Errorf("bootstrap-token", "it is not an account-owned token of account %s: it is a user token (its account verify answered 1000, its user verify succeeded); set token-owner: user, or make an account-owned bootstrap token with Account API Tokens Write (Manage Account > Account API Tokens)", r.AccountID)
	case user && v1000 && ge != nil && ge.Has(9109):
		return field.Errorf("bootstrap-token", "it is not a user token (it looks account-owned: %v); token-owner: user needs a user token with API Tokens Write (the \"Create additional tokens\" template), or set token-owner: account and the account-id of the token's account", ge)
	case !user && v1000 && ge != nil && ge.Has(9109):
		return field.Errorf("bootstrap-token", "it is not an account-owned token of account %s (%v; its account verify answered 1000, and it is not a user token either): it belongs to another account; check account-id, or make a bootstrap token with Account API Tokens Write on account %s", r.AccountID, ge, r.AccountID)
	case user && ge != nil && ge.Has(9109):
		return field.Errorf("bootstrap-token", "it may not manage user tokens (%v); for token-owner: user it must be a user token with API Tokens Write (the \"Create additional tokens\" template)", ge)
	case ge != nil && ge.Has(9109):
		return field.Errorf("bootstrap-token", "it may not manage tokens of account %s (%v); give it Account API Tokens Write on that account, or check account-id", r.AccountID, ge)
	case b.groups != nil:
		return b.groups
	case !user && v1000:
		return field.Errorf("bootstrap-token", "it is not an account-owned token of account %s (Cloudflare's account verify answered 1000); it may be a user token: then set token-owner: user, or make an account-owned bootstrap token (Manage Account > Account API Tokens)", r.AccountID)
	case user && v1000:
		return field.Errorf("bootstrap-token", "it is not a user token (Cloudflare's user verify answered 1000); it may be account-owned: then set token-owner: account and account-id")
	case b.verify != nil:
		return field.Wrap("bootstrap-token", b.verify)
	}
	return nil
}

// findZone resolves a zone name. Anyone can add a zone of any name to their own account, where
// it stays pending, so a name alone does not say which zone is meant: without an account it must
// name exactly one zone the bootstrap token can read, and that zone must be active.
func (e *Engine) findZone(ctx context.Context, name, accountID string) (policy.Zone, error) {
	zs, err := e.Tokens.FindZone(ctx, name)
	if err != nil {
		return policy.Zone{}, field.Wrap("zones", err)
	}
	if accountID == "" {
		switch {
		case len(zs) == 1 && zs[0].Status == "active":
			return policy.Zone{ID: zs[0].ID, Name: zs[0].Name}, nil
		case len(zs) == 1:
			return policy.Zone{}, field.Errorf("zones", "%s is zone %s of account %s, whose status is %s, not active (a zone anyone can add to an account of their own stays pending); set account-id to the account whose zone is meant, or write the zone id if that zone is really meant", logsafe.Quote(name), logsafe.String(zs[0].ID), logsafe.String(zs[0].AccountID), logsafe.Quote(zs[0].Status))
		case len(zs) > 1:
			return policy.Zone{}, field.Errorf("zones", "%s names %d zones the bootstrap token can read: %s; set account-id to the account whose zone is meant, or write the zone id instead of the name", logsafe.Quote(name), len(zs), candidates(zs))
		}
	}
	var other []string
	for _, z := range zs {
		if z.AccountID == accountID {
			return policy.Zone{ID: z.ID, Name: z.Name}, nil
		}
		other = append(other, z.AccountID)
	}
	if len(other) > 0 {
		return policy.Zone{}, field.Errorf("zones", "%s belongs to account %s, not to account-id %s; use that account's id, or a zone of account %s", logsafe.Quote(name), logsafe.String(strings.Join(other, ", ")), accountID, accountID)
	}
	return policy.Zone{}, field.Errorf("zones", "%s was not found among the zones the bootstrap token can read; check the spelling, or give the bootstrap token Zone Read on it (or write the zone id instead of the name)", logsafe.Quote(name))
}

// candidates lists zones for an error: id, status and account of each.
func candidates(zs []cftoken.Zone) string {
	out := make([]string, len(zs))
	for i, z := range zs {
		out[i] = logsafe.String(fmt.Sprintf("%s (%s, account %s)", z.ID, z.Status, z.AccountID))
	}
	return strings.Join(out, ", ")
}

func (e *Engine) getZone(ctx context.Context, id, accountID string) (policy.Zone, error) {
	z, err := e.Tokens.GetZone(ctx, id)
	if err != nil {
		var ae *cftoken.APIError
		if errors.As(err, &ae) && !ae.Retryable() {
			return policy.Zone{}, field.Errorf("zones", "zone id %s was not found, or the bootstrap token cannot read it (%v); check the id, or give the bootstrap token Zone Read on it", id, err)
		}
		return policy.Zone{}, field.Wrap("zones", err)
	}
	if accountID != "" && z.AccountID != accountID {
		return policy.Zone{}, field.Errorf("zones", "zone id %s (%s) belongs to account %s, not to account-id %s", id, z.Name, z.AccountID, accountID)
	}
	return policy.Zone{ID: z.ID, Name: z.Name}, nil
}
