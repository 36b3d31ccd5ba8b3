package mint

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// A token's name is the only record of whom it was minted for: a sweep finds a repository's
// leftovers by it, and the broker's revoke reads it back from Cloudflare to decide whether the
// caller may delete the token. Both formats live here, with one sanitiser, one cap and one hash
// tail.

// NamePrefix starts every name cfmint gives a token, so that cfmint's tokens can be told apart
// from everyone else's in the dashboard, the audit log and a sweep.
const NamePrefix = "cfmint:"

// BrokerNamePrefix starts the name of every token a broker mints. The name is the broker's only
// record of whom a token was minted for: a revoke reads it back from Cloudflare, so the broker
// keeps no state and any replica can revoke what another minted.
const BrokerNamePrefix = "cfmint-broker:"

// MaxNameLen is Cloudflare's limit on a token name.
const MaxNameLen = 120

// partMax caps one sanitised part of a name, and the repository part of a default name, leaving
// room for the rest.
const partMax = 64

var repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// PlainRepo reports whether repo is a plain owner/repo of GitHub's own characters.
func PlainRepo(repo string) bool { return repoName.MatchString(repo) }

// RunContext is what the runner says about the run, used to name the token.
type RunContext struct {
	Repository, RunID, RunAttempt, Job, Action, SHA string
	// Nonce tells apart steps whose other coordinates are equal (the legs of a matrix job share
	// run, attempt, job and step).
	Nonce string
}

// DefaultName names a token after Cloudflare's {project}-{purpose}-{environment} advice, with the
// run's coordinates as the environment so that the audit log points back at the run:
//
//	cfmint:<owner/repo>:<purpose>:<run id>.<attempt>[-<nonce>]:<job>:<step>
//
// Each part is sanitised (branch, job and step names can be chosen by whoever opens a pull
// request), so ':' only ever separates parts; an empty part is written "-", so no name holds
// "::". The repository part is RepoNamePrefix's, unique per repository. A name over MaxNameLen
// keeps its head (the repository part always fits in it) and ends in a hash of the whole, so it
// stays unique per run, attempt, job and step.
func DefaultName(rc RunContext, purpose string) string {
	run := Sanitize(rc.RunID, false)
	if run == "" {
		run = "0"
	}
	attempt := Sanitize(rc.RunAttempt, false)
	if attempt == "" {
		attempt = "1"
	}
	coords := run + "." + attempt
	if n := Sanitize(rc.Nonce, false); n != "" {
		coords += "-" + n
	}
	parts := []string{Sanitize(purpose, false), coords, Sanitize(rc.Job, false), Sanitize(rc.Action, false)}
	for i, p := range parts {
		if p == "" {
			parts[i] = "-"
		}
	}
	return capName(RepoNamePrefix(rc.Repository) + strings.Join(parts, ":"))
}

// capName cuts a name over MaxNameLen to its head and a hash of the whole, so that names that
// differ only after the cut stay distinct. The names it is given are ASCII (sanitised parts and
// separators), so the cut never splits a character.
func capName(name string) string {
	if len(name) <= MaxNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	tail := "~" + hex.EncodeToString(sum[:])[:10]
	return name[:MaxNameLen-len(tail)] + tail
}

// RepoNamePrefix is how every default name of repo's tokens starts, up to and with the ':' that
// ends the repository part; repo "" (a terminal outside a workflow) is "local".
//
// No repository's prefix starts another's. The part is the repository itself when it is a plain
// owner/repo (GitHub's own characters) of at most 64 bytes. Anything else (longer, or with
// characters sanitising would change) is its sanitised head, '~' and 16 hex digits of the
// SHA-256 of the lower-cased name: sanitising never writes '~', so such a part never equals a
// plain one, and two such parts are equal only when the names are (GitHub names are
// case-insensitive, so case does not count). No part holds ':', so the ':' after it ends it.
func RepoNamePrefix(repo string) string {
	return NamePrefix + repoPart(repo) + ":"
}

func repoPart(repo string) string {
	if repo == "" {
		return "local"
	}
	if len(repo) <= partMax && PlainRepo(repo) {
		return repo
	}
	sum := sha256.Sum256([]byte(strings.ToLower(repo)))
	tail := "~" + hex.EncodeToString(sum[:8])
	head := Sanitize(repo, true)
	if max := partMax - len(tail); len(head) > max { // (>= would cut a head of max bytes to itself)
		head = head[:max]
	}
	return head + tail
}

// NamedFor reports whether name is one cfmint gives the tokens of repo: it starts with
// RepoNamePrefix(repo), repository part compared without case, and goes on after it. repo "*"
// takes every repository's (any name starting NamePrefix). A sweep deletes only what this
// matches, so it never touches another repository's tokens; the name input is refused when it
// would pass for another repository's.
func NamedFor(name, repo string) bool {
	if repo == "*" {
		return len(name) > len(NamePrefix) && strings.HasPrefix(name, NamePrefix)
	}
	p := RepoNamePrefix(repo)
	return len(name) > len(p) && strings.HasPrefix(name, NamePrefix) && asciiEqualFold(name[:len(p)], p)
}

// asciiEqualFold is strings.EqualFold for ASCII letters only: Unicode folding would let "ſ"
// (long s) in a name stand for the 's' of a repository.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Sanitize makes s one part of a name: it keeps ASCII letters, digits, '.', '_' and '-' (and '/'
// where slash allows it), turns anything else into '_', and caps the part at 64 bytes. The
// result never holds ':' (the parts' separator) nor '~' (which starts a hash).
func Sanitize(s string, slash bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		case r == '/' && slash:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= partMax {
			break
		}
	}
	return b.String()
}

// BrokerRun is the run a broker mints a token for, from the ID token's issuer and claims.
type BrokerRun struct {
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

// BrokerRunPrefix is how the names of every token minted for the run with that nonce start;
// with an empty nonce, for the run.
func BrokerRunPrefix(r BrokerRun, nonce string) string {
	p := BrokerNamePrefix + r.Issuer + ":" + r.RepositoryID + ":" + r.RunID + "." + r.Attempt + ":"
	if nonce != "" {
		p += nonce + ":"
	}
	return p
}

// BrokerName is the name of a token a broker mints for run, nonce and rule:
//
//	cfmint-broker:<issuer hash>:<repository id>:<run>.<attempt>:<nonce>:<rule>:<repository>
//
// Ids come first, so a name cut to Cloudflare's limit still says whom it is for; the
// repository's name is last, sanitised, and the name ends in a hash of the whole when cut.
func BrokerName(r BrokerRun, nonce, rule string) string {
	return capName(BrokerRunPrefix(r, nonce) + rule + ":" + Sanitize(r.Repository, true))
}

// BrokerRule reads the rule back out of a broker token's name; "" when the name has none.
func BrokerRule(name string) string {
	parts := strings.SplitN(strings.TrimPrefix(name, BrokerNamePrefix), ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// BrokerNamedFor reports whether name is one a broker gives the tokens it mints for repo (the
// repository's name, as its ID tokens carry it), so that `cfmint sweep --repo` finds a
// repository's broker tokens too; repo "*" takes every broker token. The name's last part is
// the repository's sanitised name, compared without case: a name cut to Cloudflare's limit
// (it ends in a hash), or a repository name too long to be told apart by its sanitised head,
// matches only "*", so that no sweep by name can reach another repository's tokens.
func BrokerNamedFor(name, repo string) bool {
	rest, ok := strings.CutPrefix(name, BrokerNamePrefix)
	if !ok || rest == "" {
		return false
	}
	if repo == "*" {
		return true
	}
	parts := strings.SplitN(rest, ":", 6)
	want := Sanitize(repo, true)
	if len(parts) < 6 || repo == "" || len(want) >= partMax || strings.Contains(parts[5], "~") {
		return false
	}
	return asciiEqualFold(parts[5], want)
}
