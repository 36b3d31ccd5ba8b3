package e2e

// Load: many jobs minting and revoking at once against one account, with Cloudflare's rate
// limit and token quota in force. Every cycle must end with its token deleted or with a clear
// failure, and the account must hold nothing of the runs afterwards. The same under a rate
// limit far below the load, TestLoadRateLimited, runs in process on a fake clock in
// internal/action.
//
//	go test -run TestLoad -v ./e2e/

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// runCycles runs n mint+revoke cycles, each its own job (its own run id), at most par at once.
func runCycles(t *testing.T, a *api, n, par int) []*cycle {
	t.Helper()
	out := make([]*cycle, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := &cycle{run: 20000 + i}
			out[i] = c
			j := a.job(t, map[string]string{"GITHUB_RUN_ID": fmt.Sprint(c.run), "CFMINT_TRACE_FALLBACK_URL": strings.TrimSuffix(a.url, "/client/v4") + "/cdn-cgi/trace"})
			s := a.step("cf", map[string]string{"preset": "workers-deploy"})
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
func checkCycles(t *testing.T, a *api, cycles []*cycle) (clean int) {
	t.Helper()
	byName := map[string][]cfapitest.TokenInfo{}
	for _, tk := range a.Tokens() {
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

// TestLoad runs 200 cycles, 20 at a time, under Cloudflare's limits: 1200 requests per 5
// minutes per owner, 500 account tokens. Each cycle makes 5 rate-limited calls, so all fit, and
// every cycle must succeed and leave nothing.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	start := time.Now()
	a := startAPI(t, cfapitest.WithRateLimit(1200, 5*time.Minute), cfapitest.WithQuotas(50, 500))
	cycles := runCycles(t, a, 200, 20)
	clean := checkCycles(t, a, cycles)
	if clean != len(cycles) {
		t.Errorf("%d of %d cycles ended cleanly, want all", clean, len(cycles))
	}
	if n := len(a.Tokens()); n != 2 {
		t.Errorf("the API holds %d tokens after the runs, want only the 2 bootstrap tokens", n)
	}
	if got := len(a.Deleted()); got != len(cycles) {
		t.Errorf("%d tokens deleted, want %d", got, len(cycles))
	}
	t.Logf("%d cycles, 20 at a time, %d requests, in %v", len(cycles), len(a.Requests()), time.Since(start).Round(time.Millisecond))
}
