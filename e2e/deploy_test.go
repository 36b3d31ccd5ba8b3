package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cfmint/cfmint/internal/oidctest"
)

// TestDeployManifests checks every manifest under deploy/ against the binary: each flag it passes
// to `cfmint serve` is one serve has, and each probe path is one a running broker answers.
func TestDeployManifests(t *testing.T) {
	help, _ := exec.Command(binPath, "serve", "--help").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z-]+)`).FindAllStringSubmatch(string(help), -1) {
		flags[m[1]] = true
	}
	if !flags["policy"] {
		t.Fatalf("serve --help lists no flags:\n%s", help)
	}
	files, _ := filepath.Glob("../deploy/*/*.yaml")
	if len(files) < 3 {
		t.Fatalf("found %d manifests under deploy/", len(files))
	}
	probes := map[string]bool{}
	servers := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			walk(doc, func(c map[string]any) {
				args, _ := c["args"].([]any)
				if len(args) == 0 || args[0] != "serve" {
					return
				}
				servers++
				for _, a := range args[1:] {
					name, _, _ := strings.Cut(strings.TrimPrefix(a.(string), "--"), "=")
					if !flags[name] {
						t.Errorf("%s passes --%s, which cfmint serve does not have", f, name)
					}
				}
				for _, p := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
					if pr, ok := c[p].(map[string]any); ok {
						hg, _ := pr["httpGet"].(map[string]any)
						path, _ := hg["path"].(string)
						probes[path] = true
					}
				}
			})
		}
	}
	if servers < 2 {
		t.Errorf("found %d containers running cfmint serve; want the Kubernetes and Cloud Run ones", servers)
	}
	a := startAPI(t)
	iss := oidctest.New(t)
	b := runServe(t, a, writePolicy(t, brokerPolicy(iss, a)))
	for p := range probes {
		if r := b.do(t, "GET", p, "", nil); r.Status != 200 {
			t.Errorf("probe path %s answers %d", p, r.Status)
		}
	}
	if len(probes) < 2 {
		t.Errorf("probes %v: want liveness and readiness", probes)
	}
}

// walk calls f with every map under v that looks like a container (it has an image).
func walk(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["image"]; ok {
			f(v)
		}
		for _, x := range v {
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}
