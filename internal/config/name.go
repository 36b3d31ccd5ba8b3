package config

import (
	"strings"

	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

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
		"repository":  mint.Sanitize(rc.Repository, true),
		"owner":       mint.Sanitize(owner, false),
		"repo":        mint.Sanitize(repo, false),
		"purpose":     mint.Sanitize(purpose, false),
		"run_id":      mint.Sanitize(rc.RunID, false),
		"run_attempt": mint.Sanitize(rc.RunAttempt, false),
		"job":         mint.Sanitize(rc.Job, false),
		"step":        mint.Sanitize(rc.Action, false),
		"sha":         mint.Sanitize(sha, false),
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
	// A broker's names say whom it minted for, and its sweeper deletes what they mark as dead
	// or abandoned: a token minted directly must not pass for one (a broker could then delete
	// it, and the name would claim another repository's run).
	if strings.HasPrefix(strings.ToLower(name), mint.BrokerNamePrefix) {
		return "", inputError("name", "%s starts with %s, which marks the tokens a cfmint broker mints; a token minted with a bootstrap token may not take it: choose another name, or leave name empty for the default", quote(name), mint.BrokerNamePrefix)
	}
	if strings.HasPrefix(name, mint.NamePrefix) && !mint.NamedFor(name, rc.Repository) {
		return "", inputError("name", "%s starts with %s, which marks the names cfmint gives tokens and is how a sweep finds a repository's leftovers; start it with %s (this repository's) or not with %s at all", quote(name), mint.NamePrefix, logsafe.String(mint.RepoNamePrefix(rc.Repository)), mint.NamePrefix)
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
