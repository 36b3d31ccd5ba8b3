package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// namePrefix starts the name of every token the broker mints. The name is the broker's only
// record of whom a token was minted for: a revoke reads it back from Cloudflare, so the broker
// keeps no state and any replica can revoke what another minted.
const namePrefix = "cfmint-broker:"

// maxName is Cloudflare's limit on a token name.
const maxName = 120

// Run is the run a token is minted for, from the ID token's issuer and claims.
type Run struct {
	// Issuer is a short hash of the token's issuer: two issuers (github.com and a GHES, or
	// GitLab) number their repositories and runs independently.
	Issuer       string
	RepositoryID string // repository_id (GitHub) or project_id (GitLab)
	Repository   string // repository (GitHub) or project_path (GitLab); for people reading names
	RunID        string // run_id or pipeline_id
	// Attempt is run_attempt (GitHub); GitLab has none, and its job_id stands in, so that one
	// job of a pipeline cannot revoke another's tokens.
	Attempt string
}

var (
	digits = regexp.MustCompile(`^[0-9]{1,20}$`)
	// NoncePattern is what a client's nonce looks like: it must not hold the name's separator.
	NoncePattern = regexp.MustCompile(`^[a-z0-9]{8,32}$`)
)

// runOf reads the run a token is for from verified claims; ok is false when a claim the binding
// needs is missing or malformed.
func runOf(issuer string, c map[string]string) (Run, bool) {
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v := c[k]; v != "" {
				return v
			}
		}
		return ""
	}
	r := Run{
		RepositoryID: pick("repository_id", "project_id"),
		Repository:   pick("repository", "project_path"),
		RunID:        pick("run_id", "pipeline_id"),
		Attempt:      pick("run_attempt", "job_id"),
	}
	sum := sha256.Sum256([]byte(issuer))
	r.Issuer = hex.EncodeToString(sum[:3])
	ok := digits.MatchString(r.RepositoryID) && digits.MatchString(r.RunID) && digits.MatchString(r.Attempt)
	return r, ok
}

// runPrefix is how the names of every token minted for the run with that nonce start; with an
// empty nonce, for the run.
func runPrefix(r Run, nonce string) string {
	p := namePrefix + r.Issuer + ":" + r.RepositoryID + ":" + r.RunID + "." + r.Attempt + ":"
	if nonce != "" {
		p += nonce + ":"
	}
	return p
}

// tokenName is the name of a token minted for run, nonce and rule:
//
//	cfmint-broker:<issuer hash>:<repository id>:<run>.<attempt>:<nonce>:<rule>:<repository>
//
// Ids come first, so a name cut to Cloudflare's limit still says whom it is for; the repository's
// name is last, sanitised, and ends in a hash of the whole when cut.
func tokenName(r Run, nonce, rule string) string {
	name := runPrefix(r, nonce) + rule + ":" + sanitize(r.Repository)
	if len(name) <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	tail := "~" + hex.EncodeToString(sum[:4])
	return name[:maxName-len(tail)] + tail
}

// mintedFor reports whether a token's name says it was minted for run (any nonce).
func mintedFor(name string, r Run) bool { return strings.HasPrefix(name, runPrefix(r, "")) }

func sanitize(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == '/':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
