package action

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/oidctest"
)

// TestDeniedMintWritesSummary: a mint the broker refuses leaves its reason in the step summary,
// not only in the log, and no ID token or other secret goes there.
func TestDeniedMintWritesSummary(t *testing.T) {
	t.Parallel()
	const why = "no rule matches repository octo-org/site (repository_id 1), ref refs/heads/dev, environment (none)"
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error": "` + why + ` <b>|x|</b>"}`))
	}))
	defer b.Close()
	iss := oidctest.New(t)
	u, reqTok := iss.IDTokenEndpoint(nil)
	dir := t.TempDir()
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo-org/site", "GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "1",
		"GITHUB_ACTION": "cf", "GITHUB_JOB": "deploy", "GITHUB_WORKFLOW": "ci",
		"ACTIONS_ID_TOKEN_REQUEST_URL": u, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": reqTok,
		"INPUT_BROKER": b.URL, "INPUT_PRESET": "workers-deploy",
	}
	for _, f := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STATE", "GITHUB_STEP_SUMMARY"} {
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		env[f] = p
	}
	d, out := phaseDeps(env)
	d.HTTPClient = &http.Client{}
	if err := Main(context.Background(), d); !errors.Is(err, ErrReported) {
		t.Fatalf("Main = %v, want the refusal reported", err)
	}
	raw, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
	if err != nil {
		t.Fatal(err)
	}
	summary := string(raw)
	for _, w := range []string{"### cfmint: no token was minted", "Through the broker `" + b.URL + "`", "HTTP 403", why, `&lt;b&gt;\|x\|&lt;/b&gt;`} {
		if !strings.Contains(summary, w) {
			t.Errorf("summary lacks %q:\n%s", w, summary)
		}
	}
	if !strings.Contains(out.String(), why) {
		t.Errorf("the log lacks the denial:\n%s", out.String())
	}
	// The log masks each ID token first (::add-mask::), and names it nowhere else.
	var log []string
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			log = append(log, l)
		}
	}
	for _, tok := range append(iss.Issued(), reqTok) {
		if strings.Contains(summary, tok) || strings.Contains(strings.Join(log, "\n"), tok) {
			t.Error("an ID token or the request token reached the summary or the log")
		}
	}
}
