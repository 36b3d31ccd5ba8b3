package action_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/runner"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from what the tests produce")

// TestSummaryGolden compares the step summaries with testdata/summary-*.golden, after replacing
// what changes from run to run (the token id, the name's nonce, times, the API's port) with
// placeholders; Seed's account and zone ids are fixed.
// After a deliberate change, rewrite them with `go test ./internal/action -run TestSummaryGolden
// -update` and read the diff.
func TestSummaryGolden(t *testing.T) {
	t.Parallel()
	a := startAPI(t)
	j := a.job(t, nil)

	s := a.step("cf", map[string]string{"preset": "workers-deploy", "permissions": "DNS Write", "zones": "example.com, example.net"})
	m := runMain(t, j, s)
	mustSucceed(t, m)
	p := runPost(t, j, s, m)
	mustSucceed(t, p)
	checkGolden(t, "summary-mint", normalize(m.Summary, m.Outputs["token-id"]))
	checkGolden(t, "summary-post", normalize(p.Summary, m.Outputs["token-id"]))

	dry := a.step("dry", map[string]string{"preset": "dns-edit", "zones": "example.com", "dry-run": "true"})
	d := runMain(t, j, dry)
	mustSucceed(t, d)
	checkGolden(t, "summary-dry-run", normalize(d.Summary, ""))

	u := a.step("user", map[string]string{"token-owner": "user", "bootstrap-token": a.fx.UserBootstrap.Secret, "preset": "dns-edit", "zones": "example.net", "revoke": "false"})
	um := runMain(t, j, u)
	mustSucceed(t, um)
	up := runPost(t, j, u, um)
	mustSucceed(t, up)
	checkGolden(t, "summary-user-kept", normalize(um.Summary+"--- post ---\n"+up.Summary, um.Outputs["token-id"]))

	bad := a.step("bad", map[string]string{"preset": "deploy-everything", "ttl": "1"})
	bm, err := j.RunMain(t.Context(), bad)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "summary-bad-input", normalize(bm.Summary, "")+"--- errors ---\n"+annotationLines(bm))
}

var (
	nonceRE = regexp.MustCompile(`(1001\.1)-[0-9a-f]{6}`)
	timeRE  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	portRE  = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// normalize replaces what differs between runs with placeholders.
func normalize(s, tokenID string) string {
	if tokenID != "" {
		s = strings.ReplaceAll(s, tokenID, "TOKEN_ID")
	}
	s = nonceRE.ReplaceAllString(s, "$1-NONCE")
	s = timeRE.ReplaceAllString(s, "TIME")
	return portRE.ReplaceAllString(s, "127.0.0.1:PORT")
}

func annotationLines(p *runner.Phase) string {
	var b strings.Builder
	for _, an := range p.Annotations {
		b.WriteString(an.Level + ": " + an.Message + "\n")
	}
	return b.String()
}

// checkGolden compares got with testdata/name.golden, or writes it there with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (write it with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from what the test produced (if the change is meant, rewrite it with -update and read the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
