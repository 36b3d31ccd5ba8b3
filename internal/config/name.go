package config

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// NamePrefix starts every name cfmint gives a token, so that cfmint's tokens can be told apart
// from everyone else's in the dashboard, the audit log and a sweep.
const NamePrefix = "cfmint:"

// DefaultName names a token after Cloudflare's {project}-{purpose}-{environment} advice, with the
// run's coordinates as the environment so that the audit log points back at the run:
//
//	cfmint:<owner/repo>:<purpose>:<run id>.<attempt>[-<nonce>]:<job>:<step>
//
// Each part is sanitised (branch, job and step names can be chosen by whoever opens a pull
// request), so ':' only ever separates parts. A name over MaxNameLen keeps its head and ends in a
// hash of the whole, so it stays unique per run, attempt, job and step.
func DefaultName(rc Context, purpose string) string {
	repo := sanitize(rc.Repository, true)
	if repo == "" {
		repo = "local"
	}
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
	parts := []string{repo, sanitize(purpose, false), coords, sanitize(rc.Job, false), sanitize(rc.Action, false)}
	name := NamePrefix + strings.Join(parts, ":")
	if len(name) <= MaxNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	tail := "~" + hex.EncodeToString(sum[:])[:10]
	return name[:MaxNameLen-len(tail)] + tail
}

// RepoNamePrefix is how every default name of repo's tokens starts.
func RepoNamePrefix(repo string) string {
	r := sanitize(repo, true)
	if r == "" {
		r = "local"
	}
	return NamePrefix + r + ":"
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
			return "", inputError("name", "%q has a { without a closing }; placeholders are %s", clip(tmpl), placeholderList())
		}
		key := rest[i+1 : i+j]
		v, ok := values[key]
		if !ok {
			return "", inputError("name", "%q uses {%s}, which is not a placeholder; use %s", clip(tmpl), clip(key), placeholderList())
		}
		b.WriteString(rest[:i])
		b.WriteString(v)
		rest = rest[i+j+1:]
	}
	name := strings.TrimSpace(b.String())
	if name == "" {
		return "", inputError("name", "%q is empty once its placeholders are filled in; add fixed text, or leave name empty for the default", clip(tmpl))
	}
	if err := CheckName(name); err != nil {
		return "", err
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
