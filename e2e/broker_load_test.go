package e2e

// The broker under load, as `cfmint serve` runs: many jobs minting and revoking at once against
// the built-in API with Cloudflare's rate limit and a latency on every call. Every job must end
// revoked, every answer must be one a caller can act on, and no token may be left behind.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
)

// brokerJob is one job's exchange and revoke, each retried with a fresh ID token on 429 and 503
// as the action does, within a deadline.
type brokerJob struct {
	run      int
	statuses []int // every answer the broker gave, in order
	minted   bool
	revoked  bool
	err      string
}

func (b *brokerProc) try(method, path, idToken string, body map[string]string) (int, time.Duration, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	if err != nil {
		return 0, 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+idToken)
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	return res.StatusCode, time.Duration(ra) * time.Second, out, nil
}

// runBrokerJobs runs n jobs, par at once, each for its own run.
func runBrokerJobs(b *brokerProc, iss *oidctest.Issuer, n, par int, deadline time.Duration) []*brokerJob {
	jobs := make([]*brokerJob, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			j := &brokerJob{run: 500000 + i}
			jobs[i] = j
			claims := oidctest.Claims{"aud": brokerAudience, "run_id": fmt.Sprint(j.run)}
			end := time.Now().Add(deadline)
			nonce := fmt.Sprintf("load%012d", j.run)
			var id string
			for time.Now().Before(end) {
				st, wait, body, err := b.try("POST", "/v1/tokens", iss.Token(claims), map[string]string{"preset": "workers-deploy", "nonce": nonce})
				if err != nil {
					j.err = err.Error()
					break
				}
				j.statuses = append(j.statuses, st)
				if st == http.StatusCreated {
					j.minted, id = true, body["id"].(string)
					break
				}
				if st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable {
					j.err = fmt.Sprintf("mint answered %d: %v", st, body["error"])
					break
				}
				time.Sleep(min(max(wait, 50*time.Millisecond), 2*time.Second))
			}
			// Revoke whatever the job may have: by id when it knows it, else by nonce.
			path := "/v1/tokens?nonce=" + nonce
			if id != "" {
				path = "/v1/tokens/" + id
			}
			for time.Now().Before(end.Add(deadline)) {
				st, wait, body, err := b.try("DELETE", path, iss.Token(claims), nil)
				if err == nil {
					j.statuses = append(j.statuses, st)
				}
				if err == nil && (st == http.StatusNoContent || st == http.StatusOK) {
					j.revoked = true
					break
				}
				if err == nil && st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable {
					j.err += fmt.Sprintf("; revoke answered %d: %v", st, body["error"])
					break
				}
				time.Sleep(min(max(wait, 50*time.Millisecond), 2*time.Second))
			}
		})
	}
	wg.Wait()
	return jobs
}

func brokerTokensLeft(a *api) []string {
	var left []string
	for _, tk := range a.Tokens() {
		if strings.HasPrefix(tk.Name, "cfmint-broker:") {
			left = append(left, tk.Name)
		}
	}
	return left
}

// loadPolicy is brokerPolicy with the fair shares lifted: a load test runs every job as one
// repository, which the default max_mints (60/1h) and max_active (10) would refuse past the 60th.
func loadPolicy(iss *oidctest.Issuer, a *api) string {
	return brokerPolicy(iss, a) + "    max_mints: 10000/1m\n    max_active: 500\n"
}

func TestBrokerLoad(t *testing.T) {
	t.Parallel()
	a := startAPI(t, cfapitest.WithRateLimit(1200, 5*time.Minute))
	a.SetLatency(10 * time.Millisecond)
	iss := oidctest.New(t)
	b := runServe(t, a, writePolicy(t, loadPolicy(iss, a)))
	before := len(a.Requests())
	jobs := runBrokerJobs(b, iss, 200, 20, time.Minute)
	for _, j := range jobs {
		if !j.minted || !j.revoked || j.err != "" {
			t.Errorf("job %d: minted %v, revoked %v, answers %v, %s", j.run, j.minted, j.revoked, j.statuses, j.err)
		}
	}
	if left := brokerTokensLeft(a); len(left) > 0 {
		t.Errorf("%d tokens left: %v", len(left), left[:min(len(left), 5)])
	}
	// Warm, a job costs four calls: create, verify, the revoke's read, delete.
	if calls := len(a.Requests()) - before; calls > 4*len(jobs) {
		t.Errorf("%d Cloudflare calls for %d jobs: more than 4 a job", calls, len(jobs))
	}
}

func TestBrokerRateLimitExhausted(t *testing.T) {
	t.Parallel()
	// Cloudflare's limit runs out mid-run (the dashboard and other users share it): the broker's
	// own budget does not know, so Cloudflare's 429s reach it.
	a := startAPI(t, cfapitest.WithRateLimit(150, 3*time.Second))
	iss := oidctest.New(t)
	b := runServe(t, a, writePolicy(t, brokerPolicy(iss, a)))
	jobs := runBrokerJobs(b, iss, 80, 20, 30*time.Second)
	minted, throttled := 0, 0
	for _, j := range jobs {
		for _, st := range j.statuses {
			switch st {
			case http.StatusTooManyRequests, http.StatusServiceUnavailable:
				throttled++
			case http.StatusCreated, http.StatusNoContent, http.StatusOK:
			default:
				t.Errorf("job %d got %d (answers %v): only 201, 429 and 503 (and 204/200 on revoke) are allowed", j.run, st, j.statuses)
			}
		}
		if !j.revoked {
			t.Errorf("job %d: its revoke never succeeded (answers %v, %s)", j.run, j.statuses, j.err)
		}
		if j.minted {
			minted++
		}
	}
	if minted == 0 || throttled == 0 {
		t.Errorf("%d jobs minted and %d answers were 429 or 503: the run did not exhaust the limit it is about", minted, throttled)
	}
	if left := brokerTokensLeft(a); len(left) > 0 {
		t.Errorf("%d tokens left once every revoke was retried: %v", len(left), left[:min(len(left), 5)])
	}
}

func TestBrokerBudgetKeepsAReserveForRevokes(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := runServe(t, a, writePolicy(t, brokerPolicy(iss, a)), "--rate-limit", "40", "--rate-reserve", "20")
	var ids []string
	refused := false
	for range 20 {
		st, wait, body, err := b.try("POST", "/v1/tokens", iss.Token(oidctest.Claims{"aud": brokerAudience}), map[string]string{"preset": "workers-deploy"})
		if err != nil {
			t.Fatal(err)
		}
		if st == http.StatusTooManyRequests {
			refused = true
			if wait <= 0 {
				t.Errorf("the broker's 429 carries no Retry-After")
			}
			break
		}
		if st != http.StatusCreated {
			t.Fatalf("mint answered %d: %v", st, body)
		}
		ids = append(ids, body["id"].(string))
	}
	if !refused || len(ids) == 0 {
		t.Fatalf("minted %d tokens without the budget refusing one", len(ids))
	}
	// The reserve is the revokes': every token minted can still be revoked.
	for _, id := range ids {
		if st, _, body, err := b.try("DELETE", "/v1/tokens/"+id, iss.Token(oidctest.Claims{"aud": brokerAudience}), nil); err != nil || st != http.StatusNoContent {
			t.Errorf("revoke %s: %d %v %v", id, st, body, err)
		}
	}
	if left := brokerTokensLeft(a); len(left) > 0 {
		t.Errorf("%d tokens left", len(left))
	}
}
