package netaddr

import (
	"net/netip"
	"strings"
)

// IsLoopbackHost reports whether host (a URL's Hostname(): no port, no brackets) cannot leave
// the machine: "localhost" in any case, or a loopback IP literal (127.0.0.0/8, ::1, or an IPv4
// loopback address mapped into IPv6). Nothing else is: not a name that merely resolves to a
// loopback address (DNS or /etc/hosts could say otherwise), not "localhost." or a subdomain of
// localhost, not an address with a zone (fe80::1%eth0 names an interface, and a zone on a
// loopback literal is no URL Go or a browser writes), and not the short or zero-padded forms
// (127.1, 127.000.000.001) that some resolvers read as other addresses.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}
