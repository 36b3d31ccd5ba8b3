package e2e

// Cancellation: the runner sends SIGINT, SIGTERM 7.5 s later and SIGKILL 2.5 s after that. Main
// must stop on the first signal, delete a token it created (or leave its id in state for post),
// and exit on its own: a phase that needed SIGKILL reports 137.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
)

// onArrival closes ch when the first request that match accepts arrives, then lets it through.
func onArrival(match func(f *fapi, r *http.Request) bool, ch chan struct{}) func(f *fapi) func(http.Handler) http.Handler {
	var once sync.Once
	return func(f *fapi) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if match(f, r) {
					once.Do(func() { close(ch) })
				}
				next.ServeHTTP(w, r)
			})
		}
	}
}

func isCreate(_ *fapi, r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tokens")
}

func isNewTokenVerify(f *fapi, r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/tokens/verify") && r.Header.Get("Authorization") != "Bearer "+f.fx.AccountBootstrap.Secret
}

func isTrace(_ *fapi, r *http.Request) bool { return r.URL.Path == "/cdn-cgi/trace" }

// runMainCancelled runs main and cancels the job (the runner's signal escalation) once signal
// is closed.
func runMainCancelled(t *testing.T, j *runner.Job, s runner.Step, signal <-chan struct{}) *runner.Phase {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The watcher reports to the test goroutine: a t.Error after the test ended would panic.
	missed := make(chan bool, 1)
	go func() {
		select {
		case <-signal:
			missed <- false
		case <-time.After(time.Minute):
			missed <- true
		case <-ctx.Done():
			missed <- false
			return
		}
		cancel()
	}()
	m, err := j.RunMain(ctx, s)
	cancel()
	if <-missed {
		t.Error("the request to cancel at never arrived")
	}
	if err != nil {
		t.Fatalf("main phase: %v", err)
	}
	return m
}

// exitedOnItsOwn: the phase saw the cancellation and exited 1 before the runner had to kill it.
func exitedOnItsOwn(t *testing.T, m *runner.Phase) {
	t.Helper()
	if !m.Cancelled {
		t.Error("the phase ended before the cancellation reached it")
	}
	if m.ExitCode != 1 {
		t.Fatalf("main exited %d after a cancellation, want 1 (137 is SIGKILL: it outlived the runner's grace)\n%s\nstderr:\n%s", m.ExitCode, m.Log, m.Stderr)
	}
	if !hasAnnotation(m, "error", "the step was cancelled") {
		t.Errorf("no error says the phase was cancelled:\n%s", errorsOf(m))
	}
}

// stateFileHas reports whether main wrote name=value to GITHUB_STATE at some point (a later line
// may have overwritten it).
func stateFileHas(m *runner.Phase, name, value string) bool {
	return strings.Contains(string(m.Files["GITHUB_STATE"]), name+"<<") && strings.Contains(string(m.Files["GITHUB_STATE"]), "\n"+value+"\n") ||
		strings.Contains(string(m.Files["GITHUB_STATE"]), name+"="+value+"\n")
}

func TestCancel(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		at     func(f *fapi, r *http.Request) bool // cancel when this request arrives
		faults func(f *fapi)
		// after checks main's outcome and prepares post.
		after func(t *testing.T, f *fapi, m *runner.Phase)
		exec  func(t *testing.T) runner.Executor // nil: the runner's SIGINT escalation
	}
	for _, c := range []tc{
		{
			name:   "during the lookups",
			at:     isTrace,
			faults: func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathTrace, Hang: true}) },
			after: func(t *testing.T, f *fapi, m *runner.Phase) {
				if f.creates() != 0 {
					t.Error("created a token after the cancellation")
				}
			},
		},
		{
			name:   "while the create hangs",
			at:     isCreate,
			faults: func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathCreate, Hang: true}) },
		},
		{
			name:   "while the create hangs, by SIGTERM alone",
			at:     isCreate,
			faults: func(f *fapi) { f.InjectFault(cfapitest.Fault{Path: pathCreate, Hang: true}) },
			exec:   sigtermOnly,
		},
		{
			name: "after the create, while the verify hangs: main deletes the token",
			at:   isNewTokenVerify,
			faults: func(f *fapi) {
				f.InjectFault(f.noBootstrap(pathVerify))
				f.InjectFault(cfapitest.Fault{Path: pathVerify, Hang: true})
			},
			after: func(t *testing.T, f *fapi, m *runner.Phase) {
				ids := f.newTokenIDs()
				if len(ids) != 1 || !stateFileHas(m, "token-id", ids[0]) {
					t.Fatalf("created %v; state file:\n%s", ids, m.Files["GITHUB_STATE"])
				}
				if len(f.leftovers()) != 0 || !hasAnnotation(m, "error", "token "+ids[0]+" was deleted") {
					t.Errorf("main did not delete %s itself:\n%s", ids[0], errorsOf(m))
				}
			},
		},
		{
			name: "after the create, and main's delete fails: post deletes the token",
			at:   isNewTokenVerify,
			faults: func(f *fapi) {
				f.InjectFault(f.noBootstrap(pathVerify))
				f.InjectFault(cfapitest.Fault{Path: pathVerify, Hang: true})
				f.InjectFault(cfapitest.Fault{Path: pathDelete, Status: 500})
			},
			after: func(t *testing.T, f *fapi, m *runner.Phase) {
				ids := f.newTokenIDs()
				if len(ids) != 1 || m.State["token-id"] != ids[0] {
					t.Fatalf("created %v, state %v: want the id kept for post", ids, m.State)
				}
				if !hasAnnotation(m, "error", "the post phase will try again") {
					t.Errorf("main does not say post will retry:\n%s", errorsOf(m))
				}
				f.ClearFaults()
			},
		},
		{
			name: "after the create, and main's delete hangs: main gives up in time, post deletes",
			at:   isNewTokenVerify,
			faults: func(f *fapi) {
				f.InjectFault(f.noBootstrap(pathVerify))
				f.InjectFault(cfapitest.Fault{Path: pathVerify, Hang: true})
				f.InjectFault(cfapitest.Fault{Path: pathDelete, Hang: true})
			},
			after: func(t *testing.T, f *fapi, m *runner.Phase) {
				ids := f.newTokenIDs()
				if len(ids) != 1 || m.State["token-id"] != ids[0] {
					t.Fatalf("created %v, state %v: want the id kept for post", ids, m.State)
				}
				f.ClearFaults()
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			signal := make(chan struct{})
			f := startAPIWith(t, onArrival(c.at, signal))
			c.faults(f)
			env := map[string]string{"CFMINT_TRACE_FALLBACK_URL": f.traceURL(), "RUNNER_DEBUG": "1"}
			j := f.job(t, env)
			if c.exec != nil {
				j = f.jobWith(t, env, c.exec(t))
			}
			s := f.step("cf", map[string]string{"preset": "workers-deploy"})
			m := runMainCancelled(t, j, s, signal)
			exitedOnItsOwn(t, m)
			if c.after != nil {
				c.after(t, f, m)
			}
			p := runPost(t, j, s, m)
			mustSucceed(t, p)
			if left := f.leftovers(); len(left) != 0 {
				t.Errorf("left behind after main and post: %v\npost:\n%s", names(left), p.Log)
			}
			scanSecrets(t, f, m, p)
		})
	}
}

// TestCancelCreateLandsLate: the create is cancelled in flight, but Cloudflare stores the token
// after main has already looked for it by name and found nothing. Post must look again.
func TestCancelCreateLandsLate(t *testing.T) {
	t.Parallel()
	arrived, listed, committed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var listedOnce sync.Once
	late := func(f *fapi) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case isCreate(f, r):
					markSynthetic(r)
					close(arrived)
					<-r.Context().Done() // the client gave up
					select {
					case <-listed:
					case <-time.After(30 * time.Second):
					}
					next.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
					close(committed)
				case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/tokens"):
					next.ServeHTTP(w, r)
					listedOnce.Do(func() { close(listed) })
				default:
					next.ServeHTTP(w, r)
				}
			})
		}
	}
	f := startAPIWith(t, late)
	j := f.job(t, map[string]string{"CFMINT_TRACE_FALLBACK_URL": f.traceURL()})
	s := f.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMainCancelled(t, j, s, arrived)
	exitedOnItsOwn(t, m)
	select {
	case <-committed:
	case <-time.After(time.Minute):
		t.Fatal("the late create never landed")
	}
	if len(f.leftovers()) != 1 {
		t.Fatalf("want the late token in the API before post, have %v", names(f.leftovers()))
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if left := f.leftovers(); len(left) != 0 {
		t.Errorf("the token that landed after main's look was left behind: %v\nmain state %v\npost:\n%s", names(left), m.State, p.Log)
	}
}

// sigtermOnly runs the binary as the runner would, but cancels it with SIGTERM alone (what a
// plain `docker stop` sends), killing it 10 s later.
func sigtermOnly(t *testing.T) runner.Executor {
	return func(ctx context.Context, argv0 string, args, env []string, stdout, stderr io.Writer) (int, error) {
		link := filepath.Join(t.TempDir(), filepath.Base(argv0))
		if err := os.Symlink(binPath, link); err != nil {
			return -1, err
		}
		cmd := exec.CommandContext(ctx, link, args...)
		cmd.Args[0] = filepath.Base(argv0)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, stdout, stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = runner.DefaultTermAfter + runner.DefaultKillAfter
		_ = cmd.Run()
		if cmd.ProcessState == nil {
			return -1, ctx.Err()
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return cmd.ProcessState.ExitCode(), nil
	}
}
