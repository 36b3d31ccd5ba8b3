package cfapitest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
)

func TestFaultStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		fault      Fault
		path       func(w *world) string
		account    bool // call with the account bootstrap
		status     int
		code       int
		retryAfter string
	}{
		{"500", Fault{Path: "/user/tokens/verify", Status: 500}, func(*world) string { return "/user/tokens/verify" }, false, 500, 10001, ""},
		{"502 by ServeMux pattern", Fault{Method: http.MethodGet, Path: "/accounts/{account_id}/tokens/{token_id}", Status: 502},
			func(w *world) string { return "/accounts/" + w.Account.ID + "/tokens/" + w.AccountBootstrap.ID }, true, 502, 10001, ""},
		{"503 with method in the path", Fault{Path: "GET /zones", Status: 503}, func(*world) string { return "/zones" }, false, 503, 10001, ""},
		{"429 with Retry-After", Fault{Status: 429, RetryAfter: 7 * time.Second}, func(*world) string { return "/user/tokens" }, false, 429, 971, "7"},
		{"429 with a fraction of a second", Fault{Status: 429, RetryAfter: 1500 * time.Millisecond}, func(*world) string { return "/user/tokens" }, false, 429, 971, "2"},
		{"custom code", Fault{Status: 500, Code: 1002, Message: "boom"}, func(*world) string { return "/user/tokens" }, false, 500, 1002, ""},
		{"full path", Fault{Path: "/client/v4/user/tokens", Status: 500}, func(*world) string { return "/user/tokens" }, false, 500, 10001, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.InjectFault(tc.fault)
			secret := w.UserBootstrap.Secret
			if tc.account {
				secret = w.AccountBootstrap.Secret
			}
			a := w.do(t, defaultClient, http.MethodGet, tc.path(w), secret, nil)
			wantError(t, a, tc.status, tc.code)
			if got := a.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if a.Header.Get("Date") != testStart.Format(http.TimeFormat) {
				t.Errorf("Date = %q, want the fake clock's", a.Header.Get("Date"))
			}
			failureEnvelope(t, a.Body)
			// Times 0 means every request.
			wantError(t, w.do(t, defaultClient, http.MethodGet, tc.path(w), secret, nil), tc.status, tc.code)
		})
	}
}

func TestFaultMatching(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	verifyUser := "/user/tokens/verify"
	verifyAcct := "/accounts/" + w.Account.ID + "/tokens/verify"
	w.InjectFault(Fault{Method: http.MethodGet, Path: "/user/tokens/verify", Times: 2, Status: 503})
	w.InjectFault(Fault{TokenID: w.AccountBootstrap.ID, Times: 1, Status: 500})
	w.InjectFault(Fault{Method: http.MethodPost, Path: "/accounts/{account_id}/tokens", Status: 502})

	steps := []struct {
		method, path, secret string
		status               int
	}{
		{http.MethodGet, verifyUser, w.UserBootstrap.Secret, 503},
		{http.MethodGet, verifyUser, w.UserBootstrap.Secret, 503},
		{http.MethodGet, verifyUser, w.UserBootstrap.Secret, 200}, // Times 2 used up
		{http.MethodGet, verifyAcct, w.AccountBootstrap.Secret, 500},
		{http.MethodGet, verifyAcct, w.AccountBootstrap.Secret, 200},
		{http.MethodGet, "/accounts/" + w.Account.ID + "/tokens", w.AccountBootstrap.Secret, 200}, // method differs
		{http.MethodPost, "/accounts/" + w.Account.ID + "/tokens", w.AccountBootstrap.Secret, 502},
		{http.MethodPost, "/accounts/" + w.Account.ID + "/tokens/" + w.AccountBootstrap.ID, w.AccountBootstrap.Secret, 405}, // path differs
	}
	for i, st := range steps {
		a := w.do(t, defaultClient, st.method, st.path, st.secret, map[string]any{})
		if a.Status != st.status {
			t.Fatalf("step %d: %s %s = %d %s, want %d", i, st.method, st.path, a.Status, a.Body, st.status)
		}
	}
	w.ClearFaults()
	wantOK(t, w.do(t, defaultClient, http.MethodPost, "/accounts/"+w.Account.ID+"/tokens", w.AccountBootstrap.Secret,
		createBody("after clear", allowPolicy(allZonesOf(w.Account.ID), gid(t, "DNS Write", scopeZone)))))
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.InjectFault(Fault{Path: "/user/tokens/verify", Times: 1, Latency: 300 * time.Millisecond})
	start := time.Now()
	wantOK(t, w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", w.UserBootstrap.Secret, nil))
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered in %v, want at least 300ms", d)
	}

	w.SetLatency(200 * time.Millisecond)
	start = time.Now()
	resp, err := defaultClient.Get("http://" + w.Host() + "/cdn-cgi/trace")
	if err != nil {
		t.Fatalf("trace: %v", err)
	}
	resp.Body.Close()
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("answered in %v, want at least 200ms", d)
	}
	w.SetLatency(0)
	if got := w.Requests()[0].Fault; got != "latency" {
		t.Errorf("logged fault = %q, want latency", got)
	}
}

func TestFaultHang(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.InjectFault(Fault{Path: "/cdn-cgi/trace", Hang: true})
	client := clientFrom("127.0.0.1")
	client.Timeout = 300 * time.Millisecond
	start := time.Now()
	if _, err := client.Get("http://" + w.Host() + "/cdn-cgi/trace"); err == nil {
		t.Fatal("a hanging request was answered")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("gave up after %v, before the client's timeout", d)
	}
	// The server notices the client leaving and logs the request unanswered.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if reqs := w.Requests(); len(reqs) == 1 && reqs[0].Status == 0 && reqs[0].Fault == "hang" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Requests() = %+v, want one unanswered hang", w.Requests())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFaultHangEndsAtClose(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.InjectFault(Fault{Hang: true})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := w.accountTokens(w.AccountBootstrap.Secret).Verify(ctx, accounts.TokenVerifyParams{AccountID: cloudflare.F(w.Account.ID)})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Verify = %v, want a connection error when the server closes", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hanging request")
	}
}

func TestFaultMalformed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.InjectFault(Fault{Path: "/user/tokens/verify", Times: 1, Malformed: true})
	a := w.do(t, defaultClient, http.MethodGet, "/user/tokens/verify", w.UserBootstrap.Secret, nil)
	if a.Status != 200 || json.Valid(a.Body) || a.JSONErr == nil {
		t.Fatalf("answer = %d %s, want 200 with invalid JSON", a.Status, a.Body)
	}
	w.InjectFault(Fault{Path: "/user/tokens/verify", Times: 1, Malformed: true})
	_, err := w.userTokens(w.UserBootstrap.Secret).Verify(context.Background())
	var apiErr *accounts.Error
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("Verify = %v, want a decoding error", err)
	}
}

func TestFaultLoseAnswer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.InjectFault(Fault{Method: http.MethodPost, Path: "/accounts/{account_id}/tokens", Times: 1, LoseAnswer: true})
	_, err := w.accountTokens(w.AccountBootstrap.Secret).New(context.Background(), accounts.TokenNewParams{
		AccountID: cloudflare.F(w.Account.ID),
		Name:      cloudflare.F("lost"),
		Policies:  cloudflare.F([]shared.TokenPolicyParam{sdkPolicy(gid(t, "DNS Write", scopeZone), map[string]string{zoneKey(w.Zone.ID): "*"})}),
	})
	var apiErr *accounts.Error
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("New = %v, want a transport error", err)
	}
	var stored []TokenInfo
	for _, ti := range w.Tokens() {
		if ti.Name == "lost" {
			stored = append(stored, ti)
		}
	}
	if len(stored) != 1 || stored[0].CreatedBy != w.AccountBootstrap.ID {
		t.Fatalf("tokens named lost = %+v, want one, created by the bootstrap", stored)
	}
	last := w.Requests()[len(w.Requests())-1]
	if last.Fault != "lose-answer" || last.Status != 200 || !strings.Contains(string(last.Response), `"value":"cfat_`) {
		t.Errorf("logged %q %d %s, want the lost 200 answer", last.Fault, last.Status, last.Response)
	}
}

func TestFaultHold(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.InjectFault(Fault{Method: http.MethodPost, Path: "/accounts/{account_id}/tokens", Times: 1, Hold: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.accountTokens(w.AccountBootstrap.Secret).New(ctx, accounts.TokenNewParams{
			AccountID: cloudflare.F(w.Account.ID),
			Name:      cloudflare.F("held"),
			Policies:  cloudflare.F([]shared.TokenPolicyParam{sdkPolicy(gid(t, "DNS Write", scopeZone), map[string]string{zoneKey(w.Zone.ID): "*"})}),
		}, option.WithMaxRetries(0))
		done <- err
	}()
	// The create takes effect while its answer is held; the client then gives up.
	held := func() int {
		n := 0
		for _, ti := range w.Tokens() {
			if ti.Name == "held" {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); held() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the create was answered while held: %v", err)
	default:
	}
	if held := held(); held != 1 {
		t.Fatalf("%d tokens named held while the answer is held, want 1", held)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatalf("the client had an answer to a held create")
	}
}
