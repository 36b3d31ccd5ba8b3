package action

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/netaddr"
)

// UI is where a mint's messages go: the runner's log commands in a workflow, stderr in a
// terminal. *githubactions.Action satisfies it.
type UI interface {
	Infof(format string, args ...any)
	mint.UI
}

// Engine is the mint engine with the bootstrap token, talking to the API at base (a validated
// config's APIBase: in the action, the api-base-url input).
func Engine(d Deps, ui UI, base, token string) *mint.Engine {
	return &mint.Engine{
		Tokens: newClient(d, base, token, 0),
		// The new token's verify has its own retry loop: one attempt per call inside it.
		Once:         newClient(d, base, token, 1),
		UI:           ui,
		VerifyWindow: d.VerifyWindow,
	}
}

// Resolve plans the mint cfg asks for: the engine's lookups, and meanwhile the runner's address
// when the token is to be pinned to it.
func Resolve(ctx context.Context, d Deps, ui UI, cfg *config.Config) (*mint.Plan, error) {
	r := mint.FromConfig(cfg)
	if cfg.IPFilter.Runner {
		r.Pin = func(ctx context.Context) ([]netip.Prefix, error) { return runnerPin(ctx, d, ui, cfg.APIBase) }
	}
	p, err := Engine(d, ui, cfg.APIBase, cfg.BootstrapToken).Plan(ctx, r)
	if err == nil && cfg.IPFilter.None {
		ui.Warningf("ip-filter is none: the token will work from any address on the internet until it expires or is revoked. Prefer the default, runner.")
	}
	return p, err
}

// runnerPin is the runner's own address as the API host sees it, one prefix per family.
func runnerPin(ctx context.Context, d Deps, ui UI, apiBase string) ([]netip.Prefix, error) {
	var fellBack error
	fb := traceFallback(d, ui)
	addrs, err := netaddr.Runner(ctx, d.HTTPClient, apiBase, netaddr.Options{
		Fallback:   fb,
		OnFallback: func(err error) { fellBack = err },
		OnNoIPv6Route: func(err error) {
			ui.Debugf("the IPv6 trace failed for lack of a route (%v): the token is pinned to this runner's IPv4 address only. A container action runs on Docker's network, which has no IPv6 by default: if later steps run on a dual-stack host and reach Cloudflare over IPv6, set ip-filter: runner, <the host's IPv6 prefix>", err)
		},
	})
	if err != nil {
		return nil, field.Errorf("ip-filter", "could not find the runner's public address (%v); no token was minted, because cfmint never falls back to an unfiltered token. Retry, or set ip-filter to the runner's CIDRs", err)
	}
	if fellBack != nil && len(addrs) > 0 {
		if fb == "" {
			fb = netaddr.DefaultFallback
		}
		ui.Warningf("the runner's address (%v) comes from the fallback %s, because the API host's own trace gave none (%v); the fallback may see the runner by another address than the API does: if the token is refused with 9109 \"Cannot use the access token from location\", set ip-filter to the runner's CIDRs", addrs, logsafe.String(fb), fellBack)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		out = append(out, cftoken.PrefixFor(a))
	}
	return out, nil
}

// traceFallback is CFMINT_TRACE_FALLBACK_URL in a terminal; in a job's phases only when it names a
// loopback address (a test's stand-in), else the default. An earlier step can write the variable, and a trace it chose could pin the
// token to any address it likes; the default is Cloudflare's own.
func traceFallback(d Deps, ui UI) string {
	fb := strings.TrimSpace(d.getenv("CFMINT_TRACE_FALLBACK_URL"))
	if fb == "" {
		return ""
	}
	if d.Terminal {
		return fb
	}
	if u, err := url.Parse(fb); err == nil && (u.Scheme == "http" || u.Scheme == "https") && config.IsLoopbackHost(u.Hostname()) {
		return fb
	}
	ui.Warningf("ignored CFMINT_TRACE_FALLBACK_URL (%s): the action's phases take a trace fallback only on a loopback address, since an earlier step of the job can set the variable; the fallback is %s", logsafe.String(fb), netaddr.DefaultFallback)
	return ""
}

// human prints a duration the way a user writes it.
func human(d time.Duration) string { return mint.Human(d) }
