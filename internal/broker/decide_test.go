package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/cli"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/trust"
)

const audience = "https://cfmint.test"

// world is a broker serving in-process against the fake Cloudflare API and issuer, and its
// policy's file for `cfmint policy`.
type world struct {
	fx         cfapitest.Fixture
	iss        *oidctest.Issuer
	apiBase    string // the fake Cloudflare API's base URL
	broker     string // the broker's URL
	policyFile string
}

// policyText is the test policy, its one rule named rule.
func policyText(iss *oidctest.Issuer, fx cfapitest.Fixture, rule string) string {
	return fmt.Sprintf(`audience: %s
rules:
  - name: %s
    issuer: %s
    claims:
      repository_id: "892345611"
      repository_owner_id: "9919"
    claim_patterns:
      ref: refs/heads/(main|release-.*)
    account_id: %s
    allow:
      presets: [workers-deploy, r2-upload]
      permissions: [DNS Read]
      zones: [example.com]
      r2_buckets: [assets]
    max_ttl: 30m
`, audience, rule, iss.URL(), fx.Account.ID)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	cf := cfapitest.New()
	fx := cf.Seed()
	api := httptest.NewServer(cf.Handler())
	t.Cleanup(api.Close)
	iss := oidctest.New(t)
	text := policyText(iss, fx, "site-deploy")
	pol, err := trust.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ver, err := broker.NewVerifier(ctx, broker.VerifierOptions{Issuers: pol.Issuers(), Audience: pol.Audience(), HTTPClient: iss.Client()})
	if err != nil {
		t.Fatal(err)
	}
	store, closer, err := broker.OpenReplayStore("memory", broker.ReplayStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	base := api.URL + "/client/v4"
	tokens := cftoken.New(fx.AccountBootstrap.Secret, cftoken.Options{BaseURL: base, HTTPClient: api.Client()})
	once := cftoken.New(fx.AccountBootstrap.Secret, cftoken.Options{BaseURL: base, HTTPClient: api.Client(), Attempts: 1})
	srv, err := broker.New(broker.Options{Policy: pol, Verifier: ver, Replay: store, Tokens: tokens, Once: once, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Prepare(ctx, pol); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Routes())
	t.Cleanup(hs.Close)
	return &world{fx: fx, iss: iss, apiBase: base, broker: hs.URL, policyFile: file}
}

// serve is the broker's verdict on body from a job with the ID token: "allowed" or "denied", and its
// answer.
func (w *world) serve(t *testing.T, token string, body map[string]string) (string, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, w.broker+"/v1/tokens", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusCreated:
		return "allowed", string(out)
	case http.StatusBadRequest, http.StatusForbidden:
		return "denied", string(out)
	}
	return fmt.Sprintf("status %d", resp.StatusCode), string(out)
}

// policyTest is `cfmint policy test`'s verdict, with no bootstrap token, run in-process.
func (w *world) policyTest(t *testing.T, claims oidctest.Claims, body map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, v any) string {
		f := filepath.Join(dir, name)
		b, _ := json.Marshal(v)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), cli.Env{
		Args:       []string{"policy", "test", w.policyFile, "--claims", write("claims.json", claims), "--request", write("request.json", body), "--caller", "127.0.0.1"},
		Lookup:     func(string) (string, bool) { return "", false },
		Stdout:     &stdout,
		Stderr:     &stderr,
		HTTPClient: &http.Client{Transport: refuse{t}},
	})
	out := stdout.String() + stderr.String()
	switch code {
	case cli.ExitOK:
		return "allowed", out
	case cli.ExitFail:
		return "denied", out
	}
	return fmt.Sprintf("exit %d", code), out
}

// refuse fails the test on any request: offline means offline.
type refuse struct{ t *testing.T }

func (r refuse) RoundTrip(req *http.Request) (*http.Response, error) {
	r.t.Errorf("policy test made a request: %s %s", req.Method, req.URL)
	return nil, http.ErrNotSupported
}

// TestServeAndPolicyTestAgree: `cfmint policy test` with no bootstrap token decides every
// request as the broker does.
func TestServeAndPolicyTestAgree(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	main := oidctest.Claims{"aud": audience, "repository_id": "892345611", "repository_owner_id": "9919", "ref": "refs/heads/main"}
	with := func(k, v string) oidctest.Claims {
		c := oidctest.Claims{}
		for kk, vv := range main {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	var many []string
	for i := range 21 {
		many = append(many, fmt.Sprintf("z%d.example.com", i))
	}
	cases := []struct {
		name   string
		claims oidctest.Claims
		body   map[string]string
		want   string
	}{
		{"the default preset", main, map[string]string{"preset": "workers-deploy"}, "allowed"},
		{"a permission on a listed zone", main, map[string]string{"permissions": "DNS Read", "zones": "example.com"}, "allowed"},
		{"a bucket preset on a listed bucket", main, map[string]string{"preset": "r2-upload", "r2-buckets": "assets"}, "allowed"},
		{"a ttl within max_ttl", main, map[string]string{"preset": "workers-deploy", "ttl": "30m"}, "allowed"},
		{"a release branch", with("ref", "refs/heads/release-2"), map[string]string{"preset": "workers-deploy"}, "allowed"},
		{"a preset the rule lacks", main, map[string]string{"preset": "dns-edit", "zones": "example.com"}, "denied"},
		{"a zone the rule lacks", main, map[string]string{"permissions": "DNS Read", "zones": "example.net"}, "denied"},
		{"every zone", main, map[string]string{"permissions": "DNS Read", "zones": "*"}, "denied"},
		{"more than 20 zones", main, map[string]string{"permissions": "DNS Read", "zones": strings.Join(many, "\n")}, "denied"},
		{"a ttl over max_ttl", main, map[string]string{"preset": "workers-deploy", "ttl": "2h"}, "denied"},
		{"a lasting-access group", main, map[string]string{"permissions": "Account Settings Write"}, "denied"},
		{"a misspelt permission", main, map[string]string{"permissions": "DNS Reed", "zones": "example.com"}, "denied"},
		{"a bucket the rule lacks", main, map[string]string{"preset": "r2-upload", "r2-buckets": "logs"}, "denied"},
		{"no ip filter", main, map[string]string{"preset": "workers-deploy", "ip-filter": "none"}, "denied"},
		{"a request that does not parse", main, map[string]string{"preset": "workers-deploy", "ttl": "forever"}, "denied"},
		{"a branch the rule does not match", with("ref", "refs/heads/feature"), map[string]string{"preset": "workers-deploy"}, "denied"},
		{"another repository", with("repository_id", "1"), map[string]string{"preset": "workers-deploy"}, "denied"},
		{"no run to bind to", with("run_id", "latest"), map[string]string{"preset": "workers-deploy"}, "denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The same claims for both: a decoded ID token is what policy test takes.
			token, claims := w.iss.Issue(tc.claims)
			served, sout := w.serve(t, token, tc.body)
			tested, tout := w.policyTest(t, claims, tc.body)
			if served != tc.want || tested != tc.want {
				t.Errorf("serve: %s, policy test: %s; want both %s\nserve: %s\npolicy test: %s", served, tested, tc.want, sout, tout)
			}
			if !strings.Contains(tout, "snapshot of Cloudflare's permission groups of ") {
				t.Errorf("policy test does not say which snapshot it used:\n%s", tout)
			}
		})
	}
}

// TestPolicyCouldNotCheck: when Cloudflare refuses the bootstrap token's lookups, check and test
// say they could not check (exit 3), neither valid nor invalid, allowed nor denied.
func TestPolicyCouldNotCheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusForbidden)
		_, _ = rw.Write([]byte(`{"success":false,"errors":[{"code":9109,"message":"Unauthorized to access requested resource"}],"messages":[],"result":null}`))
	}))
	defer refusing.Close()
	claims := filepath.Join(t.TempDir(), "claims.json")
	_, c := w.iss.Issue(mainClaims())
	b, _ := json.Marshal(c)
	if err := os.WriteFile(claims, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CLOUDFLARE_BOOTSTRAP_TOKEN": "refused-token", "CLOUDFLARE_API_BASE_URL": refusing.URL + "/client/v4"}
	for _, args := range [][]string{
		{"policy", "check", w.policyFile},
		{"policy", "test", w.policyFile, "--claims", claims},
	} {
		var stdout, stderr bytes.Buffer
		code := cli.Run(context.Background(), cli.Env{
			Args:       args,
			Lookup:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Stdout:     &stdout,
			Stderr:     &stderr,
			HTTPClient: refusing.Client(),
		})
		if code != cli.ExitUnchecked {
			t.Errorf("%s: exit %d, want %d:\n%s%s", args[1], code, cli.ExitUnchecked, stdout.String(), stderr.String())
		}
		if strings.Contains(stdout.String()+stderr.String(), "refused-token") {
			t.Errorf("%s: the output holds the bootstrap token", args[1])
		}
	}
}
