package brokerclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/oidctest"
)

func envLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}

func TestFetchIDTokenFromTheRunner(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	u, reqToken := iss.IDTokenEndpoint(func() map[string]string { return map[string]string{"repository": "acme/app"} })
	env := map[string]string{EnvRequestURL: u, EnvRequestToken: reqToken}
	for _, aud := range []string{
		"https://broker.example",
		"https://broker.example/mint?x=a b&y=é#frag",
		"cfmint",
		"",
	} {
		tok, err := FetchIDToken(context.Background(), iss.Client(), envLookup(env), aud)
		if err != nil {
			t.Fatalf("FetchIDToken(%q) error = %v", aud, err)
		}
		want := aud
		if aud == "" {
			want = "https://github.com/acme"
		}
		if got := claimsOf(t, tok)["aud"]; got != want {
			t.Errorf("aud = %v, want %q", got, want)
		}
		issued := iss.Issued()
		if issued[len(issued)-1] != tok {
			t.Error("the token returned is not the one the runner answered")
		}
	}
}

func TestFetchIDTokenPrefersCFMINTIDToken(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	u, reqToken := iss.IDTokenEndpoint(nil)
	env := map[string]string{EnvIDToken: "  header.claims.signature\n", EnvRequestURL: u, EnvRequestToken: reqToken}
	tok, err := FetchIDToken(context.Background(), iss.Client(), envLookup(env), "cfmint")
	if err != nil || tok != "header.claims.signature" {
		t.Fatalf("FetchIDToken() = %q, %v; want $CFMINT_ID_TOKEN, trimmed", tok, err)
	}
	if n := iss.TokenRequests(); n != 0 {
		t.Errorf("the runner was asked %d times although CFMINT_ID_TOKEN is set", n)
	}
	// Without even an HTTP client it works: nothing is requested.
	if tok, err := FetchIDToken(context.Background(), nil, envLookup(map[string]string{EnvIDToken: "a.b.c"}), ""); err != nil || tok != "a.b.c" {
		t.Errorf("FetchIDToken() = %q, %v", tok, err)
	}
	// An empty CFMINT_ID_TOKEN is as good as unset.
	env[EnvIDToken] = " "
	if _, err := FetchIDToken(context.Background(), iss.Client(), envLookup(env), "cfmint"); err != nil || iss.TokenRequests() != 1 {
		t.Errorf("empty CFMINT_ID_TOKEN: err %v, %d requests; want the runner asked once", err, iss.TokenRequests())
	}
}

func TestFetchRunnerIDTokenIgnoresCFMINTIDToken(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	u, reqToken := iss.IDTokenEndpoint(nil)
	env := map[string]string{EnvIDToken: "planted.by.a-step", EnvRequestURL: u, EnvRequestToken: reqToken}
	tok, err := FetchRunnerIDToken(context.Background(), iss.Client(), envLookup(env), "cfmint")
	if err != nil || tok == "planted.by.a-step" || iss.TokenRequests() != 1 {
		t.Fatalf("FetchRunnerIDToken() = %q, %v after %d requests; want the runner's ID token", tok, err, iss.TokenRequests())
	}
	// Without the runner's variables it fails, and does not suggest $CFMINT_ID_TOKEN.
	_, err = FetchRunnerIDToken(context.Background(), iss.Client(), envLookup(map[string]string{EnvIDToken: "a.b.c"}), "cfmint")
	if err == nil || !strings.Contains(err.Error(), "add `permissions: id-token: write` to the job") || strings.Contains(err.Error(), EnvIDToken) {
		t.Errorf("FetchRunnerIDToken() without the runner's variables: %v", err)
	}
}

func TestFetchIDTokenWithoutThePermission(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		missing string
	}{
		{"nothing set", map[string]string{}, "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set"},
		{"only the URL", map[string]string{EnvRequestURL: "http://127.0.0.1:1/x?api-version=2.0"}, "ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set"},
		{"only the token", map[string]string{EnvRequestToken: "sekrit-request-token"}, "ACTIONS_ID_TOKEN_REQUEST_URL is not set"},
		{"both empty", map[string]string{EnvRequestURL: "", EnvRequestToken: ""}, "are not set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := FetchIDToken(context.Background(), &http.Client{}, envLookup(tc.env), "cfmint")
			if err == nil {
				t.Fatal("FetchIDToken() = nil error")
			}
			for _, w := range []string{tc.missing, "add `permissions: id-token: write` to the job", "pull requests from forks get no ID token", "CFMINT_ID_TOKEN"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to say %q", err, w)
				}
			}
			assertNoSecrets(t, err, "sekrit-request-token")
		})
	}
}

func TestFetchIDTokenRefusals(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	u, reqToken := iss.IDTokenEndpoint(nil)
	_, err := FetchIDToken(context.Background(), iss.Client(), envLookup(map[string]string{EnvRequestURL: u, EnvRequestToken: "wrong-" + reqToken}), "cfmint")
	if err == nil || !strings.Contains(err.Error(), "refused ACTIONS_ID_TOKEN_REQUEST_TOKEN (HTTP 401)") {
		t.Fatalf("wrong bearer: error = %v", err)
	}
	assertNoSecrets(t, err, reqToken)
	if n := iss.TokenRequests(); n != 1 {
		t.Errorf("a 401 was tried %d times, want once", n)
	}

	_, err = FetchIDToken(context.Background(), iss.Client(), envLookup(map[string]string{EnvRequestURL: "http://127.0.0.1:1/\x7f", EnvRequestToken: reqToken}), "cfmint")
	if err == nil || !strings.Contains(err.Error(), "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL") {
		t.Errorf("bad URL: error = %v", err)
	}
	if _, err := FetchIDToken(context.Background(), nil, envLookup(map[string]string{EnvRequestURL: u, EnvRequestToken: reqToken}), ""); err == nil {
		t.Error("no HTTP client: nil error")
	}
	if _, err := FetchIDToken(context.Background(), iss.Client(), nil, ""); err == nil {
		t.Error("no lookup: nil error")
	}
}

// fakeRunner answers ID-token requests with what answer says, checking the
// bearer, and counts them.
func fakeRunner(t *testing.T, reqToken string, answer func(n int, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+reqToken || r.Method != http.MethodGet {
			t.Errorf("request %s with Authorization %q", r.Method, r.Header.Get("Authorization"))
		}
		answer(int(n.Add(1)), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestFetchIDTokenAnswers(t *testing.T) {
	t.Parallel()
	const reqToken = "the-request-token-0123456789"
	const idToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWtyaXQifQ.c2lnbmF0dXJlLW9mLXRoZS1pZC10b2tlbg"
	cases := []struct {
		name     string
		answer   func(n int, w http.ResponseWriter, r *http.Request)
		words    string // "" for success
		requests int32
	}{
		{"huge body", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"value": "` + idToken + strings.Repeat("x", 1<<20) + `"}`))
		}, "larger than 65536 bytes", 1},
		{"not JSON, with the token in it", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`value=` + idToken))
		}, `not JSON of the form {"value": "<ID token>"}`, 1},
		{"no value", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"count": 1}`))
		}, `no ID token in "value"`, 1},
		{"404", func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, idToken, http.StatusNotFound)
		}, "answered HTTP 404", 1},
		{"503 then the token", func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 3 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte(`{"value":"` + idToken + `"}`))
		}, "", 3},
		{"503 always", func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, idToken, http.StatusServiceUnavailable)
		}, "answered HTTP 503", attempts},
		{"no query in the URL: ?audience", func(n int, w http.ResponseWriter, r *http.Request) {
			if r.URL.RawQuery != "audience=https%3A%2F%2Fb.example%2F%20x" {
				t.Errorf("query = %q", r.URL.RawQuery)
			}
			w.Write([]byte(`{"value":"` + idToken + `"}`))
		}, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, n := fakeRunner(t, reqToken, tc.answer)
			env := map[string]string{EnvRequestURL: srv.URL + "/idtoken", EnvRequestToken: reqToken}
			tok, err := fetchIDToken(context.Background(), srv.Client(), envLookup(env), "https://b.example/ x", time.Millisecond, true)
			if got := n.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if tc.words == "" {
				if err != nil || tok != idToken {
					t.Fatalf("FetchIDToken() = %q, %v", tok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("error = %v, want it to say %q", err, tc.words)
			}
			assertNoSecrets(t, err, reqToken, idToken, "c2lnbmF0dXJlLW9mLXRoZS1pZC10b2tlbg")
		})
	}
}

func TestFetchIDTokenGivesUpWithTheContext(t *testing.T) {
	t.Parallel()
	const reqToken = "rt"
	srv, _ := fakeRunner(t, reqToken, func(n int, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	env := map[string]string{EnvRequestURL: srv.URL + "/?api-version=2.0", EnvRequestToken: reqToken}
	_, err := fetchIDToken(ctx, srv.Client(), envLookup(env), "a", time.Millisecond, true)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("error = %v, want the deadline", err)
	}
}

func TestEncodeURIComponent(t *testing.T) {
	t.Parallel()
	// Expected values are what JavaScript's encodeURIComponent returns.
	cases := map[string]string{
		"":                             "",
		"cfmint":                       "cfmint",
		"https://broker.example/a?b=c": "https%3A%2F%2Fbroker.example%2Fa%3Fb%3Dc",
		"-_.!~*'()":                    "-_.!~*'()",
		"a b+c&d=e#f":                  "a%20b%2Bc%26d%3De%23f",
		"é€":                           "%C3%A9%E2%82%AC",
		"sts.amazonaws.com":            "sts.amazonaws.com",
		"/[]@$,;:":                     "%2F%5B%5D%40%24%2C%3B%3A",
	}
	for in, want := range cases {
		if got := encodeURIComponent(in); got != want {
			t.Errorf("encodeURIComponent(%q) = %q, want %q", in, got, want)
		}
	}
}
