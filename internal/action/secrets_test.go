package action_test

// Secrets under failure: every fault case, run with RUNNER_DEBUG=1, and every byte the phases
// produced (streams, web log, summary, state, outputs, env, the raw file-command files) scanned
// for the bootstrap tokens (allowed nowhere) and for each secret the API minted (allowed only in
// its ::add-mask:: line and in GITHUB_OUTPUT / GITHUB_ENV, where it is handed on).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
)

// mintedToken is a token as the fake's create answered it.
type mintedToken struct{ id, secret string }

// created reads the fake's create answers from its log, lost answers included: the fake logs
// what it would have sent, which is how a test learns a secret cfmint never saw.
func created(reqs []cfapitest.Request) []mintedToken {
	var out []mintedToken
	for _, r := range reqs {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/tokens") || r.Status != http.StatusOK {
			continue
		}
		var env struct {
			Result struct {
				ID    string `json:"id"`
				Value string `json:"value"`
			} `json:"result"`
		}
		if json.Unmarshal(r.Response, &env) == nil && env.Result.Value != "" {
			out = append(out, mintedToken{env.Result.ID, env.Result.Value})
		}
	}
	return out
}

// reporter is the part of *testing.T a scan reports through.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// caught records what a scan reported, to test the scan itself.
type caught struct{ msgs []string }

func (c *caught) Helper() {}
func (c *caught) Errorf(format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf(format, args...))
}

// scanSecrets fails the test for any secret where it must not be. It returns how many minted
// secrets it looked for, so a caller can tell a scan that found a secret to look for.
func scanSecrets(t reporter, f *fapi, phases ...*runner.Phase) int {
	t.Helper()
	minted := created(f.Requests())
	for _, p := range phases {
		texts := map[string]string{"stdout": p.Stdout, "stderr": p.Stderr, "log": p.Log, "summary": p.Summary}
		for name, b := range p.Files {
			texts["file "+name] = string(b)
		}
		for k, v := range p.State {
			texts["state "+k] = v
		}
		for k, v := range p.Outputs {
			texts["output "+k] = v
		}
		for k, v := range p.Env {
			texts["env "+k] = v
		}
		for _, e := range p.Errors {
			texts["runner error"] += e.Error() + "\n"
		}
		for _, boot := range []string{f.fx.AccountBootstrap.Secret, f.fx.UserBootstrap.Secret} {
			for what, s := range texts {
				if strings.Contains(s, boot) {
					t.Errorf("%s phase: %s holds a bootstrap token", p.Name, what)
				}
			}
		}
		for _, m := range minted {
			handedOn := false
			for what, s := range texts {
				if !strings.Contains(s, m.secret) {
					continue
				}
				switch {
				case what == "stdout":
					for i, line := range strings.Split(s, "\n") {
						if strings.Contains(line, m.secret) && line != "::add-mask::"+m.secret {
							t.Errorf("%s phase: stdout line %d uses the secret of %s outside its mask: %q", p.Name, i+1, m.id, strings.ReplaceAll(line, m.secret, "<SECRET>"))
						}
					}
				case what == "file GITHUB_OUTPUT", what == "file GITHUB_ENV", strings.HasPrefix(what, "output "), strings.HasPrefix(what, "env "):
					handedOn = true
				default:
					t.Errorf("%s phase: %s holds the secret of token %s", p.Name, what, m.id)
				}
			}
			if handedOn && !strings.Contains(p.Stdout, "::add-mask::"+m.secret+"\n") {
				t.Errorf("%s phase handed on the secret of %s without masking it", p.Name, m.id)
			}
		}
	}
	return len(minted)
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
