package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cfapitest"
)

const helperMark = "cfmint-learn-helper"

// TestLearnHelper is the command learn runs in these tests: this test binary, started again
// with "cfmint-learn-helper TOKEN ACCOUNT EXIT" after its flags. It looks a zone up, adds a DNS
// record, lists R2 buckets and calls a path Cloudflare does not have, then exits with EXIT, or
// 1 when a call that should succeed did not.
func TestLearnHelper(t *testing.T) {
	i := slices.Index(os.Args, helperMark)
	if i < 0 {
		return // an ordinary test run
	}
	token, account, exit := os.Args[i+1], os.Args[i+2], os.Args[i+3]
	base := os.Getenv("CLOUDFLARE_API_BASE_URL")
	failed := false
	do := func(method, path, body string, must bool) []byte {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(method, path, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(method, path, resp.StatusCode)
		if must && resp.StatusCode/100 != 2 {
			failed = true
		}
		return b
	}
	var zones struct {
		Result []struct{ ID string } `json:"result"`
	}
	_ = json.Unmarshal(do("GET", "/zones?name=example.com", "", true), &zones)
	zone := "none"
	if len(zones.Result) == 1 {
		zone = zones.Result[0].ID
	}
	do("POST", "/zones/"+zone+"/dns_records", `{"type":"A","name":"learn.example.com","content":"192.0.2.1","ttl":1}`, true)
	do("GET", "/accounts/"+account+"/r2/buckets", "", true)
	do("GET", "/accounts/"+account+"/no-such-thing", "", false)
	if failed {
		os.Exit(1)
	}
	n, _ := strconv.Atoi(exit)
	os.Exit(n)
}

func helperArgs(token, account string, exit int) []string {
	return []string{os.Args[0], "-test.run=^TestLearnHelper$", "--", helperMark, token, account, strconv.Itoa(exit)}
}

func TestLearn(t *testing.T) {
	t.Parallel()
	api := cfapitest.New()
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	fx := api.Seed()
	acctKey := "com.cloudflare.api.account." + fx.Account.ID
	allZones := map[string]any{acctKey: map[string]any{"com.cloudflare.api.account.zone.*": "*"}}
	_, broad, err := api.IssueToken(cfapitest.TokenSpec{
		Name: "broad", OwnerAccount: fx.Account.ID,
		Policies: []cfapitest.Policy{
			{Groups: []string{"Workers R2 Storage Write"}, Resources: map[string]any{acctKey: "*"}},
			{Groups: []string{"DNS Write", "Zone Read"}, Resources: allZones},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), Env{Args: args, Lookup: func(string) (string, bool) { return "", false }, Stdout: &out, Stderr: &errOut, HTTPClient: http.DefaultClient})
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run(append([]string{"learn", "--api-base", api.URL(), "--json", "--"}, helperArgs(broad, fx.Account.ID, 3)...)...)
	if code != 3 {
		t.Fatalf("learn exited %d, want the command's 3\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, broad) {
		t.Errorf("learn's output holds the command's token")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(out, "POST /zones/") {
		t.Errorf("the command's own output did not pass through:\n%s", out)
	}
	var r struct {
		Permissions, Zones, Accounts, Unknown []string
		R2Buckets                             []string `json:"r2_buckets"`
		Operations                            []struct {
			Method, Path string
			Status       int
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("the last line of stdout is not the JSON report: %v\n%s", err, out)
	}
	want := []string{"DNS Write", "Workers R2 Storage Read", "Zone Read"}
	if !slices.Equal(r.Permissions, want) || !slices.Equal(r.Zones, []string{"example.com"}) || !slices.Equal(r.Accounts, []string{fx.Account.ID}) {
		t.Errorf("report %+v, want permissions %q on zone example.com of account %s", r, want, fx.Account.ID)
	}
	if !slices.Equal(r.Unknown, []string{"GET /accounts/{account_id}/no-such-thing"}) || len(r.Operations) != 4 {
		t.Errorf("unknown %q, operations %+v", r.Unknown, r.Operations)
	}

	// A token with exactly those groups does the job; without any one of them, it does not.
	mint := func(groups []string) string {
		var acct, zone []string
		for _, g := range groups {
			if g == "Workers R2 Storage Read" {
				acct = append(acct, g)
			} else {
				zone = append(zone, g)
			}
		}
		var ps []cfapitest.Policy
		if len(acct) > 0 {
			ps = append(ps, cfapitest.Policy{Groups: acct, Resources: map[string]any{acctKey: "*"}})
		}
		if len(zone) > 0 {
			ps = append(ps, cfapitest.Policy{Groups: zone, Resources: map[string]any{"com.cloudflare.api.account.zone." + fx.Zone.ID: "*"}})
		}
		_, secret, err := api.IssueToken(cfapitest.TokenSpec{Name: "learned", OwnerAccount: fx.Account.ID, Policies: ps})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	direct := func(token string) (int, string) {
		cmd := exec.Command(os.Args[0], helperArgs(token, fx.Account.ID, 0)[1:]...)
		cmd.Env = append(os.Environ(), "CLOUDFLARE_API_BASE_URL="+api.URL())
		b, err := cmd.CombinedOutput()
		if err != nil {
			return cmd.ProcessState.ExitCode(), string(b)
		}
		return 0, string(b)
	}
	if code, out := direct(mint(r.Permissions)); code != 0 {
		t.Errorf("with exactly the learned permissions the command exits %d:\n%s", code, out)
	}
	for _, drop := range r.Permissions {
		less := slices.DeleteFunc(slices.Clone(r.Permissions), func(g string) bool { return g == drop })
		if code, out := direct(mint(less)); code == 0 {
			t.Errorf("without %s the command still succeeds:\n%s", drop, out)
		}
	}

	// The text report: the step, the allow block, the unknown call.
	code, out, errOut = run(append([]string{"learn", "--api-base", api.URL(), "--"}, helperArgs(broad, fx.Account.ID, 0)...)...)
	for _, s := range []string{
		"      account-id: " + fx.Account.ID,
		"      permissions: |\n        DNS Write\n        Workers R2 Storage Read\n        Zone Read\n      zones: example.com\n",
		"    allow:\n      permissions: [DNS Write, Workers R2 Storage Read, Zone Read]\n      zones: [example.com]\n",
		"no permission data: GET /accounts/{account_id}/no-such-thing",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("the report lacks %q:\n%s", s, out)
		}
	}
	if code != 0 || strings.Contains(out+errOut, broad) {
		t.Errorf("learn exited %d (want 0), or printed the token:\n%s\n%s", code, out, errOut)
	}
}

func TestLearnRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"learn"}, "give the command to run"},
		{[]string{"learn", "--api-base", "http://api.example.com/client/v4", "--", "true"}, "--api-base: \"http://api.example.com/client/v4\" is neither https nor http to a loopback address"},
		{[]string{"learn", "--api-base", "ftp://x", "--", "true"}, "--api-base"},
	} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), Env{Args: tc.args, Lookup: func(string) (string, bool) { return "", false }, Stdout: &out, Stderr: &errOut})
		if code != ExitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func TestLearnCommandNotFound(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), Env{Args: []string{"learn", "--", "/nonexistent/cfmint-no-such-command"}, Lookup: func(string) (string, bool) { return "", false }, Stdout: &out, Stderr: &errOut})
	if code != 127 || !strings.Contains(errOut.String(), "cannot run") {
		t.Errorf("exit %d, stderr %q; want 127 and cannot run", code, errOut.String())
	}
}
