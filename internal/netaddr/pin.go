package netaddr

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
)

// UI is where Pin's notices go; *githubactions.Action and the CLI's stderr have it.
type UI interface {
	Warningf(format string, args ...any)
	Debugf(format string, args ...any)
}

// Pin is the runner's own address as the API host at apiBase sees it, one prefix (/32 or /128)
// per family, for a token's IP filter. fallback is the trace asked when the API host's own gives
// none (empty: DefaultFallback); each front end chooses it, since whoever can set it can choose
// the address the token is pinned to. Its error is a *field.Error for ip-filter.
func Pin(ctx context.Context, hc *http.Client, apiBase, fallback string, ui UI) ([]netip.Prefix, error) {
	var fellBack error
	addrs, err := Runner(ctx, hc, apiBase, Options{
		Fallback:   fallback,
		OnFallback: func(err error) { fellBack = err },
		OnNoIPv6Route: func(err error) {
			ui.Debugf("the IPv6 trace failed for lack of a route (%v): the token is pinned to this runner's IPv4 address only. A container action runs on Docker's network, which has no IPv6 by default: if later steps run on a dual-stack host and reach Cloudflare over IPv6, set ip-filter: runner, <the host's IPv6 prefix>", err)
		},
	})
	if err != nil {
		return nil, field.Errorf("ip-filter", "could not find the runner's public address (%v); no token was minted, because cfmint never falls back to an unfiltered token. Retry, or set ip-filter to the runner's CIDRs", err)
	}
	if fellBack != nil {
		if fallback == "" {
			fallback = DefaultFallback
		}
		ui.Warningf("the runner's address (%v) comes from the fallback %s, because the API host's own trace gave none (%v); the fallback may see the runner by another address than the API does: if the token is refused with 9109 \"Cannot use the access token from location\", set ip-filter to the runner's CIDRs", addrs, logsafe.String(fallback), fellBack)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
