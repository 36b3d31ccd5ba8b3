package config

import "github.com/cfmint/cfmint/internal/mint"

// MintRequest is the request a validated config asks the engine for, without its Pin: each
// front end knows how to find the address the token must be pinned to.
func (c *Config) MintRequest() mint.Request {
	return mint.Request{
		Owner:       c.Owner,
		AccountID:   c.AccountID,
		Preset:      c.Preset,
		Permissions: c.Permissions,
		ZoneNames:   c.Zones.Names,
		ZoneIDs:     c.Zones.IDs,
		AllZones:    c.Zones.All,
		Buckets:     c.Buckets,
		TTL:         c.TTL,
		Name:        c.Name,
		CIDRs:       c.IPFilter.CIDRs,

		AllowLastingAccess: c.AllowLastingAccess,
	}
}
