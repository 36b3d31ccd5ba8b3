package oidctest

import (
	"fmt"
	"maps"
	"strings"
	"time"
)

// Claims are the claims of an ID token, by name. GitHub's claims are all
// strings, ids and booleans included; iat, nbf and exp are numbers (a
// time.Time given for them is turned into one). A key set to nil is left out
// of the token, so a test can forge a token without jti or exp.
type Claims map[string]any

// Defaults are the values a token gets for the GitHub claims a test does
// not set: a push to main of a private repository on a GitHub-hosted runner.
var Defaults = map[string]string{
	"actor":                 "octocat",
	"actor_id":              "583231",
	"base_ref":              "",
	"event_name":            "push",
	"head_ref":              "",
	"ref":                   "refs/heads/main",
	"ref_protected":         "false",
	"repository":            "octo-org/octo-repo",
	"repository_id":         "892345611",
	"repository_owner_id":   "9919",
	"repository_visibility": "private",
	"run_attempt":           "1",
	"run_id":                "9876543210",
	"run_number":            "42",
	"runner_environment":    "github-hosted",
	"sha":                   "a7e32f2b6f5a1c9e0d4b3c2a1f0e9d8c7b6a5f40",
	"workflow":              "CI",
}

// Complete returns c with every claim a GitHub token has filled in: the
// Defaults, then the claims GitHub derives from others (sub from
// repository, environment, event_name and ref; repository_owner; ref_type;
// workflow_ref and job_workflow_ref; aud as the owner's URL, which GitHub
// uses when the job asks for no audience), then iss, a fresh jti, and
// iat = now, nbf = iat, exp = iat + 5m. What c sets wins, derived claims
// included; c itself is not changed.
func (i *Issuer) Complete(c Claims) Claims {
	out := Claims{}
	for k, v := range Defaults {
		out[k] = v
	}
	maps.Copy(out, c)
	str := func(k string) string {
		switch v := out[k].(type) {
		case nil:
			return ""
		case string:
			return v
		default:
			return fmt.Sprint(v)
		}
	}
	derive := func(k string, v func() any) {
		if _, set := c[k]; !set {
			out[k] = v()
		}
	}
	derive("repository_owner", func() any {
		owner, _, _ := strings.Cut(str("repository"), "/")
		return owner
	})
	derive("ref_type", func() any {
		if strings.HasPrefix(str("ref"), "refs/tags/") {
			return "tag"
		}
		return "branch"
	})
	derive("workflow_ref", func() any { return str("repository") + "/.github/workflows/ci.yml@" + str("ref") })
	derive("workflow_sha", func() any { return str("sha") })
	derive("job_workflow_ref", func() any { return str("workflow_ref") })
	derive("job_workflow_sha", func() any { return str("workflow_sha") })
	derive("sub", func() any { return Subject(str("repository"), str("environment"), str("event_name"), str("ref")) })
	derive("aud", func() any { return "https://github.com/" + str("repository_owner") })
	derive("iss", func() any { return i.URL() })
	derive("jti", func() any { return newJTI() })

	for _, k := range []string{"iat", "nbf", "exp"} {
		if t, ok := out[k].(time.Time); ok {
			out[k] = t.Unix()
		}
	}
	derive("iat", func() any { return i.now().Unix() })
	iat := unixOf(out["iat"])
	derive("nbf", func() any { return iat })
	derive("exp", func() any { return iat + int64(Lifetime/time.Second) })

	for k, v := range out {
		if v == nil {
			delete(out, k)
		}
	}
	return out
}

// Subject forms sub the way GitHub does: the environment when the job names
// one, else pull_request for pull requests, else the ref. A ":" inside a
// value is written %3A.
func Subject(repository, environment, eventName, ref string) string {
	esc := func(s string) string { return strings.ReplaceAll(s, ":", "%3A") }
	switch {
	case environment != "":
		return "repo:" + esc(repository) + ":environment:" + esc(environment)
	case eventName == "pull_request":
		return "repo:" + esc(repository) + ":pull_request"
	default:
		return "repo:" + esc(repository) + ":ref:" + esc(ref)
	}
}

// ImmutableSubject forms sub the way GitHub does for repositories created, renamed or
// transferred after 2026-07-15 (and others that opt in): owner and repository each followed by
// @ and its id, repo:OWNER@OWNER-ID/REPO@REPO-ID:..., the rest as Subject. A test sets it as the
// token's sub; GitHub's custom properties are claims repo_property_<name> (multi-select values
// joined by commas, booleans "true"/"false"), set like any other.
func ImmutableSubject(owner, ownerID, repo, repoID, environment, eventName, ref string) string {
	s := Subject(owner+"/"+repo, environment, eventName, ref)
	esc := func(s string) string { return strings.ReplaceAll(s, ":", "%3A") }
	return "repo:" + esc(owner) + "@" + ownerID + "/" + esc(repo) + "@" + repoID + strings.TrimPrefix(s, "repo:"+esc(owner+"/"+repo))
}

// GitLab returns c over the claims of a GitLab CI job's ID token, for a test of the broker with
// GitLab's issuer: GitHub's claims are left out (set to nil), and GitLab's are set for a pipeline
// on the protected branch main of project 4711 in namespace 42. GitLab's ref is the short name
// (a branch and a tag can share it); ref_type and ref_path tell them apart.
func GitLab(c Claims) Claims {
	out := Claims{}
	for k := range Defaults {
		out[k] = nil
	}
	for _, k := range []string{"repository_owner", "ref_type", "workflow_ref", "workflow_sha", "job_workflow_ref", "job_workflow_sha"} {
		out[k] = nil
	}
	maps.Copy(out, Claims{
		"namespace_id":    "42",
		"namespace_path":  "octo-group",
		"project_id":      "4711",
		"project_path":    "octo-group/octo-project",
		"user_id":         "583231",
		"user_login":      "octocat",
		"pipeline_id":     "998877",
		"pipeline_source": "push",
		"job_id":          "55443322",
		"ref":             "main",
		"ref_type":        "branch",
		"ref_path":        "refs/heads/main",
		"ref_protected":   "true",
		"sub":             "project_path:octo-group/octo-project:ref_type:branch:ref:main",
	})
	maps.Copy(out, c)
	return out
}

// newJTI returns a random UUID, the form of GitHub's jti.
func newJTI() string {
	h := randomHex(16)
	b := []byte(h)
	b[12] = '4'                  // version 4
	b[16] = "89ab"[int(b[16])%4] // RFC 4122 variant
	return fmt.Sprintf("%s-%s-%s-%s-%s", b[0:8], b[8:12], b[12:16], b[16:20], b[20:32])
}

// unixOf reads a NumericDate a test put in Claims.
func unixOf(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	default:
		return 0
	}
}
