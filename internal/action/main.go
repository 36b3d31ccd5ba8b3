package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// Main runs the main phase. By its inputs it mints (the default), revokes a token by id
// (token-id), or sweeps leftover tokens (sweep: true).
func Main(ctx context.Context, d Deps) error {
	a := newActions(d)
	if err := requireFiles(d, "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STATE"); err != nil {
		return report(a, err)
	}
	in, err := config.ReadInputs(ctx, d.Lookup)
	if err != nil {
		return report(a, err)
	}
	// Before anything can fail or return: whatever mode this run is in, post must see this
	// phase's state, not what an earlier step planted.
	claimState(d, a, in.BootstrapToken)
	cfg, err := config.Validate(in, runContext(d))
	if err != nil {
		return report(a, err)
	}
	if d.Timeout > 0 {
		cfg.Timeout = d.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	warnProxy(d, a, cfg)

	switch cfg.Mode {
	case config.ModeRevoke:
		return report(a, revokeStep(ctx, d, a, cfg))
	case config.ModeSweep:
		return report(a, sweepStep(ctx, d, a, cfg))
	}

	if cfg.DryRun {
		plan, err := resolve(ctx, d, a, cfg)
		if err != nil {
			return report(a, interrupted(ctx, cfg.Timeout, err))
		}
		return report(a, dryRun(a, cfg, plan, Notes{Proxy: proxyFor(d, cfg.APIBase)}))
	}
	m := minterFor(d, a, cfg)
	hooks := stateHooks(a)
	t, err := m.Mint(ctx, hooks)
	if err != nil {
		err = interrupted(ctx, cfg.Timeout, err)
		failSummary(d, a, m.Via(), err)
		return report(a, err)
	}
	if err := publish(a, cfg, t, Notes{Via: m.Via(), Proxy: proxyFor(d, cfg.APIBase)}); err != nil {
		return report(a, m.Undo(ctx, t, hooks, err))
	}
	if !cfg.Revoke {
		// Handed out: now revoke: false may keep it.
		a.SaveState(stateRevoke, "false")
	}
	return nil
}

// failSummary writes why no token was minted to the step summary, which would otherwise stay
// empty: a denied mint is what a reader of the run looks for there. The lines are the error's,
// which never hold a secret and are log-safe already, escaped for markdown.
func failSummary(d Deps, a *githubactions.Action, via string, err error) {
	if d.getenv("GITHUB_STEP_SUMMARY") == "" {
		return
	}
	var b strings.Builder
	b.WriteString("### cfmint: no token was minted\n\n")
	if via != "" {
		fmt.Fprintf(&b, "Through the broker `%s`:\n\n", mdEscape(logsafe.String(via)))
	}
	for _, line := range phrase.Lines(err) {
		fmt.Fprintf(&b, "- %s\n", mdEscape(line))
	}
	a.AddStepSummary(b.String())
}

// stateHooks record in the step's state what post needs to revoke the token, or to find it when
// main never learned its id.
func stateHooks(a *githubactions.Action) mint.Hooks {
	return mint.Hooks{
		Creating: func(p *mint.Plan) {
			// Before the create: if this process dies with the create in flight, post (or a
			// sweep) can still find the token by its name, which is unique per run and step.
			a.SaveState(stateOwner, string(p.Owner))
			a.SaveState(stateAccountID, p.AccountID)
			a.SaveState(stateName, p.Request.Name)
			a.SaveState(stateExpiresOn, p.Request.ExpiresOn.Format(time.RFC3339))
			// revoke: false applies only to a token that was handed out: until publish has run,
			// post must delete whatever this step created.
			a.SaveState(stateRevoke, "true")
			a.SaveState(statePending, "true")
		},
		// State first: if anything after the create is interrupted, post still knows what to
		// revoke.
		Created: func(id string) {
			a.SaveState(stateTokenID, id)
			a.SaveState(statePending, "")
		},
		Settled: func() { a.SaveState(statePending, "") },
		// Tell post there is nothing left to revoke.
		Undone: func(string) { a.SaveState(stateTokenID, "") },
		Mask:   a.AddMask,
	}
}

// interrupted adds to err why the phase stopped early when its context ended: "context deadline
// exceeded" or "context canceled" alone does not tell a user what happened, or what to change.
func interrupted(ctx context.Context, timeout time.Duration, err error) error {
	var why error
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = fmt.Errorf("input \"timeout\": the phase did not finish within %s, because Cloudflare or the network was too slow; retry, or raise timeout", human(timeout))
	case errors.Is(ctx.Err(), context.Canceled):
		why = fmt.Errorf("the step was cancelled (%v) before cfmint finished", context.Cause(ctx))
	default:
		return err
	}
	return errors.Join(append(mint.Split(err), why)...)
}

// warnProxy says when a proxy changes the address Cloudflare sees, which the runner filter pins
// the token to.
func warnProxy(d Deps, ui mint.UI, cfg *config.Config) {
	if !cfg.IPFilter.Runner || cfg.Mode != config.ModeMint {
		return
	}
	if p := proxyFor(d, cfg.APIBase); p != "" {
		ui.Warningf("cfmint reaches Cloudflare through the proxy %s (HTTPS_PROXY), so Cloudflare sees the proxy's address and the token is pinned to that, not to the runner: whatever can send through the proxy can use the token, and steps that bypass it are refused. If the proxy is not one this runner is set up with, an earlier step of the job may have set it through $GITHUB_ENV", logsafe.String(p))
		return
	}
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if d.getenv(k) != "" {
			ui.Warningf("%s is set, but cfmint reaches Cloudflare without it (NO_PROXY, or a loopback address), so the token is pinned to the runner's own address: later steps that go through the proxy reach Cloudflare from the proxy's address, which the token's IP filter refuses", k)
			return
		}
	}
}

// named is a value handed to later steps: a step output, or an environment variable.
type named struct{ name, value string }

// publish hands the token to later steps: outputs, env and a summary. It writes nothing unless
// every value is safe to write.
func publish(a *githubactions.Action, cfg *config.Config, t *mint.Issued, n Notes) (err error) {
	// go-githubactions panics when it cannot write a file command; a half-published token must
	// still be deleted, so the panic becomes an error for the caller's undo.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("failed to write the step's outputs and environment: %v", r)
		}
	}()
	filter := mint.CIDRList(t.CIDRs)
	outs := []named{
		{"token", t.Secret},
		{"token-id", t.ID},
		{"expires-on", t.ExpiresOn.Format(time.RFC3339)},
		{"name", t.Name},
		{"ip-filter", filter},
	}
	var envs []named
	if cfg.ExportEnv != "" {
		envs = append(envs, named{cfg.ExportEnv, t.Secret})
		if t.AccountID != "" {
			envs = append(envs, named{"CLOUDFLARE_ACCOUNT_ID", t.AccountID})
		}
	}
	if t.R2Endpoint != "" {
		s3 := t.S3Secret()
		outs = append(outs, named{"r2-access-key-id", t.ID}, named{"r2-secret-access-key", s3}, named{"r2-endpoint", t.R2Endpoint})
		if cfg.ExportR2 {
			envs = append(envs, named{"AWS_ACCESS_KEY_ID", t.ID}, named{"AWS_SECRET_ACCESS_KEY", s3}, named{"AWS_ENDPOINT_URL_S3", t.R2Endpoint})
		}
	} else if cfg.ExportR2 {
		a.Warningf("export-r2 is true, but the token carries no R2 permission, so there are no S3 credentials to export")
	}
	for _, o := range append(slices.Clone(outs), envs...) {
		if err := fileSafe(o.name, o.value); err != nil {
			return err
		}
	}
	for _, o := range outs {
		a.SetOutput(o.name, o.value)
	}
	for _, e := range envs {
		a.SetEnv(e.name, e.value)
	}
	// The ttl the token has, not the one asked for: a broker's rule can shorten it.
	ttl := max(time.Until(t.ExpiresOn).Round(time.Minute), 0)
	where := "any address"
	if filter != "" {
		where = filter
	}
	a.Infof("Minted token %s (id %s), valid until %s (%s), usable from %s.", logsafe.String(t.Name), logsafe.String(t.ID), t.ExpiresOn.Format(time.RFC3339), human(ttl), where)
	if len(envs) > 0 {
		var names []string
		for _, e := range envs {
			names = append(names, e.name)
		}
		a.Infof("Exported to later steps: %s.", strings.Join(names, ", "))
	}
	if a.Getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(Summary("### cfmint: minted a Cloudflare API token", t, ttl, n))
	}
	return nil
}

// dryRun prints the request a mint would send, and its summary, and creates nothing.
func dryRun(a *githubactions.Action, cfg *config.Config, p *mint.Plan, n Notes) error {
	pv, err := mint.Preview(cfg.APIBase, p)
	if err != nil {
		return err
	}
	pretty, err := json.MarshalIndent(pv, "", "  ")
	if err != nil {
		return err
	}
	a.Infof("dry-run: everything resolved; this is the request cfmint would send, and nothing was created:")
	a.Infof("%s", logsafe.JSON(pretty))
	for _, o := range []named{{"name", p.Request.Name}, {"ip-filter", mint.CIDRList(p.Request.CIDRs)}, {"expires-on", p.Request.ExpiresOn.Format(time.RFC3339)}} {
		if err := fileSafe(o.name, o.value); err != nil {
			return err
		}
		a.SetOutput(o.name, o.value)
	}
	if a.Getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(Summary("### cfmint: dry run (no token was created)", p.Issued(nil), p.TTL, n) + "\n```json\n" + string(pretty) + "\n```\n")
	}
	return nil
}

// Notes are what a summary says besides the token itself.
type Notes struct {
	// Via names the broker that minted the token; empty when minted directly.
	Via string
	// Proxy is the proxy (host:port) that requests to Cloudflare went through: Cloudflare then
	// saw the proxy's address, and the runner filter holds it.
	Proxy string
}

// Summary renders a token as the step summary's markdown. It holds no secret.
func Summary(title string, t *mint.Issued, ttl time.Duration, n Notes) string {
	var b strings.Builder
	b.WriteString(title + "\n\n")
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Name | `%s` |\n", mdEscape(t.Name))
	if t.ID != "" {
		fmt.Fprintf(&b, "| Token id | `%s` |\n", t.ID)
	}
	if t.Owner == cftoken.OwnerAccount {
		fmt.Fprintf(&b, "| Owner | account `%s` |\n", mdEscape(t.AccountID))
	} else {
		b.WriteString("| Owner | user |\n")
	}
	if n.Via != "" {
		fmt.Fprintf(&b, "| Broker | %s (rule `%s`) |\n", mdEscape(n.Via), mdEscape(t.Rule))
	}
	fmt.Fprintf(&b, "| Expires | %s (%s) |\n", t.ExpiresOn.Format(time.RFC3339), human(ttl))
	if len(t.CIDRs) == 0 {
		b.WriteString("| IP filter | none: usable from any address |\n")
	} else {
		fmt.Fprintf(&b, "| IP filter | `%s` |\n", mint.CIDRList(t.CIDRs))
	}
	if n.Proxy != "" {
		fmt.Fprintf(&b, "| Proxy | cfmint reached Cloudflare through `%s`, so Cloudflare saw the proxy's address, not the runner's: the IP filter holds that |\n", mdEscape(n.Proxy))
	}
	seen := map[string]bool{}
	for _, g := range t.Grants {
		if g.Lasting != "" && !seen[g.Permission] {
			seen[g.Permission] = true
			fmt.Fprintf(&b, "| **Lasting access** | **%s** %s; revoking the token does not undo that (allow-lasting-access: true) |\n", mdEscape(g.Permission), mdEscape(g.Lasting))
		}
	}
	b.WriteString("\n| Permission | Resources |\n|---|---|\n")
	for _, g := range t.Grants {
		perm := mdEscape(g.Permission)
		if g.Lasting != "" {
			perm += " (lasting access)"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", perm, resourceText(g.Resources))
	}
	return b.String()
}

func resourceText(rs []mint.Resource) string {
	var out []string
	for _, r := range rs {
		switch r.Kind {
		case "zone":
			out = append(out, fmt.Sprintf("zone %s (`%s`)", mdEscape(r.Name), mdEscape(r.ID)))
		case "all-zones":
			out = append(out, fmt.Sprintf("every zone of account `%s`", mdEscape(r.ID)))
		case "account":
			out = append(out, fmt.Sprintf("account `%s`", mdEscape(r.ID)))
		case "bucket":
			out = append(out, fmt.Sprintf("R2 bucket `%s` (%s)", mdEscape(r.Name), mdEscape(r.Jurisdiction)))
		default:
			out = append(out, "`"+mdEscape(r.Name)+"`")
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
