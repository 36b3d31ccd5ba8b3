package e2e

// Several replicas of `cfmint serve` behind one address, as a load balancer shows them: they share
// a real Redis for single use of ID tokens, a replica can die mid-create, and SIGTERM drains.

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/redistest"
)

// switchProxy forwards each new TCP connection to the backend it currently points at.
type switchProxy struct {
	ln      net.Listener
	backend atomic.Value // host:port
	wg      sync.WaitGroup
}

func newSwitchProxy(t *testing.T, backend string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln}
	p.backend.Store(backend)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() {
				defer c.Close()
				b, err := net.DialTimeout("tcp", p.backend.Load().(string), 5*time.Second)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
				<-done
			})
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *switchProxy) url() string     { return "http://" + p.ln.Addr().String() }
func (p *switchProxy) point(to string) { p.backend.Store(strings.TrimPrefix(to, "http://")) }
func hostOf(b *brokerProc) string      { return strings.TrimPrefix(b.url, "http://") }
func via(p *switchProxy) *brokerProc   { return &brokerProc{url: p.url()} }
func claimsFor(extra oidctest.Claims) oidctest.Claims {
	c := oidctest.Claims{"aud": brokerAudience}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func TestBrokerReplicasShareSingleUse(t *testing.T) {
	t.Parallel()
	rd := redistest.Start(t)
	a := startAPI(t)
	iss := oidctest.New(t)
	policy := writePolicy(t, brokerPolicy(iss, a))
	one := runServe(t, a, policy, "--replay-store", rd.URL())
	two := runServe(t, a, policy, "--replay-store", rd.URL())
	idt := iss.Token(claimsFor(nil))
	st, _, body, err := one.try("POST", "/v1/tokens", idt, map[string]string{"preset": "workers-deploy"})
	if err != nil || st != http.StatusCreated {
		t.Fatalf("mint on replica one: %d %v %v", st, body, err)
	}
	st, _, body2, err := two.try("POST", "/v1/tokens", idt, map[string]string{"preset": "workers-deploy"})
	if err != nil || st != http.StatusUnauthorized || !strings.Contains(body2["error"].(string), "already used") {
		t.Errorf("the same ID token on replica two: %d %v %v, want 401 already used", st, body2, err)
	}
	// Either replica revokes what the other minted.
	if st, _, b, err := two.try("DELETE", "/v1/tokens/"+body["id"].(string), iss.Token(claimsFor(nil)), nil); err != nil || st != http.StatusNoContent {
		t.Errorf("revoke on replica two: %d %v %v", st, b, err)
	}
	if r := two.do(t, "GET", "/readyz", "", nil); r.Status != 200 {
		t.Errorf("readyz with Redis up: %d %s", r.Status, r.Raw)
	}
	// Redis down: refuse, never skip the check; readiness says so.
	rd.Stop()
	st, wait, body3, err := one.try("POST", "/v1/tokens", iss.Token(claimsFor(nil)), map[string]string{"preset": "workers-deploy"})
	if err != nil || st != http.StatusServiceUnavailable || wait <= 0 {
		t.Errorf("mint with Redis down: %d (Retry-After %s) %v %v, want 503 with Retry-After", st, wait, body3, err)
	}
	if r := one.do(t, "GET", "/readyz", "", nil); r.Status != http.StatusServiceUnavailable {
		t.Errorf("readyz with Redis down: %d %s", r.Status, r.Raw)
	}
	if left := brokerTokensLeft(a); len(left) > 0 {
		t.Errorf("tokens left: %v", left)
	}
}

func TestBrokerReplicaDiesMidCreate(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	policy := writePolicy(t, brokerPolicy(iss, a))
	doomed := runServe(t, a, policy)
	other := runServe(t, a, policy)
	lb := newSwitchProxy(t, hostOf(doomed))

	// Cloudflare stores the token but holds its answer; the replica dies meanwhile.
	a.InjectFault(cfapitest.Fault{Method: "POST", Path: "/accounts/{account_id}/tokens", Times: 1, Hold: time.Minute})
	const nonce = "deadbeef00c0ffee"
	answered := make(chan int, 1)
	go func() {
		st, _, _, err := via(lb).try("POST", "/v1/tokens", iss.Token(claimsFor(nil)), map[string]string{"preset": "workers-deploy", "nonce": nonce})
		if err != nil {
			st = 0
		}
		answered <- st
	}()
	var stored []cfapitest.TokenInfo
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stored = nil
		for _, tk := range a.Tokens() {
			if strings.Contains(tk.Name, ":"+nonce+":") {
				stored = append(stored, tk)
			}
		}
		if len(stored) > 0 {
			break
		}
	}
	if len(stored) != 1 {
		t.Fatalf("%d tokens with the nonce were stored", len(stored))
	}
	if err := doomed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-doomed.done
	if st := <-answered; st == http.StatusCreated {
		t.Fatalf("the caller got its token from a replica that was killed before the answer")
	}
	lb.point(hostOf(other))
	// The step's post reaches the other replica and finds the token by its run and nonce.
	st, _, body, err := via(lb).try("DELETE", "/v1/tokens?nonce="+nonce, iss.Token(claimsFor(nil)), nil)
	if err != nil || st != http.StatusOK || body["deleted"] != float64(1) {
		t.Fatalf("revoke by nonce on the other replica: %d %v %v", st, body, err)
	}
	if left := brokerTokensLeft(a); len(left) > 0 {
		t.Errorf("tokens left: %v", left)
	}
}

func TestBrokerDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := runServe(t, a, writePolicy(t, brokerPolicy(iss, a)))
	a.SetLatency(300 * time.Millisecond)
	const n = 5
	results := make(chan int, n)
	for range n {
		go func() {
			st, _, _, err := b.try("POST", "/v1/tokens", iss.Token(claimsFor(nil)), map[string]string{"preset": "workers-deploy"})
			if err != nil {
				st = 0
			}
			results <- st
		}()
	}
	// Wait until every exchange is in flight at Cloudflare, then ask the broker to stop.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Count(b.log(), `"msg":"listening"`) > 0 && len(a.Requests()) >= 2+n {
			break
		}
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range n {
		if st := <-results; st != http.StatusCreated {
			t.Errorf("an exchange in flight at SIGTERM answered %d, want 201", st)
		}
	}
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("exit after drain: %v\n%s", err, b.log())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("the broker did not exit after draining")
	}
	if _, err := net.DialTimeout("tcp", hostOf(b), time.Second); err == nil {
		t.Errorf("the broker still accepts connections after SIGTERM")
	}
}

func TestBrokerDrainTimeoutDeletesWhatItCreated(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := runServe(t, a, writePolicy(t, brokerPolicy(iss, a)), "--shutdown-timeout", "1s")
	// Cloudflare stores the token and holds its answer past the drain.
	a.InjectFault(cfapitest.Fault{Method: "POST", Path: "/accounts/{account_id}/tokens", Times: 1, Hold: time.Minute})
	answered := make(chan int, 1)
	go func() {
		st, _, _, err := b.try("POST", "/v1/tokens", iss.Token(claimsFor(nil)), map[string]string{"preset": "workers-deploy", "nonce": "cafe0000cafe0000"})
		if err != nil {
			st = 0
		}
		answered <- st
	}()
	for deadline := time.Now().Add(20 * time.Second); len(brokerTokensLeft(a)) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if len(brokerTokensLeft(a)) != 1 {
		t.Fatalf("the held create stored no token")
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.done:
		if err == nil {
			t.Errorf("the broker exited 0 although an exchange outlived the drain")
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the broker did not exit")
	}
	if st := <-answered; st == http.StatusCreated {
		t.Errorf("the caller got a token the broker deleted")
	}
	if left := brokerTokensLeft(a); len(left) > 0 {
		t.Errorf("tokens left after an aborted drain: %v\n%s", left, b.log())
	}
	if !strings.Contains(b.log(), "were cancelled, and deleted what they had created") {
		t.Errorf("no log line about the cut-short exchanges:\n%s", b.log())
	}
}
