package action_test

// What an earlier step of the same job can plant for cfmint: variables in $GITHUB_ENV (an API
// base, trust roots, state), values in the run's context (a commit message in a name), and the
// tests that show cfmint does not act on them. docs/security.md tells the same story.

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
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

func (x *attacker) url() string { return x.srv.URL + "/client/v4" }

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

// TestPlantedAPIBase: CLOUDFLARE_API_BASE_URL written to $GITHUB_ENV by an earlier step does not
// take the bootstrap token anywhere, in main or post; the mint goes to the host of the
// api-base-url input.
func TestPlantedAPIBase(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	evil := startAttacker(t)
	j := a.job(t, nil)
	plant(t, j, "CLOUDFLARE_API_BASE_URL="+evil.url()+"\n")
	s := a.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	id := m.Outputs["token-id"]
	if _, ok := a.Token(id); !ok || a.creates() != 1 {
		t.Fatalf("the API of the input holds no token %q (%d creates)", id, a.creates())
	}
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	if _, ok := a.Token(id); ok {
		t.Errorf("post did not revoke token %s at the API of the input", id)
	}
	if got := evil.requests(); len(got) > 0 {
		for i := range got {
			for _, boot := range []string{a.fx.AccountBootstrap.Secret, a.fx.UserBootstrap.Secret} {
				got[i] = strings.ReplaceAll(got[i], boot, "<BOOTSTRAP>")
			}
		}
		t.Errorf("the planted host received %d requests: %q", len(got), got)
	}
	checkSecrets(t, a, m.Outputs["token"], m, p)
}

// TestAPIBaseInput: the input itself refuses http to a host that is not loopback, and every
// other URL that would leak the bootstrap token or not be Cloudflare's API base, before any
// request is sent.
func TestAPIBaseInput(t *testing.T) {
	t.Parallel()
	cases := []struct{ base, want string }{
		{"http://api.cloudflare.com/client/v4", "not a loopback address"},
		{"ftp://127.0.0.1/client/v4", "has scheme ftp"},
		{"https://user:secret@api.cloudflare.com/client/v4", "user information"},
		{"/client/v4", "not an absolute URL"},
	}
	for _, tc := range cases {
		t.Run(tc.base, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, nil)
			s := a.step("cf", map[string]string{"preset": "workers-deploy", "api-base-url": tc.base})
			m := runMain(t, j, s)
			if m.ExitCode != 1 || !hasAnnotation(m, "error", `input "api-base-url"`) || !hasAnnotation(m, "error", tc.want) {
				t.Errorf("exit %d, errors:\n%s", m.ExitCode, errorsOf(m))
			}
			if strings.Contains(m.Stdout+m.Stderr, "secret@") {
				t.Errorf("the password of the URL was printed:\n%s", m.Stdout)
			}
			p := runPost(t, j, s, m)
			mustSucceed(t, p)
			if n := len(a.Requests()); n != 0 {
				t.Errorf("the API received %d requests", n)
			}
		})
	}
}

// TestPlantedState: STATE_* variables planted through $GITHUB_ENV (naming another job's token)
// reach post like the state main saves, in every mode of the step. Post deletes nothing they
// name: main writes every state key at its start, so the runner's values replace planted ones,
// and post acts only on state bound to this run by main.
func TestPlantedState(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		with   map[string]string
		noMain bool   // the main phase's container never starts
		post   string // what post's log says
	}{
		{name: "mint", with: map[string]string{"preset": "workers-deploy"}, post: "Revoked token"},
		{name: "mint, revoke false", with: map[string]string{"preset": "workers-deploy", "revoke": "false"}, post: "left to expire"},
		{name: "revoke mode", with: map[string]string{"token-id": "target"}, post: "Nothing to revoke"},
		{name: "sweep mode", with: map[string]string{"sweep": "true"}, post: "Nothing to revoke"},
		{name: "validation failure", with: map[string]string{"preset": "no-such-preset"}, post: "Nothing to revoke"},
		{name: "dry run", with: map[string]string{"preset": "workers-deploy", "dry-run": "true"}, post: "Nothing to revoke"},
		{name: "main never started", with: map[string]string{"preset": "workers-deploy"}, noMain: true, post: "ignored the state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			acct := a.fx.Account.ID
			expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			issue := func(name string) string {
				id, _, err := a.IssueToken(cfapitest.TokenSpec{Name: name, OwnerAccount: acct, ExpiresOn: expires,
					Policies: []cfapitest.Policy{{Groups: []string{"Workers Scripts Write"}, Resources: map[string]any{"com.cloudflare.api.account." + acct: "*"}}}})
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			victim := issue("another job's deploy token")
			byName := issue("cfmint:octo-org/site:workers-deploy:1001.1:deploy:cf")
			if tc.with["token-id"] == "target" {
				tc.with["token-id"] = issue("the token this step revokes")
			}
			j := a.job(t, nil)
			// Everything post reads, naming the victims: one by id, one by name and expiry as a
			// create cut short would leave, and a binding as a guess at how main marks its state.
			plant(t, j, strings.Join([]string{
				"STATE_token-id=" + victim, "STATE_owner=account", "STATE_account-id=" + acct,
				"STATE_name=cfmint:octo-org/site:workers-deploy:1001.1:deploy:cf", "STATE_expires-on=" + expires.Format(time.RFC3339),
				"STATE_create-pending=true", "STATE_revoke=true", "STATE_run=1001.1:cf", "",
			}, "\n"))
			s := a.step("cf", tc.with)
			ctx := context.Background()
			if tc.noMain {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			m, err := j.RunMain(ctx, s)
			if m == nil {
				t.Fatalf("main phase: %v", err)
			}
			p := runPost(t, j, s, m)
			mustSucceed(t, p)
			if !strings.Contains(p.Log, tc.post) {
				t.Errorf("post does not say %q:\n%s", tc.post, p.Log)
			}
			for id, what := range map[string]string{victim: "named by id", byName: "named by name"} {
				if _, ok := a.Token(id); !ok {
					t.Errorf("post deleted the victim %s", what)
				}
			}
			if minted := m.Outputs["token-id"]; minted != "" {
				_, live := a.Token(minted)
				if want := tc.with["revoke"] == "false"; live != want {
					t.Errorf("the step's own token %s: live %v, want %v", minted, live, want)
				}
			}
		})
	}
}

// TestProxyPinsItsAddress: when cfmint's requests go through a proxy (as HTTPS_PROXY, planted
// or not, sends them), Cloudflare sees the proxy's address and the runner filter pins the token
// to it: main warns, naming the proxy, and the summary shows it beside the filter. Go never
// sends a request for a loopback address through the proxy variables, so the phases run in this
// process with a client whose proxy is this test's, which reaches the API from 127.0.0.3.
func TestProxyPinsItsAddress(t *testing.T) {
	t.Parallel()
	f := startAPIWith(t, nil)
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 5 * time.Second}
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		// A forward proxy's request already names the host it is for.
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.Host = pr.In.URL.Host },
		Transport: &http.Transport{DialContext: from.DialContext},
	})
	t.Cleanup(proxy.Close)
	pu, _ := url.Parse(proxy.URL)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	j := f.jobWith(t, map[string]string{"CFMINT_TRACE_FALLBACK_URL": noFallback}, runner.InProcess(phase(hc)))
	s := f.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if got := m.Outputs["ip-filter"]; got != "127.0.0.3/32" {
		t.Errorf("ip-filter %q, want the proxy's address 127.0.0.3/32", got)
	}
	if !hasAnnotation(m, "warning", "through the proxy "+pu.Host) {
		t.Errorf("no warning names the proxy: %+v", m.Annotations)
	}
	if !strings.Contains(m.Summary, "| Proxy | cfmint reached Cloudflare through `"+pu.Host+"`") || !strings.Contains(m.Summary, "| IP filter | `127.0.0.3/32` |") {
		t.Errorf("the summary does not show the proxy beside the filter:\n%s", m.Summary)
	}
	scripts := "/accounts/" + f.fx.Account.ID + "/workers/scripts"
	if got := f.call(t, m.Outputs["token"], http.MethodGet, scripts, "127.0.0.3"); got.Status != 200 {
		t.Errorf("from the proxy's address: %+v", got)
	}
	if got := f.call(t, m.Outputs["token"], http.MethodGet, scripts, "127.0.0.1"); got.Status != 403 {
		t.Errorf("from the runner's own address: %+v, want 403", got)
	}
	mustSucceed(t, runPost(t, j, s, m))
	if left := f.leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", names(left))
	}
}

// TestLastingAccess: a group whose holder can create access that outlives the token (here,
// inviting account members) is refused unless the workflow sets allow-lasting-access: true;
// then main warns, naming the group and what it can create, and the summary flags it, in a mint
// and in a dry run.
func TestLastingAccess(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		with   map[string]string
		minted bool
	}{
		{name: "refused without the input", with: map[string]string{"permissions": "Account Settings Write"}},
		{name: "allowed", with: map[string]string{"permissions": "Account Settings Write", "allow-lasting-access": "true"}, minted: true},
		{name: "dry run", with: map[string]string{"permissions": "Account Settings Write", "allow-lasting-access": "true", "dry-run": "true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := startAPI(t)
			j := a.job(t, nil)
			s := a.step("cf", tc.with)
			m := runMain(t, j, s)
			if tc.with["allow-lasting-access"] == "" {
				if m.ExitCode != 1 || !hasAnnotation(m, "error", `input "allow-lasting-access": is false, but "Account Settings Write" can invite members`) || a.creates() != 0 {
					t.Errorf("exit %d, %d creates, errors:\n%s", m.ExitCode, a.creates(), errorsOf(m))
				}
				return
			}
			mustSucceed(t, m)
			if !hasAnnotation(m, "warning", `allow-lasting-access: the token carries "Account Settings Write", which can invite members to the account with any role`) {
				t.Errorf("no warning names the group and what it can create: %+v", m.Annotations)
			}
			if !strings.Contains(m.Summary, "| **Lasting access** | **Account Settings Write** can invite members") || !strings.Contains(m.Summary, "| Account Settings Write (lasting access) |") {
				t.Errorf("the summary does not flag the group:\n%s", m.Summary)
			}
			if minted := m.Outputs["token-id"] != ""; minted != tc.minted || a.creates() != map[bool]int{true: 1}[tc.minted] {
				t.Errorf("token-id %q after %d creates; want minted=%v", m.Outputs["token-id"], a.creates(), tc.minted)
			}
			mustSucceed(t, runPost(t, j, s, m))
		})
	}
}

// TestPlantedTraceFallback: a trace fallback an earlier step plants could pin the token to any
// address; the phases take one only on loopback, and say so.
func TestPlantedTraceFallback(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)
	if err := j.AppendEnv("CFMINT_TRACE_FALLBACK_URL=https://evil.example/cdn-cgi/trace\n"); err != nil {
		t.Fatal(err)
	}
	s := a.step("cf", map[string]string{"preset": "workers-deploy"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	if !strings.Contains(m.Log, "ignored CFMINT_TRACE_FALLBACK_URL") {
		t.Errorf("main did not say it ignored the planted fallback:\n%s", m.Log)
	}
	if got := m.Outputs["ip-filter"]; got != "127.0.0.1/32" {
		t.Errorf("ip-filter = %q, want the runner's own address", got)
	}
	mustSucceed(t, runPost(t, j, s, m))
}
