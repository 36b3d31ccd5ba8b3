package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/runner"
)

// inProcess is a runner.Executor that runs a phase inside this process (e.Phase, which main
// hands down) instead of a container, with hc as its HTTP client.
func (e Env) inProcess(hc *http.Client) runner.Executor {
	return runner.InProcess(func(ctx context.Context, argv0 string, lookup func(string) (string, bool), stdout io.Writer) (int, bool) {
		if e.Phase == nil {
			return 0, false
		}
		return e.Phase(ctx, argv0, lookup, stdout, hc)
	})
}

// demo runs a workflow step the way the runner would, against the built-in Cloudflare API, and
// shows what a user would see; then uses the token before and after the post phase.
const demoUsage = `Usage: cfmint demo [--serve [--json]]

Without flags, runs the action's main and post phases against a built-in, in-memory
Cloudflare API, as the GitHub runner would, then the same step through a keyless
broker, and shows what a workflow sees: the log, outputs, environment, summary,
and the token working only where it is meant to, until the post phase revokes it.

With --serve, it starts the built-in Cloudflare API and a GitHub-shaped OIDC issuer
on loopback and runs until interrupted, printing the API base URL, the account id,
a bootstrap token (the built-in API's own, good nowhere else) and the issuer URL: a
playground for 'cfmint serve', 'cfmint policy test' and 'cfmint mint --broker'.
'GET <issuer>/token?audience=A&CLAIM=VALUE...' answers {"value": "<ID token>"}
for the claims chosen, the others shaped like GitHub's. docs/broker.md walks a
policy through it.

Exit codes: 0 the demo went as expected (or --serve was interrupted), 1 it did not, 2 bad flags.
`

func demo(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "demo", demoUsage)
	serve := fs.Bool("serve", false, "run the built-in Cloudflare API and OIDC issuer until interrupted")
	asJSON := fs.Bool("json", false, "with --serve: print the endpoints as one JSON object on one line (api_base_url, account_id, bootstrap_token, issuer)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(e.Stderr, "cfmint demo: unexpected argument %s; see cfmint demo --help\n", logsafe.Quote(fs.Arg(0)))
		return ExitUsage
	case *asJSON && !*serve:
		fmt.Fprintln(e.Stderr, "cfmint demo: --json: needs --serve; the demo itself prints a story, not data")
		return ExitUsage
	case *serve:
		return demoServe(ctx, e, *asJSON)
	}
	out := e.Stdout
	srv := cfapitest.New()
	if err := srv.Start(); err != nil {
		fmt.Fprintf(e.Stderr, "cfmint demo: failed to start the built-in Cloudflare API: %v\n", err)
		return ExitFail
	}
	defer srv.Close()
	fx := srv.Seed()

	act, err := runner.ParseAction(e.ActionYML)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint demo: %v\n", err)
		return ExitFail
	}
	dir, err := os.MkdirTemp("", "cfmint-demo-")
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint demo: %v\n", err)
		return ExitFail
	}
	defer os.RemoveAll(dir)

	// The demo talks to the loopback API only, whatever proxy the terminal has set.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	job := runner.NewJob(runner.JobOptions{
		Dir: dir,
		Env: map[string]string{
			"GITHUB_ACTIONS":     "true",
			"GITHUB_REPOSITORY":  "octo-org/website",
			"GITHUB_RUN_ID":      "4242",
			"GITHUB_RUN_ATTEMPT": "1",
			"GITHUB_JOB":         "deploy",
			"GITHUB_ACTION":      "cf",
			"GITHUB_WORKFLOW":    "deploy",
		},
		Exec:   e.inProcess(hc),
		Action: act,
		// The runner masks every value of the secrets context from the start.
		Secrets: []string{fx.AccountBootstrap.Secret},
	})
	step := runner.Step{ID: "cf", With: map[string]string{
		"bootstrap-token": fx.AccountBootstrap.Secret,
		"account-id":      fx.Account.ID,
		"preset":          "workers-deploy",
		"ttl":             "15m",
		// The bootstrap token goes only where the workflow file says.
		"api-base-url": srv.URL(),
	}}

	fmt.Fprintf(out, "cfmint demo: a built-in Cloudflare API is listening on %s\n", srv.URL())
	fmt.Fprintf(out, "It holds account %s with zones %s and %s, and an account-owned bootstrap token\nthat may only create tokens.\n\n", fx.Account.ID, fx.Zone.Name, fx.Zone2.Name)
	fmt.Fprintf(out, "The workflow step:\n\n  - uses: cfmint/cfmint@v1\n    id: cf\n    with:\n      bootstrap-token: ${{ secrets.CLOUDFLARE_BOOTSTRAP_TOKEN }}\n      account-id: %s\n      preset: workers-deploy\n      ttl: 15m\n\n", fx.Account.ID)

	mainPhase, err := job.RunMain(ctx, step)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint demo: main phase: %v\n", err)
		return ExitFail
	}
	mask := func(s string) string {
		for _, m := range job.Masks() {
			if m != "" {
				s = strings.ReplaceAll(s, m, "***")
			}
		}
		return s
	}
	section(out, "Main phase log (as the runner shows it)")
	fmt.Fprint(out, indent(mainPhase.Log))
	fmt.Fprintf(out, "exit code %d\n", mainPhase.ExitCode)
	section(out, "Step outputs")
	printMap(out, mainPhase.Outputs, mask)
	section(out, "Environment for later steps")
	printMap(out, mainPhase.Env, mask)
	section(out, "Step summary")
	fmt.Fprint(out, indent(mask(mainPhase.Summary)))
	if mainPhase.ExitCode != 0 {
		return ExitFail
	}

	token := mainPhase.Outputs["token"]
	ok := true
	section(out, "Using the token, as a later step would")
	scripts := srv.URL() + "/accounts/" + fx.Account.ID + "/workers/scripts"
	ok = try(out, hc, "list Workers scripts (granted)", scripts, token, 200) && ok
	ok = try(out, hc, "list DNS records (not granted)", srv.URL()+"/zones/"+fx.Zone.ID+"/dns_records", token, 403) && ok
	other := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}).DialContext}}
	ok = try(out, other, "list Workers scripts from another address (127.0.0.2)", scripts, token, 403) && ok
	fmt.Fprintln(out, "  (The token is pinned to the runner's address. The Workers API answers a request from another\n"+
		"  address with 403 \"Authentication error\" alone, as it answers one the token lacks a permission\n"+
		"  for: it hides that the address was the cause. In a later step, that error means one of the two.)")

	postPhase, err := job.RunPost(ctx, step, mainPhase)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint demo: post phase: %v\n", err)
		return ExitFail
	}
	section(out, "Post phase log")
	fmt.Fprint(out, indent(postPhase.Log))
	fmt.Fprintf(out, "exit code %d\n", postPhase.ExitCode)
	section(out, "Post phase summary")
	fmt.Fprint(out, indent(mask(postPhase.Summary)))

	section(out, "Using the token after the post phase")
	ok = try(out, hc, "list Workers scripts", scripts, token, 401) && ok

	left := 0
	for _, t := range srv.Tokens() {
		if t.Name == mainPhase.Outputs["name"] {
			left++
		}
	}
	keyless := e.demoKeyless(ctx, out, srv, fx, act, hc, dir)
	for _, t := range srv.Tokens() {
		if strings.HasPrefix(t.Name, "cfmint-broker:") {
			left++
		}
	}
	section(out, "Result")
	fmt.Fprintf(out, "Tokens of either story left in the API: %d\n", left)
	if !ok || !keyless || left != 0 || postPhase.ExitCode != 0 {
		fmt.Fprintln(out, "The demo did NOT go as expected.")
		return ExitFail
	}
	fmt.Fprintln(out, "The token worked only where it was meant to, and is gone.")
	fmt.Fprint(out, `
Next: 'cfmint demo --serve' keeps this built-in Cloudflare API and an OIDC issuer running, to
try a trust policy of your own with 'cfmint policy test' and 'cfmint serve', and to mint
through it with 'cfmint mint --broker' (docs/broker.md walks it through).
`)
	return ExitOK
}

// try calls url with the token and says what Cloudflare answered; it reports whether the status
// was the one expected.
func try(out io.Writer, hc *http.Client, what, url, token string, want int) bool {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(out, "  %s: %v\n", what, err)
		return false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		fmt.Fprintf(out, "  %s: %v\n", what, err)
		return false
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	detail := string(body)
	if i := strings.Index(detail, `"errors":[`); i >= 0 && res.StatusCode != 200 {
		detail = detail[i:]
		if j := strings.Index(detail, "]"); j >= 0 {
			detail = detail[:j+1]
		}
	} else if res.StatusCode == 200 {
		detail = "ok"
	}
	mark := "as expected"
	if res.StatusCode != want {
		mark = fmt.Sprintf("UNEXPECTED, wanted %d", want)
	}
	fmt.Fprintf(out, "  %s: %d %s (%s)\n", what, res.StatusCode, detail, mark)
	return res.StatusCode == want
}

func section(out io.Writer, title string) {
	fmt.Fprintf(out, "\n== %s ==\n", title)
}

func indent(s string) string {
	if s == "" {
		return "  (empty)\n"
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ") + "\n"
}

func printMap(out io.Writer, m map[string]string, mask func(string) string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		fmt.Fprintln(out, "  (none)")
	}
	for _, k := range keys {
		fmt.Fprintf(out, "  %s=%s\n", k, mask(m[k]))
	}
}
