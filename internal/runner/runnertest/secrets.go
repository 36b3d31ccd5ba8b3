// Package runnertest holds the checks the action's tests make of what its phases wrote, the same
// whether the phases ran in process (internal/action) or as the built binary (e2e): no secret
// where it must not be, and no workflow command cfmint did not mean to issue.
package runnertest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
)

// Reporter is the part of *testing.T a check reports through.
type Reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// CheckSecrets asserts that the minted secret shows up in the container's streams only inside
// its ::add-mask:: line, which comes before any other use, and that none of the bootstrap tokens shows up
// anywhere: streams, outputs, env, state, summary.
func CheckSecrets(t Reporter, bootstraps []string, secret string, phases ...*runner.Phase) {
	t.Helper()
	CheckCommands(t, phases...)
	for _, boot := range bootstraps {
		for _, p := range phases {
			for what, s := range map[string]string{"stdout": p.Stdout, "stderr": p.Stderr, "summary": p.Summary, "log": p.Log} {
				if strings.Contains(s, boot) {
					t.Errorf("%s phase %s holds a bootstrap token", p.Name, what)
				}
			}
			for name, b := range p.Files {
				if strings.Contains(string(b), boot) {
					t.Errorf("%s phase file %s holds a bootstrap token", p.Name, name)
				}
			}
		}
	}
	if secret == "" {
		return
	}
	masked := false
	for _, p := range phases {
		for _, line := range strings.Split(p.Stdout, "\n") {
			if line == "::add-mask::"+secret {
				masked = true
			}
		}
		for _, v := range p.State {
			if strings.Contains(v, secret) {
				t.Errorf("%s phase state holds the minted secret", p.Name)
			}
		}
		if strings.Contains(p.Summary, secret) || strings.Contains(p.Log, secret) || strings.Contains(p.Stderr, secret) {
			t.Errorf("%s phase summary, log or stderr holds the minted secret", p.Name)
		}
		for i, line := range strings.Split(p.Stdout, "\n") {
			if !strings.Contains(line, secret) {
				continue
			}
			if line != "::add-mask::"+secret {
				t.Errorf("%s phase stdout line %d uses the secret outside its mask line: %q", p.Name, i+1, strings.ReplaceAll(line, secret, "<SECRET>"))
			}
		}
	}
	if !masked {
		t.Errorf("the minted secret was never masked")
	}
}

// logCommands are the workflow commands cfmint issues: masks and annotations. Anything else the
// runner would read in a line (set-output, save-state, set-env, add-path, stop-commands, in the
// "::" form or the legacy "##[" one) came from a value cfmint printed.
var logCommands = map[string]bool{"add-mask": true, "error": true, "warning": true, "notice": true, "debug": true}

// CheckCommands runs every line the phases wrote through the runner's own command parsers.
func CheckCommands(t Reporter, phases ...*runner.Phase) {
	t.Helper()
	for _, p := range phases {
		for what, text := range map[string]string{"stdout": p.Stdout, "stderr": p.Stderr} {
			for i, line := range strings.Split(text, "\n") {
				if name, ok := runner.FindCommand(line); ok && !logCommands[name] {
					t.Errorf("%s phase %s line %d is a %s command: %q", p.Name, what, i+1, name, line)
				}
			}
		}
	}
}

// Minted is a token as the fake's create answered it.
type Minted struct{ ID, Secret string }

// Created reads the fake's create answers from its log, lost answers included: the fake logs
// what it would have sent, which is how a test learns a secret cfmint never saw.
func Created(reqs []cfapitest.Request) []Minted {
	var out []Minted
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
			out = append(out, Minted{env.Result.ID, env.Result.Value})
		}
	}
	return out
}

// ScanSecrets fails the test for any secret where it must not be: the bootstrap tokens anywhere,
// the minted ones outside their mask line and the files and outputs that hand them on. It returns how many minted
// secrets it looked for, so a caller can tell a scan that found a secret to look for.
func ScanSecrets(t Reporter, bootstraps []string, minted []Minted, phases ...*runner.Phase) int {
	t.Helper()
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
		for _, boot := range bootstraps {
			for what, s := range texts {
				if strings.Contains(s, boot) {
					t.Errorf("%s phase: %s holds a bootstrap token", p.Name, what)
				}
			}
		}
		for _, m := range minted {
			handedOn := false
			for what, s := range texts {
				if !strings.Contains(s, m.Secret) {
					continue
				}
				switch {
				case what == "stdout":
					for i, line := range strings.Split(s, "\n") {
						if strings.Contains(line, m.Secret) && line != "::add-mask::"+m.Secret {
							t.Errorf("%s phase: stdout line %d uses the secret of %s outside its mask: %q", p.Name, i+1, m.ID, strings.ReplaceAll(line, m.Secret, "<SECRET>"))
						}
					}
				case what == "file GITHUB_OUTPUT", what == "file GITHUB_ENV", strings.HasPrefix(what, "output "), strings.HasPrefix(what, "env "):
					handedOn = true
				default:
					t.Errorf("%s phase: %s holds the secret of token %s", p.Name, what, m.ID)
				}
			}
			if handedOn && !strings.Contains(p.Stdout, "::add-mask::"+m.Secret+"\n") {
				t.Errorf("%s phase handed on the secret of %s without masking it", p.Name, m.ID)
			}
		}
	}
	return len(minted)
}
