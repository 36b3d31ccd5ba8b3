package netaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// traceHandler answers /cdn-cgi/trace with the caller's address, as Cloudflare does, and counts
// its requests.
func traceHandler(n *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path != "/cdn-cgi/trace" {
			http.NotFound(w, r)
			return
		}
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "fl=1\nh=%s\nip=%s\nts=1\n", r.Host, ap.Addr().Unmap())
	})
}

// dualStack serves h on 127.0.0.1:P and [::1]:P, the same port, like a dual-stack host; it
// skips the test when the machine has no IPv6 loopback.
func dualStack(t *testing.T, h http.Handler) (port string) {
	t.Helper()
	for range 20 {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
		l6, err := net.Listen("tcp6", "[::1]:"+port)
		if err != nil {
			l4.Close()
			if probe, perr := net.Listen("tcp6", "[::1]:0"); perr != nil {
				t.Skipf("no IPv6 loopback: %v", perr)
			} else {
				probe.Close()
			}
			continue // the port is taken on ::1; try another
		}
		for _, l := range []net.Listener{l4, l6} {
			srv := &http.Server{Handler: h}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
		}
		return port
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return ""
}

// dialer resolves the host "dual.test" to 127.0.0.1 for tcp4 and ::1 for tcp6 (and 127.0.0.1
// for tcp), the way a dual-stack name resolves; v6 replaces the tcp6 dial when set.
func dialer(v6 func(ctx context.Context, addr string) (net.Conn, error)) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "dual.test" {
			return d.DialContext(ctx, network, addr)
		}
		switch network {
		case "tcp6":
			if v6 != nil {
				return v6(ctx, addr)
			}
			return d.DialContext(ctx, network, net.JoinHostPort("::1", port))
		default:
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		}
	}}}
}

func addrs(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// TestRunnerDualStack: on a dual-stack host both addresses are found, one per family.
func TestRunnerDualStack(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	port := dualStack(t, traceHandler(&n))
	got, err := Runner(context.Background(), dialer(nil), "http://dual.test:"+port+"/client/v4", Options{Fallback: "http://127.0.0.1:9/none"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1", "::1"}; !slices.Equal(addrs(got), want) {
		t.Errorf("Runner = %v, want %v", got, want)
	}
	if n.Load() != 2 {
		t.Errorf("%d trace requests, want one per family", n.Load())
	}
}

// TestRunnerIPv4Only: a tcp6 dial that fails at once costs no grace wait.
func TestRunnerIPv4Only(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(traceHandler(&n))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	noV6 := func(context.Context, string) (net.Conn, error) { return nil, errors.New("network is unreachable") }
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done := make(chan []netip.Addr, 1)
	go func() {
		got, err := Runner(ctx, dialer(noV6), "http://dual.test:"+port+"/client/v4", Options{Grace: time.Hour})
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	select {
	case got := <-done:
		if !slices.Equal(addrs(got), []string{"127.0.0.1"}) {
			t.Errorf("Runner = %v, want 127.0.0.1", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Runner waited out its grace although the IPv6 dial had already failed")
	}
}

// TestRunnerGrace: an IPv6 path that silently drops packets holds the lookup up for the grace
// only. (net/http lets the dial itself run on, detached from the request, until its own timeout.)
func TestRunnerGrace(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(traceHandler(&n))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	released := make(chan struct{})
	t.Cleanup(func() { close(released) })
	blackhole := func(ctx context.Context, _ string) (net.Conn, error) {
		select {
		case <-ctx.Done():
		case <-released:
		}
		return nil, errors.New("i/o timeout")
	}
	// The transport hands each trace request to Proxy, which keeps its context: the IPv6 one must
	// end cancelled, when the grace is over, not at its own LookupTimeout.
	hc := dialer(blackhole)
	var mu sync.Mutex
	var requests []context.Context
	hc.Transport.(*http.Transport).Proxy = func(r *http.Request) (*url.URL, error) {
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, r.Context())
		return nil, nil
	}
	const grace = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	start := time.Now()
	got, err := Runner(ctx, hc, "http://dual.test:"+port+"/client/v4", Options{Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, rc := range requests {
		if err := rc.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("a trace request's context ended with %v, want it cancelled when Runner returned after the grace", err)
		}
	}
	if len(requests) != 2 {
		t.Errorf("%d trace requests, want one per family", len(requests))
	}
	mu.Unlock()
	if took := time.Since(start); took < grace {
		t.Errorf("returned after %v, before the grace of %v", took, grace)
	}
	if ctx.Err() != nil {
		t.Error("Runner waited for the blackholed family instead of its grace")
	}
	if !slices.Equal(addrs(got), []string{"127.0.0.1"}) {
		t.Errorf("Runner = %v, want 127.0.0.1", got)
	}
}

// TestRunnerFallback: when the API host's trace gives nothing, the fallback answers, and the
// caller hears why; when the API host answers, the fallback is never asked.
func TestRunnerFallback(t *testing.T) {
	t.Parallel()
	var fbHits atomic.Int32
	fb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fbHits.Add(1)
		fmt.Fprint(w, "h=www.cloudflare.com\nip=198.51.100.7\n")
	}))
	t.Cleanup(fb.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	var n atomic.Int32
	good := httptest.NewServer(traceHandler(&n))
	t.Cleanup(good.Close)

	var why error
	got, err := Runner(context.Background(), &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, broken.URL+"/client/v4",
		Options{Fallback: fb.URL + "/cdn-cgi/trace", OnFallback: func(err error) { why = err }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(addrs(got), []string{"198.51.100.7"}) {
		t.Errorf("Runner = %v, want the fallback's 198.51.100.7", got)
	}
	if why == nil || !strings.Contains(why.Error(), "503") {
		t.Errorf("OnFallback got %v, want the primary's 503", why)
	}

	why = nil
	before := fbHits.Load()
	got, err = Runner(context.Background(), &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, good.URL+"/client/v4",
		Options{Fallback: fb.URL + "/cdn-cgi/trace", OnFallback: func(err error) { why = err }})
	if err != nil || !slices.Equal(addrs(got), []string{"127.0.0.1"}) {
		t.Errorf("Runner = %v, %v; want 127.0.0.1", got, err)
	}
	if why != nil || fbHits.Load() != before {
		t.Errorf("the fallback was asked (%v) although the API host answered", why)
	}
}

// TestRunnerBothFail: no address from either trace is an error naming both; it never degrades
// to an empty list.
func TestRunnerBothFail(t *testing.T) {
	t.Parallel()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "h=x\nts=1\n")
	}))
	t.Cleanup(broken.Close)
	got, err := Runner(context.Background(), &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, broken.URL+"/client/v4",
		Options{Fallback: broken.URL + "/cdn-cgi/trace?fallback"})
	if err == nil || len(got) != 0 {
		t.Fatalf("Runner = %v, %v; want an error", got, err)
	}
	if !strings.Contains(err.Error(), "no ip= line") || !strings.Contains(err.Error(), "fallback") {
		t.Errorf("error %q does not say what each trace answered", err)
	}
}

// TestRunnerOtherTransport: a client whose transport is not an *http.Transport (a wrapper) gets
// one lookup, not a panic.
func TestRunnerOtherTransport(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(traceHandler(&n))
	t.Cleanup(srv.Close)
	hc := &http.Client{Transport: roundTripper(http.DefaultTransport.RoundTrip)}
	got, err := Runner(context.Background(), hc, srv.URL+"/client/v4", Options{})
	if err != nil || !slices.Equal(addrs(got), []string{"127.0.0.1"}) {
		t.Errorf("Runner = %v, %v; want 127.0.0.1", got, err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRunnerNoIPv6Route: an IPv6 dial that fails for lack of a route is reported to
// OnNoIPv6Route, once, while the IPv4 address is still found; an IPv6 path that exists but
// fails otherwise is not reported as missing.
func TestRunnerNoIPv6Route(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		called bool
	}{
		{"network unreachable", &net.OpError{Op: "dial", Net: "tcp6", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}, true},
		{"no IPv6 address to bind", &net.OpError{Op: "dial", Net: "tcp6", Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}, true},
		{"no AAAA record", &net.OpError{Op: "dial", Net: "tcp6", Err: &net.AddrError{Err: "no suitable address found", Addr: "dual.test"}}, true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp6", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := httptest.NewServer(traceHandler(&n))
			t.Cleanup(srv.Close)
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			noV6 := func(context.Context, string) (net.Conn, error) { return nil, tc.err }
			var told atomic.Int32
			got, err := Runner(context.Background(), dialer(noV6), "http://dual.test:"+port+"/client/v4", Options{
				OnNoIPv6Route: func(err error) {
					told.Add(1)
					if !errors.Is(err, tc.err.(*net.OpError).Err) && !strings.Contains(err.Error(), tc.err.Error()) {
						t.Errorf("told %v, want the dial's error", err)
					}
				},
			})
			if err != nil || !slices.Equal(addrs(got), []string{"127.0.0.1"}) {
				t.Fatalf("Runner = %v, %v; want 127.0.0.1", got, err)
			}
			if want := map[bool]int32{true: 1, false: 0}[tc.called]; told.Load() != want {
				t.Errorf("OnNoIPv6Route called %d times, want %d", told.Load(), want)
			}
		})
	}
}
