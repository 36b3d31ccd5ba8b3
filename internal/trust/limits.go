package trust

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cfmint/cfmint/internal/logsafe"
)

// A rule's fair shares: how many tokens one repository may mint under it in a sliding window
// (max_mints), and how many of its tokens may be live at once (max_active). The broker counts
// both per issuer and repository id (GitLab: project_id), in its replay store, so that every
// replica sees the same counts.
//
// The defaults leave room for everyone else on the one account and bootstrap token:
//   - 60 mints an hour is one a minute, about 4 Cloudflare calls a job, so 20 calls in 5 minutes of
//     the bootstrap token's 1200: 60 repositories at their limit at once still fit.
//   - 10 live tokens is 2% of the account's 500-token quota: 50 repositories each holding their
//     share fill it, and no single one can.
const (
	DefaultMaxMints   = 60
	DefaultMintWindow = time.Hour
	DefaultMaxActive  = 10
)

// Bounds of the two keys: a window from a minute to a day, a count no larger than Cloudflare's
// own ceilings make useful (the 500-token quota, 1200 calls per 5 minutes).
const (
	MaxMaxMints   = 10000
	MinMintWindow = time.Minute
	MaxMintWindow = 24 * time.Hour
	MaxMaxActive  = 500
)

// MaxMints is how many tokens one repository may mint under the rule in any window of the
// duration returned.
func (r *Rule) MaxMints() (int, time.Duration) { return r.maxMints, r.mintWindow }

// MaxActive is how many tokens minted under the rule one repository may hold live at once.
func (r *Rule) MaxActive() int { return r.maxActive }

func (ps *parser) maxMints(n *yaml.Node, where string) (int, time.Duration) {
	const allowed = "write N/<duration> such as 60/1h: 1 to 10000 tokens per repository in a window of 1m to 24h (default 60/1h)"
	if !ps.plain(n, where, "max_mints") {
		return 0, 0
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		ps.errf(where, "max_mints", "must be N/<duration>; %s", allowed)
		return 0, 0
	}
	s := strings.TrimSpace(n.Value)
	num, dur, ok := strings.Cut(s, "/")
	if !ok {
		ps.errf(where, "max_mints", "%q has no window; %s", logsafe.Clip(s, 80), allowed)
		return 0, 0
	}
	count, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || count < 1 || count > MaxMaxMints {
		ps.errf(where, "max_mints", "%q: %q is not a count from 1 to %d; %s", logsafe.Clip(s, 80), logsafe.Clip(num, 40), MaxMaxMints, allowed)
		return 0, 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(dur))
	switch {
	case err != nil:
		ps.errf(where, "max_mints", "%q: %q is not a duration; %s", logsafe.Clip(s, 80), logsafe.Clip(dur, 40), allowed)
	case d < MinMintWindow || d > MaxMintWindow:
		ps.errf(where, "max_mints", "%q: the window %s is outside 1m to 24h; %s", logsafe.Clip(s, 80), logsafe.Clip(dur, 40), allowed)
	case d%time.Second != 0:
		ps.errf(where, "max_mints", "%q: the window has a fraction of a second; %s", logsafe.Clip(s, 80), allowed)
	default:
		return count, d
	}
	return 0, 0
}

func (ps *parser) maxActive(n *yaml.Node, where string) int {
	const allowed = "write a whole number from 1 to 500, unquoted (default 10)"
	if !ps.plain(n, where, "max_active") {
		return 0
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		ps.errf(where, "max_active", "%q is not a number of tokens; %s", logsafe.Clip(n.Value, 80), allowed)
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 1 || v > MaxMaxActive {
		ps.errf(where, "max_active", "%q is outside 1 to 500 (the account holds at most 500 tokens); %s", logsafe.Clip(n.Value, 80), allowed)
		return 0
	}
	return v
}
