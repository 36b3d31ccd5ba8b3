// Package deploy_test checks what an operator deploys (the manifests under deploy/, the image
// references in the docs, the GitLab example, the alert rules and the dashboard) against what the
// release publishes, what the broker does and what docs/broker.md documents. It needs no binary:
// it reads files, runs the release's own shell lines, and runs kubectl kustomize and promtool
// when they are installed.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cfmint/cfmint/internal/cli"
	"github.com/cfmint/cfmint/internal/mint"
)

// root is the repository, seen from this package's directory.
const root = ".."

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docs decodes every YAML document of a file.
func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(read(t, path)))
	var out []map[string]any
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
}

// get follows a path of map keys and list indexes through decoded YAML or JSON; nil when a step
// is missing.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// find is the document of that kind and name.
func find(t *testing.T, ds []map[string]any, kind, name string) map[string]any {
	t.Helper()
	for _, d := range ds {
		if d["kind"] == kind && get(d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %q", kind, name)
	return nil
}

// walk calls f on every map in v.
func walk(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, c := range x {
			walk(c, f)
		}
	case []any:
		for _, c := range x {
			walk(c, f)
		}
	}
}

// serveArgs are the flags a `cfmint serve` command line passes, by name, with "" for a flag
// given without a value; both --name=value and --name value are understood.
func serveArgs(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: %q is not a serve command line", where, args)
	}
	flags := map[string]string{}
	for i := 1; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			t.Fatalf("%s: %q is not a flag", where, args[i])
		}
		name, value, ok := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			value = args[i]
		}
		flags[name] = value
	}
	return flags
}

// shutdownTimeout is the --shutdown-timeout a command line passes, or serve's default.
func shutdownTimeout(t *testing.T, where string, flags map[string]string) time.Duration {
	t.Helper()
	v, ok := flags["shutdown-timeout"]
	if !ok {
		v = defaultFlag(t, "shutdown-timeout")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: --shutdown-timeout %q: %v", where, v, err)
	}
	return d
}

// intFlag is an integer flag a command line passes, or serve's default.
func intFlag(t *testing.T, where string, flags map[string]string, name string) int {
	t.Helper()
	v, ok := flags[name]
	if !ok {
		v = defaultFlag(t, name)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: --%s %q: %v", where, name, v, err)
	}
	return n
}

// serveFlags are the flags internal/cli defines (name to default, as written in the source), so
// that a command line in a manifest this test reads alone (fly.toml) can be checked without the
// binary; the root package's TestDeployManifests checks the YAML ones against the binary.
func serveFlags(t *testing.T) map[string]string {
	t.Helper()
	// serve's own --help, in process: the flags and defaults the binary has, wherever they are
	// defined.
	var out bytes.Buffer
	cli.Run(context.Background(), cli.Env{
		Args:   []string{"serve", "--help"},
		Lookup: func(string) (string, bool) { return "", false },
		Stdout: &out, Stderr: &out,
	})
	def := regexp.MustCompile(`(?m)^  -([a-z-]+)(?: \w+)?\n[ \t]+(.*)$`)
	flags := map[string]string{}
	for _, m := range def.FindAllStringSubmatch(out.String(), -1) {
		v := ""
		if d := regexp.MustCompile(`\(default "?([^"()]*)"?\)$`).FindStringSubmatch(m[2]); d != nil {
			v = d[1]
		}
		flags[m[1]] = v
	}
	if _, ok := flags["shutdown-timeout"]; !ok {
		t.Fatalf("serve --help lists no --shutdown-timeout (it printed %q)", out.String())
	}
	return flags
}

// defaultFlag is the default of one of serve's flags, as a command line would write it.
func defaultFlag(t *testing.T, name string) string {
	t.Helper()
	v, ok := serveFlags(t)[name]
	if !ok {
		t.Fatalf("serve has no --%s", name)
	}
	return v
}

// cleanup is the share of --shutdown-timeout that exchanges cut short want for deleting what they
// created (mint.CleanupBudget, and a second's margin); the flag bounds the whole stop, so the
// platform's grace must cover the flag alone.
const cleanupMargin = time.Second

func cleanup() time.Duration { return mint.CleanupBudget + cleanupMargin }

// The bootstrap token's Cloudflare user may make 1200 requests per 5 minutes: serve's default
// --rate-limit, which only caps what one replica spends itself.
const cloudflareLimit = 1200

// --- 1. Images ---

// releaseTags runs the release's version step for a version (with the given releases already
// tagged) and says which tags of the image it pushes.
func releaseTags(t *testing.T, event, version string, existing ...string) ([]string, error) {
	t.Helper()
	wf := docs(t, ".github/workflows/release.yml")[0]
	image, _ := get(wf, "env", "IMAGE").(string)
	if image != "ghcr.io/cfmint/cfmint" {
		t.Fatalf("release.yml's env.IMAGE is %q", image)
	}
	var script string
	for _, s := range get(wf, "jobs", "version", "steps").([]any) {
		if get(s, "id") == "v" {
			script, _ = get(s, "run").(string)
		}
	}
	if script == "" {
		t.Fatal("release.yml's version job has no step with id v")
	}

	// A stand-in for git: ls-remote prints the existing tags as GitHub would.
	dir := t.TempDir()
	var refs strings.Builder
	for _, tag := range existing {
		fmt.Fprintf(&refs, "0123456789abcdef0123456789abcdef01234567\trefs/tags/%s\n", tag)
	}
	if err := os.WriteFile(filepath.Join(dir, "refs"), []byte(refs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	git := "#!/bin/sh\n[ \"$1\" = ls-remote ] || { echo \"unexpected git $*\" >&2; exit 2; }\ncat \"$(dirname \"$0\")/refs\"\n"
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(git), 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "output")
	cmd := exec.Command("bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script)
	cmd.Env = []string{
		"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"GITHUB_OUTPUT=" + out, "EVENT=" + event, "REPOSITORY=cfmint/cfmint",
		"INPUT_VERSION=" + version, "REF_NAME=" + version,
	}
	if event == "workflow_dispatch" {
		cmd.Env = append(cmd.Env, "REF_NAME=main")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		outputs[k] = v
	}

	var build map[string]any
	for _, s := range get(wf, "jobs", "image", "steps").([]any) {
		if uses, _ := get(s, "uses").(string); strings.HasPrefix(uses, "docker/build-push-action@") {
			build = s.(map[string]any)
		}
	}
	if build == nil {
		t.Fatal("release.yml's image job has no docker/build-push-action step")
	}
	tpl, _ := get(build, "with", "tags").(string)
	ref := regexp.MustCompile(`^\$\{\{ env\.IMAGE \}\}:\$\{\{ needs\.version\.outputs\.([a-z-]+) \}\}$`)
	var tags []string
	for _, line := range strings.FieldsFunc(tpl, func(r rune) bool { return r == '\n' || r == ',' }) {
		m := ref.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			t.Fatalf("release.yml pushes %q, which this test cannot read: write tags as ${{ env.IMAGE }}:${{ needs.version.outputs.NAME }}", line)
		}
		v, ok := outputs[m[1]]
		if !ok || v == "" {
			t.Fatalf("release.yml pushes ${{ needs.version.outputs.%s }}, which the version step does not write (it wrote %v)", m[1], outputs)
		}
		if !slices.Contains(tags, v) {
			tags = append(tags, v)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// TestReleaseTags: a release pushes X.Y.Z, and moves X.Y and X only when it is the newest of
// that line.
func TestReleaseTags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		event, version string
		existing       []string
		want           []string
	}{
		{"push", "v1.0.0", []string{"v1.0.0"}, []string{"1", "1.0", "1.0.0"}},
		{"workflow_dispatch", "v1.0.0", nil, []string{"1", "1.0", "1.0.0"}},
		{"push", "v1.0.10", []string{"v1.0.9", "v1.0.10", "v0.9.0"}, []string{"1", "1.0", "1.0.10"}},
		// A patch to an older minor line moves its X.Y, not X.
		{"push", "v1.0.1", []string{"v1.0.0", "v1.1.0", "v1.0.1"}, []string{"1.0", "1.0.1"}},
		// A patch below the newest of its own line moves neither.
		{"push", "v1.1.1", []string{"v1.1.2", "v1.1.1", "v2.0.0"}, []string{"1.1.1"}},
		// A new major line does not touch the old one's tags; v10 is not v1.
		{"push", "v2.0.0", []string{"v1.5.0", "v10.0.0", "v2.0.0"}, []string{"2", "2.0", "2.0.0"}},
		{"push", "v1.2.0", []string{"v1.2.0", "v11.0.0", "v1.20.0-rc1"}, []string{"1", "1.2", "1.2.0"}},
	} {
		got, err := releaseTags(t, c.event, c.version, c.existing...)
		if err != nil {
			t.Errorf("release %s (%s) with %v: %v", c.version, c.event, c.existing, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("release %s (%s) with %v pushes %v; want %v", c.version, c.event, c.existing, got, c.want)
		}
	}
	if _, err := releaseTags(t, "push", "v1.0"); err == nil || !strings.Contains(err.Error(), "is not vMAJOR.MINOR.PATCH") {
		t.Errorf("release v1.0: %v; want the version refused", err)
	}
}

// imageRef is a reference to cfmint's image; a tag of X, X.Y or X.Y.Z letters is a placeholder.
var imageRef = regexp.MustCompile("ghcr\\.io/cfmint/cfmint(:[A-Za-z0-9._${}-]+)?(@sha256:[^\\s`\"']+)?")

// TestImageReferences: every image of cfmint's that the manifests, the docs and the README name
// is one the release pushes; the docs' commands name a tag, never the bare repository.
func TestImageReferences(t *testing.T) {
	t.Parallel()
	type use struct{ where, ref string }
	var uses []use
	manifests, _ := filepath.Glob(filepath.Join(root, "deploy/*/*.yaml"))
	for _, f := range manifests {
		rel, _ := filepath.Rel(root, f)
		for _, d := range docs(t, rel) {
			walk(d, func(m map[string]any) {
				if img, ok := m["image"].(string); ok && strings.HasPrefix(img, "ghcr.io/cfmint/") {
					uses = append(uses, use{rel, img})
				}
			})
		}
	}
	if fly := flyToml(t); fly["build.image"] != "" {
		uses = append(uses, use{"deploy/fly/fly.toml", fly["build.image"]})
	}
	if len(uses) < 3 {
		t.Fatalf("found %d image references in deploy/; want the Kubernetes, Cloud Run and Fly ones", len(uses))
	}
	mds, _ := filepath.Glob(filepath.Join(root, "docs/*.md"))
	mds = append(mds, filepath.Join(root, "README.md"), filepath.Join(root, "CONTRIBUTING.md"))
	fence := regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
	for _, f := range mds {
		rel, _ := filepath.Rel(root, f)
		text := read(t, rel)
		for _, ref := range imageRef.FindAllString(text, -1) {
			if strings.ContainsAny(ref, ":@") {
				uses = append(uses, use{rel, ref})
			}
		}
		for _, block := range fence.FindAllStringSubmatch(text, -1) {
			for _, ref := range imageRef.FindAllString(block[1], -1) {
				if !strings.ContainsAny(ref, ":@") {
					t.Errorf("%s runs %s without a tag; name one the release pushes (ghcr.io/cfmint/cfmint:1)", rel, ref)
				}
			}
		}
	}

	placeholder := regexp.MustCompile(`^X(\.Y(\.Z)?)?$`)
	numeric := regexp.MustCompile(`^(\d+)(?:\.(\d+)(?:\.(\d+))?)?$`)
	for _, u := range uses {
		tagged, digest, _ := strings.Cut(u.ref, "@")
		_, tag, ok := strings.Cut(tagged, "ghcr.io/cfmint/cfmint:")
		if !strings.HasPrefix(u.ref, "ghcr.io/cfmint/cfmint") {
			t.Errorf("%s names %s; the release pushes ghcr.io/cfmint/cfmint", u.where, u.ref)
			continue
		}
		if !ok {
			if digest == "" {
				t.Errorf("%s names %s without a tag or digest", u.where, u.ref)
			}
			continue
		}
		if placeholder.MatchString(tag) {
			continue
		}
		m := numeric.FindStringSubmatch(tag)
		if m == nil {
			t.Errorf("%s names %s: the release pushes only X.Y.Z, X.Y and X tags (no v, no latest)", u.where, u.ref)
			continue
		}
		version := "v" + m[1] + "." + cmpOr(m[2], "0") + "." + cmpOr(m[3], "0")
		pushed, err := releaseTags(t, "workflow_dispatch", version)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pushed, tag) {
			t.Errorf("%s names %s, but releasing %s pushes only %v", u.where, u.ref, version, pushed)
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// --- 2. The GitLab example ---

// TestGitLabExample builds a release archive as release.yml does, then runs the GitLab example's
// before_script on it, with stand-ins for the downloads and apt-get: the documented extract
// command must put the binary, and only the binary, into /usr/local/bin.
func TestGitLabExample(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "tar", "gzip", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	broker := read(t, "docs/broker.md")
	i := strings.Index(broker, "## From other CI systems")
	if i < 0 {
		t.Fatal("docs/broker.md has no section \"From other CI systems\"")
	}
	block := regexp.MustCompile("(?s)```yaml\n(deploy:\n.*?)```").FindStringSubmatch(broker[i:])
	if block == nil {
		t.Fatal("docs/broker.md's GitLab section has no ```yaml block starting with deploy:")
	}
	var job struct {
		Image        string
		Variables    map[string]string
		BeforeScript []string `yaml:"before_script"`
		Script       []string
		IDTokens     map[string]any `yaml:"id_tokens"`
	}
	var jobs map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(block[1]), &jobs); err != nil {
		t.Fatalf("the GitLab example is not YAML: %v", err)
	}
	node := jobs["deploy"]
	if err := node.Decode(&job); err != nil {
		t.Fatalf("the GitLab example's deploy job: %v", err)
	}
	lines := append(slices.Clone(job.BeforeScript), job.Script...)
	all := strings.Join(lines, "\n")

	// The image has what the script needs, or the script installs it before its first use.
	image, _, _ := strings.Cut(job.Image, " ")
	if strings.Contains(all, "npx ") && !strings.HasPrefix(image, "node:") {
		t.Errorf("the GitLab example runs npx in %s, which has no Node.js; use a node image", job.Image)
	}
	installs := ""
	for _, l := range lines {
		if strings.Contains(l, "apt-get install") {
			installs += l
		}
		for _, need := range []string{"curl", "ca-certificates"} {
			if strings.Contains(l, "curl ") && !strings.Contains(installs, need) {
				t.Errorf("the GitLab example runs %q before installing %s (%s has neither curl nor the CA certificates)", l, need, job.Image)
			}
		}
	}
	if _, ok := job.IDTokens["CFMINT_ID_TOKEN"]; !ok {
		t.Errorf("the GitLab example has no id_tokens: CFMINT_ID_TOKEN, the variable cfmint mint reads")
	}

	// Build the archive as release.yml does: its directory layout, and its own tar and sha256sum
	// lines, run as they are written there.
	version := job.Variables["CFMINT_VERSION"]
	if version == "" {
		m := regexp.MustCompile(`cfmint_(\d+\.\d+\.\d+)_linux_amd64`).FindStringSubmatch(all)
		if m == nil {
			t.Fatal("the GitLab example names no release (cfmint_X.Y.Z_linux_amd64)")
		}
		version = m[1]
	}
	release := read(t, ".github/workflows/release.yml")
	tarLine := regexp.MustCompile(`(?m)^ *(tar -C build [^\n]*\\\n *\| gzip -n > [^\n]*)$`).FindStringSubmatch(release)
	sumLine := regexp.MustCompile(`(?m)^ *(\(cd dist && sha256sum [^\n]*)$`).FindStringSubmatch(release)
	if tarLine == nil || sumLine == nil {
		t.Fatal("release.yml has no `tar -C build ... | gzip -n > ...` and `(cd dist && sha256sum ...)` lines to build the archive with")
	}
	work := t.TempDir()
	name := "cfmint_" + version + "_linux_amd64"
	binary := "#!/bin/sh\necho cfmint v" + version + "\n"
	for _, dir := range []string{"build/" + name, "dist", "downloads", "bin", "tmp", "project"} {
		if err := os.MkdirAll(filepath.Join(work, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for file, content := range map[string]string{"cfmint": binary, "LICENSE": "license\n", "README.md": "readme\n"} {
		if err := os.WriteFile(filepath.Join(work, "build", name, file), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sh := func(script string, env ...string) {
		t.Helper()
		cmd := exec.Command("bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("this script failed (%v):\n%s\nits output:\n%s", err, script, out)
		}
	}
	sh(tarLine[1]+"\n"+sumLine[1], "name="+name, "epoch=1700000000")

	// Stand-ins: curl -O copies the URL's file from dist/, and apt-get does nothing.
	stand := filepath.Join(work, "standins")
	if err := os.Mkdir(stand, 0o755); err != nil {
		t.Fatal(err)
	}
	curl := "#!/bin/sh\nfor a; do url=$a; done\ncp \"$DIST/${url##*/}\" .\n"
	for file, content := range map[string]string{"curl": curl, "apt-get": "#!/bin/sh\nexit 0\n"} {
		if err := os.WriteFile(filepath.Join(stand, file), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The job's paths, moved under the test's directory.
	var script []string
	for _, l := range job.BeforeScript {
		l = strings.ReplaceAll(l, "/usr/local/bin", filepath.Join(work, "bin"))
		l = regexp.MustCompile(`\bcd /tmp\b`).ReplaceAllString(l, "cd "+filepath.Join(work, "tmp"))
		script = append(script, l)
	}
	sh(strings.Join(script, "\n"),
		"PATH="+stand+string(os.PathListSeparator)+os.Getenv("PATH"),
		"DIST="+filepath.Join(work, "dist"), "CI_PROJECT_DIR="+filepath.Join(work, "project"),
		"CFMINT_VERSION="+version)

	got, err := os.ReadFile(filepath.Join(work, "bin", "cfmint"))
	if err != nil {
		t.Fatalf("the GitLab example's before_script did not put cfmint into /usr/local/bin: %v", err)
	}
	if string(got) != binary {
		t.Errorf("/usr/local/bin/cfmint holds %q; want the archive's binary", got)
	}
	entries, _ := os.ReadDir(filepath.Join(work, "bin"))
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("/usr/local/bin holds %v; want cfmint alone", names)
	}
	if !strings.Contains(all, "sha256sum") {
		t.Errorf("the GitLab example does not check the archive against checksums.txt")
	}
}

// --- 4. Grace periods, scaling and the rate budget ---

// flyToml reads deploy/fly/fly.toml's keys, "section.key" (or "key" at the top), with string
// values unquoted. It reads the small subset of TOML the file uses: tables, arrays of tables,
// key = "string" | number | bool | [array]; a repeated key of an array of tables keeps the last.
func flyToml(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	section := ""
	kv := regexp.MustCompile(`^([a-z_]+) = (.+)$`)
	for n, line := range strings.Split(read(t, "deploy/fly/fly.toml"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			m := kv.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("deploy/fly/fly.toml:%d: %q is not key = value", n+1, line)
			}
			v := m[2]
			if strings.HasPrefix(v, `"`) {
				s, err := strconv.Unquote(v)
				if err != nil {
					t.Fatalf("deploy/fly/fly.toml:%d: %s: %v", n+1, v, err)
				}
				v = s
			}
			key := m[1]
			if section != "" {
				key = section + "." + key
			}
			out[key] = v
		}
	}
	return out
}

// TestGracePeriods: each platform waits at least --shutdown-timeout (which bounds the whole stop,
// clean-up included) before it kills the broker, and the replicas together stay within the bootstrap token's rate limit.
func TestGracePeriods(t *testing.T) {
	t.Parallel()
	need := func(where string, flags map[string]string, grace time.Duration) {
		t.Helper()
		d := shutdownTimeout(t, where, flags)
		if d > grace {
			t.Errorf("%s: --shutdown-timeout %s exceeds the platform's %s before SIGKILL", where, d, grace)
		}
	}
	// Every replica reads what is left from Cloudflare's Ratelimit header, which counts the other
	// replicas (and every other user of the same Cloudflare user) by construction: a manifest
	// that divides the limit among its replicas only starves them.
	budget := func(where string, flags map[string]string, _ int) {
		t.Helper()
		if v, ok := flags["rate-limit"]; ok {
			t.Errorf("%s: --rate-limit %s: a per-replica share is not needed (each replica reads what is left from Cloudflare's Ratelimit header); leave the default", where, v)
		}
		limit := cloudflareLimit
		if reserve := intFlag(t, where, flags, "rate-reserve"); reserve >= limit/2 {
			t.Errorf("%s: --rate-reserve %d leaves little of --rate-limit %d for mints", where, reserve, limit)
		}
	}
	container := func(d map[string]any) map[string]any {
		for _, c := range get(d, "spec", "template", "spec", "containers").([]any) {
			if args, _ := get(c, "args").([]any); len(args) > 0 && args[0] == "serve" {
				return c.(map[string]any)
			}
		}
		t.Fatalf("%v runs no cfmint serve", get(d, "metadata", "name"))
		return nil
	}
	strs := func(v any) []string {
		var out []string
		for _, a := range v.([]any) {
			out = append(out, fmt.Sprint(a))
		}
		return out
	}

	// Kubernetes: terminationGracePeriodSeconds; two replicas, and one more during a rollout
	// (maxSurge), though the one leaving stops minting.
	k8s := find(t, docs(t, "deploy/kubernetes/broker.yaml"), "Deployment", "cfmint")
	grace, ok := get(k8s, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	if !ok {
		grace = 30
	}
	kflags := serveArgs(t, "deploy/kubernetes/broker.yaml", strs(get(container(k8s), "args")))
	// A preStop hook runs before SIGTERM, within the same grace period.
	preStop, _ := get(container(k8s), "lifecycle", "preStop", "sleep", "seconds").(int)
	need("deploy/kubernetes/broker.yaml", kflags, time.Duration(grace-preStop)*time.Second)
	replicas, _ := get(k8s, "spec", "replicas").(int)
	budget("deploy/kubernetes/broker.yaml", kflags, replicas)

	// Cloud Run: SIGKILL 10 s after SIGTERM, whatever the service says.
	run := docs(t, "deploy/cloudrun/service.yaml")[0]
	rflags := serveArgs(t, "deploy/cloudrun/service.yaml", strs(get(container(run), "args")))
	need("deploy/cloudrun/service.yaml", rflags, 10*time.Second)
	maxScale, err := strconv.Atoi(fmt.Sprint(get(run, "spec", "template", "metadata", "annotations", "autoscaling.knative.dev/maxScale")))
	if err != nil {
		t.Errorf("deploy/cloudrun/service.yaml has no autoscaling.knative.dev/maxScale: %v", err)
	} else {
		budget("deploy/cloudrun/service.yaml", rflags, maxScale)
	}
	if ts, _ := get(container(run), "ports", 0, "containerPort").(int); ts != 8080 {
		t.Errorf("deploy/cloudrun/service.yaml: containerPort %d; want serve's --listen port 8080", ts)
	}

	// Fly.io: kill_signal, then SIGKILL kill_timeout later (default SIGINT and 5 s).
	fly := flyToml(t)
	fflags := serveArgs(t, "deploy/fly/fly.toml", strings.Fields(fly["processes.app"]))
	known := serveFlags(t)
	for name := range fflags {
		if _, ok := known[name]; !ok {
			t.Errorf("deploy/fly/fly.toml passes --%s, which cfmint does not have", name)
		}
	}
	kill, err := time.ParseDuration(cmpOr(fly["kill_timeout"], "5s"))
	if err != nil {
		t.Errorf("deploy/fly/fly.toml: kill_timeout %q: %v", fly["kill_timeout"], err)
	}
	need("deploy/fly/fly.toml", fflags, kill)
	if sig := fly["kill_signal"]; sig != "SIGTERM" && sig != "SIGINT" {
		t.Errorf("deploy/fly/fly.toml: kill_signal %q; the broker drains on SIGTERM or SIGINT", sig)
	}
	machines, _ := strconv.Atoi(fly["http_service.min_machines_running"])
	budget("deploy/fly/fly.toml", fflags, max(machines, 1))
	if fly["http_service.internal_port"] != "8080" || !strings.HasSuffix(fflags["listen"], ":8080") {
		t.Errorf("deploy/fly/fly.toml: internal_port %s and --listen %s disagree", fly["http_service.internal_port"], fflags["listen"])
	}
	if fly["http_service.checks.path"] != "/readyz" {
		t.Errorf("deploy/fly/fly.toml checks %q; want /readyz", fly["http_service.checks.path"])
	}
	if fly["files.guest_path"] != fflags["policy"] {
		t.Errorf("deploy/fly/fly.toml puts the policy at %q but serve reads --policy %q", fly["files.guest_path"], fflags["policy"])
	}
	if fflags["client-ip-header"] != "Fly-Client-IP" {
		t.Errorf("deploy/fly/fly.toml: --client-ip-header %q; Fly's proxy writes Fly-Client-IP", fflags["client-ip-header"])
	}
	// The metrics (rule names, the rate budget left) are never on the port callers reach.
	for _, m := range []struct {
		where string
		flags map[string]string
		want  string
	}{
		{"deploy/kubernetes/broker.yaml", kflags, ":9464"},
		{"deploy/cloudrun/service.yaml", rflags, "127.0.0.1:9464"},
		{"deploy/fly/fly.toml", fflags, ":" + fly["metrics.port"]},
	} {
		if got := m.flags["metrics-listen"]; got != m.want || got == m.flags["listen"] {
			t.Errorf("%s: --metrics-listen %q; want %s, a port callers do not reach", m.where, got, m.want)
		}
	}
	if fly["metrics.path"] != "/metrics" {
		t.Errorf("deploy/fly/fly.toml: [metrics] path %q; want /metrics", fly["metrics.path"])
	}

	// docs/broker.md's table of grace periods says what the manifests set.
	broker := read(t, "docs/broker.md")
	for _, want := range []string{
		fmt.Sprintf("%d s, `--shutdown-timeout=%s`", grace, kflags["shutdown-timeout"]),
		fmt.Sprintf("`--shutdown-timeout=%s`", rflags["shutdown-timeout"]),
		fmt.Sprintf("`kill_timeout = %q`", fly["kill_timeout"]),
		fmt.Sprintf("`--shutdown-timeout %s`", fflags["shutdown-timeout"]),
		fmt.Sprintf("last %d s", int(cleanup().Seconds())),
	} {
		if !strings.Contains(broker, want) {
			t.Errorf("docs/broker.md does not say %q, which the manifests set", want)
		}
	}
}

// --- 4. Kubernetes ---

// TestKustomization: kustomization.yaml lists every manifest of deploy/kubernetes, and its
// parameters reach the NetworkPolicy and the Ingress.
func TestKustomization(t *testing.T) {
	t.Parallel()
	k := docs(t, "deploy/kubernetes/kustomization.yaml")[0]
	var listed []string
	for _, r := range k["resources"].([]any) {
		listed = append(listed, r.(string))
	}
	files, _ := filepath.Glob(filepath.Join(root, "deploy/kubernetes/*.yaml"))
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("kustomization.yaml lists %v; deploy/kubernetes holds %v", listed, want)
	}

	var all []map[string]any
	for _, f := range want {
		all = append(all, docs(t, "deploy/kubernetes/"+f)...)
	}
	svc := find(t, all, "Service", "cfmint")
	port, metricsPort := get(svc, "spec", "ports", 0, "name"), get(svc, "spec", "ports", 1, "name")
	if port != "http" || metricsPort != "metrics" {
		t.Fatalf("the Service's ports are %v; want http (the API) and metrics", get(svc, "spec", "ports"))
	}
	sm := find(t, all, "ServiceMonitor", "cfmint")
	if !reflect.DeepEqual(get(sm, "spec", "selector", "matchLabels"), get(svc, "metadata", "labels")) {
		t.Errorf("the ServiceMonitor selects %v; the Service is labelled %v", get(sm, "spec", "selector", "matchLabels"), get(svc, "metadata", "labels"))
	}
	if get(sm, "spec", "endpoints", 0, "port") != metricsPort || get(sm, "spec", "endpoints", 0, "path") != "/metrics" {
		t.Errorf("the ServiceMonitor scrapes port %v path %v; want the Service's port %v, /metrics", get(sm, "spec", "endpoints", 0, "port"), get(sm, "spec", "endpoints", 0, "path"), metricsPort)
	}
	// The API's port admits the ingress alone (it may write the client-IP header); Prometheus
	// reaches the metrics port alone.
	np := find(t, all, "NetworkPolicy", "cfmint")
	if p0, p1 := get(np, "spec", "ingress", 0, "ports", 0, "port"), get(np, "spec", "ingress", 1, "ports", 0, "port"); p0 != 8080 || p1 != 9464 || len(get(np, "spec", "ingress").([]any)) != 2 {
		t.Errorf("the NetworkPolicy admits the ingress on %v and Prometheus on %v; want 8080 (the API) and 9464 (the metrics) alone", p0, p1)
	}
	ing := find(t, all, "Ingress", "cfmint")
	for _, p := range get(ing, "spec", "rules", 0, "http", "paths").([]any) {
		if get(p, "backend", "service", "name") != "cfmint" || get(p, "backend", "service", "port", "name") != port {
			t.Errorf("the Ingress routes %v to %v", get(p, "path"), get(p, "backend"))
		}
		if path, _ := get(p, "path").(string); !strings.HasPrefix(path, "/v1/") {
			t.Errorf("the Ingress routes %s from outside; route only /v1/ (/readyz says whether the bootstrap token works)", path)
		}
	}
	redis := find(t, all, "NetworkPolicy", "cfmint-redis")
	if !reflect.DeepEqual(get(redis, "spec", "podSelector", "matchLabels"), map[string]any{"app": "cfmint-redis"}) ||
		!reflect.DeepEqual(get(redis, "spec", "ingress", 0, "from"), []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "cfmint"}}}}) {
		t.Errorf("the Redis NetworkPolicy does not admit the broker's pods alone: %v", redis["spec"])
	}

	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skipf("kubectl is not installed, so kustomize's output is not checked: %v", err)
	}
	// Build it twice: as shipped, and with every parameter changed.
	params := docs(t, "deploy/kubernetes/params.yaml")[0]["data"].(map[string]any)
	changed := map[string]any{}
	for k, v := range params {
		changed[k] = "changed-" + fmt.Sprint(v)
	}
	for _, p := range []map[string]any{params, changed} {
		dir := t.TempDir()
		for _, f := range append(want, "kustomization.yaml") {
			b := []byte(read(t, "deploy/kubernetes/"+f))
			if f == "params.yaml" {
				d := docs(t, "deploy/kubernetes/params.yaml")[0]
				d["data"] = p
				b, _ = yaml.Marshal(d)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command("kubectl", "kustomize", dir).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize: %v", err)
		}
		var built []map[string]any
		dec := yaml.NewDecoder(bytes.NewReader(out))
		for {
			var d map[string]any
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			built = append(built, d)
		}
		for _, d := range built {
			if d["kind"] == "ConfigMap" && get(d, "metadata", "name") == "cfmint-params" {
				t.Errorf("kustomize applies the parameters' ConfigMap; it is local-config")
			}
		}
		np := find(t, built, "NetworkPolicy", "cfmint")
		ns := func(i int) any {
			return get(np, "spec", "ingress", i, "from", 0, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name")
		}
		ingress := find(t, built, "Ingress", "cfmint")
		for _, c := range []struct {
			param string
			got   any
		}{
			{"ingress-namespace", ns(0)},
			{"prometheus-namespace", ns(1)},
			{"ingress-class", get(ingress, "spec", "ingressClassName")},
			{"host", get(ingress, "spec", "rules", 0, "host")},
			{"host", get(ingress, "spec", "tls", 0, "hosts", 0)},
		} {
			if c.got != p[c.param] {
				t.Errorf("with %s %q, kustomize writes %v", c.param, p[c.param], c.got)
			}
		}
	}
}

// --- 4. Alerts and the dashboard ---

// documented are the cfmint_ series docs/broker.md's metrics table lists, with their types.
func documented(t *testing.T) map[string]string {
	t.Helper()
	row := regexp.MustCompile("(?m)^\\| `(cfmint_[a-z_]+)` \\| ([^|]+) \\|")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(read(t, "docs/broker.md"), -1) {
		out[m[1]] = strings.Fields(strings.TrimRight(m[2], ",:"))[0]
	}
	if len(out) < 5 {
		t.Fatalf("docs/broker.md's metrics table lists %d series", len(out))
	}
	return out
}

// series are the cfmint_ series an expression reads, the histograms' _bucket, _sum and _count
// reduced to the metric's name. Every expression must read one.
func series(t *testing.T, where, expr string, known map[string]string) []string {
	t.Helper()
	var out []string
	for _, name := range regexp.MustCompile(`\b[a-z_:]*cfmint_[a-z0-9_]+\b`).FindAllString(expr, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && known[b] == "histogram" {
				base = b
			}
		}
		if _, ok := known[base]; !ok {
			t.Errorf("%s reads %s, which docs/broker.md's metrics table does not document", where, name)
		}
		out = append(out, base)
	}
	if len(out) == 0 {
		t.Errorf("%s reads no cfmint_ series: %s", where, expr)
	}
	return out
}

// TestAlertRules: the plain rules file and the PrometheusRule hold the same groups, every alert
// reads documented series, and together they cover what an operator must hear about.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	plain := docs(t, "deploy/prometheus/cfmint.rules.yaml")[0]
	pr := find(t, docs(t, "deploy/kubernetes/prometheusrule.yaml"), "PrometheusRule", "cfmint")
	if !reflect.DeepEqual(plain["groups"], get(pr, "spec", "groups")) {
		t.Errorf("deploy/prometheus/cfmint.rules.yaml and deploy/kubernetes/prometheusrule.yaml hold different groups")
	}
	known := documented(t)
	covered := map[string]bool{}
	for _, g := range plain["groups"].([]any) {
		for _, r := range get(g, "rules").([]any) {
			name, _ := get(r, "alert").(string)
			expr, _ := get(r, "expr").(string)
			if name == "" || expr == "" {
				t.Errorf("rule %v has no alert name or no expr", r)
				continue
			}
			for _, s := range series(t, "alert "+name, expr, known) {
				covered[s] = true
			}
			if sev := get(r, "labels", "severity"); sev != "critical" && sev != "warning" {
				t.Errorf("alert %s: severity %v; want critical or warning", name, sev)
			}
			if s, _ := get(r, "annotations", "summary").(string); s == "" {
				t.Errorf("alert %s has no summary", name)
			}
		}
	}
	for _, s := range []string{
		"cfmint_replay_store_errors_total", "cfmint_ratelimit_budget_remaining",
		"cfmint_bootstrap_token_valid", "cfmint_policy_reload_errors_total", "cfmint_exchanges_total",
	} {
		if !covered[s] {
			t.Errorf("no alert reads %s", s)
		}
	}

	// The budget alert fires before mints are refused: above every --rate-reserve deployed.
	m := regexp.MustCompile(`cfmint_ratelimit_budget_remaining\)? < (\d+)`).FindStringSubmatch(read(t, "deploy/prometheus/cfmint.rules.yaml"))
	if m == nil {
		t.Fatal("the budget alert is not `... cfmint_ratelimit_budget_remaining) < N`")
	}
	threshold, _ := strconv.Atoi(m[1])
	for _, where := range []string{"deploy/kubernetes/broker.yaml", "deploy/cloudrun/service.yaml"} {
		for _, d := range docs(t, where) {
			walk(d, func(c map[string]any) {
				args, _ := c["args"].([]any)
				if len(args) == 0 || args[0] != "serve" {
					return
				}
				var s []string
				for _, a := range args {
					s = append(s, fmt.Sprint(a))
				}
				if reserve := intFlag(t, where, serveArgs(t, where, s), "rate-reserve"); reserve >= threshold {
					t.Errorf("%s: --rate-reserve %d, but the budget alert fires below %d", where, reserve, threshold)
				}
			})
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil && os.Getenv("CI") == "true" {
		t.Fatalf("promtool is not installed, and CI=true: install it (apt-get install prometheus): %v", err)
	} else if err != nil {
		t.Skipf("promtool is not installed (apt-get install prometheus), so the rules are not checked by it: %v", err)
	}
	for _, args := range [][]string{
		{"check", "rules", "cfmint.rules.yaml"},
		{"test", "rules", "cfmint.rules.test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join(root, "deploy/prometheus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDashboard: the Grafana dashboard is JSON, its panels read only documented series, and
// every documented cfmint_ series has a panel.
func TestDashboard(t *testing.T) {
	t.Parallel()
	var d map[string]any
	if err := json.Unmarshal([]byte(read(t, "deploy/grafana/cfmint-dashboard.json")), &d); err != nil {
		t.Fatalf("deploy/grafana/cfmint-dashboard.json: %v", err)
	}
	known := documented(t)
	shown := map[string]bool{}
	ids := map[float64]bool{}
	panels, _ := d["panels"].([]any)
	if len(panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range panels {
		title, _ := get(p, "title").(string)
		id, _ := get(p, "id").(float64)
		if ids[id] {
			t.Errorf("panel %q repeats id %v", title, id)
		}
		ids[id] = true
		if get(p, "datasource", "uid") != "${datasource}" {
			t.Errorf("panel %q's data source is %v; want the dashboard's ${datasource} variable", title, get(p, "datasource"))
		}
		targets, _ := get(p, "targets").([]any)
		if len(targets) == 0 {
			t.Errorf("panel %q has no queries", title)
		}
		for _, tg := range targets {
			expr, _ := get(tg, "expr").(string)
			for _, s := range series(t, "panel "+strconv.Quote(title), expr, known) {
				shown[s] = true
			}
		}
	}
	for s := range known {
		if !shown[s] {
			t.Errorf("no panel of the dashboard shows %s", s)
		}
	}
}
