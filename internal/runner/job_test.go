package runner

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// container is what a fake entrypoint sees.
type container struct {
	t              *testing.T
	ctx            context.Context
	argv0          string
	args           []string
	env            map[string]string
	stdout, stderr io.Writer
}

func (c *container) out(lines ...string) {
	for _, l := range lines {
		fmt.Fprintln(c.stdout, l)
	}
}

func (c *container) errOut(lines ...string) {
	for _, l := range lines {
		fmt.Fprintln(c.stderr, l)
	}
}

// file appends to the file a file-command variable names.
func (c *container) file(variable, content string) {
	c.t.Helper()
	path := c.env[variable]
	if path == "" {
		c.t.Fatalf("%s is not set", variable)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		c.t.Fatal(err)
	}
}

type entrypoint func(c *container) int

// fakeExec runs entrypoints in-process, keyed by argv0, and fails the test on
// any other entrypoint.
func fakeExec(t *testing.T, entrypoints map[string]entrypoint) Executor {
	return func(ctx context.Context, argv0 string, args []string, env []string, stdout, stderr io.Writer) (int, error) {
		f, ok := entrypoints[argv0]
		if !ok {
			t.Errorf("unexpected entrypoint %q", argv0)
			return 1, nil
		}
		m := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			if _, dup := m[k]; dup {
				t.Errorf("variable %s passed twice", k)
			}
			m[k] = v
		}
		return f(&container{t: t, ctx: ctx, argv0: argv0, args: args, env: m, stdout: stdout, stderr: stderr}), nil
	}
}

func mustAction(t *testing.T, yml string) *Action {
	t.Helper()
	a, err := ParseAction([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newTestJob(t *testing.T, yml string, env map[string]string, eps map[string]entrypoint) *Job {
	return NewJob(JobOptions{Dir: t.TempDir(), Env: env, Exec: fakeExec(t, eps), Action: mustAction(t, yml)})
}

func mustRunStep(t *testing.T, j *Job, step Step) (*Phase, *Phase) {
	t.Helper()
	main, post, err := j.RunStep(context.Background(), step)
	if err != nil {
		t.Fatalf("RunStep() error = %v", err)
	}
	return main, post
}

func baseEnv() map[string]string {
	return map[string]string{
		"GITHUB_ACTIONS":          "true",
		"GITHUB_REPOSITORY":       "cfmint/demo",
		"GITHUB_RUN_ID":           "1234",
		"GITHUB_RUN_ATTEMPT":      "1",
		"GITHUB_JOB":              "mint",
		"GITHUB_WORKFLOW":         "ci",
		"CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:1/client/v4",
	}
}

func TestInputs(t *testing.T) {
	t.Parallel()
	const valid = "valid inputs are ['entryPoint', 'args', 'bootstrap-token', 'ttl', 'account id', 'empty-default', 'retries', 'legacy']"
	cases := []struct {
		name     string
		with     map[string]string
		want     map[string]string // INPUT_ variables
		wantArgs []string
		warnings []string
	}{
		{
			name: "nothing given: defaults, else empty strings",
			want: map[string]string{
				"INPUT_BOOTSTRAP-TOKEN": "", // required, yet passed as "" and not failed
				"INPUT_TTL":             "15m",
				"INPUT_ACCOUNT_ID":      "",
				"INPUT_EMPTY-DEFAULT":   "",
				"INPUT_RETRIES":         "3",
				"INPUT_LEGACY":          "",
			},
			wantArgs: []string{"--ttl", "15m", ""},
		},
		{
			name: "given values win, an explicit empty string beats the default",
			with: map[string]string{"bootstrap-token": "bt-123", "ttl": "", "account id": "acc"},
			want: map[string]string{
				"INPUT_BOOTSTRAP-TOKEN": "bt-123",
				"INPUT_TTL":             "",
				"INPUT_ACCOUNT_ID":      "acc",
				"INPUT_EMPTY-DEFAULT":   "",
				"INPUT_RETRIES":         "3",
				"INPUT_LEGACY":          "",
			},
			wantArgs: []string{"--ttl", "", "acc"},
		},
		{
			name: "names match case-insensitively",
			with: map[string]string{"TTL": "1h", "Bootstrap-Token": "bt"},
			want: map[string]string{"INPUT_TTL": "1h", "INPUT_BOOTSTRAP-TOKEN": "bt"},
		},
		{
			name:     "undeclared input is passed on and warned about",
			with:     map[string]string{"tll": "5m", "ip filter": "1.2.3.4"},
			want:     map[string]string{"INPUT_TLL": "5m", "INPUT_IP_FILTER": "1.2.3.4", "INPUT_TTL": "15m"},
			warnings: []string{"Unexpected input(s) 'ip filter', 'tll', " + valid},
		},
		{
			name: "entryPoint and args are always valid for a container action",
			with: map[string]string{"entryPoint": "/x", "args": "a b"},
			want: map[string]string{"INPUT_ENTRYPOINT": "/x", "INPUT_ARGS": "a b"},
		},
		{
			name:     "deprecated input warns when given",
			with:     map[string]string{"legacy": "x"},
			want:     map[string]string{"INPUT_LEGACY": "x"},
			warnings: []string{"Input 'legacy' has been deprecated with message: use ttl"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen map[string]string
			j := newTestJob(t, testActionYML, baseEnv(), map[string]entrypoint{
				"/cfmint":      func(c *container) int { seen = c.env; return 0 },
				"/cfmint-post": func(c *container) int { return 0 },
			})
			main, _ := mustRunStep(t, j, Step{ID: "mint", With: tc.with})
			for k, v := range tc.want {
				got, ok := seen[k]
				if !ok || got != v {
					t.Errorf("%s = %q (set: %v), want %q", k, got, ok, v)
				}
			}
			if !reflect.DeepEqual(main.ContainerEnv, seen) {
				t.Errorf("Phase.ContainerEnv differs from what the container saw")
			}
			if tc.wantArgs != nil && !reflect.DeepEqual(main.Args, tc.wantArgs) {
				t.Errorf("Args = %q, want %q", main.Args, tc.wantArgs)
			}
			var warnings []string
			for _, a := range main.Annotations {
				if a.Level == "warning" {
					warnings = append(warnings, a.Message)
				}
			}
			if !reflect.DeepEqual(warnings, tc.warnings) {
				t.Errorf("warnings = %q, want %q", warnings, tc.warnings)
			}
			for _, w := range tc.warnings {
				if !strings.Contains(main.Log, "##[warning]"+w+"\n") {
					t.Errorf("Log = %q, want the warning", main.Log)
				}
			}
			if main.Failed() {
				t.Errorf("phase failed: %v", main.Errors)
			}
		})
	}
}

func TestContainerEnv(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	env["SHARED"] = "job"
	env["RUNNER_DEBUG"] = "0"
	var main, post map[string]string
	j := newTestJob(t, testActionYML, env, map[string]entrypoint{
		"/cfmint":      func(c *container) int { main = c.env; return 0 },
		"/cfmint-post": func(c *container) int { post = c.env; return 0 },
	})
	mustRunStep(t, j, Step{ID: "mint", Env: map[string]string{
		"SHARED":             "step",
		"OVERRIDDEN_BY_STEP": "step",
		"GITHUB_REPOSITORY":  "attacker/repo", // context variables win over env:
		"GITHUB_OUTPUT":      "/tmp/elsewhere",
	}})
	want := map[string]string{
		"SHARED":                  "step",
		"OVERRIDDEN_BY_STEP":      "step", // runs.env never overrides env:
		"FROM_RUNS":               "runs",
		"GITHUB_REPOSITORY":       "cfmint/demo",
		"CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:1/client/v4",
		"GITHUB_ACTION":           "mint",
		"RUNNER_DEBUG":            "0",
	}
	for k, v := range want {
		if main[k] != v {
			t.Errorf("main %s = %q, want %q", k, main[k], v)
		}
	}
	for _, k := range []string{"PATH", "USER", "GOPATH"} {
		if _, ok := main[k]; ok && os.Getenv(k) != "" {
			t.Errorf("main inherited %s from the test process", k)
		}
	}
	for _, v := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STATE", "GITHUB_STEP_SUMMARY", "GITHUB_PATH"} {
		p := main[v]
		if p == "" || p == "/tmp/elsewhere" {
			t.Errorf("main %s = %q, want a fresh file", v, p)
			continue
		}
		if b, err := os.ReadFile(p); err != nil || len(b) != 0 {
			t.Errorf("%s: %q, %v; want an empty file", v, b, err)
		}
		if post[v] == p {
			t.Errorf("post reuses main's %s file", v)
		}
	}
	if fi, err := os.Stat(main["HOME"]); err != nil || !fi.IsDir() {
		t.Errorf("HOME %q is not a directory: %v", main["HOME"], err)
	}
	for k := range main {
		if strings.HasPrefix(k, "STATE_") {
			t.Errorf("main got %s", k)
		}
	}
}

func TestMaskingOrder(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-s3cr3t"
	j := newTestJob(t, testActionYML, baseEnv(), map[string]entrypoint{
		"/cfmint": func(c *container) int {
			c.out("before "+secret, "::add-mask::"+secret, "after "+secret)
			c.errOut("stderr " + secret)
			c.errOut("::add-mask::from-stderr-1") // stderr commands count too
			c.out("from-stderr-1 and 50% off", "::add-mask::50%25 off", "50% off")
			c.out("::add-mask::multi%0Aline", "multi", "multi\\nline")
			c.out("::add-mask::   ")
			return 0
		},
		"/cfmint-post": func(c *container) int {
			c.out("post " + secret)
			return 0
		},
	})
	main, post := mustRunStep(t, j, Step{ID: "mint"})
	wantLog := strings.Join([]string{
		"before " + secret, // printed before its mask: visible, as on the runner
		"after ***",
		"stderr ***",
		"*** and 50% off",
		"***",
		"multi", // a multi-line mask never matches a single line
		`multi\nline`,
		"##[warning]Can't add secret mask for empty string in ##[add-mask] command.",
	}, "\n") + "\n"
	if main.Log != wantLog {
		t.Errorf("main.Log =\n%s\nwant\n%s", main.Log, wantLog)
	}
	if post.Log != "post ***\n" {
		t.Errorf("post.Log = %q, want the mask from main applied", post.Log)
	}
	if !strings.Contains(main.Stdout, "::add-mask::"+secret) || !strings.Contains(main.Stdout, "after "+secret) {
		t.Errorf("Stdout is not raw: %q", main.Stdout)
	}
	wantMasks := []string{secret, "from-stderr-1", "50% off", "multi\nline"}
	if !reflect.DeepEqual(main.Masks, wantMasks) {
		t.Errorf("main.Masks = %q, want %q", main.Masks, wantMasks)
	}
	if len(post.Masks) != 0 {
		t.Errorf("post.Masks = %q, want none", post.Masks)
	}
	if got := j.Masks(); !reflect.DeepEqual(got, wantMasks) {
		t.Errorf("Job.Masks() = %q, want %q", got, wantMasks)
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	j := NewJob(JobOptions{
		Dir:     t.TempDir(),
		Exec:    fakeExec(t, map[string]entrypoint{"/cfmint": func(c *container) int { c.out("using bootstrap-abc", "first", "second"); return 0 }}),
		Action:  mustAction(t, testActionYML),
		Secrets: []string{"bootstrap-abc", "first\nsecond", ""},
	})
	main, err := j.RunMain(context.Background(), Step{})
	if err != nil {
		t.Fatal(err)
	}
	if main.Log != "using ***\n***\n***\n" {
		t.Errorf("Log = %q", main.Log)
	}
	if got, want := j.Masks(), []string{"bootstrap-abc", "first\nsecond", "first", "second"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Masks() = %q, want %q", got, want)
	}
}

func TestDebugLines(t *testing.T) {
	t.Parallel()
	cases := []struct {
		runnerDebug string
		want        string
	}{
		{runnerDebug: "", want: "visible\n"},
		{runnerDebug: "true", want: "visible\n"},
		{runnerDebug: "1", want: strings.Join([]string{
			"##[debug]checking",
			"##[debug]second line",
			"visible",
			"##[debug]EXPORTED='1'",
			// The runner debug-logs state and outputs: masked values stay hidden.
			"##[debug]Save intra-action state token-id = ***",
			"##[debug]Set output token = ***",
		}, "\n") + "\n"},
	}
	for _, tc := range cases {
		t.Run("RUNNER_DEBUG="+tc.runnerDebug, func(t *testing.T) {
			t.Parallel()
			env := baseEnv()
			env["RUNNER_DEBUG"] = tc.runnerDebug
			j := newTestJob(t, testActionYML, env, map[string]entrypoint{
				"/cfmint": func(c *container) int {
					c.out("::add-mask::tok-42", "::debug::checking%0Asecond line", "visible")
					c.file("GITHUB_ENV", "EXPORTED=1\n")
					c.file("GITHUB_STATE", "token-id=tok-42\n")
					c.file("GITHUB_OUTPUT", "token=tok-42\n")
					return 0
				},
			})
			main, err := j.RunMain(context.Background(), Step{})
			if err != nil {
				t.Fatal(err)
			}
			if main.Log != tc.want {
				t.Errorf("Log =\n%s\nwant\n%s", main.Log, tc.want)
			}
		})
	}
}

func TestStatePassedToPost(t *testing.T) {
	t.Parallel()
	var postEnv map[string]string
	j := newTestJob(t, testActionYML, baseEnv(), map[string]entrypoint{
		"/cfmint": func(c *container) int {
			c.file("GITHUB_STATE", "token-id=abc\nMixed-Case<<EOF\nl1\nl2\nEOF\n")
			return 0
		},
		"/cfmint-post": func(c *container) int { postEnv = c.env; return 0 },
	})
	main, post := mustRunStep(t, j, Step{ID: "mint"})
	if want := map[string]string{"token-id": "abc", "Mixed-Case": "l1\nl2"}; !reflect.DeepEqual(main.State, want) {
		t.Errorf("main.State = %q, want %q", main.State, want)
	}
	state := map[string]string{}
	for k, v := range postEnv {
		if name, ok := strings.CutPrefix(k, "STATE_"); ok {
			state[name] = v
		}
	}
	if !reflect.DeepEqual(state, main.State) {
		t.Errorf("post got STATE_ %q, want %q", state, main.State)
	}
	if post.Name != "post" || main.Name != "main" {
		t.Errorf("names = %q, %q", main.Name, post.Name)
	}
	if string(main.Files["GITHUB_STATE"]) != "token-id=abc\nMixed-Case<<EOF\nl1\nl2\nEOF\n" {
		t.Errorf("Files[GITHUB_STATE] = %q", main.Files["GITHUB_STATE"])
	}
}

func TestGitHubEnvCarriesToLaterSteps(t *testing.T) {
	t.Parallel()
	seen := map[string]map[string]string{}
	var mu sync.Mutex
	record := func(c *container) {
		mu.Lock()
		defer mu.Unlock()
		seen[c.env["GITHUB_ACTION"]+" "+c.argv0] = c.env
	}
	j := newTestJob(t, testActionYML, baseEnv(), map[string]entrypoint{
		"/cfmint": func(c *container) int {
			record(c)
			if c.env["GITHUB_ACTION"] == "first" {
				c.file("GITHUB_ENV", "EXPORTED=one\nML<<EOF\na\nb\nEOF\nGITHUB_REPOSITORY=attacker/repo\nNODE_OPTIONS=--require=/evil.js\n")
			}
			return 0
		},
		"/cfmint-post": func(c *container) int { record(c); return 0 },
	})
	first, _ := mustRunStep(t, j, Step{ID: "first"})
	mustRunStep(t, j, Step{ID: "second"})
	mustRunStep(t, j, Step{ID: "third", Env: map[string]string{"EXPORTED": "step wins"}})

	if want := map[string]string{"EXPORTED": "one", "ML": "a\nb", "GITHUB_REPOSITORY": "attacker/repo"}; !reflect.DeepEqual(first.Env, want) {
		t.Errorf("first.Env = %q, want %q (NODE_OPTIONS blocked)", first.Env, want)
	}
	if first.Failed() {
		t.Errorf("first failed: %v", first.Errors)
	}
	var blocked bool
	for _, a := range first.Annotations {
		blocked = blocked || a.Level == "error" && strings.Contains(a.Message, "Can't store NODE_OPTIONS")
	}
	if !blocked {
		t.Errorf("no NODE_OPTIONS error in %+v", first.Annotations)
	}
	if _, ok := seen["first /cfmint"]["EXPORTED"]; ok {
		t.Error("main saw its own export")
	}
	for key, want := range map[string]string{
		"first /cfmint-post":  "one",
		"second /cfmint":      "one",
		"second /cfmint-post": "one",
		"third /cfmint":       "step wins",
	} {
		if got := seen[key]["EXPORTED"]; got != want {
			t.Errorf("%s: EXPORTED = %q, want %q", key, got, want)
		}
		if key != "third /cfmint" && seen[key]["ML"] != "a\nb" {
			t.Errorf("%s: ML = %q", key, seen[key]["ML"])
		}
		if got := seen[key]["GITHUB_REPOSITORY"]; got != "cfmint/demo" {
			t.Errorf("%s: GITHUB_REPOSITORY = %q, want the context value", key, got)
		}
		if _, ok := seen[key]["NODE_OPTIONS"]; ok {
			t.Errorf("%s: NODE_OPTIONS was exported", key)
		}
	}
	if got := j.Env()["EXPORTED"]; got != "one" {
		t.Errorf("Job.Env()[EXPORTED] = %q", got)
	}
}

func TestFileCommandErrors(t *testing.T) {
	t.Parallel()
	j := newTestJob(t, testActionYML, baseEnv(), map[string]entrypoint{
		"/cfmint": func(c *container) int {
			c.file("GITHUB_OUTPUT", "ok=1\nbad<<EOF\nnever closed\n")
			// A value holding its own delimiter ends early: admin=true is
			// injected and the dangling EOF line is rejected.
			c.file("GITHUB_STATE", "token<<EOF\nabc\nEOF\nadmin=true\nEOF\n")
			return 0
		},
	})
	main, err := j.RunMain(context.Background(), Step{})
	if err != nil {
		t.Fatal(err)
	}
	if !main.Failed() || main.ExitCode != 0 {
		t.Errorf("Failed() = %v, ExitCode = %d; want a failed step with exit code 0", main.Failed(), main.ExitCode)
	}
	if want := map[string]string{"ok": "1"}; !reflect.DeepEqual(main.Outputs, want) {
		t.Errorf("Outputs = %q, want %q", main.Outputs, want)
	}
	if want := map[string]string{"token": "abc", "admin": "true"}; !reflect.DeepEqual(main.State, want) {
		t.Errorf("State = %q, want %q", main.State, want)
	}
	if len(main.Errors) != 2 {
		t.Fatalf("Errors = %v, want 2", main.Errors)
	}
	var fce *FileCommandError
	if !errors.As(main.Errors[0], &fce) || !strings.HasPrefix(main.Errors[0].Error(), "GITHUB_STATE") {
		t.Errorf("Errors[0] = %v", main.Errors[0])
	}
	wantLog := strings.Join([]string{
		"##[error]Unable to process file command 'state' successfully.",
		"##[error]Invalid format 'EOF'",
		"##[error]Unable to process file command 'output' successfully.",
		"##[error]Invalid value. Matching delimiter not found 'EOF'",
	}, "\n") + "\n"
	if main.Log != wantLog {
		t.Errorf("Log =\n%s\nwant\n%s", main.Log, wantLog)
	}
}

func TestPostIf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		postIf   string
		mainExit int
		wantPost bool
	}{
		{postIf: "", mainExit: 0, wantPost: true},
		{postIf: "", mainExit: 1, wantPost: true}, // always() by default
		{postIf: "success()", mainExit: 0, wantPost: true},
		{postIf: "success()", mainExit: 1, wantPost: false},
		{postIf: "failure()", mainExit: 1, wantPost: true},
		{postIf: "failure()", mainExit: 0, wantPost: false},
		{postIf: "${{ !cancelled() }}", mainExit: 1, wantPost: true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q exit %d", tc.postIf, tc.mainExit), func(t *testing.T) {
			t.Parallel()
			yml := "runs: {using: docker, image: Dockerfile, entrypoint: /m, post-entrypoint: /p}"
			if tc.postIf != "" {
				yml = fmt.Sprintf("runs: {using: docker, image: Dockerfile, entrypoint: /m, post-entrypoint: /p, post-if: %q}", tc.postIf)
			}
			j := newTestJob(t, yml, nil, map[string]entrypoint{
				"/m": func(*container) int { return tc.mainExit },
				"/p": func(*container) int { return 0 },
			})
			main, post := mustRunStep(t, j, Step{})
			if main.ExitCode != tc.mainExit || main.Failed() != (tc.mainExit != 0) {
				t.Errorf("main = exit %d, failed %v", main.ExitCode, main.Failed())
			}
			if (post != nil) != tc.wantPost {
				t.Errorf("post ran = %v, want %v", post != nil, tc.wantPost)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		postIf   string
		wantPost bool
	}{
		{postIf: "always()", wantPost: true},
		{postIf: "cancelled()", wantPost: true},
		{postIf: "!cancelled()", wantPost: false},
		{postIf: "failure()", wantPost: false},
	}
	for _, tc := range cases {
		t.Run(tc.postIf, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var postCtxErr error = errors.New("post did not run")
			j := newTestJob(t, fmt.Sprintf("runs: {using: docker, image: Dockerfile, entrypoint: /m, post-entrypoint: /p, post-if: %q}", tc.postIf), nil, map[string]entrypoint{
				"/m": func(c *container) int {
					cancel() // the job is cancelled while main runs
					<-c.ctx.Done()
					return 130
				},
				"/p": func(c *container) int { postCtxErr = c.ctx.Err(); return 0 },
			})
			main, post, err := j.RunStep(ctx, Step{})
			if err != nil {
				t.Fatal(err)
			}
			if !main.Cancelled || main.ExitCode != 130 {
				t.Errorf("main: Cancelled %v, ExitCode %d", main.Cancelled, main.ExitCode)
			}
			if (post != nil) != tc.wantPost {
				t.Fatalf("post ran = %v, want %v", post != nil, tc.wantPost)
			}
			if tc.wantPost && postCtxErr != nil {
				t.Errorf("post context: %v, want live", postCtxErr)
			}
		})
	}
}

func TestWorkflowCommands(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		stdout      string
		wantLog     string
		wantFailed  bool
		wantOutputs map[string]string
		wantNotes   []Annotation
	}{
		{
			name:    "annotations with properties, masked messages",
			stdout:  "::add-mask::hunter22\n::error file=app.go,line=10,title=A%2C B%3A C::bad%0Athing hunter22\n::warning::careful\n::notice title=T::note\n",
			wantLog: "##[error]bad\nthing ***\n##[warning]careful\n##[notice]note\n",
			wantNotes: []Annotation{
				{Level: "error", Message: "bad\nthing ***", Props: map[string]string{"file": "app.go", "line": "10", "title": "A, B: C"}},
				{Level: "warning", Message: "careful", Props: map[string]string{}},
				{Level: "notice", Message: "note", Props: map[string]string{"title": "T"}},
			},
		},
		{
			name:    "groups and unknown commands",
			stdout:  "::group::Minting\ninside\n::endgroup::\n::nosuch::x\n:: not a command\n",
			wantLog: "##[group]Minting\ninside\n##[endgroup]\n::nosuch::x\n:: not a command\n",
		},
		{
			name:    "line endings: \\r\\n, lone \\r and no final newline",
			stdout:  "a\r\nb\rc\n\nd",
			wantLog: "a\nb\nc\n\nd\n",
		},
		{
			name:    "case-insensitive and indented commands",
			stdout:  "  ::ADD-MASK::UpperSecret\nUpperSecret\n",
			wantLog: "***\n",
		},
		{
			name:    "legacy ##[] commands are still processed",
			stdout:  "##[add-mask]legacy-secret\nlegacy-secret\n",
			wantLog: "***\n",
		},
		{
			name: "stop-commands pauses everything until the token",
			stdout: strings.Join([]string{
				"::stop-commands::pause-token-1234",
				"::add-mask::not-masked",
				"::error::not an annotation",
				"::pause-token-1234::",
				"::add-mask::masked-now",
				"masked-now not-masked",
			}, "\n") + "\n",
			// A token longer than 6 characters is itself masked.
			wantLog: "::stop-commands::***\n::add-mask::not-masked\n::error::not an annotation\n::***::\n*** not-masked\n",
		},
		{
			name:       "stop-commands with a command name is refused",
			stdout:     "::stop-commands::debug\n::debug::still a command\n",
			wantLog:    "##[error]Unable to process command 'stop-commands' successfully.\n##[error]You cannot use a endToken that is an empty string, the string 'pause-logging', or another workflow command. For more information see: https://docs.github.com/actions/learn-github-actions/workflow-commands-for-github-actions#example-stopping-and-starting-workflow-commands or opt into insecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` environment variable to `true`.\n",
			wantFailed: true,
		},
		{
			name:    "echo on shows commands, never a mask",
			stdout:  "::echo::on\n::group::g\n::add-mask::echo-secret\n::warning::w\n::echo::off\n::group::h\n",
			wantLog: "::group::g\n##[group]g\n::add-mask::***\n##[warning]w\n::echo::off\n##[group]h\n",
		},
		{
			name:       "bad echo value fails the step",
			stdout:     "::echo::loud\n",
			wantLog:    "##[error]Unable to process command '::echo::loud' successfully.\n##[error]Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: 'loud'.\n",
			wantFailed: true,
		},
		{
			name:        "set-output still works, with a deprecation warning",
			stdout:      "::set-output name=token::v1\n",
			wantLog:     "##[warning]The `set-output` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/\n",
			wantOutputs: map[string]string{"token": "v1"},
		},
		{
			name:       "set-env is disabled and fails the step",
			stdout:     "::set-env name=X::1\n",
			wantLog:    "##[error]Unable to process command '::set-env name=X::1' successfully.\n##[error]The `set-env` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/\n",
			wantFailed: true,
		},
		{
			name:       "set-output without a name fails the step",
			stdout:     "::set-output::v\n",
			wantLog:    "##[error]Unable to process command '::set-output::v' successfully.\n##[error]Required field 'name' is missing in ##[set-output] command.\n",
			wantFailed: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := newTestJob(t, testActionYML, nil, map[string]entrypoint{
				"/cfmint": func(c *container) int { io.WriteString(c.stdout, tc.stdout); return 0 },
			})
			main, err := j.RunMain(context.Background(), Step{})
			if err != nil {
				t.Fatal(err)
			}
			if main.Log != tc.wantLog {
				t.Errorf("Log =\n%q\nwant\n%q", main.Log, tc.wantLog)
			}
			if main.Failed() != tc.wantFailed {
				t.Errorf("Failed() = %v (%v), want %v", main.Failed(), main.Errors, tc.wantFailed)
			}
			if main.Stdout != tc.stdout {
				t.Errorf("Stdout = %q, want it raw", main.Stdout)
			}
			if tc.wantOutputs == nil {
				tc.wantOutputs = map[string]string{}
			}
			if !reflect.DeepEqual(main.Outputs, tc.wantOutputs) {
				t.Errorf("Outputs = %q, want %q", main.Outputs, tc.wantOutputs)
			}
			if tc.wantNotes != nil && !reflect.DeepEqual(main.Annotations, tc.wantNotes) {
				t.Errorf("Annotations = %+v\nwant %+v", main.Annotations, tc.wantNotes)
			}
		})
	}
}

func TestStepSummary(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", stepSummaryLimit+1)
	j := newTestJob(t, testActionYML, nil, map[string]entrypoint{
		"/cfmint": func(c *container) int {
			c.file("GITHUB_STEP_SUMMARY", "## Token\n")
			return 0
		},
		"/cfmint-post": func(c *container) int {
			c.file("GITHUB_STEP_SUMMARY", big)
			return 0
		},
	})
	main, post := mustRunStep(t, j, Step{})
	if main.Summary != "## Token\n" {
		t.Errorf("main.Summary = %q", main.Summary)
	}
	if post.Summary != big || post.Failed() || len(post.Annotations) != 1 || !strings.Contains(post.Annotations[0].Message, "upload aborted") {
		t.Errorf("post: failed %v, annotations %+v", post.Failed(), post.Annotations)
	}
}

func TestLogWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	j := NewJob(JobOptions{
		Dir: t.TempDir(),
		Exec: fakeExec(t, map[string]entrypoint{
			"/cfmint":      func(c *container) int { c.out("::add-mask::abcdef", "main abcdef"); return 0 },
			"/cfmint-post": func(c *container) int { c.out("post abcdef"); return 0 },
		}),
		Action: mustAction(t, testActionYML),
		Log:    &buf,
	})
	main, post := mustRunStep(t, j, Step{})
	if got, want := buf.String(), main.Log+post.Log; got != want || got != "main ***\npost ***\n" {
		t.Errorf("Log writer got %q, want %q", got, want)
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("missing options", func(t *testing.T) {
		t.Parallel()
		_, err := NewJob(JobOptions{}).RunMain(ctx, Step{})
		for _, want := range []string{"Dir", "Exec", "Action"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error = %v, want it to name %s", err, want)
			}
		}
	})
	t.Run("no entrypoint", func(t *testing.T) {
		t.Parallel()
		j := newTestJob(t, "runs: {using: docker, image: Dockerfile}", nil, nil)
		if _, err := j.RunMain(ctx, Step{}); err == nil || !strings.Contains(err.Error(), "runs.entrypoint") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("no post entrypoint", func(t *testing.T) {
		t.Parallel()
		j := newTestJob(t, "runs: {using: docker, image: Dockerfile, entrypoint: /m}", nil, map[string]entrypoint{"/m": func(*container) int { return 0 }})
		main, post := mustRunStep(t, j, Step{})
		if main == nil || post != nil {
			t.Errorf("main %v, post %v", main, post)
		}
	})
	t.Run("main never started", func(t *testing.T) {
		t.Parallel()
		j := newTestJob(t, testActionYML, nil, nil)
		if post, err := j.RunPost(ctx, Step{}, nil); post != nil || err != nil {
			t.Errorf("RunPost(nil main) = %v, %v", post, err)
		}
	})
	t.Run("bad expression", func(t *testing.T) {
		t.Parallel()
		j := newTestJob(t, "runs: {using: docker, image: Dockerfile, entrypoint: /m, args: ['${{ secrets.X }}']}", nil, nil)
		if _, err := j.RunMain(ctx, Step{}); err == nil || !strings.Contains(err.Error(), "runs.args[0]") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("executor fails", func(t *testing.T) {
		t.Parallel()
		var postRan bool
		boom := errors.New("image not found")
		j := NewJob(JobOptions{
			Dir: t.TempDir(),
			Exec: func(ctx context.Context, argv0 string, args, env []string, stdout, stderr io.Writer) (int, error) {
				if argv0 == "/cfmint-post" {
					postRan = true
					return 0, nil
				}
				return -1, boom
			},
			Action: mustAction(t, testActionYML),
		})
		main, post, err := j.RunStep(ctx, Step{})
		if !errors.Is(err, boom) || main == nil || !main.Failed() || !errors.Is(main.Errors[0], boom) {
			t.Errorf("RunStep() = %v, %v", main, err)
		}
		if post == nil || !postRan {
			t.Error("post did not run after main failed to start its container")
		}
	})
}

// TestLogGolden pins a whole debug-mode log of main and post.
func TestLogGolden(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	env["RUNNER_DEBUG"] = "1"
	j := newTestJob(t, testActionYML, env, map[string]entrypoint{
		"/cfmint": func(c *container) int {
			c.out("::group::Minting a token for "+c.env["GITHUB_REPOSITORY"], "ttl "+c.env["INPUT_TTL"])
			c.out("::add-mask::cf-token-value-123", "::endgroup::")
			c.file("GITHUB_OUTPUT", "token<<ghadelimiter_1\ncf-token-value-123\nghadelimiter_1\ntoken-id=id-9\n")
			c.file("GITHUB_STATE", "token-id=id-9\n")
			c.file("GITHUB_STEP_SUMMARY", "Minted id-9\n")
			c.out("::notice::minted id-9, token cf-token-value-123")
			return 0
		},
		"/cfmint-post": func(c *container) int {
			c.out("::debug::revoking "+c.env["STATE_token-id"], "revoked")
			return 0
		},
	})
	main, post := mustRunStep(t, j, Step{ID: "mint", With: map[string]string{"bootstrap-token": "bt", "ttl": "10m"}})
	got := "== main ==\n" + main.Log + "== post ==\n" + post.Log
	golden := filepath.Join("testdata", "log.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("log =\n%s\nwant (%s)\n%s", got, golden, want)
	}
}

func TestAppendEnvPlantsForLaterPhases(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]map[string]string{}
	record := func(c *container) int {
		mu.Lock()
		defer mu.Unlock()
		seen[c.argv0] = c.env
		if c.argv0 == "/cfmint" {
			c.file("GITHUB_STATE", "token-id=from-main\n")
		}
		return 0
	}
	j := newTestJob(t, testActionYML, baseEnv(), map[string]entrypoint{"/cfmint": record, "/cfmint-post": record})
	err := j.AppendEnv("STATE_token-id=planted\nSTATE_owner=user\nGITHUB_RUN_ID=666\nML<<EOF\na\nb\nEOF\nNODE_OPTIONS=--require=/evil.js\n")
	if err == nil || !strings.Contains(err.Error(), "NODE_OPTIONS") {
		t.Errorf("AppendEnv = %v, want NODE_OPTIONS refused", err)
	}
	if err := j.AppendEnv("a\n"); err == nil {
		t.Error("AppendEnv took a line without = or <<")
	}
	mustRunStep(t, j, Step{ID: "cf"})
	for argv0, want := range map[string]map[string]string{
		// Main's own state replaces what was planted under its name; the rest reaches both phases.
		"/cfmint":      {"STATE_token-id": "planted", "STATE_owner": "user", "ML": "a\nb", "GITHUB_RUN_ID": baseEnv()["GITHUB_RUN_ID"]},
		"/cfmint-post": {"STATE_token-id": "from-main", "STATE_owner": "user", "ML": "a\nb", "GITHUB_RUN_ID": baseEnv()["GITHUB_RUN_ID"]},
	} {
		for k, v := range want {
			if got := seen[argv0][k]; got != v {
				t.Errorf("%s: %s = %q, want %q", argv0, k, got, v)
			}
		}
		if _, ok := seen[argv0]["NODE_OPTIONS"]; ok {
			t.Errorf("%s got NODE_OPTIONS", argv0)
		}
	}
}
