package e2e

// What an earlier step of the same job can plant for cfmint: variables in $GITHUB_ENV (an API
// base, trust roots, state), values in the run's context (a commit message in a name), and the
// tests that show cfmint does not act on them. docs/security.md tells the same story.

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/oidctest"
	"github.com/cfmint/cfmint/internal/runner"
)

// attacker is a second built-in API on another port, playing the host an earlier step would
// like the bootstrap token sent to. It records the Authorization header of every request.
type attacker struct {
	*cfapitest.Server
	srv  *httptest.Server
	mu   sync.Mutex
	auth []string
}

func startAttacker(t *testing.T) *attacker {
	t.Helper()
	x := &attacker{Server: cfapitest.New()}
	x.Seed()
	inner := x.Handler()
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x.mu.Lock()
		x.auth = append(x.auth, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		x.mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(x.srv.Close)
	return x
}

// requests are what reached the attacker, each "METHOD PATH AUTHORIZATION".
func (x *attacker) requests() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.auth...)
}

// plant is an earlier step of the job writing text to $GITHUB_ENV.
func plant(t *testing.T, j *runner.Job, text string) {
	t.Helper()
	if err := j.AppendEnv(text); err != nil {
		t.Fatalf("planting %q: %v", text, err)
	}
}

// TestPlantedTrustRoots: SSL_CERT_FILE and SSL_CERT_DIR planted through $GITHUB_ENV, naming the
// certificate of a server that poses as Cloudflare's API, do not make the phases trust it (Go's
// own roots would take them): the handshake fails, and no request, so no bootstrap token,
// reaches the server. The planted CLOUDFLARE_API_BASE_URL is what an attacker would add for a
// cfmint that still read it.
func TestPlantedTrustRoots(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	evil := startAttacker(t)
	tlsSrv := httptest.NewUnstartedServer(evil.srv.Config.Handler)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	dir := t.TempDir()
	cert := writeCert(t, filepath.Join(dir, "api.pem"), tlsSrv.Certificate())
	base := tlsSrv.URL + "/client/v4"

	j := a.job(t, nil)
	plant(t, j, "SSL_CERT_FILE="+cert+"\nSSL_CERT_DIR="+dir+"\nCLOUDFLARE_API_BASE_URL="+base+"\n")
	s := a.step("cf", map[string]string{"preset": "workers-deploy", "api-base-url": base})
	m := runMain(t, j, s)
	if m.ExitCode != 1 || !hasAnnotation(m, "error", "certificate signed by unknown authority") {
		t.Errorf("main: exit %d, errors:\n%s", m.ExitCode, errorsOf(m))
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if got := evil.requests(); len(got) > 0 {
		t.Errorf("the server with the planted certificate received %d requests", len(got))
	}
	checkSecrets(t, a, "", m, p)
}

// evilCommand is what issue 9 found a commit message could carry into cfmint's log.
const evilCommand = "##[set-output name=r2-endpoint]https://evil.example"

// TestNoCommandFromValues: a value cfmint prints that came from an input, the run or
// Cloudflare never reads as a workflow command: a name input built from a commit message is
// refused, and a swept token's name or a Cloudflare error message is printed escaped. Every
// line goes through the runner's own parsers, and the step gets no output from them.
func TestNoCommandFromValues(t *testing.T) {
	t.Parallel()
	t.Run("name input", func(t *testing.T) {
		t.Parallel()
		a := startAPI(t)
		j := a.job(t, nil)
		s := a.step("cf", map[string]string{"preset": "workers-deploy", "name": "deploy fix: " + evilCommand})
		m := runMain(t, j, s)
		if m.ExitCode != 1 || !hasAnnotation(m, "error", `input "name"`) || a.creates() != 0 {
			t.Errorf("exit %d after %d creates, errors:\n%s", m.ExitCode, a.creates(), errorsOf(m))
		}
		p := runPost(t, j, s, m)
		checkCommands(t, m, p)
		noEvilOutput(t, m, p)
	})
	t.Run("swept token name", func(t *testing.T) {
		t.Parallel()
		a := startAPI(t)
		acct := a.fx.Account.ID
		var ids []string
		for _, name := range []string{"cfmint:octo-org/site:x " + evilCommand, "cfmint:octo-org/site:y\n::set-output name=r2-endpoint::https://evil.example"} {
			id, _, err := a.IssueToken(cfapitest.TokenSpec{Name: name, OwnerAccount: acct, ExpiresOn: time.Now().Add(-time.Hour),
				Policies: []cfapitest.Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{"com.cloudflare.api.account." + acct: "*"}}}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		m := runMain(t, a.job(t, nil), a.step("sweep", map[string]string{"sweep": "true"}))
		mustSucceed(t, m)
		if m.Outputs["swept"] != "2" || !strings.Contains(m.Log, `##\[set-output`) {
			t.Errorf("swept %q; log:\n%s", m.Outputs["swept"], m.Log)
		}
		for _, id := range ids {
			if !strings.Contains(m.Outputs["swept-ids"], id) {
				t.Errorf("swept-ids %q lacks %s", m.Outputs["swept-ids"], id)
			}
		}
		checkCommands(t, m)
		noEvilOutput(t, m)
	})
	t.Run("Cloudflare error message, CLI", func(t *testing.T) {
		t.Parallel()
		a := startAPI(t)
		a.InjectFault(cfapitest.Fault{Method: http.MethodPost, Path: "/accounts/{account_id}/tokens", Status: 400, Code: 1001, Message: "bad request " + evilCommand})
		_, errOut, code := a.cli(t, map[string]string{"GITHUB_ACTIONS": "true"}, "mint", "--preset", "workers-deploy", "--ip-filter", "127.0.0.1")
		if code != 1 || !strings.Contains(errOut, `bad request ##\[set-output`) {
			t.Errorf("exit %d, stderr:\n%s", code, errOut)
		}
		checkCommands(t, &runner.Phase{Name: "cli", Stderr: errOut})
	})
}

func noEvilOutput(t *testing.T, phases ...*runner.Phase) {
	t.Helper()
	for _, p := range phases {
		if v, ok := p.Outputs["r2-endpoint"]; ok {
			t.Errorf("%s phase set output r2-endpoint=%q", p.Name, v)
		}
	}
}

// TestPlantedIDToken: $CFMINT_ID_TOKEN written to $GITHUB_ENV by an earlier step is ignored by
// the action's phases, which ask the runner for their ID tokens: a planted one could make main
// mint under another identity, or post spend an ID token already used and never revoke.
func TestPlantedIDToken(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	iss := oidctest.New(t)
	b := startBroker(t, a, iss, defaultRule(a, iss), nil)
	j := a.brokerJob(t, iss)
	plant(t, j, "CFMINT_ID_TOKEN=planted.id.token\n")
	s := runner.Step{ID: "cf", With: map[string]string{"broker": b.URL, "preset": "workers-deploy"}}
	m := runMain(t, j, s)
	mustSucceed(t, m)
	id := m.Outputs["token-id"]
	if _, ok := a.Token(id); !ok {
		t.Fatalf("main's token %q is not there", id)
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if _, ok := a.Token(id); ok {
		t.Error("post did not revoke main's token")
	}
	if n := len(iss.Issued()); n != 2 {
		t.Errorf("the runner issued %d ID tokens; want one for main and one for post", n)
	}
	if left := brokerTokens(a); len(left) > 0 {
		t.Errorf("tokens left: %v", left)
	}
	checkIDTokensMasked(t, iss, b, m, p)
}
