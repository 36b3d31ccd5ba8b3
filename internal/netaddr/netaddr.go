// Package netaddr finds the runner's public address as Cloudflare's API sees it.
package netaddr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/cfmint/cfmint/internal/logsafe"
)

// TraceURL is the /cdn-cgi/trace address on the API's own host: asking the host that will check
// the token's IP filter is the only way to learn the address that filter will see.
func TraceURL(apiBase string) (string, error) {
	u, err := url.Parse(apiBase)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("API base URL %q is not an http(s) URL", apiBase)
	}
	return u.Scheme + "://" + u.Host + "/cdn-cgi/trace", nil
}

// LookupTimeout bounds one trace request.
const LookupTimeout = 10 * time.Second

// Lookup asks the trace endpoint for the address it saw.
func Lookup(ctx context.Context, hc *http.Client, traceURL string) (netip.Addr, error) {
	// One trace may hang; it must not use up the phase's whole timeout and leave none for the
	// fallback.
	ctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, traceURL, nil)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to build the trace request: %w", err)
	}
	res, err := hc.Do(req)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to ask %s for the runner's address: %w", traceURL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return netip.Addr{}, fmt.Errorf("failed to ask %s for the runner's address: it answered %d", traceURL, res.StatusCode)
	}
	a, err := ParseTrace(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("failed to read the runner's address from %s: %w", traceURL, err)
	}
	return a, nil
}

// ParseTrace reads the ip= line of a trace answer. The format is key=value lines with no
// documented order, so it is parsed by key, not by position.
func ParseTrace(r io.Reader) (netip.Addr, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || k != "ip" {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(v))
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("ip=%q is not an IP address", logsafe.Clip(v, 64))
		}
		return a.Unmap(), nil
	}
	if err := sc.Err(); err != nil {
		return netip.Addr{}, err
	}
	return netip.Addr{}, errors.New("the answer has no ip= line")
}

// Options tune Runner.
type Options struct {
	// Fallback is a second trace URL, asked only when the API host's trace gives no address.
	// Empty: https://www.cloudflare.com/cdn-cgi/trace (the same edge network, so the same view
	// of the runner).
	Fallback string
	// OnFallback, when set, is told why the API host's trace gave no address, before the
	// fallback is asked: the fallback may see the runner by another address than the API does,
	// so the user should hear of it.
	OnFallback func(primary error)
	// Grace is how long to wait for the second address family once the first has answered;
	// default 1s.
	Grace time.Duration
	// OnNoIPv6Route, when set, is told when the IPv6 trace failed because this host has no
	// IPv6 route (see NoRoute). A container on Docker's default network has none even on a
	// dual-stack host, whose own later steps may then reach Cloudflare over IPv6: the user
	// should be able to see why no IPv6 address was pinned.
	OnNoIPv6Route func(err error)
}

// DefaultFallback is the trace asked when the API host's own trace fails.
const DefaultFallback = "https://www.cloudflare.com/cdn-cgi/trace"

// Runner finds the runner's public addresses as the API host sees them. It asks the trace over
// IPv4 and over IPv6 separately, because a dual-stack runner may reach the API over either and
// the token must work both ways. When the API host's trace gives nothing, it asks the fallback.
func Runner(ctx context.Context, hc *http.Client, apiBase string, o Options) ([]netip.Addr, error) {
	primary, err := TraceURL(apiBase)
	if err != nil {
		return nil, err
	}
	if o.Grace <= 0 {
		o.Grace = time.Second
	}
	addrs, perr := bothFamilies(ctx, hc, primary, o.Grace, o.OnNoIPv6Route)
	if len(addrs) > 0 {
		return addrs, nil
	}
	fb := o.Fallback
	if fb == "" {
		fb = DefaultFallback
	}
	if o.OnFallback != nil {
		o.OnFallback(perr)
	}
	addrs, ferr := bothFamilies(ctx, hc, fb, o.Grace, o.OnNoIPv6Route)
	if len(addrs) > 0 {
		return addrs, nil
	}
	return nil, fmt.Errorf("%v; fallback: %v", perr, ferr)
}

// bothFamilies asks one trace URL over IPv4 and IPv6 at once. Once one family has answered, the
// other gets grace more time: on a runner without IPv6 its dial fails at once, but a network
// that drops IPv6 silently must not hold up the job.
func bothFamilies(ctx context.Context, hc *http.Client, url string, grace time.Duration, noV6 func(error)) ([]netip.Addr, error) {
	t, ok := hc.Transport.(*http.Transport)
	if !ok || t == nil {
		a, err := Lookup(ctx, hc, url)
		if err != nil {
			return nil, err
		}
		return []netip.Addr{a}, nil
	}
	type result struct {
		network string
		a       netip.Addr
		err     error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 2)
	for _, network := range []string{"tcp4", "tcp6"} {
		c := &http.Client{Transport: familyTransport(t, network), Timeout: hc.Timeout}
		go func() {
			a, err := Lookup(ctx, c, url)
			results <- result{network, a, err}
		}()
	}
	var out []netip.Addr
	var errs []error
	var timer <-chan time.Time
	for n := 0; n < 2; n++ {
		select {
		case r := <-results:
			if r.err != nil {
				if r.network == "tcp6" && noV6 != nil && NoRoute(r.err) {
					noV6(r.err)
				}
				errs = append(errs, r.err)
				continue
			}
			if !containsAddr(out, r.a) {
				out = append(out, r.a)
			}
			if timer == nil {
				timer = time.After(grace)
			}
		case <-timer:
			n = 2
		}
	}
	if len(out) == 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// NoRoute reports whether a dial failed because the host has no route for the address family
// at all (no interface address, no default route, no address of that family for the name), as
// opposed to a path that exists but failed.
func NoRoute(err error) bool {
	var ae *net.AddrError
	if errors.As(err, &ae) && strings.Contains(ae.Err, "no suitable address") {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.EADDRNOTAVAIL, syscall.EAFNOSUPPORT} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// familyTransport is t limited to one address family. A proxy, when set, is still used: then
// Cloudflare sees the proxy's address, which is what the token's filter must allow.
func familyTransport(t *http.Transport, network string) *http.Transport {
	c := t.Clone()
	dial := c.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	c.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
		return dial(ctx, network, addr)
	}
	// Each family needs its own connection; a pooled one could be of the other family.
	c.DisableKeepAlives = true
	return c
}
