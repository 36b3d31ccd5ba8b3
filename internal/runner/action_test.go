package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testActionYML = `
name: cfmint
description: mints a Cloudflare token
inputs:
  bootstrap-token:
    description: the token that mints
    required: true
  ttl:
    description: lifetime
    default: 15m
  account id:
    description: a name with a space
  empty-default:
    description: declared default of ""
    default: ""
  retries:
    default: 3
  legacy:
    deprecationMessage: use ttl
outputs:
  token:
    description: the minted token
runs:
  using: docker
  image: docker://ghcr.io/cfmint/cfmint:v1
  entrypoint: /cfmint
  post-entrypoint: /cfmint-post
  args: ["--ttl", "${{ inputs.ttl }}", "${{ inputs['account id'] }}"]
  env:
    FROM_RUNS: runs
    OVERRIDDEN_BY_STEP: runs
`

func TestParseAction(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name    string
		yml     string
		wantErr string
		check   func(t *testing.T, a *Action)
	}{
		{
			name: "full action",
			yml:  testActionYML,
			check: func(t *testing.T, a *Action) {
				if a.Name != "cfmint" {
					t.Errorf("Name = %q", a.Name)
				}
				want := map[string]Input{
					"bootstrap-token": {Description: "the token that mints", Required: true},
					"ttl":             {Description: "lifetime", Default: "15m", HasDefault: true},
					"account id":      {Description: "a name with a space"},
					"empty-default":   {Description: `declared default of ""`, Default: "", HasDefault: true},
					"retries":         {Default: "3", HasDefault: true},
					"legacy":          {DeprecationMessage: "use ttl"},
				}
				if !reflect.DeepEqual(a.Inputs, want) {
					t.Errorf("Inputs = %#v\nwant %#v", a.Inputs, want)
				}
				if got, want := a.InputNames(), []string{"bootstrap-token", "ttl", "account id", "empty-default", "retries", "legacy"}; !reflect.DeepEqual(got, want) {
					t.Errorf("InputNames() = %q, want declaration order %q", got, want)
				}
				if got := a.Outputs["token"].Description; got != "the minted token" {
					t.Errorf("Outputs[token] = %q", got)
				}
				wantRuns := Runs{
					Using: "docker", Image: "docker://ghcr.io/cfmint/cfmint:v1",
					Entrypoint: "/cfmint", PostEntrypoint: "/cfmint-post",
					Args: []string{"--ttl", "${{ inputs.ttl }}", "${{ inputs['account id'] }}"},
					Env:  map[string]string{"FROM_RUNS": "runs", "OVERRIDDEN_BY_STEP": "runs"},
				}
				if !reflect.DeepEqual(a.Runs, wantRuns) {
					t.Errorf("Runs = %#v\nwant %#v", a.Runs, wantRuns)
				}
			},
		},
		{
			name: "no inputs, post-if and pre",
			yml: `
runs:
  using: Docker
  image: Dockerfile
  pre-entrypoint: /pre
  entrypoint: /main
  post-entrypoint: /post
  post-if: ${{ !cancelled() }}
`,
			check: func(t *testing.T, a *Action) {
				if len(a.Inputs) != 0 || a.Runs.PreEntrypoint != "/pre" || a.Runs.PostIf != "${{ !cancelled() }}" {
					t.Errorf("got %#v", a)
				}
			},
		},
		{
			name: "required as string and null default",
			yml: `
inputs:
  a:
    required: 'true'
    default: ~
  b:
    required: false
runs: {using: docker, image: Dockerfile}
`,
			check: func(t *testing.T, a *Action) {
				if !a.Inputs["a"].Required || a.Inputs["a"].HasDefault || a.Inputs["b"].Required {
					t.Errorf("Inputs = %#v", a.Inputs)
				}
			},
		},
		{name: "node action", yml: "runs: {using: node20, main: index.js}", wantErr: `runs.using is "node20"`},
		{name: "composite action", yml: "runs: {using: composite, steps: []}", wantErr: `runs.using is "composite"`},
		{name: "no runs", yml: "name: x", wantErr: `runs.using is ""`},
		{name: "no image", yml: "runs: {using: docker}", wantErr: "runs.image is empty"},
		{name: "bad yaml", yml: "runs: [", wantErr: "failed to parse action.yml"},
		{name: "inputs not a mapping", yml: "inputs: [a]\nruns: {using: docker, image: Dockerfile}", wantErr: "inputs must be a mapping"},
		{name: "duplicate input", yml: "inputs: {a: {}, A: {}}\nruns: {using: docker, image: Dockerfile}", wantErr: "declared twice"},
		{name: "default not a string", yml: "inputs: {a: {default: [1]}}\nruns: {using: docker, image: Dockerfile}", wantErr: "must be a string"},
		{name: "unsupported post-if", yml: "runs: {using: docker, image: Dockerfile, post-if: github.ref == 'main'}", wantErr: "post-if"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := ParseAction([]byte(tc.yml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseAction() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAction() error = %v", err)
			}
			tc.check(t, a)
		})
	}
}

func TestLoadAction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "action.yml")
	if err := os.WriteFile(path, []byte(testActionYML), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAction(path)
	if err != nil {
		t.Fatalf("LoadAction() error = %v", err)
	}
	if a.Runs.Entrypoint != "/cfmint" {
		t.Errorf("Entrypoint = %q", a.Runs.Entrypoint)
	}
	if _, err := LoadAction(filepath.Join(dir, "missing.yml")); err == nil {
		t.Error("LoadAction(missing) succeeded")
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("runs: {using: node20}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAction(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadAction(bad) error = %v, want it to name the file", err)
	}
}

func TestInputEnvName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"bootstrap-token": "INPUT_BOOTSTRAP-TOKEN",
		"ttl":             "INPUT_TTL",
		"account id":      "INPUT_ACCOUNT_ID",
		"ip.filter":       "INPUT_IP.FILTER",
		"Mixed_Case":      "INPUT_MIXED_CASE",
	}
	for name, want := range cases {
		if got := (input{name: name}).envName(); got != want {
			t.Errorf("envName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestStatusCondition(t *testing.T) {
	t.Parallel()
	type status struct{ failed, cancelled bool }
	ok, failed, cancelled := status{}, status{failed: true}, status{failed: true, cancelled: true}
	cases := []struct {
		cond string
		runs []status // statuses for which the condition is true
		err  bool
	}{
		{cond: "always()", runs: []status{ok, failed, cancelled}},
		{cond: "${{ always() }}", runs: []status{ok, failed, cancelled}},
		{cond: "success()", runs: []status{ok}},
		{cond: "failure()", runs: []status{failed}},
		{cond: "cancelled()", runs: []status{cancelled}},
		{cond: "!cancelled()", runs: []status{ok, failed}},
		{cond: "${{ !Cancelled( ) }}", runs: []status{ok, failed}},
		{cond: "true", err: true},
		{cond: "success() && github.ref == 'x'", err: true},
	}
	for _, tc := range cases {
		c, err := parseStatusCondition(tc.cond)
		if tc.err {
			if err == nil {
				t.Errorf("parseStatusCondition(%q) succeeded, want an error", tc.cond)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseStatusCondition(%q) error = %v", tc.cond, err)
			continue
		}
		for _, s := range []status{ok, failed, cancelled} {
			want := false
			for _, r := range tc.runs {
				want = want || r == s
			}
			if got := c.eval(s.failed, s.cancelled); got != want {
				t.Errorf("%q with %+v = %v, want %v", tc.cond, s, got, want)
			}
		}
	}
}

func TestEvalTemplate(t *testing.T) {
	t.Parallel()
	lookup := func(scope, name string) (string, error) { return scope + ":" + name, nil }
	cases := []struct {
		in, want string
		err      bool
	}{
		{in: "plain", want: "plain"},
		{in: "${{ inputs.ttl }}", want: "inputs:ttl"},
		{in: "a ${{inputs.bootstrap-token}} b", want: "a inputs:bootstrap-token b"},
		{in: "${{ inputs['account id'] }}", want: "inputs:account id"},
		{in: "${{ github.repository }}/${{ env.X }}", want: "github:repository/env:X"},
		{in: "${{ INPUTS.ttl }}", want: "inputs:ttl"},
		{in: "${{ secrets.X }}", err: true},
		{in: "${{ format('{0}', inputs.x) }}", err: true},
		{in: "${{ inputs.x", err: true},
	}
	for _, tc := range cases {
		got, err := evalTemplate(tc.in, lookup)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("evalTemplate(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
