package mint

import (
	"strings"
	"testing"
)

func nameFor(repo string) string {
	return DefaultName(RunContext{Repository: repo, RunID: "42", RunAttempt: "1", Job: "deploy", Action: "cf", Nonce: "a1b2c3"}, "dns-edit")
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
		if len(got) > len(NamePrefix)+partMax+1 {
			t.Errorf("RepoNamePrefix(%q) = %q is longer than %d bytes", tc.repo, got, len(NamePrefix)+partMax+1)
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
	if n := DefaultName(RunContext{}, ""); n != "cfmint:local:-:0.1:-:-" {
		t.Errorf("DefaultName of nothing = %q", n)
	}
	// A name over 120 bytes is cut after the repository part, never in it.
	repo := "some-org/" + strings.Repeat("very-long-repository-name-", 4)
	n := DefaultName(RunContext{Repository: repo, RunID: "123456789012", RunAttempt: "3", Job: strings.Repeat("j", 64), Action: strings.Repeat("s", 64), Nonce: "abcdef"}, "workers-deploy+custom")
	if len(n) > MaxNameLen || !NamedFor(n, repo) {
		t.Errorf("long name %q (%d bytes) is not named for %q", n, len(n), repo)
	}
}

func TestDefaultName(t *testing.T) {
	t.Parallel()
	if n := DefaultName(RunContext{Repository: "o/r", RunID: "5", RunAttempt: "1", Job: "j", Action: "s", Nonce: "a1b2c3"}, "p"); n != "cfmint:o/r:p:5.1-a1b2c3:j:s" {
		t.Errorf("name with a nonce = %q", n)
	}
	// Attacker-influenced parts (job and step names) cannot add separators or control characters.
	n := DefaultName(RunContext{Repository: "octo/site", RunID: "1", RunAttempt: "1", Job: "de:ploy\n::add-mask::x", Action: "cf"}, "dns-edit")
	if strings.Count(n, ":") != 5 || strings.ContainsAny(n, "\n\r") {
		t.Errorf("name %q is not sanitised", n)
	}
	long := DefaultName(RunContext{Repository: "octo/" + strings.Repeat("r", 100), RunID: "123456789", RunAttempt: "3", Job: strings.Repeat("j", 60), Action: "a1"}, "workers-deploy")
	long2 := DefaultName(RunContext{Repository: "octo/" + strings.Repeat("r", 100), RunID: "123456789", RunAttempt: "3", Job: strings.Repeat("j", 60), Action: "a2"}, "workers-deploy")
	if len(long) > MaxNameLen || long == long2 {
		t.Errorf("long names %q and %q: want <= %d and distinct", long, long2, MaxNameLen)
	}
	if !strings.HasPrefix(long, RepoNamePrefix("octo/"+strings.Repeat("r", 100))) {
		t.Errorf("long name %q lost its repository prefix", long)
	}
}

func FuzzNamedFor(f *testing.F) {
	f.Add("octo/site", "octo/site2", "deploy")
	f.Add("a/b c", "a/b_c", "")
	f.Add("some-org/"+strings.Repeat("m", 60)+"a", "some-org/"+strings.Repeat("m", 60)+"b", "j")
	f.Fuzz(func(t *testing.T, a, b, job string) {
		na := DefaultName(RunContext{Repository: a, RunID: "1", RunAttempt: "1", Job: job, Nonce: "abcdef"}, "p")
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

func TestBrokerName(t *testing.T) {
	t.Parallel()
	run := BrokerRun{Issuer: "a1b2c3", RepositoryID: "892345611", Repository: "octo-org/octo-repo", RunID: "9876543210", Attempt: "1"}
	n := BrokerName(run, "abcdef0123456789", "site-deploy")
	if want := "cfmint-broker:a1b2c3:892345611:9876543210.1:abcdef0123456789:site-deploy:octo-org/octo-repo"; n != want {
		t.Errorf("BrokerName = %q, want %q", n, want)
	}
	if !strings.HasPrefix(n, BrokerRunPrefix(run, "")) || !strings.HasPrefix(n, BrokerRunPrefix(run, "abcdef0123456789")) {
		t.Errorf("%q does not start with its run's prefixes", n)
	}
	if r := BrokerRule(n); r != "site-deploy" {
		t.Errorf("BrokerRule(%q) = %q, want site-deploy", n, r)
	}
	if r := BrokerRule("cfmint-broker:a1b2c3:1:2.1"); r != "" {
		t.Errorf("BrokerRule of a name without a rule = %q", r)
	}
	other := run
	other.Attempt = "2"
	if strings.HasPrefix(n, BrokerRunPrefix(other, "")) {
		t.Errorf("%q passes for attempt 2's", n)
	}

	// The repository is sanitised: it cannot add a separator, and the name stays within the cap
	// with a hash of the whole, so two names cut at the same place stay apart.
	// Two repositories that differ past the cut (the 50th byte here) still get distinct names.
	run.Repository = "octo:org/" + strings.Repeat("r", 40) + "\n::add-mask::x" + strings.Repeat("r", 200)
	long := BrokerName(run, "abcdef0123456789", "site-deploy")
	run.Repository = strings.Replace(run.Repository, "add-mask", "add-masq", 1)
	long2 := BrokerName(run, "abcdef0123456789", "site-deploy")
	if len(long) > MaxNameLen || long == long2 || strings.ContainsAny(long, "\n\r") || strings.Count(long, ":") != 6 {
		t.Errorf("long names %q and %q: want <= %d bytes, distinct, sanitised", long, long2, MaxNameLen)
	}
	if BrokerRule(long) != "site-deploy" {
		t.Errorf("BrokerRule(%q) = %q, want the rule back from a cut name", long, BrokerRule(long))
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("octo/site", true)
	f.Add("de:ploy\n::add-mask::x~", false)
	f.Fuzz(func(t *testing.T, s string, slash bool) {
		got := Sanitize(s, slash)
		if len(got) > partMax || strings.ContainsAny(got, ":~\n\r ") || (!slash && strings.Contains(got, "/")) {
			t.Fatalf("Sanitize(%q, %v) = %q", s, slash, got)
		}
	})
}
