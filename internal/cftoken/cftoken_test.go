package cftoken

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/user"

	"github.com/cfmint/cfmint/internal/policy"
)

const (
	testAccount = "0123456789abcdef0123456789abcdef"
	testTokenID = "fedcba9876543210fedcba9876543210"
	// bootstrap is the token the client authenticates with; newSecret is what a create answers.
	bootstrap = "cfat_BOOTSTRAPsecretNEVERtoBEshown0123456789"
	newSecret = "cfat_MINTEDsecretNEVERtoBEshown9876543210xyz"
)

// reply is one scripted answer of the test server.
type reply struct {
	status     int
	retryAfter string
	body       string
	date       string // the Date header, when not the server's own clock
	drop       bool   // close the connection without answering
	hang       bool   // answer nothing until the client leaves
}

func ok(result string) reply {
	return reply{status: 200, body: `{"success":true,"errors":[],"messages":[],"result":` + result + `}`}
}

func cfErr(status int, code int, msg string) reply {
	return reply{status: status, body: fmt.Sprintf(`{"success":false,"errors":[{"code":%d,"message":%q}],"messages":[],"result":null}`, code, msg)}
}

func tooMany(retryAfter string) reply {
	r := cfErr(429, 971, "Please wait and consider throttling your request speed")
	r.retryAfter = retryAfter
	return r
}

var (
	deleted   = ok(`{"id":"` + testTokenID + `"}`)
	groups    = ok(`[{"id":"4755a26eedb94da69e1066d98aa820be","name":"DNS Write","scopes":["com.cloudflare.api.account.zone"]}]`)
	zoneFound = ok(`[{"id":"` + testTokenID + `","name":"example.com","account":{"id":"` + testAccount + `","name":"a"}}]`)
	listed    = ok(`[{"id":"` + testTokenID + `","name":"cfmint:x","status":"active"}]`)
	created   = ok(`{"id":"` + testTokenID + `","name":"cfmint:x","status":"active","value":"` + newSecret + `","expires_on":"2030-01-01T00:00:00Z","condition":{"request_ip":{"in":["192.0.2.1/32"]}}}`)
	verified  = ok(`{"id":"` + testTokenID + `","status":"active"}`)
	// malformed is a 200 cut short, with the new secret in the part that arrived.
	malformed = reply{status: 200, body: `{"success":true,"errors":[],"messages":[],"result":{"value":"` + newSecret + `","id":`}
)

// script is a test server that answers its requests with replies in order (the last one again
// once they run out) and records when each request arrived.
type script struct {
	t       *testing.T
	replies []reply
	mu      sync.Mutex
	arrived []time.Time
	auth    []string
	closed  chan struct{}
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body first: only then does net/http notice a client that leaves.
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	n := len(s.arrived)
	s.arrived = append(s.arrived, time.Now())
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	rep := s.replies[min(n, len(s.replies)-1)]
	s.mu.Unlock()
	switch {
	case rep.drop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			s.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
		return
	case rep.hang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.date != "" {
		w.Header().Set("Date", rep.date)
	}
	w.WriteHeader(rep.status)
	fmt.Fprint(w, rep.body)
}

func (s *script) requests() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.arrived...)
}

func serve(t *testing.T, o Options, replies ...reply) (*Client, *script) {
	t.Helper()
	s := &script{t: t, replies: replies, closed: make(chan struct{})}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(s.closed) }) // runs first: releases hung handlers
	o.BaseURL = srv.URL + "/client/v4"
	o.HTTPClient = srv.Client()
	if o.Backoff == 0 {
		o.Backoff = 20 * time.Millisecond
	}
	return New(bootstrap, o), s
}

// call is one Client method reduced to its error.
type call func(ctx context.Context, c *Client) error

var (
	callDelete = func(ctx context.Context, c *Client) error {
		return c.Delete(ctx, OwnerAccount, testAccount, testTokenID)
	}
	callGroups = func(ctx context.Context, c *Client) error {
		_, _, err := c.PermissionGroups(ctx, OwnerAccount, testAccount)
		return err
	}
	callList = func(ctx context.Context, c *Client) error {
		_, _, err := c.List(ctx, OwnerAccount, testAccount)
		return err
	}
	callZone = func(ctx context.Context, c *Client) error {
		_, err := c.FindZone(ctx, "example.com")
		return err
	}
	callCreate = func(ctx context.Context, c *Client) error {
		_, err := c.Create(ctx, OwnerAccount, testAccount, request())
		return err
	}
	callVerify = func(ctx context.Context, c *Client) error {
		_, err := c.Verify(ctx, OwnerAccount, testAccount, newSecret)
		return err
	}
)

func request() policy.Request {
	return policy.Request{
		Name:      "cfmint:x",
		Policies:  []policy.Policy{{Groups: []policy.Group{{ID: "4755a26eedb94da69e1066d98aa820be", Name: "DNS Write"}}, Resources: map[string]any{"com.cloudflare.api.account.zone." + testTokenID: "*"}}},
		CIDRs:     []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")},
		ExpiresOn: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// want is what a call must end in.
type want int

const (
	wantOK want = iota
	wantAPI
	wantTransport
	wantNotFound
)

// TestRetryPolicy: only idempotent calls are tried again, and only after what can pass (429,
// 5xx, no usable answer); a create is sent once whatever happens; every other 4xx fails at once
// with Cloudflare's status and codes.
func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		call     call
		replies  []reply
		requests int
		want     want
		status   int   // with wantAPI
		code     int64 // with wantAPI, when set
	}{
		{"delete: 5xx is retried", callDelete, []reply{cfErr(503, 10001, "unavailable"), cfErr(502, 10001, "bad gateway"), deleted}, 3, wantOK, 0, 0},
		{"delete: 5xx until the attempts run out", callDelete, []reply{cfErr(500, 10001, "boom")}, 4, wantAPI, 500, 10001},
		{"delete: 404 is not found, at once", callDelete, []reply{cfErr(404, 1003, "Not found")}, 1, wantNotFound, 0, 0},
		{"delete: 403 fails at once", callDelete, []reply{cfErr(403, 9109, "Unauthorized to access requested resource")}, 1, wantAPI, 403, 9109},
		{"delete: 401 fails at once", callDelete, []reply{cfErr(401, 1000, "Invalid API Token")}, 1, wantAPI, 401, 1000},
		{"delete: a dropped connection is retried", callDelete, []reply{{drop: true}, deleted}, 2, wantOK, 0, 0},
		{"groups: a malformed 200 is retried", callGroups, []reply{malformed, groups}, 2, wantOK, 0, 0},
		{"groups: 429 without Retry-After is retried", callGroups, []reply{tooMany(""), groups}, 2, wantOK, 0, 0},
		{"groups: 400 fails at once", callGroups, []reply{cfErr(400, 6003, "Invalid request headers")}, 1, wantAPI, 400, 6003},
		{"list: 502 is retried", callList, []reply{cfErr(502, 10001, "bad gateway"), listed}, 2, wantOK, 0, 0},
		{"zones: 503 is retried", callZone, []reply{cfErr(503, 10001, "unavailable"), zoneFound}, 2, wantOK, 0, 0},
		{"create: 500 is not retried", callCreate, []reply{cfErr(500, 10001, "boom"), created}, 1, wantAPI, 500, 10001},
		{"create: 429 is not retried", callCreate, []reply{tooMany("1"), created}, 1, wantAPI, 429, 971},
		{"create: 9109 fails at once", callCreate, []reply{cfErr(403, 9109, "Unauthorized to access requested resource"), created}, 1, wantAPI, 403, 9109},
		{"create: a dropped connection is not retried", callCreate, []reply{{drop: true}, created}, 1, wantTransport, 0, 0},
		{"create: a malformed answer is not retried", callCreate, []reply{malformed, created}, 1, wantTransport, 0, 0},
		{"create: succeeds", callCreate, []reply{created}, 1, wantOK, 0, 0},
		{"verify: 5xx is retried", callVerify, []reply{cfErr(503, 10001, "unavailable"), verified}, 2, wantOK, 0, 0},
		{"verify: 1000 fails at once (the mint's verify loop decides)", callVerify, []reply{cfErr(401, 1000, "Invalid API Token"), verified}, 1, wantAPI, 401, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, s := serve(t, Options{}, tc.replies...)
			err := tc.call(context.Background(), c)
			if got := len(s.requests()); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			checkErr(t, err, tc.want, tc.status, tc.code)
		})
	}
}

func checkErr(t *testing.T, err error, w want, status int, code int64) {
	t.Helper()
	var ae *APIError
	var te *TransportError
	switch w {
	case wantOK:
		if err != nil {
			t.Fatalf("error %v, want none", err)
		}
		return
	case wantNotFound:
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("error %v, want ErrNotFound", err)
		}
	case wantAPI:
		if !errors.As(err, &ae) || ae.Status != status || (code != 0 && !ae.Has(code)) {
			t.Fatalf("error %#v (%v), want an APIError %d with code %d", err, err, status, code)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(status)) || (code != 0 && !strings.Contains(err.Error(), fmt.Sprint(code))) {
			t.Errorf("error %q does not say status %d and code %d", err, status, code)
		}
	case wantTransport:
		if !errors.As(err, &te) {
			t.Fatalf("error %#v (%v), want a TransportError", err, err)
		}
	}
	// The SDK's error holds the request, Authorization header included (its DumpRequest prints
	// it): it must never reach a caller, whatever its Error() says.
	var sdk *user.Error
	if errors.As(err, &sdk) {
		t.Errorf("the SDK's own error reached the caller: %v", err)
	}
	for _, s := range []string{bootstrap, newSecret, "Bearer"} {
		if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v", err), s) {
			t.Errorf("error %q holds %q", err, s[:10])
		}
	}
}

// TestRetryAfter: a 429's Retry-After is waited out before the next try, even when the backoff
// is shorter.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for name, cl := range map[string]call{"delete": callDelete, "groups": callGroups, "list": callList, "zones": callZone} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			replies := map[string]reply{"delete": deleted, "groups": groups, "list": listed, "zones": zoneFound}
			c, s := serve(t, Options{Backoff: time.Millisecond}, tooMany("1"), replies[name])
			if err := cl(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			at := s.requests()
			if len(at) != 2 {
				t.Fatalf("%d requests, want 2", len(at))
			}
			if gap := at[1].Sub(at[0]); gap < time.Second {
				t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
			}
		})
	}
}

// TestBackoff: a retry after a 5xx waits at least half the first backoff (it is jittered between
// half and all of it).
func TestBackoff(t *testing.T) {
	t.Parallel()
	c, s := serve(t, Options{Backoff: 400 * time.Millisecond}, cfErr(503, 10001, "x"), deleted)
	if err := callDelete(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	at := s.requests()
	if len(at) != 2 || at[1].Sub(at[0]) < 200*time.Millisecond {
		t.Errorf("requests at %v, want 2 at least 200ms apart", at)
	}
}

// TestRetryAfterPastDeadline: a Retry-After longer than the time left gives up at once instead of
// sleeping into the deadline.
func TestRetryAfterPastDeadline(t *testing.T) {
	t.Parallel()
	c, s := serve(t, Options{}, tooMany("3600"), deleted)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := callDelete(ctx, c)
	if ctx.Err() != nil {
		t.Fatal("Delete slept until the deadline")
	}
	checkErr(t, err, wantAPI, 429, 971)
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter != time.Hour {
		t.Errorf("RetryAfter = %v, want 1h", ae.RetryAfter)
	}
}

// TestRequestTimeout: one attempt that hangs past RequestTimeout is an answer that never came,
// while the caller still has time: an idempotent call tries again, and a create reports a
// TransportError so that the caller looks for a token it may have created.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	// Long enough that an answering attempt never times out on a loaded machine under -race.
	o := Options{RequestTimeout: 1500 * time.Millisecond}
	c, s := serve(t, o, reply{hang: true}, deleted)
	if err := callDelete(context.Background(), c); err != nil {
		t.Errorf("delete after one hung attempt: %v", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("delete: %d requests, want 2", n)
	}

	c, s = serve(t, o, reply{hang: true}, created)
	err := callCreate(context.Background(), c)
	checkErr(t, err, wantTransport, 0, 0)
	if n := len(s.requests()); n != 1 {
		t.Errorf("create: %d requests, want 1", n)
	}
}

// TestCancelled: a cancelled context stops the retries and says so.
func TestCancelled(t *testing.T) {
	t.Parallel()
	c, s := serve(t, Options{Backoff: time.Hour}, cfErr(503, 10001, "x"), deleted)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- callDelete(ctx, c) }()
	for len(s.requests()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("delete succeeded after cancel")
		}
	case <-time.After(time.Minute):
		t.Fatal("delete did not return after cancel")
	}
}

// TestAuthorization: every call authenticates with the client's token, except verify, which uses
// the token it checks; no call sends anything but a Bearer header.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	c, s := serve(t, Options{}, deleted)
	if err := callDelete(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c2, s2 := serve(t, Options{}, verified)
	if err := callVerify(context.Background(), c2); err != nil {
		t.Fatal(err)
	}
	if s.auth[0] != "Bearer "+bootstrap || s2.auth[0] != "Bearer "+newSecret {
		t.Error("wrong Authorization headers")
	}
}

// TestListPages reads every page: a full page means there may be another. The clock is the
// first answer's Date, not the local clock.
func TestListPages(t *testing.T) {
	t.Parallel()
	var full []string
	for i := range 50 {
		full = append(full, fmt.Sprintf(`{"id":"%032x","name":"t%d","status":"active"}`, i, i))
	}
	first := ok("[" + strings.Join(full, ",") + "]")
	first.date = "Tue, 01 Dec 2026 12:00:00 GMT"
	c, s := serve(t, Options{}, first, listed)
	ts, clock, err := c.List(context.Background(), OwnerAccount, testAccount)
	if err != nil || len(ts) != 51 || len(s.requests()) != 2 {
		t.Errorf("List = %d tokens, %v after %d requests; want 51 after 2", len(ts), err, len(s.requests()))
	}
	want := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if now, ok := clock.Now(); !ok || now.Before(want) || now.Sub(want) > time.Minute {
		t.Errorf("clock = %v (from a Date: %v), want about %v", now, ok, want)
	}
}

// TestCertificateNotRetried: a server whose certificate fails verification fails the same way
// on every attempt, so the client gives up after one.
func TestCertificateNotRetried(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request arrived over a connection whose certificate should have been refused: %s %s", r.Method, r.URL.Path)
	}))
	var mu sync.Mutex
	conns := 0
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// No root for the test server's certificate: verification fails.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	c := New(bootstrap, Options{BaseURL: srv.URL + "/client/v4", HTTPClient: hc, Backoff: time.Millisecond})
	_, _, err := c.PermissionGroups(context.Background(), OwnerAccount, testAccount)
	var ce *tls.CertificateVerificationError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a certificate verification error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections, want 1: a certificate error is not retried", conns)
	}
}

// TestSleepHook: every retry waits on Options.Sleep, the backoff and a 429's Retry-After alike,
// with the wait the real timer would have had; a hook that ends early (its context ended) ends
// the call with the last error; a wait past the deadline is not started at all.
func TestSleepHook(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replies  []reply
		backoff  time.Duration
		deadline time.Duration // 0: none
		fail     bool          // the hook returns an error, as when its context ends
		requests int
		min, max []time.Duration // each wait the hook was asked for, within [min, max]
		want     want
	}{
		{"429 with Retry-After: 3 sleeps 3 s", []reply{tooMany("3"), deleted}, time.Millisecond, 0, false, 2,
			[]time.Duration{3 * time.Second}, []time.Duration{3 * time.Second}, wantOK},
		{"Retry-After below the backoff waits the backoff", []reply{tooMany("1"), deleted}, 4 * time.Second, 0, false, 2,
			[]time.Duration{2 * time.Second}, []time.Duration{4 * time.Second}, wantOK},
		{"5xx waits the jittered backoff, doubled each time", []reply{cfErr(503, 10001, "x"), cfErr(502, 10001, "x"), deleted}, 400 * time.Millisecond, 0, false, 3,
			[]time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, []time.Duration{400 * time.Millisecond, 800 * time.Millisecond}, wantOK},
		{"429 without Retry-After waits the backoff", []reply{tooMany(""), deleted}, time.Second, 0, false, 2,
			[]time.Duration{500 * time.Millisecond}, []time.Duration{time.Second}, wantOK},
		{"a hook that ends early ends the call", []reply{tooMany("3"), deleted}, time.Millisecond, 0, true, 1,
			[]time.Duration{3 * time.Second}, []time.Duration{3 * time.Second}, wantAPI},
		{"a Retry-After past the deadline is not slept", []reply{tooMany("3600"), deleted}, time.Millisecond, 30 * time.Second, false, 1,
			nil, nil, wantAPI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var slept []time.Duration
			sleep := func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				slept = append(slept, d)
				if tc.fail {
					return context.Canceled
				}
				return nil
			}
			c, s := serve(t, Options{Backoff: tc.backoff, Sleep: sleep}, tc.replies...)
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			err := callDelete(ctx, c)
			checkErr(t, err, tc.want, 429, 971)
			if n := len(s.requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(slept) != len(tc.min) {
				t.Fatalf("slept %v, want %d waits", slept, len(tc.min))
			}
			for i, d := range slept {
				if d < tc.min[i] || d > tc.max[i] {
					t.Errorf("wait %d was %v, want %v to %v", i+1, d, tc.min[i], tc.max[i])
				}
			}
		})
	}
}
