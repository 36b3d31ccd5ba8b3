package runner

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/brokerclient"
	"github.com/cfmint/cfmint/internal/oidctest"
)

const brokerAudience = "https://broker.example"

// fetchInContainer is what the action does: ask the runner for an ID token
// through the variables the container got.
func fetchInContainer(c *container, hc *http.Client) (string, error) {
	return brokerclient.FetchIDToken(c.ctx, hc, func(k string) (string, bool) {
		v, ok := c.env[k]
		return v, ok
	}, brokerAudience)
}

func TestIDTokenPermission(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	env := baseEnv()
	env["GITHUB_REF"] = "refs/heads/release"
	env["GITHUB_SHA"] = "0123456789abcdef0123456789abcdef01234567"
	env["GITHUB_REPOSITORY_ID"] = "4242"
	env["GITHUB_EVENT_NAME"] = "workflow_dispatch"
	var mu sync.Mutex
	tokens := map[string]string{}
	envs := map[string]map[string]string{}
	phase := func(name string) entrypoint {
		return func(c *container) int {
			tok, err := fetchInContainer(c, iss.Client())
			if err != nil {
				c.errOut("::error::" + err.Error())
				return 1
			}
			c.out("request token: " + c.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
			mu.Lock()
			defer mu.Unlock()
			tokens[name], envs[name] = tok, c.env
			return 0
		}
	}
	j := NewJob(JobOptions{
		Dir:           t.TempDir(),
		Env:           env,
		Exec:          fakeExec(t, map[string]entrypoint{"/cfmint": phase("main"), "/cfmint-post": phase("post")}),
		Action:        mustAction(t, testActionYML),
		IDTokens:      iss,
		IDTokenClaims: map[string]string{"repository_owner_id": "77", "environment": "prod"},
	})
	main, post := mustRunStep(t, j, Step{ID: "mint", Env: map[string]string{
		"ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:1/attacker", // the runner's value wins
	}})
	if main.Failed() || post == nil || post.Failed() {
		t.Fatalf("phases failed: main %v %s, post %v", main.Errors, main.Log, post)
	}

	u, reqToken := envs["main"]["ACTIONS_ID_TOKEN_REQUEST_URL"], envs["main"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
	if !strings.HasPrefix(u, iss.URL()+"/") || !strings.HasSuffix(u, "?api-version=2.0") || reqToken == "" {
		t.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL = %q, TOKEN set %v; want the issuer's endpoint with ?api-version=2.0", u, reqToken != "")
	}
	if envs["post"]["ACTIONS_ID_TOKEN_REQUEST_URL"] != u || envs["post"]["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] != reqToken {
		t.Error("post got another endpoint than main; the runner gives one per job")
	}
	for _, p := range []*Phase{main, post} {
		if strings.Contains(p.Log, reqToken) || !strings.Contains(p.Log, "request token: ***") {
			t.Errorf("%s log = %q, want the request token masked", p.Name, p.Log)
		}
	}
	if masks := j.Masks(); len(masks) == 0 || masks[0] != reqToken {
		t.Errorf("Masks() = %d values, want the request token first", len(masks))
	}

	v, err := broker.NewVerifier(context.Background(), broker.VerifierOptions{
		Issuers: []string{iss.URL()}, Audience: brokerAudience, HTTPClient: iss.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sub":                 "repo:cfmint/demo:environment:prod",
		"aud":                 brokerAudience,
		"repository":          "cfmint/demo",
		"repository_owner":    "cfmint",
		"repository_id":       "4242",
		"repository_owner_id": "77",
		"environment":         "prod",
		"run_id":              "1234",
		"run_attempt":         "1",
		"workflow":            "ci",
		"ref":                 "refs/heads/release",
		"sha":                 "0123456789abcdef0123456789abcdef01234567",
		"event_name":          "workflow_dispatch",
		"workflow_ref":        "cfmint/demo/.github/workflows/ci.yml@refs/heads/release",
	}
	jtis := map[string]bool{}
	for _, name := range []string{"main", "post"} {
		id, err := v.Verify(context.Background(), tokens[name])
		if err != nil {
			t.Fatalf("%s's ID token: %v", name, err)
		}
		for k, w := range want {
			if id.Claims[k] != w {
				t.Errorf("%s's token: %s = %q, want %q", name, k, id.Claims[k], w)
			}
		}
		jtis[id.JTI] = true
	}
	if len(jtis) != 2 {
		t.Error("main and post got the same token; each request gets a fresh one")
	}
}

func TestNoIDTokenPermission(t *testing.T) {
	t.Parallel()
	var seen map[string]string
	var fetchErr error
	j := newTestJob(t, testActionYML, baseEnv(), map[string]entrypoint{
		"/cfmint": func(c *container) int {
			seen = c.env
			_, fetchErr = fetchInContainer(c, &http.Client{Timeout: time.Second})
			return 0
		},
		"/cfmint-post": func(c *container) int { return 0 },
	})
	mustRunStep(t, j, Step{ID: "mint"})
	for _, k := range []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"} {
		if _, ok := seen[k]; ok {
			t.Errorf("%s is set for a job without id-token: write", k)
		}
	}
	if fetchErr == nil || !strings.Contains(fetchErr.Error(), "permissions: id-token: write") {
		t.Errorf("FetchIDToken() error = %v, want the permission named", fetchErr)
	}
}
