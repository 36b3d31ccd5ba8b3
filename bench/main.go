// Command bench measures how long cfmint's main and post phases take against the built-in
// Cloudflare API when every request costs a fixed latency L, and how long the binary takes from
// exec to its first request. It builds the binary, runs it the way the GitHub runner does
// (internal/runner) and prints a table with the targets: main at most 3.5 L, post at most 1.5 L,
// start to first request under 20 ms.
//
//	go run ./bench                      # L = 100ms, 15 cycles
//	go run ./bench -latency 50ms -n 30
//	go run ./bench -broker              # the keyless broker: 200 jobs, 20 at a time
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
)

func main() {
	if err := realMain(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// The targets of the speed requirement.
const (
	mainTarget  = 3.5 // × L
	postTarget  = 1.5 // × L
	startTarget = 20 * time.Millisecond
)

func realMain() error {
	latency := flag.Duration("latency", 100*time.Millisecond, "latency L the built-in API adds to every request")
	n := flag.Int("n", 15, "main+post cycles to run")
	actionPath := flag.String("action", "action.yml", "the action's action.yml (run from the repository root)")
	bin := flag.String("bin", "", "a cfmint binary to measure; empty builds one from the repository root")
	flag.Parse()
	if *n < 1 || *latency <= 0 {
		return errors.New("-n must be at least 1 and -latency positive")
	}

	act, err := runner.LoadAction(*actionPath)
	if err != nil {
		return fmt.Errorf("failed to load the action (run from the repository root, or pass -action): %w", err)
	}
	dir, err := os.MkdirTemp("", "cfmint-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := *bin
	if path == "" {
		path = filepath.Join(dir, "cfmint")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", path, filepath.Dir(*actionPath))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("failed to build cfmint: %w", err)
		}
	}

	if *brokerMode {
		return benchBroker(path, dir, *latency)
	}
	api := cfapitest.New()
	fx := api.Seed()
	first := &firstRequest{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: first.wrap(api.Handler())}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/client/v4"
	api.SetLatency(*latency)

	var mains, posts, starts []time.Duration
	var rounds, postRounds []int
	for i := range *n + 1 { // cycle 0 warms the page cache and is not counted
		var execAt time.Time
		exe := func(ctx context.Context, argv0 string, args, env []string, stdout, stderr io.Writer) (int, error) {
			first.reset()
			execAt = time.Now()
			return runner.ExecBinary(path)(ctx, argv0, args, env, stdout, stderr)
		}
		j := runner.NewJob(runner.JobOptions{
			Dir: filepath.Join(dir, fmt.Sprint("job", i)),
			Env: map[string]string{
				"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo-org/site", "GITHUB_RUN_ID": fmt.Sprint(5000 + i),
				"GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "deploy", "GITHUB_WORKFLOW": "ci",
				"PATH": "/usr/bin:/bin",
			},
			Exec:    exe,
			Action:  act,
			Secrets: []string{fx.AccountBootstrap.Secret},
		})
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprint("job", i)), 0o755); err != nil {
			return err
		}
		step := runner.Step{ID: "cf", With: map[string]string{"bootstrap-token": fx.AccountBootstrap.Secret, "account-id": fx.Account.ID, "preset": "workers-deploy", "api-base-url": base}}
		t0 := time.Now()
		m, err := j.RunMain(context.Background(), step)
		mainWall := time.Since(t0)
		if err != nil {
			return fmt.Errorf("main: %w", err)
		}
		if m.Failed() {
			return fmt.Errorf("main failed (exit %d):\n%s", m.ExitCode, m.Log)
		}
		mainStart := first.since(execAt)
		mainRounds := first.rounds()
		t1 := time.Now()
		p, err := j.RunPost(context.Background(), step, m)
		postWall := time.Since(t1)
		if err != nil {
			return fmt.Errorf("post: %w", err)
		}
		if p == nil || p.Failed() {
			return fmt.Errorf("post failed:\n%v", p)
		}
		postStart := first.since(execAt)
		postRounds = append(postRounds, first.rounds())
		if i == 0 {
			continue
		}
		mains, posts = append(mains, mainWall), append(posts, postWall)
		starts = append(starts, mainStart, postStart)
		rounds = append(rounds, mainRounds)
	}
	if left := len(api.Tokens()); left != 2 {
		return fmt.Errorf("the API holds %d tokens after the runs, want only the 2 bootstrap tokens", left)
	}

	L := *latency
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Printf("cfmint phases against the built-in API, latency L = %v per request, %d cycles (go run ./bench -latency %v -n %d)\n\n", L, *n, L, *n)
	fmt.Fprintln(tw, "phase\tmin\tmedian\tp90\tmedian / L\ttarget\tmet\t")
	row := func(name string, ds []time.Duration, target float64) bool {
		med := pct(ds, 50)
		ratio := float64(med) / float64(L)
		ok := ratio <= target
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%.2f\t≤ %.1f L\t%s\t\n", name, round(pct(ds, 0)), round(med), round(pct(ds, 90)), ratio, target, yes(ok))
		return ok
	}
	okMain := row("main", mains, mainTarget)
	okPost := row("post", posts, postTarget)
	sm := pct(starts, 50)
	okStart := sm < startTarget
	fmt.Fprintf(tw, "exec to first request\t%v\t%v\t%v\t\t< %v\t%s\t\n", round(pct(starts, 0)), round(sm), round(pct(starts, 90)), startTarget, yes(okStart))
	tw.Flush()
	slices.Sort(rounds)
	slices.Sort(postRounds)
	fmt.Printf("\nsequential round trips (median): main %d, post %d\n", rounds[len(rounds)/2], postRounds[len(postRounds)/2])
	if !okMain || !okPost || !okStart {
		return errors.New("a target was missed")
	}
	return nil
}

// firstRequest records when the API received the first request since the last reset, and
// when each request since then came and went.
type firstRequest struct {
	mu    sync.Mutex
	at    time.Time
	spans [][2]time.Time
}

func (f *firstRequest) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		f.mu.Lock()
		if f.at.IsZero() {
			f.at = start
		}
		f.mu.Unlock()
		h.ServeHTTP(w, r)
		f.mu.Lock()
		f.spans = append(f.spans, [2]time.Time{start, time.Now()})
		f.mu.Unlock()
	})
}

func (f *firstRequest) reset() {
	f.mu.Lock()
	f.at = time.Time{}
	f.spans = nil
	f.mu.Unlock()
}

func (f *firstRequest) since(t time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at.Sub(t)
}

// rounds counts the sequential round trips of the requests since the last reset: requests whose
// times overlap count once.
func (f *firstRequest) rounds() int {
	f.mu.Lock()
	spans := slices.Clone(f.spans)
	f.mu.Unlock()
	slices.SortFunc(spans, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	n := 0
	var end time.Time
	for _, s := range spans {
		if n == 0 || s[0].After(end) {
			n++
			end = s[1]
		} else if s[1].After(end) {
			end = s[1]
		}
	}
	return n
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100
	if i > 0 {
		i--
	}
	return s[min(i, len(s)-1)]
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
