package action

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/netaddr"
)

// UI is where a phase's messages go: the runner's log commands. *githubactions.Action satisfies
// it.
type UI interface {
	Infof(format string, args ...any)
	mint.UI
}

// engine is the mint engine with the bootstrap token, talking to the API at base (the api-base-url
// input).
func engine(d Deps, ui UI, base, token string) *mint.Engine {
	return mint.New(token, mint.Options{BaseURL: base, HTTPClient: d.HTTPClient, Backoff: d.Backoff, RequestTimeout: d.RequestTimeout, VerifyWindow: d.VerifyWindow, Sleep: d.Sleep, UI: ui})
}

// resolve plans the mint cfg asks for: the engine's lookups, and meanwhile the runner's address
// when the token is to be pinned to it.
func resolve(ctx context.Context, d Deps, ui UI, cfg *config.Config) (*mint.Plan, error) {
	r := cfg.MintRequest()
	if cfg.IPFilter.Runner {
		r.Pin = func(ctx context.Context) ([]netip.Prefix, error) {
			return netaddr.Pin(ctx, d.HTTPClient, cfg.APIBase, traceFallback(d, ui), ui)
		}
	}
	p, err := engine(d, ui, cfg.APIBase, cfg.BootstrapToken).Plan(ctx, r)
	if err == nil && cfg.IPFilter.None {
		ui.Warningf("ip-filter is none: the token will work from any address on the internet until it expires or is revoked. Prefer the default, runner.")
	}
	return p, err
}

// traceFallback is CFMINT_TRACE_FALLBACK_URL only when it names a loopback address (a test's
// stand-in), else the default. An earlier step of the job can write the variable, and a trace it
// chose could pin the token to any address it likes; the default is Cloudflare's own.
func traceFallback(d Deps, ui UI) string {
	fb := strings.TrimSpace(d.getenv("CFMINT_TRACE_FALLBACK_URL"))
	if fb == "" {
		return ""
	}
	if u, err := url.Parse(fb); err == nil && (u.Scheme == "http" || u.Scheme == "https") && netaddr.IsLoopbackHost(u.Hostname()) {
		return fb
	}
	ui.Warningf("ignored CFMINT_TRACE_FALLBACK_URL (%s): the action's phases take a trace fallback only on a loopback address, since an earlier step of the job can set the variable; the fallback is %s", logsafe.String(fb), netaddr.DefaultFallback)
	return ""
}

// human prints a duration the way a user writes it.
func human(d time.Duration) string { return mint.Human(d) }
