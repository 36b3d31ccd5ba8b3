// Package netaddr finds the runner's public address as Cloudflare's API sees it.
package netaddr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
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

// Lookup asks the trace endpoint for the address it saw.
func Lookup(ctx context.Context, hc *http.Client, traceURL string) (netip.Addr, error) {
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
			return netip.Addr{}, fmt.Errorf("ip=%q is not an IP address", clip(v))
		}
		return a.Unmap(), nil
	}
	if err := sc.Err(); err != nil {
		return netip.Addr{}, err
	}
	return netip.Addr{}, errors.New("the answer has no ip= line")
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
