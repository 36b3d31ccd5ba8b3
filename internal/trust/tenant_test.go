package trust

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Issuer forms of 2026 (docs.github.com, docs.gitlab.com).
const (
	ghec      = "https://token.actions.githubusercontent.com/acme-corp" // GHEC, issuer per enterprise
	residency = "https://token.actions.acme.ghe.com"                    // GHE.com, data residency
	ghes      = "https://ghes.example.com/_services/token"              // Enterprise Server
	gitlabCom = "https://gitlab.com"
	gitlabOwn = "https://gitlab.example.com" // a GitLab instance
)

func TestKindOf(t *testing.T) {
	t.Parallel()
	for iss, want := range map[string]issuerKind{
		github: issuerGitHub, ghec: issuerGitHub, residency: issuerGitHub,
		"https://TOKEN.actions.GitHubUserContent.com": issuerGitHub,
		"https://token.actions.eu.ghe.com":            issuerGitHub,
		gitlabCom:                                     issuerGitLab,
		ghes:                                          issuerOther, gitlabOwn: issuerOther, "http://127.0.0.1:9": issuerOther,
		"https://token.actions.githubusercontent.com.evil.example": issuerOther,
		"https://ghe.com":                     issuerOther,
		"https://gitlab.com.evil.example":     issuerOther,
		"https://evil.example/gitlab.com":     issuerOther,
		"https://actions.acme.ghe.com":        issuerOther,
		"https://token.actions.acme.ghe.comx": issuerOther,
	} {
		if got := kindOf(iss); got != want {
			t.Errorf("kindOf(%s) = %d, want %d", iss, got, want)
		}
	}
}

// TestLooseRulesRefused: each rule of issue 15 trusted every repository on github.com (or
// gitlab.com) that fits; each is refused, naming the rule and what to add.
func TestLooseRulesRefused(t *testing.T) {
	t.Parallel()
	const addGitHub = "add repository_id, repository_owner_id or enterprise_id to claims, as an exact value"
	const addGitLab = "add project_id or namespace_id to claims, as an exact value"
	cases := []struct {
		name  string
		edits []string
		words []string
	}{
		{"ref alone", []string{"claims: {ref: refs/heads/main}"}, []string{"trusts every repository on GitHub", addGitHub}},
		{"a sub pattern", []string{"-claims", `claim_patterns: {sub: "repo:.*:ref:refs/heads/main"}`}, []string{addGitHub}},
		{"a name-form sub", []string{`claims: {sub: "repo:acme/shop:ref:refs/heads/main"}`}, []string{addGitHub}},
		{"job_workflow_ref", []string{`claims: {job_workflow_ref: "acme/workflows/.github/workflows/deploy.yml@refs/heads/main"}`}, []string{addGitHub}},
		{"repository_owner, a name", []string{"claims: {repository_owner: acme}"}, []string{addGitHub}},
		{"repository, a name", []string{"claims: {repository: acme/shop}"}, []string{addGitHub}},
		{"a repository pattern", []string{"-claims", `claim_patterns: {repository: "acme/shop.*"}`}, []string{addGitHub}},
		{"event_name alone", []string{"claims: {event_name: push}"}, []string{addGitHub}},
		{"an id as a pattern", []string{"-claims", `claim_patterns: {repository_id: "690011"}`}, []string{addGitHub}},
		{"an id pattern with a name", []string{"claims: {repository: acme/shop}", `claim_patterns: {repository_owner_id: "4200|4201"}`}, []string{addGitHub}},
		{"enterprise by name", []string{"claims: {enterprise: acme}"}, []string{addGitHub}},
		{"a GitLab rule with only ref", []string{"issuer: " + gitlabCom, "claims: {ref: main}"}, []string{"trusts every project on gitlab.com", addGitLab}},
		{"GitLab names", []string{"issuer: " + gitlabCom, "claims: {project_path: acme/shop, namespace_path: acme}"}, []string{addGitLab}},
		{"a GitHub id on gitlab.com", []string{"issuer: " + gitlabCom, `claims: {repository_id: "690011"}`}, []string{addGitLab}},
		{"a GitLab id on github.com", []string{`claims: {project_id: "690011"}`}, []string{addGitHub}},
		{"GHEC's issuer", []string{"issuer: " + ghec, "claims: {ref: refs/heads/main}"}, []string{addGitHub}},
		{"data residency's issuer", []string{"issuer: " + residency, "claims: {repository: acme/shop}"}, []string{addGitHub}},
		{"GHES without the opt-out", []string{"issuer: " + ghes, "claims: {ref: refs/heads/main}"}, []string{"enterprise_id, project_id or namespace_id", "set single_tenant_issuer: true"}},
		{"a GitLab instance without the opt-out", []string{"issuer: " + gitlabOwn, "claims: {ref_path: refs/heads/main}"}, []string{"set single_tenant_issuer: true"}},
		{"the opt-out on github.com", []string{"single_tenant_issuer: true", "claims: {ref: refs/heads/main}"}, []string{`key "single_tenant_issuer": is true, but https://token.actions.githubusercontent.com signs ID tokens for every repository`}},
		{"the opt-out on github.com, pinned too", []string{"single_tenant_issuer: true"}, []string{`key "single_tenant_issuer": is true`}},
		{"the opt-out on data residency", []string{"issuer: " + residency, "single_tenant_issuer: true"}, []string{`key "single_tenant_issuer": is true`}},
		{"the opt-out on gitlab.com", []string{"issuer: " + gitlabCom, "single_tenant_issuer: true", "claims: {ref: main}"}, []string{"every project on gitlab.com; pin project_id or namespace_id instead"}},
		{"the opt-out quoted", []string{"issuer: " + ghes, `single_tenant_issuer: "true"`, "claims: {ref: refs/heads/main}"}, []string{`key "single_tenant_issuer": must be true or false, unquoted`}},
		{"the opt-out false", []string{"issuer: " + ghes, "single_tenant_issuer: false", "claims: {ref: refs/heads/main}"}, []string{"set single_tenant_issuer: true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yml := ruleYAML(append([]string{"name: loose"}, tc.edits...)...)
			_, err := Parse([]byte(yml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", yml)
			}
			if !strings.HasPrefix(err.Error(), `rule "loose": key "`) {
				t.Errorf("error %q does not name the rule and key first", err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestTenantPins accepts each issuer form with a pin of its own, and the opt-out where an issuer
// can be single-tenant.
func TestTenantPins(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edits []string
	}{
		{"github.com, repository_id", []string{`claims: {repository_id: "690011"}`}},
		{"github.com, repository_owner_id and a name pattern", []string{`claims: {repository_owner_id: "4200"}`, `claim_patterns: {repository: "acme/(shop|site)"}`}},
		{"github.com, enterprise_id and a property", []string{`claims: {enterprise_id: "1337", repo_property_tier: production}`}},
		{"github.com, the immutable sub beside the id", []string{`claims: {repository_id: "690011", sub: "repo:acme@4200/shop@690011:environment:production"}`}},
		{"GHEC, enterprise_id", []string{"issuer: " + ghec, `claims: {enterprise_id: "1337"}`}},
		{"data residency, repository_owner_id", []string{"issuer: " + residency, `claims: {repository_owner_id: "4200", ref: refs/heads/main}`}},
		{"GHES, an id", []string{"issuer: " + ghes, `claims: {repository_id: "12"}`}},
		{"GHES, single-tenant", []string{"issuer: " + ghes, "single_tenant_issuer: true", "claims: {repository: acme/shop, ref: refs/heads/main}"}},
		{"gitlab.com, project_id", []string{"issuer: " + gitlabCom, `claims: {project_id: "4711", ref_type: branch, ref_path: refs/heads/main, ref_protected: "true"}`}},
		{"gitlab.com, namespace_id", []string{"issuer: " + gitlabCom, `claims: {namespace_id: "42"}`}},
		{"a GitLab instance, project_id", []string{"issuer: " + gitlabOwn, `claims: {project_id: "7"}`}},
		{"a GitLab instance, single-tenant", []string{"issuer: " + gitlabOwn, "single_tenant_issuer: true", "claims: {project_path: acme/shop}"}},
		{"a loopback test issuer, an id", []string{"issuer: http://127.0.0.1:8080", `claims: {repository_id: "1"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mustParse(t, ruleYAML(tc.edits...))
		})
	}
}

// TestIssuerForms matches tokens of each issuer form, with GitHub's 2026 claims: the immutable
// sub, check_run_id, enterprise_id and repo_property_*.
func TestIssuerForms(t *testing.T) {
	t.Parallel()
	gh := Claims{
		"sub":                    "repo:acme@4200/shop@690011:environment:production",
		"repository":             "acme/shop",
		"repository_id":          "690011",
		"repository_owner_id":    "4200",
		"enterprise":             "acme-corp",
		"enterprise_id":          "1337",
		"repo_property_tier":     "production",
		"repo_property_teams":    "payments,web",
		"repo_property_critical": "true",
		"check_run_id":           "31415926",
		"environment":            "production",
		"ref":                    "refs/heads/main",
		"ref_protected":          "true",
		"event_name":             "push",
	}
	gl := Claims{
		"sub":           "project_path:acme/shop:ref_type:branch:ref:main",
		"project_id":    "4711",
		"namespace_id":  "42",
		"project_path":  "acme/shop",
		"ref":           "main",
		"ref_type":      "branch",
		"ref_path":      "refs/heads/main",
		"ref_protected": "true",
		"pipeline_id":   "99",
		"job_id":        "1001",
	}
	rule := func(name, issuer, claims string) string {
		return ruleItem("name: "+name, "issuer: "+issuer, "claims: "+claims)
	}
	p := mustParse(t, "audience: x\nrules:\n"+
		rule("dotcom", github, `{repository_id: "690011", sub: "repo:acme@4200/shop@690011:environment:production"}`)+
		rule("ghec", ghec, `{enterprise_id: "1337", repo_property_tier: production, repo_property_critical: "true"}`)+
		rule("residency", residency, `{repository_owner_id: "4200", repo_property_teams: "payments,web"}`)+
		ruleItem("name: ghes", "issuer: "+ghes, "single_tenant_issuer: true", "claims: {repository: acme/shop, environment: production}")+
		rule("gitlab", gitlabCom, `{project_id: "4711", ref_type: branch, ref_path: refs/heads/main, ref_protected: "true"}`)+
		rule("gitlab-own", gitlabOwn, `{namespace_id: "42", ref_path: refs/heads/main}`))
	cases := []struct {
		issuer string
		claims Claims
		want   []string
	}{
		{github, gh, []string{"dotcom"}},
		{ghec, gh, []string{"ghec"}},
		{ghec, with(gh, "repo_property_critical", "false"), nil},
		{residency, gh, []string{"residency"}},
		{residency, with(gh, "repo_property_teams", "payments"), nil},
		{ghes, gh, []string{"ghes"}},
		// On GHES the sub keeps names; an id sub is a GitHub.com thing, and either matches there.
		{github, with(gh, "sub", "repo:acme@4200/shop@6900111:environment:production"), nil},
		{gitlabCom, gl, []string{"gitlab"}},
		// GitLab's ref is the short name: a tag named main has ref main too, but another ref_path.
		{gitlabCom, with(gl, "ref_type", "tag", "ref_path", "refs/tags/main"), nil},
		{gitlabCom, with(gl, "ref_protected", "false"), nil},
		{gitlabOwn, gl, []string{"gitlab-own"}},
		{gitlabOwn + "/", gl, nil},
	}
	for _, tc := range cases {
		var got []string
		for _, r := range p.Match(tc.issuer, tc.claims) {
			got = append(got, r.Name())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Match(%s, %v) = %q, want %q", tc.issuer, tc.claims, got, tc.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "audience: x\nrules:\n"+
		ruleItem("name: ids")+
		ruleItem("name: immutable", `claims: {repository_id: "690011", sub: "repo:acme@4200/shop@690011:ref:refs/heads/main"}`)+
		ruleItem("name: names", `claims: {repository_id: "690011", repository: acme/shop, repository_owner: acme, sub: "repo:acme/shop:ref:refs/heads/main"}`)+
		ruleItem("name: patterns", `claims: {repository_owner_id: "4200"}`, `claim_patterns: {job_workflow_ref: "acme/.*", ref: "refs/heads/.*", event_name: ".*"}`)+
		ruleItem("name: gitlab", "issuer: "+gitlabCom, `claims: {project_id: "4711", sub: "project_path:acme/shop:ref_type:branch:ref:main"}`, `claim_patterns: {namespace_path: ".*acme"}`))
	got := p.Warnings()
	want := []string{
		`rule "names": key "claims.repository": matches a name, which its owner can rename and anyone can register once it is free; match repository_id, which never changes hands`,
		`rule "names": key "claims.repository_owner": matches a name, which its owner can rename and anyone can register once it is free; match repository_owner_id, which never changes hands`,
		`rule "names": key "claims.sub": matches a sub of names (repo:OWNER/REPO:...), which a re-registered name also gets; match repository_id, or GitHub's immutable sub repo:OWNER@OWNER-ID/REPO@REPO-ID:...`,
		`rule "patterns": key "claim_patterns.job_workflow_ref": the pattern acme/.* holds .* (or .+), so it fits names that extend the one meant (acme/shop.* fits acme/shop-evil); spell the names out`,
		`rule "patterns": key "claim_patterns.event_name": the pattern .* holds .*, so the rule trusts privileged events (` + strings.Join(PrivilegedEvents(), ", ") + `) of any kind; name the events`,
		`rule "gitlab": key "claims.sub": matches a sub of names (project_path:GROUP/PROJECT:...), which a re-registered name also gets; match project_id or namespace_id`,
		`rule "gitlab": key "claim_patterns.namespace_path": matches a name, which its owner can rename and anyone can register once it is free; match namespace_id, which never changes hands`,
		`rule "gitlab": key "claim_patterns.namespace_path": the pattern .*acme holds .* (or .+), so it fits names that extend the one meant (acme/shop.* fits acme/shop-evil); spell the names out`,
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if w := examplePolicy(t).Warnings(); len(w) != 0 {
		t.Errorf("the README's policy warns: %q", w)
	}
}

// TestPrivilegedEvents: GitHub puts the default branch in the ref of these events, so a rule for
// main matched them; now only a rule that names event_name does.
func TestPrivilegedEvents(t *testing.T) {
	t.Parallel()
	ex := examplePolicy(t)
	named := mustParse(t, ruleYAML(`claims: {repository_id: "690011", event_name: pull_request_target}`, `claim_patterns: {ref: refs/heads/main}`))
	pattern := mustParse(t, ruleYAML(`claim_patterns: {event_name: "workflow_run|issue_comment"}`))
	for _, ev := range PrivilegedEvents() {
		c := with(shopClaims(), "event_name", ev)
		d, err := ex.Decide(github, c, Ask{Preset: "workers-deploy"}, realGroups(t), caller)
		var den *Denial
		if !errors.As(err, &den) || den.Reason != ReasonEvent {
			t.Errorf("%s: Decide = %+v, %v; want an event denial", ev, d, err)
			continue
		}
		for _, w := range []string{"the token's event_name is " + ev + ", which " + privilegedEvents[ev], "rule shop-deploy would match", "names event_name (claims: {event_name: " + ev + "})", "deployment environment"} {
			if !strings.Contains(den.Msg, w) {
				t.Errorf("%s: denial %q does not say %q", ev, den.Msg, w)
			}
		}
		if got := named.Match(github, c); (ev == "pull_request_target") != (len(got) == 1) {
			t.Errorf("%s: a rule naming event_name pull_request_target matched %d", ev, len(got))
		}
		if got := pattern.Match(github, c); (ev == "workflow_run" || ev == "issue_comment") != (len(got) == 1) {
			t.Errorf("%s: a rule with an event_name pattern matched %d", ev, len(got))
		}
	}
	for _, ev := range []string{"push", "workflow_dispatch", "schedule", "pull_request", "merge_group", "release", "deployment", "repository_dispatch"} {
		if got := ex.Match(github, with(shopClaims(), "event_name", ev)); len(got) != 1 {
			t.Errorf("%s: matched %d rules, want the example's one", ev, len(got))
		}
	}
	// A token without event_name (GitLab's) is no privileged event; an odd value is not either.
	if got := ex.Match(github, with(shopClaims(), "event_name", "<none>")); len(got) != 1 {
		t.Error("a token without event_name did not match")
	}
	if got := ex.Match(github, with(shopClaims(), "event_name", typeMark+"number")); len(got) != 1 {
		t.Error("an event_name of another type is not a privileged event")
	}
	// The denial for an event does not stop the near-miss hint of other rules being wrong.
	if _, err := ex.Decide(github, with(shopClaims(), "event_name", "issues", "ref", "refs/heads/dev"), Ask{Preset: "workers-deploy"}, realGroups(t), caller); err == nil || strings.Contains(err.Error(), "event_name") {
		t.Errorf("a rule that does not hold anyway blames the event: %v", err)
	}
}

// TestNonStringClaims: a claim of another type fails closed, and the denial says its type.
func TestNonStringClaims(t *testing.T) {
	t.Parallel()
	ex := examplePolicy(t)
	raw := map[string]any{}
	for k, v := range shopClaims() {
		raw[k] = v
	}
	for _, tc := range []struct {
		value any
		typ   string
	}{{float64(4200), "number"}, {true, "boolean"}, {[]any{"4200"}, "array"}, {map[string]any{"id": "4200"}, "object"}, {nil, "null"}} {
		raw["repository_owner_id"] = tc.value
		d, err := ex.Decide(github, ClaimsFrom(raw), Ask{Preset: "workers-deploy"}, realGroups(t), caller)
		var den *Denial
		if !errors.As(err, &den) {
			t.Fatalf("%v: Decide = %+v, %v", tc.value, d, err)
		}
		// repository_owner_id pins the tenant, so the caller is told its own claim's type, and
		// nothing of the rule; the audit log has the rule's side.
		want := "the token's repository_owner_id is a " + tc.typ + ", not a string (claims are compared as strings, so it never matches)"
		if !strings.Contains(den.Msg, want) || strings.Contains(den.Msg, "4200") || strings.Contains(den.Msg, "shop-deploy") {
			t.Errorf("%v: denial %q does not say %q, or names the rule or its value", tc.value, den.Msg, want)
		}
		audit := `rule shop-deploy differs only in claim repository_owner_id: it wants "4200", the token has a ` + tc.typ + `, not a string (claims are compared as strings, so this never matches)`
		if !strings.Contains(den.Audit(), audit) {
			t.Errorf("%v: the audit line %q does not say %q", tc.value, den.Audit(), audit)
		}
	}
	raw["repository_owner_id"] = "4200"
	raw["repository"] = float64(1)
	if _, err := ex.Decide(github, ClaimsFrom(raw), Ask{Preset: "workers-deploy"}, realGroups(t), caller); err != nil {
		t.Errorf("a number where no rule looks: %v", err)
	}
	raw["ref"] = false
	_, err := ex.Decide(github, ClaimsFrom(raw), Ask{Preset: "workers-deploy"}, realGroups(t), caller)
	if err == nil || !strings.Contains(err.Error(), "repository (a number) (repository_id 690011), ref (a boolean)") || !strings.Contains(err.Error(), "does not match the token's a boolean, not a string") {
		t.Errorf("a boolean ref: %v", err)
	}
}

// TestDocsPolicies: the policies the README, docs/ and deploy/ show are valid and pin tenants.
func TestDocsPolicies(t *testing.T) {
	t.Parallel()
	root := "../.."
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllStringSubmatch(string(b), -1) {
			y := m[1]
			switch {
			case strings.Contains(y, "\nrules:"):
			case strings.HasPrefix(strings.TrimLeft(y, " "), "- name:") && strings.Contains(y, "issuer:"):
				y = "audience: https://cfmint.example.com\nrules:\n" + y
			default:
				continue
			}
			n++
			p, err := Parse([]byte(y))
			if err != nil {
				t.Errorf("%s: a policy does not parse:\n%s\n%v", f, y, err)
				continue
			}
			if err := p.Check(realGroups(t)); err != nil {
				t.Errorf("%s: a policy does not check:\n%s\n%v", f, y, err)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "broker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.NewDecoder(strings.NewReader(string(b))).Decode(&cm); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte(cm.Data["policy.yaml"])); err != nil {
		t.Errorf("deploy/kubernetes/broker.yaml: %v", err)
	}
	if n < 3 {
		t.Errorf("found %d policies in the docs, want at least 3", n)
	}
}
