package config

import (
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/runner"
)

func nameFor(repo string) string {
	return DefaultName(Context{Repository: repo, RunID: "42", RunAttempt: "1", Job: "deploy", Action: "cf", Nonce: "a1b2c3"}, "dns-edit")
}

func TestRepoNamePrefix(t *testing.T) {
	t.Parallel()
	long := "octo/" + strings.Repeat("r", 100)
	cases := []struct{ repo, want string }{
		{"octo/site", "cfmint:octo/site:"},
		{"Octo/My.Site_2-x", "cfmint:Octo/My.Site_2-x:"},
		{"", "cfmint:local:"},
		{"local", "cfmint:local~"}, // not a repository name: hashed, so not the terminal's "local"
		{"a/b c", "cfmint:a/b_c~"}, // sanitising changed it: hashed
		{long, "cfmint:octo/" + strings.Repeat("r", 42) + "~"},
	}
	for _, tc := range cases {
		got := RepoNamePrefix(tc.repo)
		if !strings.HasPrefix(got, tc.want) || !strings.HasSuffix(got, ":") || strings.Count(got, ":") != 2 {
			t.Errorf("RepoNamePrefix(%q) = %q, want it to start %q and end in its one ':'", tc.repo, got, tc.want)
		}
		if len(got) > len(NamePrefix)+repoPartMax+1 {
			t.Errorf("RepoNamePrefix(%q) = %q is longer than %d bytes", tc.repo, got, len(NamePrefix)+repoPartMax+1)
		}
	}
}

// TestNamesDoNotCollide is issue 9's sweep: repositories that share their first 64
// characters, or that sanitising maps onto the same text, must never match each other's names.
func TestNamesDoNotCollide(t *testing.T) {
	t.Parallel()
	shared := "some-org/" + strings.Repeat("monorepo-", 7)
	pairs := [][2]string{
		{shared + "frontend", shared + "backend"},
		{shared + "a", shared + "b"},
		{"octo/" + strings.Repeat("x", 59), "octo/" + strings.Repeat("x", 60)}, // 64 and 65 bytes
		{"octo/" + strings.Repeat("x", 60), "octo/" + strings.Repeat("x", 61)},
		{"a/b.c", "a/b_c"},
		{"a/b c", "a/b_c"}, // sanitises to the other's name
		{"a/b:c", "a/b;c"}, // both sanitise to a/b_c
		{"a/b", "a/b/c"},
		{"octo/site", "octo/site2"},
		{"octo/site", "octo/site:x"},
		{"", "local"},
		{"", "local/x"},
		{"o/r", "o/r~0123456789abcdef"},
	}
	for _, p := range pairs {
		a, b := p[0], p[1]
		na, nb := nameFor(a), nameFor(b)
		if !NamedFor(na, a) || !NamedFor(nb, b) {
			t.Errorf("NamedFor does not match a name with its own repository: %q (%q), %q (%q)", na, a, nb, b)
		}
		if NamedFor(na, b) || NamedFor(nb, a) {
			t.Errorf("%q and %q match each other's names: %q, %q", a, b, na, nb)
		}
		if pa, pb := RepoNamePrefix(a), RepoNamePrefix(b); strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa) {
			t.Errorf("prefixes %q and %q: one starts the other", pa, pb)
		}
	}
}

func TestNamedFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, repo string
		want       bool
	}{
		{"cfmint:octo/site:dns-edit:1.1-abc:deploy:cf", "octo/site", true},
		{"cfmint:octo/site:dns-edit:1.1-abc:deploy:cf", "Octo/Site", true}, // GitHub names ignore case
		{"cfmint:octo/site:dns-edit:1.1-abc:deploy:cf", "octo/sit", false},
		{"cfmint:octo/site:dns-edit:1.1-abc:deploy:cf", "octo/site2", false},
		{"cfmint:octo/site2:dns-edit:1.1-abc:deploy:cf", "octo/site", false},
		{"cfmint:octo/site:", "octo/site", false}, // nothing after the prefix
		{"CFMINT:octo/site:x", "octo/site", false},
		{"cfmint:octo/\u017fite:x", "octo/site", false}, // long s folds to s in Unicode, not here
		{"deploy-octo-site", "octo/site", false},
		{"cfmint:local:mint:1.2:cli:-", "", true},
		{"cfmint:local:mint:1.2:cli:-", "octo/site", false},
		{"cfmint:anything:x", "*", true},
		{"cfmint:", "*", false},
		{"someone-else's token", "*", false},
	}
	for _, tc := range cases {
		if got := NamedFor(tc.name, tc.repo); got != tc.want {
			t.Errorf("NamedFor(%q, %q) = %v, want %v", tc.name, tc.repo, got, tc.want)
		}
	}
}

func TestDefaultNameParts(t *testing.T) {
	t.Parallel()
	// Empty parts are "-": a name never holds "::", which the runner would read as a command.
	if n := DefaultName(Context{}, ""); n != "cfmint:local:-:0.1:-:-" {
		t.Errorf("DefaultName of nothing = %q", n)
	}
	// A name over 120 bytes is cut after the repository part, never in it.
	repo := "some-org/" + strings.Repeat("very-long-repository-name-", 4)
	n := DefaultName(Context{Repository: repo, RunID: "123456789012", RunAttempt: "3", Job: strings.Repeat("j", 64), Action: strings.Repeat("s", 64), Nonce: "abcdef"}, "workers-deploy+custom")
	if len(n) > MaxNameLen || !NamedFor(n, repo) {
		t.Errorf("long name %q (%d bytes) is not named for %q", n, len(n), repo)
	}
}

func TestNameInputCannotPassForAnotherRepository(t *testing.T) {
	t.Parallel()
	rc := Context{Repository: "octo/site", RunID: "1"}
	for _, tmpl := range []string{"cfmint:octo/site:nightly", "cfmint:Octo/Site:{run_id}", "deploy {repository}", "cfmintx"} {
		if _, err := ExpandName(tmpl, rc, "p"); err != nil {
			t.Errorf("ExpandName(%q): %v", tmpl, err)
		}
	}
	for _, tmpl := range []string{"cfmint:other/repo:x", "cfmint:octo/site2:x", "cfmint:local:x", "cfmint:{owner}:x", "cfmint:octo/site:"} {
		_, err := ExpandName(tmpl, rc, "p")
		if err == nil || !strings.Contains(err.Error(), "start it with cfmint:octo/site:") {
			t.Errorf("ExpandName(%q) = %v; want a refusal that names this repository's prefix", tmpl, err)
		}
	}
}

func FuzzNamedFor(f *testing.F) {
	f.Add("octo/site", "octo/site2", "deploy")
	f.Add("a/b c", "a/b_c", "")
	f.Add("some-org/"+strings.Repeat("m", 60)+"a", "some-org/"+strings.Repeat("m", 60)+"b", "j")
	f.Fuzz(func(t *testing.T, a, b, job string) {
		na := DefaultName(Context{Repository: a, RunID: "1", RunAttempt: "1", Job: job, Nonce: "abcdef"}, "p")
		if !NamedFor(na, a) || !NamedFor(na, "*") {
			t.Fatalf("%q is not named for its own repository %q", na, a)
		}
		if strings.EqualFold(a, b) || b == "*" {
			return
		}
		if NamedFor(na, b) {
			t.Fatalf("%q, named for %q, matches %q", na, a, b)
		}
		if pa, pb := RepoNamePrefix(a), RepoNamePrefix(b); strings.HasPrefix(strings.ToLower(pa), strings.ToLower(pb)) {
			t.Fatalf("prefix %q of %q starts with prefix %q of %q", pa, a, pb, b)
		}
	})
}

// TestNamesPrintSafely runs names through the runner's command parser, as the phases print them.
func TestNamesPrintSafely(t *testing.T) {
	t.Parallel()
	hostile := "##[set-output name=r2-endpoint]https://evil.example"
	rc := Context{Repository: "octo/site", RunID: "1", RunAttempt: "1", Job: hostile, Action: "::add-mask::x", SHA: hostile}
	names := []string{DefaultName(rc, hostile)}
	for _, tmpl := range []string{"{job}", "x {step} {sha}", "{purpose}"} {
		n, err := ExpandName(tmpl, rc, hostile)
		if err != nil {
			t.Fatalf("ExpandName(%q): %v", tmpl, err)
		}
		names = append(names, n)
	}
	for _, n := range names {
		for _, line := range []string{n, "Minted token " + n + " (id 0123)."} {
			if cmd, ok := runner.FindCommand(line); ok {
				t.Errorf("the runner reads ::%s:: in %q", cmd, line)
			}
		}
	}
}
