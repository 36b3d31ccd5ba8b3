package action_test

// Load under Cloudflare's rate limit: many jobs minting and revoking at once against one
// account, run in this process on a fake clock. Every cycle must end with its token deleted or
// with a clear failure, and any token left behind must be named by its cycle's error.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/action"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/runner"
)

// cycle is one job's main and post.
type cycle struct {
	run        int
	name       string
	main, post *runner.Phase
	err        error // the runner could not run a phase
}

// runCycles runs n mint+revoke cycles, each its own job (its own run id), at most par at once,
// with deps changing each phase's Deps.
func runCycles(t *testing.T, f *fapi, n, par int, deps func(*action.Deps)) []*cycle {
	t.Helper()
	// A client of its own, whose spare connections close when the cycles end: the API's
	// shutdown would otherwise wait for them.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	out := make([]*cycle, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := &cycle{run: 20000 + i}
			out[i] = c
			j := f.jobWith(t, map[string]string{"GITHUB_RUN_ID": fmt.Sprint(c.run), "CFMINT_TRACE_FALLBACK_URL": f.traceURL()},
				runner.InProcess(phase(hc, deps)))
			s := f.step("cf", map[string]string{"preset": "workers-deploy"})
			c.name = fmt.Sprintf("cfmint:octo-org/site:workers-deploy:%d.1:deploy:cf", c.run)
			if c.main, c.err = j.RunMain(context.Background(), s); c.err != nil {
				return
			}
			c.post, c.err = j.RunPost(context.Background(), s, c.main)
		})
	}
	wg.Wait()
	return out
}

// checkCycles asserts each cycle ended cleanly or failed clearly, and that every token left in
// the API is named, by id, in the error of the cycle that minted it. It returns how many
// cycles minted and revoked cleanly.
func checkCycles(t *testing.T, f *fapi, cycles []*cycle) (clean int) {
	t.Helper()
	byName := map[string][]cfapitest.TokenInfo{}
	for _, tk := range f.Tokens() {
		byName[tk.Name] = append(byName[tk.Name], tk)
	}
	for _, c := range cycles {
		if c.err != nil || c.post == nil {
			t.Errorf("run %d: the runner could not run it: %v", c.run, c.err)
			continue
		}
		left := byName[c.name]
		delete(byName, c.name)
		switch {
		case c.main.ExitCode == 0 && c.post.ExitCode == 0:
			if c.main.Outputs["token-id"] == "" || !strings.Contains(c.post.Log, "Revoked token") {
				t.Errorf("run %d: succeeded without minting and revoking:\n%s\n%s", c.run, c.main.Log, c.post.Log)
			}
			clean++
		case c.main.ExitCode == 1 && errorsOf(c.main) != "":
			if c.main.Outputs["token"] != "" {
				t.Errorf("run %d: a failed main handed out a token", c.run)
			}
			if c.post.ExitCode != 0 && errorsOf(c.post) == "" {
				t.Errorf("run %d: post exited %d without an error", c.run, c.post.ExitCode)
			}
		case c.main.ExitCode == 0 && c.post.ExitCode == 1 && errorsOf(c.post) != "":
			// A revoke that failed for good: allowed, if it names the token.
		default:
			t.Errorf("run %d: main exit %d, post exit %d, without clear errors:\n%s\n%s", c.run, c.main.ExitCode, c.post.ExitCode, c.main.Log, c.post.Log)
		}
		for _, tk := range left {
			if !strings.Contains(errorsOf(c.main, c.post), tk.ID) {
				t.Errorf("run %d left token %s behind without naming it:\n%s", c.run, tk.ID, errorsOf(c.main, c.post))
			}
		}
	}
	for name, ts := range byName {
		if name != "cfmint bootstrap (account)" && name != "cfmint bootstrap (user)" {
			t.Errorf("the API holds %d tokens named %q that no cycle accounts for", len(ts), name)
		}
	}
	return clean
}

// sleepOn is a Deps.Sleep that waits on clock instead of for real: a wait of d moves the clock,
// which the fake API's rate-limit windows and Date headers read, forward by d. Concurrent jobs
// share the clock, so each wait moves it for all of them: time runs faster than it would for
// real, never backwards, and a window that a wait of its Retry-After outlasts has ended for
// everyone.
func sleepOn(clock *cfapitest.Clock) func(ctx context.Context, d time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		clock.Advance(d)
		return nil
	}
}

// TestLoadRateLimited runs cycles against a rate limit far below what they need: many calls get
// 429. Idempotent calls wait out Retry-After and try again; a create that gets 429 fails the
// cycle clearly (a create is never retried). Every cycle still ends cleanly or clearly, and any
// token left behind is named by its cycle's error. The waits are on the fake API's clock, so the
// test waits for nothing real.
func TestLoadRateLimited(t *testing.T) {
	t.Parallel()
	start := time.Now()
	clock := cfapitest.NewClock(time.Now().UTC().Truncate(time.Second))
	f := startAPIWith(t, nil, cfapitest.WithClock(clock.Now), cfapitest.WithRateLimit(30, time.Second), cfapitest.WithQuotas(50, 500))
	fakeStart := clock.Now()
	cycles := runCycles(t, f, 60, 20, func(d *action.Deps) { d.Sleep = sleepOn(clock) })
	clean := checkCycles(t, f, cycles)

	limited := 0
	for _, r := range f.Requests() {
		if r.Status == http.StatusTooManyRequests && r.Method != http.MethodPost {
			limited++
		}
	}
	failedBy429, mainFailed, postFailed := 0, 0, 0
	for _, c := range cycles {
		if c.main != nil && c.post != nil {
			e := errorsOf(c.main, c.post)
			if strings.Contains(e, "429") && !strings.Contains(e, "failed to create the token") {
				failedBy429++
			}
			if c.main.ExitCode != 0 {
				mainFailed++
			} else if c.post.ExitCode != 0 {
				postFailed++
			}
		}
	}
	if limited == 0 {
		t.Fatal("no idempotent call was rate limited: the limit is too high to test anything")
	}
	// A retry is the same call, with the same token, answered later with success.
	reqs := f.Requests()
	recovered := 0
	for i, r := range reqs {
		if r.Status != http.StatusTooManyRequests || r.Method == http.MethodPost {
			continue
		}
		for _, later := range reqs[i+1:] {
			if later.Method == r.Method && later.Path == r.Path && later.RawQuery == r.RawQuery && later.TokenID == r.TokenID && later.Status < 300 {
				recovered++
				break
			}
		}
	}
	if recovered == 0 || clean == 0 {
		t.Errorf("%d idempotent calls got 429, %d were answered on a later try, %d cycles ended cleanly: 429s are not retried", limited, recovered, clean)
	}
	t.Logf("%d cycles: %d clean, %d failed in main, %d failed to revoke (token named, left to expire: %d); %d idempotent calls got 429, %d cycles failed on a 429 other than the create's; %v on the fake clock, in %v",
		len(cycles), clean, mainFailed, postFailed, len(f.Tokens())-2, limited, failedBy429, clock.Now().Sub(fakeStart), time.Since(start).Round(time.Millisecond))
}
