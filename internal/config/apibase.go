package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/netaddr"
)

// DefaultAPIBase is Cloudflare's API: where the bootstrap token goes unless the workflow file
// names another base in api-base-url.
const DefaultAPIBase = "https://api.cloudflare.com/client/v4"

// ParseAPIBase checks a base URL for Cloudflare's API, which receives the bootstrap token with
// every request: absolute; https to any host, or http only to a loopback address (127.0.0.0/8,
// ::1 or localhost: a local stand-in such as the demo's); no user information, query or
// fragment. The trailing slash is dropped; empty gives DefaultAPIBase. The error names the
// value and what is allowed, not the input, so that each front end can say where the value came
// from (the api-base-url input, or $CLOUDFLARE_API_BASE_URL in a terminal).
func ParseAPIBase(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultAPIBase, nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "":
		shown := quote(s) + " is"
		if strings.Contains(s, "@") {
			shown = "the value is" // it may hold a password
		}
		return "", fmt.Errorf("%s not an absolute URL; write one such as %s", shown, DefaultAPIBase)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s has scheme %s; use https (or http to a loopback address, such as http://127.0.0.1:8787/client/v4)", quote(s), logsafe.String(u.Scheme))
	}
	if u.User != nil {
		// The password is a secret of its own: the value is shown with it replaced.
		return "", fmt.Errorf("%s holds user information (user:password@), which would go with every request; remove it", quote(u.Redacted()))
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", fmt.Errorf("%s has a query (?...); remove it: cfmint adds its own paths and queries to the base", quote(s))
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%s has a fragment (#...); remove it", quote(s))
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%s names no host; write one such as %s", quote(s), DefaultAPIBase)
	}
	if u.Scheme == "http" && !netaddr.IsLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("%s is http to %s, which is not a loopback address, so the bootstrap token would cross the network unencrypted; use https (http is allowed only to 127.0.0.1, ::1 or localhost)", quote(s), quote(u.Hostname()))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// IsCloudflareHost reports whether base (as ParseAPIBase returns it) is Cloudflare's own API
// host over https, so that the CLI can warn when $CLOUDFLARE_API_BASE_URL sends the bootstrap
// token elsewhere.
func IsCloudflareHost(base string) bool {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	return host == "api.cloudflare.com" && (u.Port() == "" || u.Port() == "443")
}
