package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/netaddr"
)

// RequestKeys are the inputs a broker's mint request carries, by their input names; the action
// adds the step's nonce.
var RequestKeys = []string{"preset", "permissions", "zones", "r2-buckets", "ttl", "ip-filter"}

// ParseBroker checks the broker input: an absolute URL, https to any host or http only to a
// loopback address, with no user information, query or fragment (cfmint adds its own paths).
// The trailing slash is dropped. The error names the value, not the input.
func ParseBroker(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "" || u.Hostname() == "":
		shown := quote(s) + " is"
		if strings.Contains(s, "@") {
			shown = "the value is" // it may hold a password
		}
		return "", fmt.Errorf("%s not an absolute URL with a host; write the broker's address, such as https://cfmint.example.com", shown)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s has scheme %s; use https (or http to a loopback address, such as http://127.0.0.1:8080)", quote(s), logsafe.String(u.Scheme))
	case u.User != nil:
		return "", fmt.Errorf("%s holds user information (user:password@); remove it", quote(u.Redacted()))
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("%s has a query (?...); remove it: cfmint adds its own paths and queries", quote(s))
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", fmt.Errorf("%s has a fragment (#...); remove it", quote(s))
	case u.Scheme == "http" && !netaddr.IsLoopbackHost(u.Hostname()):
		return "", fmt.Errorf("%s is http to %s, which is not a loopback address, so ID tokens and minted tokens would cross the network unencrypted; use https (http is allowed only to 127.0.0.1, ::1 or localhost)", quote(s), quote(u.Hostname()))
	}
	return strings.TrimRight(s, "/"), nil
}

// validateBroker reads broker and audience. It runs before validateAccess, which needs no
// bootstrap token and no account id for a broker: the broker holds the one, its rule decides
// the other.
func validateBroker(in *Inputs, c *Config) []error {
	b := val(in.Broker)
	if b == "" {
		if val(in.Audience) != "" {
			return []error{inputError("audience", "is set but broker is empty; audience is the ID token's audience for a broker: set broker too, or remove audience")}
		}
		return nil
	}
	var errs []error
	base, err := ParseBroker(b)
	if err != nil {
		errs = append(errs, inputError("broker", "%v", err))
	}
	c.Broker = base
	c.Audience = base
	if a := val(in.Audience); a != "" {
		if strings.IndexFunc(a, invisible) >= 0 {
			errs = append(errs, inputError("audience", "%s contains control or invisible characters; write the audience the broker's policy names", quote(a)))
		}
		c.Audience = a
	}
	if val(in.BootstrapToken) != "" {
		errs = append(errs, inputError("broker", "cannot be combined with bootstrap-token: with a broker, the job holds no bootstrap token (the broker does); remove bootstrap-token, or remove broker to mint directly"))
	}
	if val(in.AccountID) != "" {
		errs = append(errs, inputError("account-id", "is set, but with broker the broker's rule decides the account (and token-owner); remove account-id"))
	}
	if o, _ := cftoken.ParseOwner(val(in.TokenOwner)); o == cftoken.OwnerUser {
		errs = append(errs, inputError("token-owner", "is user, but with broker the broker's rule decides who owns the token; remove token-owner"))
	}
	return errs
}

// brokerModes checks what a broker cannot do, once the mode is known, and keeps the request as
// the workflow wrote it: the broker parses it with these same parsers.
func brokerModes(in *Inputs, c *Config) []error {
	if c.Broker == "" {
		return nil
	}
	var errs []error
	if c.Mode == ModeSweep {
		errs = append(errs, inputError("sweep", "cannot be combined with broker: a broker revokes only the tokens of the run that asks, and sweeping leftovers is its operator's job; sweep in a workflow with bootstrap-token, or leave sweep out"))
	}
	if c.DryRun {
		errs = append(errs, inputError("dry-run", "cannot be combined with broker: the broker decides and mints in one exchange, so nothing can be previewed without minting; try the request with `cfmint policy test`, or leave dry-run out"))
	}
	if val(in.Name) != "" {
		errs = append(errs, inputError("name", "cannot be combined with broker: the broker names the token after the run and rule, so that it can tell whose it is; remove name"))
	}
	if c.AllowLastingAccess {
		errs = append(errs, inputError("allow-lasting-access", "cannot be combined with broker: the broker's policy decides what a token may carry; remove allow-lasting-access"))
	}
	c.BrokerRequest = map[string]string{}
	for k, v := range map[string]string{"preset": in.Preset, "permissions": in.Permissions, "zones": in.Zones, "r2-buckets": in.R2Buckets, "ttl": in.TTL, "ip-filter": in.IPFilter} {
		if v = val(v); v != "" {
			c.BrokerRequest[k] = v
		}
	}
	return errs
}
