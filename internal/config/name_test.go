package config

import (
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/runner"
)

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

// TestNameInputCannotPassForTheBrokers: a broker's sweeper deletes tokens by its own names, so a
// token minted directly may not take one, whatever its case.
func TestNameInputCannotPassForTheBrokers(t *testing.T) {
	t.Parallel()
	rc := Context{Repository: "octo/site", RunID: "1"}
	for _, tmpl := range []string{"cfmint-broker:a1b2c3:1:2.1:abcdef0123456789:r:octo/site", "CFMINT-BROKER:x", "cfmint-broker:{run_id}"} {
		_, err := ExpandName(tmpl, rc, "p")
		if err == nil || !strings.Contains(err.Error(), "marks the tokens a cfmint broker mints") {
			t.Errorf("ExpandName(%q) = %v; want a refusal naming the broker's prefix", tmpl, err)
		}
	}
	if _, err := ExpandName("cfmint-brokerage", rc, "p"); err != nil {
		t.Errorf("ExpandName(cfmint-brokerage): %v", err)
	}
}

// TestNamesPrintSafely runs names through the runner's command parser, as the phases print them.
func TestNamesPrintSafely(t *testing.T) {
	t.Parallel()
	hostile := "##[set-output name=r2-endpoint]https://evil.example"
	rc := Context{Repository: "octo/site", RunID: "1", RunAttempt: "1", Job: hostile, Action: "::add-mask::x", SHA: hostile}
	names := []string{mint.DefaultName(rc, hostile)}
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
