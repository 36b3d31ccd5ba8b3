package action_test

// Secrets under failure: every fault case, run with RUNNER_DEBUG=1, and every byte the phases
// produced (streams, web log, summary, state, outputs, env, the raw file-command files) scanned
// for the bootstrap tokens (allowed nowhere) and for each secret the API minted (allowed only in
// its ::add-mask:: line and in GITHUB_OUTPUT / GITHUB_ENV, where it is handed on).

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/runner"
	"github.com/cfmint/cfmint/internal/runner/runnertest"
)

// reporter is the part of *testing.T a scan reports through.
type reporter = runnertest.Reporter

// caught records what a scan reported, to test the scan itself.
type caught struct{ msgs []string }

func (c *caught) Helper() {}
func (c *caught) Errorf(format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf(format, args...))
}

// scanSecrets is runnertest.ScanSecrets with the fixture's bootstrap tokens and what f minted.
func scanSecrets(t reporter, f *fapi, phases ...*runner.Phase) int {
	t.Helper()
	return runnertest.ScanSecrets(t, []string{f.fx.AccountBootstrap.Secret, f.fx.UserBootstrap.Secret}, runnertest.Created(f.Requests()), phases...)
}

// TestSecretsUnderFaults runs every fault case with RUNNER_DEBUG=1 and scans everything. The
// slow case (10 s) is run and scanned so by TestFaults, to run it once.
func TestSecretsUnderFaults(t *testing.T) {
	t.Parallel()
	for _, c := range faultCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.slow {
				t.Skip("slow: TestFaults runs it with RUNNER_DEBUG=1 and scans it")
			}
			f, r := runFaultCase(t, c, map[string]string{"RUNNER_DEBUG": "1"})
			// cfmint debug-logs from the create on; a phase that failed earlier has nothing to say.
			if f.creates() > 0 && !strings.Contains(r.main.Log, "##[debug]") {
				t.Error("no debug lines in main's log with RUNNER_DEBUG=1")
			}
			scanSecrets(t, f, r.main, r.post)
		})
	}
}

// TestSecretsScanCatches makes sure the scan itself can fail: a phase that prints a minted
// secret, or a bootstrap token, is caught.
func TestSecretsScanCatches(t *testing.T) {
	t.Parallel()
	f := startAPIWith(t, nil)
	j := f.job(t, map[string]string{"CFMINT_TRACE_FALLBACK_URL": f.traceURL()})
	s := f.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	defer runPost(t, j, s, m)
	secret := m.Outputs["token"]
	for name, leak := range map[string]*runner.Phase{
		"secret in the log":          {Name: "main", Log: "token is " + secret},
		"secret in state":            {Name: "main", State: map[string]string{"x": secret}},
		"secret handed on, unmasked": {Name: "main", Outputs: map[string]string{"token": secret}},
		"bootstrap in stderr":        {Name: "main", Stderr: f.fx.AccountBootstrap.Secret},
		"bootstrap in a summary":     {Name: "post", Summary: f.fx.UserBootstrap.Secret},
		"secret in a stdout line":    {Name: "main", Stdout: "::add-mask::" + secret + "\nvalue=" + secret + "\n"},
		"secret in a state file":     {Name: "main", Files: map[string][]byte{"GITHUB_STATE": []byte("x=" + secret)}},
	} {
		var c caught
		scanSecrets(&c, f, leak)
		if len(c.msgs) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
	var c caught
	if n := scanSecrets(&c, f, m); n != 1 || len(c.msgs) != 0 {
		t.Errorf("a clean phase: %d secrets looked for, flagged %v", n, c.msgs)
	}
}
