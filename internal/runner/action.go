// Package runner emulates the GitHub Actions runner for a Docker container
// action: inputs, file commands, state, masking and phases.
//
// It follows the Linux code paths of actions/runner (ActionRunner,
// ContainerActionHandler, FileCommandManager, ActionCommandManager,
// SecretMasker) so that what a test observes here is what a hosted runner
// would show; where it simplifies, the doc comment of the name involved says
// so.
package runner

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Action is the parsed action.yml.
type Action struct {
	Name    string
	Inputs  map[string]Input // keyed by input name as written
	Outputs map[string]Output
	Runs    Runs

	// inputOrder is the order in which action.yml declares the inputs: the
	// runner lists valid inputs in that order in its warning.
	inputOrder []string
}

// Input is one declared input of action.yml.
type Input struct {
	Description string
	Required    bool
	Default     string
	HasDefault  bool
	// DeprecationMessage, when set, makes the runner warn whenever a workflow
	// passes the input.
	DeprecationMessage string
}

// Output is one declared output of action.yml.
type Output struct {
	Description string
}

// Runs is the runs: section of a Docker container action.
type Runs struct {
	Using, Image, Entrypoint, PostEntrypoint, PreEntrypoint, PostIf string
	Args                                                            []string
	Env                                                             map[string]string
}

// InputNames returns the declared input names in the order action.yml lists
// them (sorted, for an Action built by hand).
func (a *Action) InputNames() []string {
	if len(a.inputOrder) == len(a.Inputs) {
		return append([]string(nil), a.inputOrder...)
	}
	names := make([]string, 0, len(a.Inputs))
	for name := range a.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// LoadAction reads and parses the action.yml at path.
func LoadAction(path string) (*Action, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read action: %w", err)
	}
	a, err := ParseAction(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

type actionFile struct {
	Name    string                `yaml:"name"`
	Inputs  yaml.Node             `yaml:"inputs"`
	Outputs map[string]yamlOutput `yaml:"outputs"`
	Runs    struct {
		Using          string            `yaml:"using"`
		Image          string            `yaml:"image"`
		Entrypoint     string            `yaml:"entrypoint"`
		PreEntrypoint  string            `yaml:"pre-entrypoint"`
		PostEntrypoint string            `yaml:"post-entrypoint"`
		PostIf         string            `yaml:"post-if"`
		Args           []string          `yaml:"args"`
		Env            map[string]string `yaml:"env"`
	} `yaml:"runs"`
}

type yamlOutput struct {
	Description string `yaml:"description"`
}

type yamlInput struct {
	Description        string    `yaml:"description"`
	Required           yaml.Node `yaml:"required"`
	Default            yaml.Node `yaml:"default"`
	DeprecationMessage string    `yaml:"deprecationMessage"`
}

// ParseAction parses an action.yml. Only Docker container actions
// (runs.using: docker) are accepted.
func ParseAction(yml []byte) (*Action, error) {
	var f actionFile
	if err := yaml.Unmarshal(yml, &f); err != nil {
		return nil, fmt.Errorf("failed to parse action.yml: %w", err)
	}
	if !strings.EqualFold(f.Runs.Using, "docker") {
		return nil, fmt.Errorf("action.yml: runs.using is %q; only a Docker container action (runs.using: docker) can be emulated", f.Runs.Using)
	}
	if f.Runs.Image == "" {
		return nil, errors.New("action.yml: runs.image is empty; set it to Dockerfile or docker://IMAGE")
	}
	a := &Action{
		Name:    f.Name,
		Inputs:  map[string]Input{},
		Outputs: map[string]Output{},
		Runs: Runs{
			Using:          f.Runs.Using,
			Image:          f.Runs.Image,
			Entrypoint:     f.Runs.Entrypoint,
			PreEntrypoint:  f.Runs.PreEntrypoint,
			PostEntrypoint: f.Runs.PostEntrypoint,
			PostIf:         f.Runs.PostIf,
			Args:           f.Runs.Args,
			Env:            f.Runs.Env,
		},
	}
	for name, o := range f.Outputs {
		a.Outputs[name] = Output(o)
	}
	if err := a.parseInputs(&f.Inputs); err != nil {
		return nil, err
	}
	if a.Runs.PostIf != "" {
		if _, err := parseStatusCondition(a.Runs.PostIf); err != nil {
			return nil, fmt.Errorf("action.yml: runs.post-if: %w", err)
		}
	}
	return a, nil
}

func (a *Action) parseInputs(n *yaml.Node) error {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil // no inputs
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("action.yml line %d: inputs must be a mapping of input names", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		if name == "" {
			return fmt.Errorf("action.yml line %d: an input has an empty name", n.Content[i].Line)
		}
		for _, seen := range a.inputOrder {
			if strings.EqualFold(seen, name) {
				return fmt.Errorf("action.yml line %d: input %q is declared twice (input names are case-insensitive)", n.Content[i].Line, name)
			}
		}
		var yi yamlInput
		if err := n.Content[i+1].Decode(&yi); err != nil {
			return fmt.Errorf("action.yml: input %q: %w", name, err)
		}
		in := Input{Description: yi.Description, DeprecationMessage: yi.DeprecationMessage}
		if yi.Required.Kind == yaml.ScalarNode {
			in.Required = strings.EqualFold(yi.Required.Value, "true")
		}
		if yi.Default.Kind == yaml.ScalarNode && yi.Default.Tag != "!!null" {
			in.Default, in.HasDefault = yi.Default.Value, true
		} else if yi.Default.Kind != 0 && yi.Default.Kind != yaml.ScalarNode {
			return fmt.Errorf("action.yml line %d: the default of input %q must be a string", yi.Default.Line, name)
		}
		a.Inputs[name] = in
		a.inputOrder = append(a.inputOrder, name)
	}
	return nil
}

// input is one INPUT_ value the container receives, under the name the
// runner uses for it.
type input struct {
	name, value string
}

// envName is the variable the runner sets for an input: upper-cased, spaces
// turned into underscores, every other character (hyphens too) kept.
func (in input) envName() string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(in.name, " ", "_"))
}

// resolveInputs merges a step's with: into the declared inputs as
// ActionRunner does: declared inputs first (the workflow's value, else the
// default, else ""), then with: keys action.yml does not declare, which are
// passed on but warned about. Names match case-insensitively.
func (a *Action) resolveInputs(with map[string]string, eval func(string) (string, error)) ([]input, []string, error) {
	var inputs []input
	var warnings []string
	keys := make([]string, 0, len(with))
	for k := range with {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	declared := a.InputNames()
	lookup := func(name string) (string, bool) {
		if v, ok := with[name]; ok {
			return v, true
		}
		for _, k := range keys {
			if strings.EqualFold(k, name) {
				return with[k], true
			}
		}
		return "", false
	}
	for _, k := range keys {
		for _, name := range declared {
			if strings.EqualFold(k, name) && a.Inputs[name].DeprecationMessage != "" {
				warnings = append(warnings, fmt.Sprintf("Input '%s' has been deprecated with message: %s", k, a.Inputs[name].DeprecationMessage))
			}
		}
	}
	for _, name := range declared {
		v, ok := lookup(name)
		if !ok {
			def := a.Inputs[name]
			if def.HasDefault {
				var err error
				if v, err = eval(def.Default); err != nil {
					return nil, nil, fmt.Errorf("failed to evaluate the default of input %q: %w", name, err)
				}
			}
		}
		inputs = append(inputs, input{name: name, value: v})
	}

	// A container action always accepts entryPoint and args.
	valid := append([]string{"entryPoint", "args"}, declared...)
	var unexpected []string
	for _, k := range keys {
		isDeclared, isValid := false, false
		for i, name := range valid {
			if strings.EqualFold(k, name) {
				isValid, isDeclared = true, i >= 2
			}
		}
		if !isDeclared {
			inputs = append(inputs, input{name: k, value: with[k]})
		}
		if !isValid {
			unexpected = append(unexpected, k)
		}
	}
	if len(unexpected) > 0 {
		warnings = append(warnings, fmt.Sprintf("Unexpected input(s) '%s', valid inputs are ['%s']",
			strings.Join(unexpected, "', '"), strings.Join(valid, "', '")))
	}
	return inputs, warnings, nil
}

var (
	exprPattern = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)
	exprRef     = regexp.MustCompile(`^(?i:(inputs|github|env))(?:\.([A-Za-z0-9_-]+)|\[\s*'([^']*)'\s*\])$`)
)

// evalTemplate expands the ${{ }} expressions of an action.yml value. Only
// property look-ups are emulated: inputs.NAME, env.NAME and github.NAME (read
// from the job's GITHUB_NAME variable); anything else is an error rather than
// a silent wrong value.
func evalTemplate(s string, lookup func(scope, name string) (string, error)) (string, error) {
	if !strings.Contains(s, "${{") {
		return s, nil
	}
	var firstErr error
	out := exprPattern.ReplaceAllStringFunc(s, func(m string) string {
		expr := exprPattern.FindStringSubmatch(m)[1]
		ref := exprRef.FindStringSubmatch(expr)
		if ref == nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("expression %q is not emulated; only inputs.NAME, env.NAME and github.NAME are", m)
			}
			return ""
		}
		name := ref[2]
		if name == "" {
			name = ref[3]
		}
		v, err := lookup(strings.ToLower(ref[1]), name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	if firstErr != nil {
		return "", firstErr
	}
	if strings.Contains(out, "${{") {
		return "", fmt.Errorf("unterminated expression in %q", s)
	}
	return out, nil
}

// statusCondition is an emulated post-if: one status function, maybe negated.
type statusCondition struct {
	fn     string // always, success, failure, cancelled
	negate bool
}

// parseStatusCondition accepts what post-if is used for in practice:
// always(), success(), failure(), cancelled(), each optionally negated with !
// and optionally wrapped in ${{ }}.
func parseStatusCondition(s string) (statusCondition, error) {
	e := strings.TrimSpace(s)
	if strings.HasPrefix(e, "${{") && strings.HasSuffix(e, "}}") {
		e = strings.TrimSpace(e[3 : len(e)-2])
	}
	var c statusCondition
	if strings.HasPrefix(e, "!") {
		c.negate = true
		e = strings.TrimSpace(e[1:])
	}
	fn, ok := strings.CutSuffix(strings.ToLower(strings.ReplaceAll(e, " ", "")), "()")
	switch {
	case ok && (fn == "always" || fn == "success" || fn == "failure" || fn == "cancelled"):
		c.fn = fn
		return c, nil
	default:
		return c, fmt.Errorf("condition %q is not emulated; use always(), success(), failure() or cancelled(), optionally negated", s)
	}
}

func (c statusCondition) eval(failed, cancelled bool) bool {
	var v bool
	switch c.fn {
	case "always":
		v = true
	case "success":
		v = !failed && !cancelled
	case "failure":
		v = failed && !cancelled
	case "cancelled":
		v = cancelled
	}
	return v != c.negate
}
