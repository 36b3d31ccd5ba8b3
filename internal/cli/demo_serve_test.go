package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/trust"
)

// TestDemoServe walks what docs/broker.md walks: demo --serve --json prints its endpoints on one
// line; its issuer hands out an ID token for chosen claims; a broker on the built-in API with
// the printed bootstrap token mints for it (mint --broker) and revokes through it (revoke
// --broker --id-token-env, with a second ID token); demo --serve stops when its context ends.
func TestDemoServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Env{Args: []string{"demo", "--serve", "--json"}, Lookup: func(string) (string, bool) { return "", false }, Stdout: pw, Stderr: &stderr})
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading demo --serve's line: %v (stderr %s)", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	var ep map[string]string
	if err := json.Unmarshal([]byte(line), &ep); err != nil {
		t.Fatalf("the line %q is not one JSON object: %v", line, err)
	}
	for _, k := range []string{"api_base_url", "account_id", "bootstrap_token", "issuer"} {
		if ep[k] == "" {
			t.Errorf("key %s is missing or empty in %s", k, line)
		}
	}
	if len(ep) != 4 {
		t.Errorf("keys %v, want exactly api_base_url, account_id, bootstrap_token, issuer", ep)
	}
	for _, k := range []string{"api_base_url", "issuer"} {
		if u, err := url.Parse(ep[k]); err != nil || u.Hostname() != "127.0.0.1" {
			t.Errorf("%s %q is not on loopback", k, ep[k])
		}
	}

	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	const aud = "https://cfmint.test"
	idToken := func(claims string) string {
		t.Helper()
		res, err := hc.Get(ep["issuer"] + "/token?audience=" + url.QueryEscape(aud) + claims)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v struct{ Value string }
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != 200 || strings.Count(v.Value, ".") != 2 {
			t.Fatalf("GET /token: %d, %v, %q", res.StatusCode, err, v.Value)
		}
		return v.Value
	}

	// A broker as `cfmint serve` builds it, on the printed endpoints and bootstrap token.
	pol, err := trust.Parse([]byte(fmt.Sprintf(`audience: %s
rules:
  - name: site-deploy
    issuer: %s
    claims: {repository_id: "4242001", repository_owner_id: "9919"}
    claim_patterns: {ref: refs/heads/main}
    account_id: %s
    allow: {presets: [workers-deploy]}
`, aud, ep["issuer"], ep["account_id"])))
	if err != nil {
		t.Fatal(err)
	}
	v, err := broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: pol.Issuers(), Audience: pol.Audience(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	boot := ep["bootstrap_token"]
	b, err := broker.New(broker.Options{
		Policy: pol, Verifier: v, Replay: &broker.MemoryReplayStore{},
		Tokens: cftoken.New(boot, cftoken.Options{BaseURL: ep["api_base_url"], HTTPClient: hc}),
		Once:   cftoken.New(boot, cftoken.Options{BaseURL: ep["api_base_url"], HTTPClient: hc, Attempts: 1}),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err == nil {
		err = b.Prepare(ctx, pol)
	}
	if err != nil {
		t.Fatal(err)
	}
	bs := httptest.NewServer(b.Routes())
	defer bs.Close()

	cli := func(env map[string]string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(ctx, Env{Args: args, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Stdout: &out, Stderr: &errOut, HTTPClient: hc})
		return code, out.String(), errOut.String()
	}
	code, out, errOut := cli(map[string]string{"CFMINT_ID_TOKEN": idToken("&repository_id=4242001")}, "mint", "--broker", bs.URL, "--preset", "workers-deploy", "--format", "json")
	if code != ExitOK {
		t.Fatalf("mint --broker: exit %d: %s", code, errOut)
	}
	var minted struct{ Token, ID string }
	if err := json.Unmarshal([]byte(out), &minted); err != nil || minted.ID == "" {
		t.Fatalf("mint output %v", err)
	}
	if want := "cfmint revoke --broker " + bs.URL + " " + minted.ID; !strings.Contains(errOut, want) {
		t.Errorf("mint's hint lacks %q: %s", want, errOut)
	}
	use := func() int {
		req, _ := http.NewRequest(http.MethodGet, ep["api_base_url"]+"/accounts/"+ep["account_id"]+"/workers/scripts", nil)
		req.Header.Set("Authorization", "Bearer "+minted.Token)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := use(); got != 200 {
		t.Errorf("the minted token answers %d, want 200", got)
	}
	// Another repository's token is refused; a second ID token, named by --id-token-env, revokes.
	if code, _, errOut := cli(map[string]string{"CFMINT_ID_TOKEN": idToken("&repository_id=1")}, "mint", "--broker", bs.URL, "--preset", "workers-deploy"); code != ExitFail || !strings.Contains(errOut, "HTTP 403") {
		t.Errorf("a stranger's mint: exit %d: %s", code, errOut)
	}
	if code, _, errOut := cli(map[string]string{"CFMINT_REVOKE_ID_TOKEN": idToken("&repository_id=4242001")}, "revoke", "--broker", bs.URL, "--id-token-env", "CFMINT_REVOKE_ID_TOKEN", minted.ID); code != ExitOK {
		t.Errorf("revoke --broker --id-token-env: exit %d: %s", code, errOut)
	}
	if got := use(); got != 401 {
		t.Errorf("the revoked token answers %d, want 401", got)
	}

	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("demo --serve exit %d after its context ended, want 0: %s", code, stderr.String())
	}
	if strings.Contains(errOut, boot) {
		t.Error("the CLI printed the bootstrap token")
	}
}

func TestDemoFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"demo", "--help"}, ExitOK, "Usage: cfmint demo [--serve [--json]]"},
		{[]string{"demo", "--json"}, ExitUsage, "--json: needs --serve"},
		{[]string{"demo", "extra"}, ExitUsage, `unexpected argument "extra"`},
		{[]string{"demo", "--bogus"}, ExitUsage, "flag provided but not defined"},
	} {
		code, _, stderr := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d; stderr lacks %q:\n%s", tc.args, code, tc.code, tc.want, stderr)
		}
	}
}
