package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
)

var (
	brokerMode  = flag.Bool("broker", false, "measure the keyless broker (cfmint serve) instead of the action's phases")
	brokerJobs  = flag.Int("jobs", 200, "with -broker: jobs to run (mint, then revoke with a fresh ID token)")
	brokerConc  = flag.Int("concurrency", 20, "with -broker: jobs at once")
	newConns    = flag.Bool("new-conns", false, "with -broker: a new connection to the broker per request, as runners calling it directly make")
	brokerWarm  = 20 // jobs run first and not counted: the broker's caches fill
	brokerAudOK = "https://cfmint.bench"
)

// The broker's targets.
const (
	brokerMintP50   = 2.5 // × L
	brokerMintP99   = 4.0 // × L
	brokerCallsJob  = 3.0 // create, verify, and the revoke's one DELETE with its ticket
	brokerCPUPerExc = time.Millisecond
)

// benchTB lets the test issuer run outside a test.
type benchTB struct {
	mu       sync.Mutex
	cleanups []func()
	failed   []string
}

func (b *benchTB) Helper() {}
func (b *benchTB) Errorf(f string, a ...any) {
	b.mu.Lock()
	b.failed = append(b.failed, fmt.Sprintf(f, a...))
	b.mu.Unlock()
}
func (b *benchTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (b *benchTB) Cleanup(f func())          { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

// benchBroker runs jobs through `cfmint serve` against the built-in API with latency L on every
// request, and prints mint and revoke latencies in L, Cloudflare calls per job and the broker's
// CPU per exchange.
func benchBroker(bin string, dir string, L time.Duration) error {
	tb := &benchTB{}
	defer tb.close()
	benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableKeepAlives: *newConns}}
	api := cfapitest.New(cfapitest.WithRateLimit(0, time.Minute))
	fx := api.Seed()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.Handler()}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/client/v4"
	iss := oidctest.New(tb)

	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`audience: %s
rules:
  - name: bench
    issuer: %s
    claims: {repository_id: "892345611"}
    account_id: %s
    allow: {presets: [workers-deploy]}
    # One repository runs every job: lift its fair shares, the bench measures the broker.
    max_mints: 10000/1m
    max_active: 500
`, brokerAudOK, iss.URL(), fx.Account.ID)), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--policy", policy)
	cmd.Env = []string{"CLOUDFLARE_BOOTSTRAP_TOKEN=" + fx.AccountBootstrap.Secret, "CLOUDFLARE_API_BASE_URL=" + base}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill() }()
	url, err := listeningAddr(stderr)
	if err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	run := func(n, offset int) (mints, revokes []time.Duration, err error) {
		var mu sync.Mutex
		var errs []error
		sem := make(chan struct{}, *brokerConc)
		var wg sync.WaitGroup
		for i := range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				claims := oidctest.Claims{"aud": brokerAudOK, "run_id": strconv.Itoa(700000 + offset + i)}
				t0 := time.Now()
				st, body, err := call(url, "POST", "/v1/tokens", iss.Token(claims), `{"preset":"workers-deploy"}`)
				dm := time.Since(t0)
				if err == nil && st != http.StatusCreated {
					err = fmt.Errorf("mint answered %d: %v", st, body["error"])
				}
				var dr time.Duration
				if err == nil {
					t1 := time.Now()
					ticket, _ := body["revoke_ticket"].(string)
					st, body, err = call(url, "DELETE", "/v1/tokens/"+body["id"].(string), iss.Token(claims), "", "Cfmint-Revoke-Ticket", ticket)
					dr = time.Since(t1)
					if err == nil && st != http.StatusNoContent {
						err = fmt.Errorf("revoke answered %d: %v", st, body["error"])
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				mints, revokes = append(mints, dm), append(revokes, dr)
			})
		}
		wg.Wait()
		return mints, revokes, errors.Join(errs...)
	}

	api.SetLatency(L)
	if _, _, err := run(brokerWarm, 0); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	calls0 := len(api.Requests())
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	mints, revokes, err := run(*brokerJobs, brokerWarm)
	if err != nil {
		return err
	}
	cpu1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	calls := len(api.Requests()) - calls0
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	for _, tk := range api.Tokens() {
		if strings.HasPrefix(tk.Name, "cfmint-broker:") {
			return fmt.Errorf("token %s left behind", tk.Name)
		}
	}
	if len(tb.failed) > 0 {
		return errors.New(strings.Join(tb.failed, "; "))
	}

	exchanges := 2 * *brokerJobs // a mint and a revoke each
	perCall := float64(calls) / float64(*brokerJobs)
	cpuPer := (cpu1 - cpu0) / time.Duration(exchanges)
	conns := "connections kept alive"
	if *newConns {
		conns = "a new connection per request"
	}
	fmt.Printf("cfmint serve against the built-in API, latency L = %v per request, %d jobs, %d at a time, %s (go run ./bench -broker -latency %v -jobs %d -concurrency %d)\n\n",
		L, *brokerJobs, *brokerConc, conns, L, *brokerJobs, *brokerConc)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tvalue\tin L\ttarget\tmet\t")
	okP50 := float64(pct(mints, 50))/float64(L) <= brokerMintP50
	okP99 := float64(pct(mints, 99))/float64(L) <= brokerMintP99
	okCalls := perCall <= brokerCallsJob
	okCPU := cpuPer <= brokerCPUPerExc
	fmt.Fprintf(tw, "mint p50\t%v\t%.2f\t≤ %.1f L\t%s\t\n", round(pct(mints, 50)), float64(pct(mints, 50))/float64(L), brokerMintP50, yes(okP50))
	fmt.Fprintf(tw, "mint p99\t%v\t%.2f\t≤ %.1f L\t%s\t\n", round(pct(mints, 99)), float64(pct(mints, 99))/float64(L), brokerMintP99, yes(okP99))
	fmt.Fprintf(tw, "revoke p50\t%v\t%.2f\t\t\t\n", round(pct(revokes, 50)), float64(pct(revokes, 50))/float64(L))
	fmt.Fprintf(tw, "Cloudflare calls per job\t%.2f\t\t≤ %.0f\t%s\t\n", perCall, brokerCallsJob, yes(okCalls))
	fmt.Fprintf(tw, "jobs per 5-minute window at 1200\t%.0f\t\t\t\t\n", 1200/perCall)
	fmt.Fprintf(tw, "broker CPU per exchange\t%v\t\t≤ %v\t%s\t\n", cpuPer.Round(time.Microsecond), brokerCPUPerExc, yes(okCPU))
	tw.Flush()
	fmt.Printf("\n(CPU is the broker process's user+system time over the %d counted jobs, from /proc, divided by %d exchanges: one mint and one revoke a job.)\n", *brokerJobs, exchanges)
	if !okP50 || !okP99 || !okCalls || !okCPU {
		return errors.New("a target was missed")
	}
	return nil
}

func listeningAddr(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var ev struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Msg == "listening" {
			return "http://" + ev.Addr, nil
		}
	}
	return "", errors.New("cfmint serve exited before it listened")
}

// call makes one request to the broker; header is name, value pairs.
func call(base, method, path, idToken, body string, header ...string) (int, map[string]any, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+idToken)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := benchClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, nil
}

// cpuTime is a process's user and system time so far, from /proc/PID/stat (in clock ticks of
// 1/100 s, the Linux default).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("failed to read the broker's CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// benchClient keeps a connection per concurrent job, as a load balancer in front of the broker
// would; -new-conns opens one per request instead, as runners calling it directly do.
var benchClient *http.Client
