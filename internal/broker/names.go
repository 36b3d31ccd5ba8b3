package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"github.com/cfmint/cfmint/internal/mint"
)

// The name format of the broker's tokens is mint's (mint.BrokerName); what is the broker's own
// is reading the run from an ID token's claims and deciding from a name whether a token was
// minted for the caller's run.

var (
	digits = regexp.MustCompile(`^[0-9]{1,20}$`)
	// NoncePattern is what a client's nonce looks like: it must not hold the name's separator.
	NoncePattern = regexp.MustCompile(`^[a-z0-9]{8,32}$`)
)

// runOf reads the run a token is for from verified claims; ok is false when a claim the binding
// needs is missing or malformed.
func runOf(issuer string, c map[string]string) (mint.BrokerRun, bool) {
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v := c[k]; v != "" {
				return v
			}
		}
		return ""
	}
	r := mint.BrokerRun{
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

// mintedFor reports whether a token's name says it was minted for run (any nonce).
func mintedFor(name string, r mint.BrokerRun) bool {
	return strings.HasPrefix(name, mint.BrokerRunPrefix(r, ""))
}
