package action

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/netaddr"
	"github.com/cfmint/cfmint/internal/policy"
)

// Main runs the main phase: validate, look up, create, save state, mask, check, verify, then
// outputs, env and summary. Whatever fails after the create deletes the token again.
func Main(ctx context.Context, d Deps) error {
	a := newActions(d)
	ctx, cancel := context.WithTimeout(ctx, PhaseTimeout)
	defer cancel()

	if err := requireFiles(d, "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STATE"); err != nil {
		return report(a, err)
	}
	in, err := config.ReadInputs(ctx, d.Lookup)
	if err != nil {
		return report(a, err)
	}
	cfg, err := config.Validate(in, runContext(d))
	if err != nil {
		return report(a, err)
	}
	plan, err := Resolve(ctx, d, a, cfg)
	if err != nil {
		return report(a, err)
	}
	m, err := mint(ctx, d, a, cfg, plan)
	if err != nil {
		return report(a, err)
	}
	if err := publish(a, cfg, plan, m); err != nil {
		return report(a, undo(ctx, a, newClient(d, cfg.BootstrapToken), plan, m, err))
	}
	return nil
}

// Plan is a resolved request: what would be sent, and what it means.
type Plan struct {
	Owner     cftoken.Owner
	AccountID string
	Request   policy.Request
	Zones     []policy.Zone
	TTL       time.Duration
	// ClockFromServer is false when Cloudflare's Date header was missing and the runner's clock
	// set the expiry.
	ClockFromServer bool
}

// Resolve performs the lookups a mint needs, concurrently (they are independent, and each is a
// round trip): the owner's permission groups (whose Date header also gives Cloudflare's clock),
// the zones, and the runner's address. It reports every problem at once.
func Resolve(ctx context.Context, d Deps, a *githubactions.Action, cfg *config.Config) (*Plan, error) {
	c := newClient(d, cfg.BootstrapToken)
	owner := cftoken.Owner(cfg.Owner)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     []error
		groups   []policy.Group
		clock    cftoken.ServerClock
		zonesOut = make([]policy.Zone, len(cfg.Zones.Names)+len(cfg.Zones.IDs))
		runner   netip.Addr
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	wg.Go(func() {
		var err error
		groups, clock, err = c.PermissionGroups(ctx, owner, cfg.AccountID)
		if err != nil {
			fail(explainGroups(err, cfg))
		}
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
			trace, err := netaddr.TraceURL(apiBase(d))
			if err == nil {
				runner, err = netaddr.Lookup(ctx, d.HTTPClient, trace)
			}
			if err != nil {
				fail(fmt.Errorf("input \"ip-filter\": could not find the runner's public address (%v); no token was minted, because cfmint never falls back to an unfiltered token. Retry, or set ip-filter to the runner's CIDRs", err))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var lines []string
	if cfg.Preset != "" {
		lines = append(lines, config.Presets[cfg.Preset]...)
	}
	lines = append(lines, cfg.Permissions...)
	pols, err := policy.Build(policy.Wanted{Lines: lines, AccountID: cfg.AccountID, Zones: zonesOut, AllZones: cfg.Zones.All}, groups)
	if err != nil {
		return nil, err
	}

	cidrs := slices.Clone(cfg.IPFilter.CIDRs)
	if runner.IsValid() {
		if p := cftoken.PrefixFor(runner); !slices.Contains(cidrs, p) {
			cidrs = append([]netip.Prefix{p}, cidrs...)
		}
	}
	if cfg.IPFilter.None {
		a.Warningf("ip-filter is none: the token will work from any address on the internet until it expires or is revoked. Prefer the default, runner.")
	}

	// Expiry on Cloudflare's clock: a runner clock that is off must not shorten or stretch the
	// token's life.
	now, fromServer := clock.Now()
	if !fromServer {
		now = time.Now().UTC()
		a.Warningf("Cloudflare's answer carried no Date header; the expiry was set by the runner's clock")
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
		Zones:           zonesOut,
		TTL:             cfg.TTL,
		ClockFromServer: fromServer,
	}, nil
}

func explainGroups(err error, cfg *config.Config) error {
	var ae *cftoken.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Has(1000):
			return fmt.Errorf("input \"bootstrap-token\": Cloudflare does not accept it (1000 Invalid API Token): it is wrong, expired or deleted; make a new one and update the secret")
		case ae.Has(9109) && cfg.Owner == config.OwnerAccount:
			return fmt.Errorf("input \"bootstrap-token\": it may not manage tokens of account %s (%v); give it Account API Tokens Write on that account, or check account-id", cfg.AccountID, err)
		case ae.Has(9109):
			return fmt.Errorf("input \"bootstrap-token\": it may not manage user tokens (%v); for token-owner: user it must be a user token with API Tokens Write (the \"Create additional tokens\" template)", err)
		}
	}
	return err
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
		if errors.As(err, &ae) && ae.Status < 500 {
			return policy.Zone{}, fmt.Errorf("input \"zones\": zone id %s was not found, or the bootstrap token cannot read it (%v); check the id, or give the bootstrap token Zone Read on it", id, err)
		}
		return policy.Zone{}, fmt.Errorf("input \"zones\": %w", err)
	}
	if accountID != "" && z.AccountID != accountID {
		return policy.Zone{}, fmt.Errorf("input \"zones\": zone id %s (%s) belongs to account %s, not to account-id %s", id, z.Name, z.AccountID, accountID)
	}
	return policy.Zone{ID: z.ID, Name: z.Name}, nil
}

// mint creates the token and makes sure it is the token that was asked for and that it works.
// From the create on, every failure deletes the token again.
func mint(ctx context.Context, d Deps, a *githubactions.Action, cfg *config.Config, p *Plan) (*cftoken.Minted, error) {
	c := newClient(d, cfg.BootstrapToken)
	a.Debugf("creating token %q: %s", p.Request.Name, describe(p))
	m, err := c.Create(ctx, p.Owner, p.AccountID, p.Request)
	if err != nil {
		var te *cftoken.TransportError
		if errors.As(err, &te) {
			// The answer was lost, not necessarily the token: Cloudflare may have created it.
			// Names are unique per run and step, so whatever carries this name is ours.
			if n, cerr := deleteByName(context.WithoutCancel(ctx), c, p); cerr != nil {
				err = fmt.Errorf("%w; looking for a token it may have created anyway also failed: %v; look for tokens named %q in the dashboard", err, cerr, p.Request.Name)
			} else if n > 0 {
				err = fmt.Errorf("%w; the token had been created anyway, and was deleted", err)
			}
		}
		return nil, explainCreate(err, cfg)
	}
	// State first: if anything below is interrupted, post still knows what to revoke.
	a.SaveState(stateTokenID, m.ID)
	a.SaveState(stateOwner, string(p.Owner))
	a.SaveState(stateAccountID, p.AccountID)
	a.SaveState(stateName, p.Request.Name)
	a.SaveState(stateExpiresOn, p.Request.ExpiresOn.Format(time.RFC3339))
	a.SaveState(stateRevoke, fmt.Sprint(cfg.Revoke))
	if m.Secret == "" || strings.IndexFunc(m.Secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil, undo(ctx, a, c, p, m, errors.New("Cloudflare's answer to the create carried no usable token value"))
	}
	// Mask before the value goes anywhere else.
	a.AddMask(m.Secret)

	if err := checkEcho(p, m); err != nil {
		return nil, undo(ctx, a, c, p, m, err)
	}
	if err := verify(ctx, c, p, m); err != nil {
		return nil, undo(ctx, a, c, p, m, err)
	}
	return m, nil
}

// undo deletes a token that must not be handed out, and says what happened.
func undo(ctx context.Context, a *githubactions.Action, c *cftoken.Client, p *Plan, m *cftoken.Minted, cause error) error {
	err := c.Delete(context.WithoutCancel(ctx), p.Owner, p.AccountID, m.ID)
	if err != nil && !errors.Is(err, cftoken.ErrNotFound) {
		return fmt.Errorf("%w; deleting token %s also failed (%v): delete it in the dashboard before %s", cause, m.ID, err, p.Request.ExpiresOn.Format(time.RFC3339))
	}
	// Tell post there is nothing left to revoke.
	a.SaveState(stateTokenID, "")
	return fmt.Errorf("%w; token %s was deleted", cause, m.ID)
}

// deleteByName deletes every token of the owner that carries the plan's name.
func deleteByName(ctx context.Context, c *cftoken.Client, p *Plan) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ts, err := c.List(ctx, p.Owner, p.AccountID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range ts {
		if t.Name != p.Request.Name {
			continue
		}
		if err := c.Delete(ctx, p.Owner, p.AccountID, t.ID); err != nil && !errors.Is(err, cftoken.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

func explainCreate(err error, cfg *config.Config) error {
	var ae *cftoken.APIError
	if errors.As(err, &ae) && ae.Has(9109) {
		if cfg.Owner == config.OwnerAccount {
			return fmt.Errorf("%w: the bootstrap token lacks Account API Tokens Write for account %s; edit it in the dashboard", err, cfg.AccountID)
		}
		return fmt.Errorf("%w: the bootstrap token lacks API Tokens Write (a user token made from the \"Create additional tokens\" template)", err)
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
			err = fmt.Errorf("Cloudflare says the new token is %q, not active", status)
		}
		last = err
		var ae *cftoken.APIError
		if errors.As(err, &ae) && !ae.Retryable() && !ae.Has(1000) {
			return err
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

// publish hands the token to later steps: outputs, env and a summary. It writes nothing unless
// every value is safe to write.
func publish(a *githubactions.Action, cfg *config.Config, p *Plan, m *cftoken.Minted) error {
	filter := cidrList(p.Request.CIDRs)
	outs := [][2]string{
		{"token", m.Secret},
		{"token-id", m.ID},
		{"expires-on", p.Request.ExpiresOn.Format(time.RFC3339)},
		{"name", p.Request.Name},
		{"ip-filter", filter},
	}
	for _, o := range outs {
		if err := fileSafe("output "+o[0], o[1]); err != nil {
			return err
		}
	}
	for _, o := range outs {
		a.SetOutput(o[0], o[1])
	}
	if cfg.ExportEnv != "" {
		a.SetEnv(cfg.ExportEnv, m.Secret)
		if cfg.AccountID != "" {
			a.SetEnv("CLOUDFLARE_ACCOUNT_ID", cfg.AccountID)
		}
	}
	where := "any address"
	if filter != "" {
		where = filter
	}
	a.Infof("Minted token %s (id %s), valid until %s (%s), usable from %s.", p.Request.Name, m.ID, p.Request.ExpiresOn.Format(time.RFC3339), human(p.TTL), where)
	if cfg.ExportEnv != "" {
		a.Infof("Exported it to later steps as %s.", cfg.ExportEnv)
	}
	a.AddStepSummary(summary(p, m))
	return nil
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

func summary(p *Plan, m *cftoken.Minted) string {
	var b strings.Builder
	b.WriteString("### cfmint: minted a Cloudflare API token\n\n")
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Name | `%s` |\n", mdEscape(p.Request.Name))
	fmt.Fprintf(&b, "| Token id | `%s` |\n", m.ID)
	if p.Owner == cftoken.OwnerAccount {
		fmt.Fprintf(&b, "| Owner | account `%s` |\n", p.AccountID)
	} else {
		b.WriteString("| Owner | user |\n")
	}
	fmt.Fprintf(&b, "| Expires | %s (%s) |\n", p.Request.ExpiresOn.Format(time.RFC3339), human(p.TTL))
	if len(p.Request.CIDRs) == 0 {
		b.WriteString("| IP filter | none: usable from any address |\n")
	} else {
		fmt.Fprintf(&b, "| IP filter | `%s` |\n", cidrList(p.Request.CIDRs))
	}
	b.WriteString("\n| Permission | Resources |\n|---|---|\n")
	zoneNames := map[string]string{}
	for _, z := range p.Zones {
		zoneNames[policy.ZoneKey(z.ID)] = z.Name
	}
	for _, pol := range p.Request.Policies {
		res := resourceText(pol.Resources, zoneNames)
		for _, g := range pol.Groups {
			fmt.Fprintf(&b, "| %s | %s |\n", mdEscape(g.Name), res)
		}
	}
	return b.String()
}

func resourceText(res map[string]any, zoneNames map[string]string) string {
	var out []string
	for k, v := range res {
		switch {
		case strings.HasPrefix(k, policy.ScopeZone+"."):
			id := strings.TrimPrefix(k, policy.ScopeZone+".")
			out = append(out, fmt.Sprintf("zone %s (`%s`)", mdEscape(zoneNames[k]), id))
		case strings.HasPrefix(k, policy.ScopeAccount+"."):
			id := strings.TrimPrefix(k, policy.ScopeAccount+".")
			if _, nested := v.(map[string]any); nested {
				out = append(out, fmt.Sprintf("every zone of account `%s`", id))
			} else {
				out = append(out, fmt.Sprintf("account `%s`", id))
			}
		default:
			out = append(out, "`"+mdEscape(k)+"`")
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
