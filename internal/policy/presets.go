package policy

import (
	"sort"
)

// Preset is a named minimum-permission set for a common job.
type Preset struct {
	Name string
	// Groups are API group names. Zone-scoped ones apply to the zones input, account-scoped ones
	// to the account.
	Groups []string
	// BucketGroups, when set, replace Groups if R2 buckets are named: the narrower grant.
	BucketGroups []string
	// Why says in one sentence why this is the least that does the job (the README quotes it).
	Why string
}

// Presets are Cloudflare's minimum permissions for common jobs.
var Presets = map[string]Preset{
	"workers-deploy": {
		Name:   "workers-deploy",
		Groups: []string{"Workers Scripts Write"},
		Why:    "`wrangler deploy` of a Worker to workers.dev uploads the script and enables it on the account's subdomain; both are Workers Scripts calls.",
	},
	"workers-deploy-routes": {
		Name:   "workers-deploy-routes",
		Groups: []string{"Workers Scripts Write", "Workers Routes Write", "Zone Read"},
		Why:    "a Worker served on a zone's routes also needs to write those routes, and wrangler reads the zone to find them.",
	},
	"r2-upload": {
		Name:         "r2-upload",
		Groups:       []string{"Workers R2 Storage Write"},
		BucketGroups: []string{"Workers R2 Storage Bucket Item Write"},
		Why:          "with `r2-buckets` it writes objects in those buckets only; without, it can write every bucket of the account.",
	},
	"dns-edit": {
		Name:   "dns-edit",
		Groups: []string{"DNS Write"},
		Why:    "creating, changing and deleting records of the named zones is all DNS automation does.",
	},
	"dns-read": {
		Name:   "dns-read",
		Groups: []string{"DNS Read"},
		Why:    "reading records (for drift checks or exports) never needs to change them.",
	},
	"zone-read": {
		Name:   "zone-read",
		Groups: []string{"Zone Read"},
		Why:    "reading a zone's settings and status, nothing more.",
	},
	"cache-purge": {
		Name:   "cache-purge",
		Groups: []string{"Cache Purge"},
		Why:    "purging the cache of the named zones is a permission of its own.",
	},
	"analytics-read": {
		Name:   "analytics-read",
		Groups: []string{"Account Analytics Read"},
		Why:    "reading the account's analytics, nothing more.",
	},
	"pages-deploy": {
		Name:   "pages-deploy",
		Groups: []string{"Pages Write"},
		Why:    "`wrangler pages deploy` uploads a deployment to a Pages project of the account.",
	},
	"kv-write": {
		Name:   "kv-write",
		Groups: []string{"Workers KV Storage Write"},
		Why:    "writing keys of the account's KV namespaces (KV has no narrower scope).",
	},
	"d1-write": {
		Name:   "d1-write",
		Groups: []string{"D1 Write"},
		Why:    "running migrations and queries on the account's D1 databases (D1 has no narrower scope).",
	},
}

// PresetNames lists the presets in a stable order.
func PresetNames() []string {
	names := make([]string, 0, len(Presets))
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
