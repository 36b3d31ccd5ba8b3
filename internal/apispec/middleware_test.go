package apispec_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cfmint/cfmint/internal/apispec"
)

const prefix = "/client/v4"

// collector gathers violations; the middleware serialises report calls.
type collector struct {
	mu sync.Mutex // only for reading while the server may still run
	vs []apispec.Violation
}

func (c *collector) report(v apispec.Violation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vs = append(c.vs, v)
}

func (c *collector) get() []apispec.Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]apispec.Violation(nil), c.vs...)
}

// cannedHandler answers every request with a fixed response and records the
// request body it received.
type cannedHandler struct {
	status      int
	contentType string // "" leaves Content-Type unset
	body        string

	mu  sync.Mutex
	got []string
}

func (h *cannedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, string(b))
	h.mu.Unlock()
	if h.contentType != "" {
		w.Header().Set("Content-Type", h.contentType)
	}
	w.Header().Set("X-Fake", "kept")
	w.WriteHeader(h.status)
	_, _ = io.WriteString(w, h.body)
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	const secret = "Bearer sUpErSeCrEt-bootstrap-token"
	accountCreate := prefix + "/accounts/" + accountID + "/tokens"
	tests := []struct {
		name         string
		method, path string
		reqCT        string
		reqBody      string
		handler      *cannedHandler
		wantKinds    []string // kinds of the reported violations, in order
		wantErr      string   // substring of the last violation's error
	}{
		{name: "good create", method: "POST", path: accountCreate, reqCT: "application/json", reqBody: validCreateBody,
			handler: &cannedHandler{status: 200, contentType: "application/json", body: createResponse}},
		{name: "good failure", method: "POST", path: accountCreate, reqCT: "application/json", reqBody: validCreateBody,
			handler: &cannedHandler{status: 403, contentType: "application/json", body: failure}},
		{name: "good delete without body", method: "DELETE", path: prefix + "/user/tokens/" + tokenID,
			handler: &cannedHandler{status: 200, contentType: "application/json", body: `{"success":true,"errors":[],"messages":[],"result":{"id":"` + tokenID + `"}}`}},
		{name: "bad response", method: "POST", path: accountCreate, reqCT: "application/json", reqBody: validCreateBody,
			handler:   &cannedHandler{status: 200, contentType: "application/json", body: `{"result":{"id":"` + tokenID + `"}}`},
			wantKinds: []string{"response"}, wantErr: "missing properties"},
		{name: "undocumented status", method: "GET", path: prefix + "/user/tokens/verify",
			handler:   &cannedHandler{status: 502, contentType: "application/json", body: failure},
			wantKinds: []string{"response"}, wantErr: "not documented"},
		{name: "missing content type is sniffed", method: "GET", path: prefix + "/user/tokens/verify",
			handler:   &cannedHandler{status: 400, body: failure},
			wantKinds: []string{"response"}, wantErr: `"text/plain"`},
		{name: "bad request", method: "POST", path: accountCreate, reqCT: "application/json", reqBody: `{"policies":[]}`,
			handler:   &cannedHandler{status: 400, contentType: "application/json", body: failure},
			wantKinds: []string{"request"}, wantErr: "missing property 'name'"},
		{name: "request content type", method: "POST", path: accountCreate, reqCT: "text/plain", reqBody: validCreateBody,
			handler:   &cannedHandler{status: 200, contentType: "application/json", body: createResponse},
			wantKinds: []string{"request"}, wantErr: `"text/plain"`},
		{name: "bad query and path", method: "GET", path: prefix + "/accounts/abc/tokens?per_page=500",
			handler:   &cannedHandler{status: 200, contentType: "application/json", body: `{"success":true,"errors":[],"messages":[],"result":[]}`},
			wantKinds: []string{"request"}, wantErr: `"per_page"`},
		{name: "both sides bad", method: "POST", path: "/client/v4/user/tokens", reqCT: "application/json", reqBody: `{}`,
			handler:   &cannedHandler{status: 200, contentType: "application/json", body: `{}`},
			wantKinds: []string{"request", "response"}, wantErr: "missing properties"},
		// Not in the spec: passed through unchecked, whatever they contain.
		{name: "unknown path", method: "GET", path: prefix + "/memberships",
			handler: &cannedHandler{status: 418, body: "teapot"}},
		{name: "unknown method", method: "PUT", path: prefix + "/user/tokens/" + tokenID, reqBody: "x",
			handler: &cannedHandler{status: 500, body: "x"}},
		{name: "outside prefix", method: "GET", path: "/cdn-cgi/trace",
			handler: &cannedHandler{status: 200, contentType: "text/plain", body: "ip=203.0.113.7\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c collector
			srv := httptest.NewServer(s.Middleware(prefix, tt.handler, c.report))
			defer srv.Close()

			var body io.Reader
			if tt.reqBody != "" {
				body = strings.NewReader(tt.reqBody)
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", secret)
			if tt.reqCT != "" {
				req.Header.Set("Content-Type", tt.reqCT)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}

			// The middleware is transparent in both directions.
			if resp.StatusCode != tt.handler.status || string(got) != tt.handler.body || resp.Header.Get("X-Fake") != "kept" {
				t.Errorf("client got %d %q (X-Fake %q), handler sent %d %q", resp.StatusCode, got, resp.Header.Get("X-Fake"), tt.handler.status, tt.handler.body)
			}
			if tt.handler.contentType != "" && resp.Header.Get("Content-Type") != tt.handler.contentType {
				t.Errorf("client got Content-Type %q, handler sent %q", resp.Header.Get("Content-Type"), tt.handler.contentType)
			}
			// Validation may finish after the client has the response;
			// Close waits for the handler, so every report is in.
			srv.Close()
			tt.handler.mu.Lock()
			if len(tt.handler.got) != 1 || tt.handler.got[0] != tt.reqBody {
				t.Errorf("handler received %q, client sent %q", tt.handler.got, tt.reqBody)
			}
			tt.handler.mu.Unlock()

			vs := c.get()
			var kinds []string
			for _, v := range vs {
				t.Log(v)
				kinds = append(kinds, v.Kind)
				if strings.Contains(fmt.Sprint(v.Err), "sUpErSeCrEt") || strings.Contains(v.String(), "sUpErSeCrEt") {
					t.Errorf("violation leaks the Authorization header: %v", v)
				}
				if v.Method != tt.method || !strings.HasPrefix(tt.path, prefix+v.Path) {
					t.Errorf("violation names %s %s, request was %s %s", v.Method, v.Path, tt.method, tt.path)
				}
				if (v.Kind == "response") != (v.Status != 0) {
					t.Errorf("violation kind %s with status %d", v.Kind, v.Status)
				}
			}
			if fmt.Sprint(kinds) != fmt.Sprint(tt.wantKinds) {
				t.Fatalf("violation kinds %v, want %v", kinds, tt.wantKinds)
			}
			if tt.wantErr != "" && !strings.Contains(vs[len(vs)-1].Err.Error(), tt.wantErr) {
				t.Errorf("violation %v does not contain %q", vs[len(vs)-1].Err, tt.wantErr)
			}
		})
	}
}

// TestMiddlewareConcurrent sends good and bad exchanges at once through one
// middleware; run with -race.
func TestMiddlewareConcurrent(t *testing.T) {
	t.Parallel()
	s := mustLoad(t)
	var c collector
	// Without locking: the middleware promises report is never called
	// concurrently, and the race detector checks that promise.
	var unlocked []apispec.Violation
	report := func(v apispec.Violation) {
		unlocked = append(unlocked, v)
		c.report(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+prefix+"/user/tokens", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if bytes.Equal(b, []byte(validCreateBody)) {
			_, _ = io.WriteString(w, createResponse)
			return
		}
		_, _ = io.WriteString(w, `{"success":true}`) // bad: errors and messages missing
	})
	srv := httptest.NewServer(s.Middleware(prefix+"/", mux, report))
	defer srv.Close()

	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := validCreateBody
			if i%2 == 1 {
				body = strings.Replace(validCreateBody, `"allow"`, `"allow" `, 1) // still valid, different bytes
			}
			resp, err := srv.Client().Post(srv.URL+prefix+"/user/tokens", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			got, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if want := map[bool]string{false: createResponse, true: `{"success":true}`}[i%2 == 1]; string(got) != want {
				t.Errorf("request %d: got %q, want %q", i, got, want)
			}
		})
	}
	wg.Wait()
	srv.Close() // waits for handlers, so reading unlocked is safe
	if len(unlocked) != n/2 {
		t.Errorf("%d violations, want %d", len(unlocked), n/2)
	}
	for _, v := range c.get() {
		if v.Kind != "response" || v.OperationID != "user-api-tokens-create-token" {
			t.Errorf("unexpected violation %v", v)
		}
	}
}
