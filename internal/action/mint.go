package action

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/netaddr"
	"github.com/cfmint/cfmint/internal/policy"
)

// UI is where a mint's messages go: the runner's log commands in a workflow, stderr in a
// terminal. *githubactions.Action satisfies it.
type UI interface {
	Infof(format string, args ...any)
	Noticef(format string, args ...any)
	Warningf(format string, args ...any)
	Debugf(format string, args ...any)
}

// Hooks let the caller act at the two moments that matter for safety.
type Hooks struct {
	// SaveState records what the post phase needs (never a secret). nil: nowhere.
	SaveState func(name, value string)
	// Mask is called with the new secret before it is used anywhere. nil: no masking.
	Mask func(secret string)
}

func (h Hooks) save(name, value string) {
	if h.SaveState != nil {
		h.SaveState(name, value)
	}
}

// Plan is a resolved request: what would be sent, and what it means.
type Plan struct {
	Owner     cftoken.Owner
	AccountID string
	Request   policy.Request
	Zones     []policy.Zone
	Buckets   []policy.Bucket
	TTL       time.Duration
}

// HasR2 reports whether the token carries an R2 permission, and so has S3 credentials.
func (p *Plan) HasR2() bool {
	for _, pol := range p.Request.Policies {
		for _, g := range pol.Groups {
			if strings.HasPrefix(g.Name, "Workers R2 Storage") {
				return true
			}
		}
	}
	return false
}

// Lines are the permission lines a config asks for: its preset's groups, then its own lines.
func Lines(cfg *config.Config) []string {
	var lines []string
	if cfg.Preset != "" {
		lines = append(lines, policy.ExpandPreset(cfg.Preset, len(cfg.Buckets) > 0)...)
	}
	return append(lines, cfg.Permissions...)
}

// Resolve performs the lookups a mint needs, concurrently (they are independent, and each is a
// round trip): the owner's permission groups (whose Date header also gives Cloudflare's clock),
// the bootstrap token's own kind, the zones, and the runner's address. It reports every problem
// at once.
func Resolve(ctx context.Context, d Deps, ui UI, cfg *config.Config) (*Plan, error) {
	c := newClient(d, cfg.BootstrapToken)
	owner := cftoken.Owner(cfg.Owner)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		errs      []error
		groups    []policy.Group
		groupsErr error
		verifyErr error
		clock     cftoken.ServerClock
		zonesOut  = make([]policy.Zone, len(cfg.Zones.Names)+len(cfg.Zones.IDs))
		runner    []netip.Addr
		fellBack  error // why the API host's trace gave no address, when the fallback was asked
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	wg.Go(func() {
		groups, clock, groupsErr = c.PermissionGroups(ctx, owner, cfg.AccountID)
	})
	wg.Go(func() {
		// The bootstrap token must be of the owner kind asked for: verify answers only for a
		// token of that kind (and, for account tokens, of that account).
		_, verifyErr = c.Verify(ctx, owner, cfg.AccountID, cfg.BootstrapToken)
	})
	for i, name := range cfg.Zones.Names {
		wg.Go(func() {
			z, err := findZone(ctx, c, name, cfg.AccountID)
			if err != nil {
				fail(err)
				return
			}
			zonesOut[i] = z
		})
	}
	for i, id := range cfg.Zones.IDs {
		wg.Go(func() {
			z, err := getZone(ctx, c, id, cfg.AccountID)
			if err != nil {
				fail(err)
				return
			}
			zonesOut[len(cfg.Zones.Names)+i] = z
		})
	}
	if cfg.IPFilter.Runner {
		wg.Go(func() {
			addrs, err := netaddr.Runner(ctx, d.HTTPClient, apiBase(d), netaddr.Options{
				Fallback:   d.getenv("CFMINT_TRACE_FALLBACK_URL"),
				OnFallback: func(err error) { fellBack = err },
			})
			if err != nil {
				fail(fmt.Errorf("input \"ip-filter\": could not find the runner's public address (%v); no token was minted, because cfmint never falls back to an unfiltered token. Retry, or set ip-filter to the runner's CIDRs", err))
				return
			}
			runner = addrs
		})
	}
	wg.Wait()
	if err := explainBootstrap(groupsErr, verifyErr, cfg); err != nil {
		errs = append([]error{err}, errs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var buckets []policy.Bucket
	for _, b := range cfg.Buckets {
		buckets = append(buckets, policy.Bucket{Jurisdiction: b.Jurisdiction, Name: b.Name})
	}
	pols, err := policy.Build(policy.Wanted{Lines: Lines(cfg), AccountID: cfg.AccountID, Zones: zonesOut, AllZones: cfg.Zones.All, Buckets: buckets, Owner: string(cfg.Owner)}, groups)
	if err != nil {
		return nil, err
	}
	if cfg.Preset != "" && len(policy.Presets[cfg.Preset].BucketGroups) > 0 && len(cfg.Buckets) == 0 {
		ui.Noticef("preset %s without r2-buckets grants %s on every bucket of the account; naming the buckets in r2-buckets would grant %s on those only", cfg.Preset, strings.Join(policy.Presets[cfg.Preset].Groups, ", "), strings.Join(policy.Presets[cfg.Preset].BucketGroups, ", "))
	}

	if fellBack != nil && len(runner) > 0 {
		fb := d.getenv("CFMINT_TRACE_FALLBACK_URL")
		if fb == "" {
			fb = netaddr.DefaultFallback
		}
		ui.Warningf("the runner's address (%v) comes from the fallback %s, because the API host's own trace gave none (%v); the fallback may see the runner by another address than the API does: if the token is refused with 9109 \"Cannot use the access token from location\", set ip-filter to the runner's CIDRs", runner, fb, fellBack)
	}
	var cidrs []netip.Prefix
	for _, a := range runner {
		if p := cftoken.PrefixFor(a); !slices.Contains(cidrs, p) {
			cidrs = append(cidrs, p)
		}
	}
	for _, p := range cfg.IPFilter.CIDRs {
		if !slices.Contains(cidrs, p) {
			cidrs = append(cidrs, p)
		}
	}
	if cfg.IPFilter.None {
		ui.Warningf("ip-filter is none: the token will work from any address on the internet until it expires or is revoked. Prefer the default, runner.")
	}

	// Expiry on Cloudflare's clock: a runner clock that is off must not shorten or stretch the
	// token's life.
	now, fromServer := clock.Now()
	if !fromServer {
		now = time.Now().UTC()
		ui.Warningf("Cloudflare's answer carried no Date header; the expiry was set by the runner's clock")
	}
	return &Plan{
		Owner:     owner,
		AccountID: cfg.AccountID,
		Request: policy.Request{
			Name:      cfg.Name,
			Policies:  pols,
			CIDRs:     cidrs,
			ExpiresOn: now.Add(cfg.TTL).Truncate(time.Second),
		},
		Zones:   zonesOut,
		Buckets: buckets,
		TTL:     cfg.TTL,
	}, nil
}

// explainBootstrap turns the answers about the bootstrap token into one sentence that says what
// to fix.
func explainBootstrap(groupsErr, verifyErr error, cfg *config.Config) error {
	var ge, ve *cftoken.APIError
	errors.As(groupsErr, &ge)
	errors.As(verifyErr, &ve)
	switch {
	case ge != nil && ge.Has(9109) && strings.Contains(strings.ToLower(fmt.Sprint(ge.Details)), "location"):
		return fmt.Errorf("input \"bootstrap-token\": its own IP filter does not allow this runner (%v); add the runner's address or range to the bootstrap token's filter, or run on runners whose addresses it allows", ge)
	case ge != nil && ge.Has(1000):
		return fmt.Errorf("input \"bootstrap-token\": Cloudflare does not accept it (1000 Invalid API Token): it is wrong, expired or deleted; make a new one and update the secret")
	case cfg.Owner == config.OwnerUser && ge != nil && ge.Has(9109) && ve != nil && ve.Has(1000):
		return fmt.Errorf("input \"bootstrap-token\": it is not a user token (it looks account-owned: %v); token-owner: user needs a user token with API Tokens Write (the \"Create additional tokens\" template), or set token-owner: account", ge)
	case cfg.Owner == config.OwnerAccount && ge != nil && ge.Has(9109) && ve != nil && ve.Has(1000):
		return fmt.Errorf("input \"bootstrap-token\": it is not an account-owned token of account %s (%v; its account verify answered 1000): either it belongs to another account (check account-id), or it is a user token (then set token-owner: user); a bootstrap token needs Account API Tokens Write on the account", cfg.AccountID, ge)
	case cfg.Owner == config.OwnerUser && ge != nil && ge.Has(9109):
		return fmt.Errorf("input \"bootstrap-token\": it may not manage user tokens (%v); for token-owner: user it must be a user token with API Tokens Write (the \"Create additional tokens\" template)", ge)
	case ge != nil && ge.Has(9109):
		return fmt.Errorf("input \"bootstrap-token\": it may not manage tokens of account %s (%v); give it Account API Tokens Write on that account, or check account-id", cfg.AccountID, ge)
	case groupsErr != nil:
		return groupsErr
	case cfg.Owner == config.OwnerAccount && ve != nil && ve.Has(1000):
		return fmt.Errorf("input \"bootstrap-token\": it is not an account-owned token of account %s (Cloudflare's account verify answered 1000); it may be a user token: then set token-owner: user, or make an account-owned bootstrap token (Manage Account > Account API Tokens)", cfg.AccountID)
	case cfg.Owner == config.OwnerUser && ve != nil && ve.Has(1000):
		return fmt.Errorf("input \"bootstrap-token\": it is not a user token (Cloudflare's user verify answered 1000); it may be account-owned: then set token-owner: account and account-id")
	case verifyErr != nil:
		return fmt.Errorf("input \"bootstrap-token\": %w", verifyErr)
	}
	return nil
}

func findZone(ctx context.Context, c *cftoken.Client, name, accountID string) (policy.Zone, error) {
	zs, err := c.FindZone(ctx, name)
	if err != nil {
		return policy.Zone{}, fmt.Errorf("input \"zones\": %w", err)
	}
	var other []string
	for _, z := range zs {
		if accountID == "" || z.AccountID == accountID {
			return policy.Zone{ID: z.ID, Name: z.Name}, nil
		}
		other = append(other, z.AccountID)
	}
	if len(other) > 0 {
		return policy.Zone{}, fmt.Errorf("input \"zones\": %q belongs to account %s, not to account-id %s; use that account's id, or a zone of account %s", name, strings.Join(other, ", "), accountID, accountID)
	}
	return policy.Zone{}, fmt.Errorf("input \"zones\": %q was not found among the zones the bootstrap token can read; check the spelling, or give the bootstrap token Zone Read on it (or write the zone id instead of the name)", name)
}

func getZone(ctx context.Context, c *cftoken.Client, id, accountID string) (policy.Zone, error) {
	z, err := c.GetZone(ctx, id)
	if err != nil {
		var ae *cftoken.APIError
		if errors.As(err, &ae) && !ae.Retryable() {
			return policy.Zone{}, fmt.Errorf("input \"zones\": zone id %s was not found, or the bootstrap token cannot read it (%v); check the id, or give the bootstrap token Zone Read on it", id, err)
		}
		return policy.Zone{}, fmt.Errorf("input \"zones\": %w", err)
	}
	if accountID != "" && z.AccountID != accountID {
		return policy.Zone{}, fmt.Errorf("input \"zones\": zone id %s (%s) belongs to account %s, not to account-id %s", id, z.Name, z.AccountID, accountID)
	}
	return policy.Zone{ID: z.ID, Name: z.Name}, nil
}

// cleanupBudget bounds the deletes done after a failure or a signal: the runner kills the
// container 10 s after its first signal.
const cleanupBudget = 6 * time.Second

// Mint creates the token and makes sure it is the token that was asked for and that it works.
// From the create on, every failure deletes the token again.
func Mint(ctx context.Context, d Deps, ui UI, cfg *config.Config, p *Plan, h Hooks) (*cftoken.Minted, error) {
	c := newClient(d, cfg.BootstrapToken)
	ui.Debugf("creating token %q: %s", p.Request.Name, describe(p))
	// Before the create: if this process dies with the create in flight, post (or a sweep) can
	// still find the token by its name, which is unique per run and step.
	h.save(stateOwner, string(p.Owner))
	h.save(stateAccountID, p.AccountID)
	h.save(stateName, p.Request.Name)
	h.save(stateExpiresOn, p.Request.ExpiresOn.Format(time.RFC3339))
	// revoke: false applies only to a token that was handed out: until publish has run, post must
	// delete whatever this step created.
	h.save(stateRevoke, "true")
	h.save(statePending, "true")
	m, err := c.Create(ctx, p.Owner, p.AccountID, p.Request)
	if err != nil {
		err = explainCreate(err, cfg)
		var te *cftoken.TransportError
		var ae *cftoken.APIError
		// A lost answer, a cancelled wait, or a gateway's 5xx: Cloudflare may have stored the
		// token all the same.
		if errors.As(err, &te) || ctx.Err() != nil || (errors.As(err, &ae) && ae.Status >= 500) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget)
			defer cancel()
			n, cerr := DeleteByName(cctx, c, p.Owner, p.AccountID, p.Request.Name, p.Request.ExpiresOn)
			if cerr != nil {
				return nil, fmt.Errorf("%w; looking for a token it may have created anyway also failed: %v; %s", err, cerr, lookAgain(h, p.Request.Name))
			}
			if n == 0 {
				// A create still in flight at Cloudflare can land after this look: create-pending
				// stays, so that post looks once more.
				return nil, fmt.Errorf("%w; no token with its name was found yet; %s", err, lookAgain(h, p.Request.Name))
			}
			err = fmt.Errorf("%w; the token had been created anyway, and was deleted", err)
		}
		h.save(statePending, "")
		return nil, err
	}
	// State first: if anything below is interrupted, post still knows what to revoke.
	h.save(stateTokenID, m.ID)
	h.save(statePending, "")
	if m.Secret == "" || strings.IndexFunc(m.Secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil, undo(ctx, c, p, m, h, errors.New("Cloudflare's answer to the create carried no usable token value"))
	}
	if h.Mask != nil {
		h.Mask(m.Secret)
		if p.HasR2() {
			h.Mask(S3Secret(m.Secret))
		}
	}
	if err := checkEcho(p, m); err != nil {
		return nil, undo(ctx, c, p, m, h, err)
	}
	// verify has its own retry loop (it also waits out 1000 while the token becomes known), so
	// its client tries each call once instead of nesting a second loop inside.
	once := cftoken.New(cfg.BootstrapToken, cftoken.Options{BaseURL: apiBase(d), HTTPClient: d.HTTPClient, Backoff: d.Backoff, Attempts: 1})
	if err := verify(ctx, once, p, m); err != nil {
		return nil, undo(ctx, c, p, m, h, err)
	}
	return m, nil
}

// lookAgain says who looks again for a token whose create may have landed unseen: the post phase
// in a workflow; from a terminal, the user.
func lookAgain(h Hooks, name string) string {
	if h.SaveState != nil {
		return fmt.Sprintf("the post phase will look again for tokens named %q", name)
	}
	return fmt.Sprintf("look for tokens named %q in the dashboard, or run `cfmint sweep` once they expire", name)
}

// S3Secret is the R2 S3 secret access key of a token: the lowercase hex SHA-256 of its value.
func S3Secret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// undo deletes a token that must not be handed out, and says what happened.
func undo(ctx context.Context, c *cftoken.Client, p *Plan, m *cftoken.Minted, h Hooks, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget)
	defer cancel()
	err := c.Delete(cctx, p.Owner, p.AccountID, m.ID)
	if err != nil && !errors.Is(err, cftoken.ErrNotFound) {
		again := "run `cfmint revoke " + m.ID + "`"
		if h.SaveState != nil {
			again = "the post phase will try again"
		}
		return fmt.Errorf("%w; deleting token %s also failed (%v): %s; it expires at %s", cause, m.ID, err, again, p.Request.ExpiresOn.Format(time.RFC3339))
	}
	// Tell post there is nothing left to revoke.
	h.save(stateTokenID, "")
	return fmt.Errorf("%w; token %s was deleted", cause, m.ID)
}

// DeleteByName deletes every token of the owner that carries name and, when expires is set,
// that expiry (a second guard against a name that is not unique, such as a user's own), and
// returns how many.
func DeleteByName(ctx context.Context, c *cftoken.Client, owner cftoken.Owner, accountID, name string, expires time.Time) (int, error) {
	ts, err := c.List(ctx, owner, accountID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range ts {
		if t.Name != name || (!expires.IsZero() && !t.ExpiresOn.Equal(expires)) {
			continue
		}
		if err := c.Delete(ctx, owner, accountID, t.ID); err != nil && !errors.Is(err, cftoken.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

func explainCreate(err error, cfg *config.Config) error {
	var ae *cftoken.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Has(9109) && cfg.Owner == config.OwnerAccount:
		return fmt.Errorf("%w: the bootstrap token lacks Account API Tokens Write for account %s; edit it in the dashboard", err, cfg.AccountID)
	case ae.Has(9109):
		return fmt.Errorf("%w: the bootstrap token lacks API Tokens Write (a user token made from the \"Create additional tokens\" template)", err)
	case ae.Retryable():
		return fmt.Errorf("%w; cfmint never retries a create, since a second try could mint a second token: re-run the job", err)
	case ae.Status == 400 && len(cfg.Buckets) > 0 && strings.Contains(strings.ToLower(fmt.Sprint(ae.Details)), "bucket"):
		return fmt.Errorf("input \"r2-buckets\": %w; check that each bucket exists in account %s (and its jurisdiction)", err, cfg.AccountID)
	}
	return err
}

// checkEcho confirms Cloudflare stored the IP condition and expiry that were asked for: a token
// that silently lost its filter or expiry is worse than no token.
func checkEcho(p *Plan, m *cftoken.Minted) error {
	want := make([]string, len(p.Request.CIDRs))
	for i, c := range p.Request.CIDRs {
		want[i] = c.String()
	}
	got := canonical(m.IPIn)
	slices.Sort(want)
	if !slices.Equal(want, got) || len(m.IPNotIn) > 0 {
		return fmt.Errorf("Cloudflare's answer does not echo the IP filter asked for (asked %v, got in=%v not_in=%v)", want, m.IPIn, m.IPNotIn)
	}
	if !m.ExpiresOn.Equal(p.Request.ExpiresOn) {
		return fmt.Errorf("Cloudflare's answer does not echo the expiry asked for (asked %s, got %s)", p.Request.ExpiresOn.Format(time.RFC3339), m.ExpiresOn.Format(time.RFC3339))
	}
	return nil
}

func canonical(cidrs []string) []string {
	out := make([]string, 0, len(cidrs))
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked().String())
		} else {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// verify asks Cloudflare whether the new token is active, retrying briefly: a new token may take
// a moment to be known everywhere.
func verify(ctx context.Context, c *cftoken.Client, p *Plan, m *cftoken.Minted) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var last error
	for wait := 200 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		status, err := c.Verify(ctx, p.Owner, p.AccountID, m.Secret)
		if err == nil && status == "active" {
			return nil
		}
		if err == nil {
			// Cloudflare knows the token and says it is disabled or expired: waiting will not
			// change that.
			return fmt.Errorf("Cloudflare says the new token is %q, not active", status)
		}
		last = err
		var ae *cftoken.APIError
		if errors.As(err, &ae) && !ae.Retryable() && !ae.Has(1000) {
			return fmt.Errorf("the new token: %w", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("the new token did not become active in time: %w", last)
		case <-t.C:
		}
	}
}

func cidrList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// describe is a one-line account of a plan, for debug logs. It holds no secret.
func describe(p *Plan) string {
	var parts []string
	for _, pol := range p.Request.Policies {
		var names []string
		for _, g := range pol.Groups {
			names = append(names, g.Name)
		}
		keys := make([]string, 0, len(pol.Resources))
		for k := range pol.Resources {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts = append(parts, fmt.Sprintf("[%s on %s]", strings.Join(names, ", "), strings.Join(keys, ", ")))
	}
	return fmt.Sprintf("owner=%s policies=%s ip=%s expires=%s", p.Owner, strings.Join(parts, " "), cidrList(p.Request.CIDRs), p.Request.ExpiresOn.Format(time.RFC3339))
}
