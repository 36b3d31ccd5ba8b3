package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/runner"
)

// TestREADMETables checks the README's inputs and outputs tables against action.yml: every input
// and output is documented, with the default action.yml gives it, and nothing else is.
func TestREADMETables(t *testing.T) {
	t.Parallel()
	act, err := runner.LoadAction("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	section := func(title string) string {
		i := strings.Index(readme, "## "+title+"\n")
		if i < 0 {
			t.Fatalf("README has no %q section", title)
		}
		rest := readme[i+len(title)+4:]
		if j := strings.Index(rest, "\n## "); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\|([^|]*)\\|")

	inputs := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section("Inputs"), -1) {
		inputs[m[1]] = strings.TrimSpace(m[2])
	}
	for name, in := range act.Inputs {
		got, ok := inputs[name]
		if !ok {
			t.Errorf("README does not document input %s", name)
			continue
		}
		want := ""
		switch {
		case in.Required:
			want = "(required)"
		case in.Default != "":
			want = "`" + in.Default + "`"
		}
		if got != want && !(got == "(see below)" && in.Default == "") {
			t.Errorf("README gives input %s the default %q; action.yml says %q", name, got, want)
		}
	}
	for name := range inputs {
		if _, ok := act.Inputs[name]; !ok {
			t.Errorf("README documents input %s, which action.yml does not declare", name)
		}
	}

	outputs := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section("Outputs"), -1) {
		outputs[m[1]] = true
	}
	for name := range act.Outputs {
		if !outputs[name] {
			t.Errorf("README does not document output %s", name)
		}
	}
	for name := range outputs {
		if _, ok := act.Outputs[name]; !ok {
			t.Errorf("README documents output %s, which action.yml does not declare", name)
		}
	}
}
