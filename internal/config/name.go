package config

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/cfmint/cfmint/internal/logsafe"
)

// NamePrefix starts every name cfmint gives a token, so that cfmint's tokens can be told apart
// from everyone else's in the dashboard, the audit log and a sweep.
const NamePrefix = "cfmint:"

// repoPartMax caps the repository part of a name, leaving room for the run's coordinates.
const repoPartMax = 64

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
func DefaultName(rc Context, purpose string) string {
	run := sanitize(rc.RunID, false)
	if run == "" {
		run = "0"
	}
	attempt := sanitize(rc.RunAttempt, false)
	if attempt == "" {
		attempt = "1"
	}
	coords := run + "." + attempt
	if n := sanitize(rc.Nonce, false); n != "" {
		coords += "-" + n
	}
	parts := []string{sanitize(purpose, false), coords, sanitize(rc.Job, false), sanitize(rc.Action, false)}
	for i, p := range parts {
		if p == "" {
			parts[i] = "-"
		}
	}
	name := RepoNamePrefix(rc.Repository) + strings.Join(parts, ":")
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
	if len(repo) <= repoPartMax && repoName.MatchString(repo) {
		return repo
	}
	sum := sha256.Sum256([]byte(strings.ToLower(repo)))
	tail := "~" + hex.EncodeToString(sum[:8])
	head := sanitize(repo, true)
	if max := repoPartMax - len(tail); len(head) > max {
		head = head[:max]
	}
	return head + tail
}

// NamedFor reports whether name is one cfmint gives the tokens of repo: it starts with
// RepoNamePrefix(repo), repository part compared without case, and goes on after it. repo "*"
// takes every repository's (any name starting NamePrefix). A sweep deletes only what this
// matches, so it never touches another repository's tokens; Validate refuses a name input that
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

// sanitize keeps ASCII letters, digits, '.', '_' and '-' (and '/' where allowed), turning anything
// else into '_' and capping the part at 64 bytes.
func sanitize(s string, slash bool) string {
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
		if b.Len() >= 64 {
			break
		}
	}
	return b.String()
}

// namePlaceholders are what a name input may refer to; each value is sanitised like a default
// name's parts, since most of them can be chosen by whoever pushes a branch or opens a pull request.
var namePlaceholders = []string{"repository", "owner", "repo", "purpose", "run_id", "run_attempt", "job", "step", "sha"}

// ExpandName fills a name template such as "deploy-{repo}-{run_id}" and checks the result.
func ExpandName(tmpl string, rc Context, purpose string) (string, error) {
	owner, repo, _ := strings.Cut(rc.Repository, "/")
	sha := rc.SHA
	if len(sha) > 12 {
		sha = sha[:12]
	}
	values := map[string]string{
		"repository":  sanitize(rc.Repository, true),
		"owner":       sanitize(owner, false),
		"repo":        sanitize(repo, false),
		"purpose":     sanitize(purpose, false),
		"run_id":      sanitize(rc.RunID, false),
		"run_attempt": sanitize(rc.RunAttempt, false),
		"job":         sanitize(rc.Job, false),
		"step":        sanitize(rc.Action, false),
		"sha":         sanitize(sha, false),
	}
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", inputError("name", "%s has a { without a closing }; placeholders are %s", quote(tmpl), placeholderList())
		}
		key := rest[i+1 : i+j]
		v, ok := values[key]
		if !ok {
			return "", inputError("name", "%s uses {%s}, which is not a placeholder; use %s", quote(tmpl), logsafe.String(logsafe.Clip(key, 80)), placeholderList())
		}
		b.WriteString(rest[:i])
		b.WriteString(v)
		rest = rest[i+j+1:]
	}
	name := strings.TrimSpace(b.String())
	if name == "" {
		return "", inputError("name", "%s is empty once its placeholders are filled in; add fixed text, or leave name empty for the default", quote(tmpl))
	}
	if err := CheckName(name); err != nil {
		return "", err
	}
	if strings.HasPrefix(name, NamePrefix) && !NamedFor(name, rc.Repository) {
		return "", inputError("name", "%s starts with %s, which marks the names cfmint gives tokens and is how a sweep finds a repository's leftovers; start it with %s (this repository's) or not with %s at all", quote(name), NamePrefix, logsafe.String(RepoNamePrefix(rc.Repository)), NamePrefix)
	}
	return name, nil
}

func placeholderList() string {
	q := make([]string, len(namePlaceholders))
	for i, p := range namePlaceholders {
		q[i] = "{" + p + "}"
	}
	return strings.Join(q, " ")
}
