package learn

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	secretHeader = "cfut_SECRETinTheHeader0123456789abcdefghij"
	secretQuery  = "SECRETinTheQuery"
)

// TestRecorderForwardsUnchanged sends a request through the recorder and checks that the
// upstream got it exactly (method, path, query, headers with Authorization, body), that the
// answer came back, and that no secret reaches the calls, the text report or the JSON.
func TestRecorderForwardsUnchanged(t *testing.T) {
	acct := "0123456789abcdef0123456789abcdef"
	type seen struct {
		method, path, rawQuery, auth, custom, body string
	}
	got := make(chan seen, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Custom"), string(b)}
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"success":true,"result":{}}`)
	}))
	defer up.Close()
	rec, err := NewRecorder(up.URL+"/client/v4", DefaultTable(), nil)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(rec)
	defer front.Close()

	path := "/client/v4/accounts/" + acct + "/storage/kv/namespaces/ns1/values/a%2Fkey"
	req, _ := http.NewRequest(http.MethodPut, front.URL+path+"?expiration_ttl=60&token="+secretQuery, strings.NewReader("value "+secretQuery))
	req.Header.Set("Authorization", "Bearer "+secretHeader)
	req.Header.Set("X-Custom", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Answer") != "yes" || string(body) != `{"success":true,"result":{}}` {
		t.Errorf("answer %d %v %q, want the upstream's 201 unchanged", resp.StatusCode, resp.Header, body)
	}
	want := seen{http.MethodPut, path, "expiration_ttl=60&token=" + secretQuery, "Bearer " + secretHeader, "kept", "value " + secretQuery}
	if s := <-got; s != want {
		t.Errorf("upstream got %+v, want %+v", s, want)
	}

	// The call is recorded once the handler returns, which may be after the client has the
	// answer: Close waits for that.
	front.Close()
	calls := rec.Calls()
	if len(calls) != 1 || calls[0].Template != "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}" || calls[0].Status != 201 || calls[0].Params["key_name"] != "a/key" {
		t.Fatalf("calls %+v", calls)
	}
	names, looked := rec.Names()
	r := Analyze(calls, names, looked)
	var text strings.Builder
	r.WriteText(&text)
	b, _ := json.Marshal(r)
	cb, _ := json.Marshal(calls)
	for _, out := range []string{text.String(), string(b), string(cb)} {
		if strings.Contains(out, secretHeader) || strings.Contains(out, secretQuery) {
			t.Errorf("a secret reached the output:\n%s", out)
		}
	}
	if r.Permissions[0] != "Workers KV Storage Write" {
		t.Errorf("permissions %q", r.Permissions)
	}
}

// TestRecorderStreams checks that the answer passes through as it comes: the upstream waits
// for the client to read the first part before it sends the second.
func TestRecorderStreams(t *testing.T) {
	read := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-read
		_, _ = io.WriteString(w, "second\n")
	}))
	defer up.Close()
	rec, _ := NewRecorder(up.URL, DefaultTable(), nil)
	front := httptest.NewServer(rec)
	defer front.Close()
	resp, err := http.Get(front.URL + "/client/v4/accounts/a/workers/scripts/s/tails")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, _ := br.ReadString('\n'); l != "first\n" {
		t.Fatalf("first line %q", l)
	}
	close(read)
	if l, _ := br.ReadString('\n'); l != "second\n" {
		t.Fatalf("second line %q", l)
	}
}

// TestRecorderLearnsZoneNames reads zone names from a lookup's answer.
func TestRecorderLearnsZoneNames(t *testing.T) {
	zone := "fedcba9876543210fedcba9876543210"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/client/v4/zones" {
			_, _ = io.WriteString(w, `{"success":true,"result":[{"id":"`+zone+`","name":"example.com","account":{"id":"acc","name":"Acme"}}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"success":true,"result":[]}`)
	}))
	defer up.Close()
	rec, _ := NewRecorder(up.URL+"/client/v4", DefaultTable(), nil)
	front := httptest.NewServer(rec)
	defer front.Close()
	for _, p := range []string{"/zones?name=Example.com", "/zones/" + zone + "/dns_records"} {
		resp, err := http.Get(front.URL + "/client/v4" + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	front.Close()
	names, looked := rec.Names()
	r := Analyze(rec.Calls(), names, looked)
	if len(r.Zones) != 1 || r.Zones[0] != "example.com" {
		t.Errorf("zones %q, want [example.com]", r.Zones)
	}
	if strings.Join(r.Permissions, ",") != "DNS Read,Zone Read" {
		t.Errorf("permissions %q, want DNS Read and Zone Read (the lookup accepts Zone Read only)", r.Permissions)
	}
}

func TestNewRecorderRefusesBadBase(t *testing.T) {
	for _, base := range []string{"ftp://x", "not a url", "https://", "https://api.example.com/v4?x=1"} {
		if _, err := NewRecorder(base, DefaultTable(), nil); err == nil {
			t.Errorf("NewRecorder(%q) succeeded", base)
		}
	}
}

// TestRecorderUpstreamDown answers 502 without the request's URL, and records the call.
func TestRecorderUpstreamDown(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	base := up.URL
	up.Close() // nothing listens there now
	rec, _ := NewRecorder(base+"/client/v4", DefaultTable(), nil)
	front := httptest.NewServer(rec)
	resp, err := http.Get(front.URL + "/client/v4/zones?token=" + secretQuery)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	front.Close()
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(body), secretQuery) {
		t.Errorf("answer %d %q, want 502 without the query", resp.StatusCode, body)
	}
	if c := rec.Calls(); len(c) != 1 || c[0].Status != http.StatusBadGateway || c[0].Template != "/zones" {
		t.Errorf("calls %+v", c)
	}
}
