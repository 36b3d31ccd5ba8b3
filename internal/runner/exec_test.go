package runner

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperSource is a stand-in for the cfmint binary: it reports its name,
// arguments and environment, then behaves as HELPER_MODE says.
const helperSource = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

func appendFile(variable, content string) {
	f, err := os.OpenFile(os.Getenv(variable), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer f.Close()
	f.WriteString(content)
}

func main() {
	name := filepath.Base(os.Args[0])
	fmt.Println("argv0=" + name)
	for _, a := range os.Args[1:] {
		fmt.Println("arg=" + a)
	}
	env := os.Environ()
	sort.Strings(env)
	for _, e := range env {
		fmt.Println("env=" + e)
	}
	switch os.Getenv("HELPER_MODE") {
	case "exit":
		fmt.Fprintln(os.Stderr, "exiting")
		n, _ := strconv.Atoi(os.Getenv("HELPER_EXIT"))
		os.Exit(n)
	case "sleep": // default signal handling: SIGINT kills
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "graceful":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT)
		fmt.Println("ready")
		<-c
		fmt.Println("bye")
	case "trap": // ignores SIGINT, exits 42 on SIGTERM
		c := make(chan os.Signal, 2)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		fmt.Println("ready")
		for s := range c {
			fmt.Println("got", s)
			if s == syscall.SIGTERM {
				os.Exit(42)
			}
		}
	case "stubborn":
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "action": // a tiny cfmint: main mints, post revokes
		switch name {
		case "cfmint":
			fmt.Println("minting with " + os.Getenv("INPUT_BOOTSTRAP-TOKEN"))
			fmt.Println("::add-mask::minted-secret-1")
			fmt.Println("minted minted-secret-1")
			appendFile("GITHUB_OUTPUT", "token=minted-secret-1\n")
			appendFile("GITHUB_STATE", "token-id=tid-7\n")
			appendFile("GITHUB_ENV", "MINTED=yes\n")
		case "cfmint-post":
			fmt.Println("revoking " + os.Getenv("STATE_token-id") + " minted=" + os.Getenv("MINTED"))
			fmt.Println("old token minted-secret-1")
		default:
			os.Exit(3)
		}
	}
}
`

var (
	helperOnce sync.Once
	helperPath string
	helperErr  error
	helperDir  string
)

// helperBinary builds helperSource once for the whole test binary.
func helperBinary(t *testing.T) string {
	t.Helper()
	helperOnce.Do(func() {
		helperDir, helperErr = os.MkdirTemp("", "runner-helper-*")
		if helperErr != nil {
			return
		}
		src := filepath.Join(helperDir, "src")
		if helperErr = os.MkdirAll(src, 0o755); helperErr != nil {
			return
		}
		if helperErr = os.WriteFile(filepath.Join(src, "main.go"), []byte(helperSource), 0o644); helperErr != nil {
			return
		}
		if helperErr = os.WriteFile(filepath.Join(src, "go.mod"), []byte("module helper\n\ngo 1.22\n"), 0o644); helperErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			helperErr = err
			return
		}
		helperPath = filepath.Join(helperDir, "cfmint")
		cmd := exec.Command(goTool, "build", "-o", helperPath, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helperErr = err
			helperPath = string(out)
		}
	})
	if helperErr != nil {
		t.Fatalf("failed to build the helper binary: %v\n%s", helperErr, helperPath)
	}
	return helperPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if helperDir != "" {
		os.RemoveAll(helperDir)
	}
	os.Exit(code)
}

// lines returns the values of the "prefix=" lines of helper output.
func lines(out, prefix string) []string {
	var vs []string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, prefix+"="); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

func TestExecBinary(t *testing.T) {
	t.Parallel()
	bin := helperBinary(t)
	cases := []struct {
		name       string
		argv0      string
		args       []string
		env        []string
		wantArgv0  string
		wantArgs   []string
		wantEnv    []string
		wantExit   int
		wantStderr string
	}{
		{
			name:      "main by its own name",
			argv0:     "/cfmint",
			args:      []string{"--ttl", "15m", ""},
			env:       []string{"INPUT_BOOTSTRAP-TOKEN=bt", "GITHUB_ACTIONS=true"},
			wantArgv0: "cfmint",
			wantArgs:  []string{"--ttl", "15m", ""},
			wantEnv:   []string{"GITHUB_ACTIONS=true", "INPUT_BOOTSTRAP-TOKEN=bt"},
		},
		{
			name:      "post is a second name of the same binary",
			argv0:     "/cfmint-post",
			env:       []string{"STATE_token-id=abc"},
			wantArgv0: "cfmint-post",
			wantEnv:   []string{"STATE_token-id=abc"},
		},
		{
			name:      "nil env inherits nothing",
			argv0:     "/usr/local/bin/cfmint",
			wantArgv0: "cfmint",
		},
		{
			name:       "exit code",
			argv0:      "/cfmint",
			env:        []string{"HELPER_MODE=exit", "HELPER_EXIT=3"},
			wantArgv0:  "cfmint",
			wantEnv:    []string{"HELPER_EXIT=3", "HELPER_MODE=exit"},
			wantExit:   3,
			wantStderr: "exiting\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code, err := ExecBinary(bin)(context.Background(), tc.argv0, tc.args, tc.env, &stdout, &stderr)
			if err != nil {
				t.Fatalf("Exec() error = %v", err)
			}
			out := stdout.String()
			if got := lines(out, "argv0"); len(got) != 1 || got[0] != tc.wantArgv0 {
				t.Errorf("argv0 = %q, want %q", got, tc.wantArgv0)
			}
			if got := lines(out, "arg"); strings.Join(got, "|") != strings.Join(tc.wantArgs, "|") || len(got) != len(tc.wantArgs) {
				t.Errorf("args = %q, want %q", got, tc.wantArgs)
			}
			// Exactly the given environment: no HOME, PATH or anything else
			// of the test process.
			if got := lines(out, "env"); strings.Join(got, "\n") != strings.Join(tc.wantEnv, "\n") {
				t.Errorf("env = %q, want exactly %q", got, tc.wantEnv)
			}
			if code != tc.wantExit || stderr.String() != tc.wantStderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr.String(), tc.wantExit, tc.wantStderr)
			}
		})
	}
}

func TestExecBinaryErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if code, err := ExecBinary(filepath.Join(t.TempDir(), "missing"))(ctx, "/cfmint", nil, nil, nil, nil); err == nil || code != -1 {
		t.Errorf("missing binary: %d, %v", code, err)
	}
	bin := helperBinary(t)
	for _, argv0 := range []string{"", "/"} {
		if _, err := ExecBinary(bin)(ctx, argv0, nil, nil, nil, nil); err == nil {
			t.Errorf("argv0 %q: no error", argv0)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ExecBinary(bin)(cancelled, "/cfmint", nil, nil, nil, nil); err == nil {
		t.Error("cancelled context: the binary started")
	}
}

// readyWriter collects output and closes ready when a "ready" line arrives.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "ready\n") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestExecBinaryCancellation(t *testing.T) {
	t.Parallel()
	bin := helperBinary(t)
	cases := []struct {
		mode        string
		termAfter   time.Duration
		killAfter   time.Duration
		wantExit    int
		wantOut     []string
		wantNot     []string
		minDuration time.Duration
		maxDuration time.Duration
	}{
		{mode: "sleep", termAfter: 10 * time.Second, killAfter: 10 * time.Second, wantExit: 130, maxDuration: 5 * time.Second},
		{mode: "graceful", termAfter: 10 * time.Second, killAfter: 10 * time.Second, wantExit: 0, wantOut: []string{"bye"}, maxDuration: 5 * time.Second},
		{
			mode: "trap", termAfter: 300 * time.Millisecond, killAfter: 10 * time.Second,
			wantExit: 42, wantOut: []string{"got interrupt", "got terminated"},
			minDuration: 300 * time.Millisecond, maxDuration: 5 * time.Second,
		},
		{
			mode: "stubborn", termAfter: 200 * time.Millisecond, killAfter: 200 * time.Millisecond,
			wantExit: 137, minDuration: 400 * time.Millisecond, maxDuration: 5 * time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b := &Binary{Path: bin, TermAfter: tc.termAfter, KillAfter: tc.killAfter}
			out := &readyWriter{ready: make(chan struct{})}
			type result struct {
				code int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				code, err := b.Exec(ctx, "/cfmint", nil, []string{"HELPER_MODE=" + tc.mode}, out, out)
				done <- result{code, err}
			}()
			select {
			case <-out.ready:
			case <-time.After(30 * time.Second):
				t.Fatalf("helper never got ready: %q", out.String())
			}
			start := time.Now()
			cancel()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Exec did not return after cancellation")
			}
			elapsed := time.Since(start)
			if r.err != nil || r.code != tc.wantExit {
				t.Errorf("Exec() = %d, %v; want exit %d", r.code, r.err, tc.wantExit)
			}
			for _, s := range tc.wantOut {
				if !strings.Contains(out.String(), s+"\n") {
					t.Errorf("output %q lacks %q", out.String(), s)
				}
			}
			if elapsed < tc.minDuration || elapsed > tc.maxDuration {
				t.Errorf("took %v, want between %v and %v", elapsed, tc.minDuration, tc.maxDuration)
			}
		})
	}
}

// TestJobWithBinary runs the helper as a real action: argv[0] tells main
// from post, state crosses from main to post, masks hold across phases.
func TestJobWithBinary(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	env["HELPER_MODE"] = "action"
	j := NewJob(JobOptions{
		Dir:    t.TempDir(),
		Env:    env,
		Exec:   ExecBinary(helperBinary(t)),
		Action: mustAction(t, testActionYML),
	})
	main, post := mustRunStep(t, j, Step{ID: "mint", With: map[string]string{"bootstrap-token": "bt-1"}})
	if main.ExitCode != 0 || post.ExitCode != 0 || main.Failed() || post.Failed() {
		t.Fatalf("main %d %v, post %d %v\n%s%s", main.ExitCode, main.Errors, post.ExitCode, post.Errors, main.Stderr, post.Stderr)
	}
	if !strings.Contains(main.Stdout, "argv0=cfmint\n") || !strings.Contains(post.Stdout, "argv0=cfmint-post\n") {
		t.Errorf("argv0 lines: %q / %q", lines(main.Stdout, "argv0"), lines(post.Stdout, "argv0"))
	}
	if !strings.Contains(main.Log, "minting with bt-1\n") || !strings.Contains(main.Log, "minted ***\n") {
		t.Errorf("main.Log = %q", main.Log)
	}
	if !strings.Contains(main.Stdout, "minted minted-secret-1\n") {
		t.Errorf("main.Stdout is not raw: %q", main.Stdout)
	}
	if main.Outputs["token"] != "minted-secret-1" || main.State["token-id"] != "tid-7" {
		t.Errorf("outputs %q, state %q", main.Outputs, main.State)
	}
	if !strings.Contains(post.Log, "revoking tid-7 minted=yes\n") || !strings.Contains(post.Log, "old token ***\n") {
		t.Errorf("post.Log = %q", post.Log)
	}
	for _, e := range lines(post.Stdout, "env") {
		if strings.HasPrefix(e, "PATH=") {
			t.Errorf("post inherited %s", e)
		}
	}
}
