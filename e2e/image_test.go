package e2e

// The image test. There is no Docker engine in CI, so instead of building the image it reads the
// Dockerfile, builds the binary with the Dockerfile's own `go build` line, lays out a root holding
// only what the final stage holds, and runs the binary chrooted there with an empty environment.
// If the Dockerfile changes in a way this file does not understand, the test fails and says so,
// rather than testing something else.

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/runner"
)

const (
	// imageBudget is what the whole image may weigh, uncompressed. The binary must fit in it
	// beside the distroless/static base, which weighs about 2 MiB; baseAllowance leaves it room,
	// so the binary may weigh at most 13 MiB. It weighed 12.1 MiB once Prometheus' client_golang
	// (and protobuf with it) was replaced, and 22.4 MiB before: see testDeadcode for why, which
	// fails, naming the cause, before this budget would.
	imageBudget   = 16 << 20
	baseAllowance = 3 << 20

	// demoSuccess is the last line `cfmint demo` prints when everything went as expected.
	demoSuccess = "The token worked only where it was meant to, and is gone."

	// caBundle is main.go's caBundle: the image's CA bundle, which the action's phases trust alone.
	caBundle = "/etc/ssl/certs/ca-certificates.crt"
)

var (
	varName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
	assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	digestPin  = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	pinnedRef  = regexp.MustCompile(`^docker://ghcr\.io/cfmint/cfmint(:[\w.-]+)?@sha256:[0-9a-f]{64}$`)
)

// instruction is one Dockerfile instruction, continuation lines joined and comments dropped.
type instruction struct {
	line int    // where it starts
	cmd  string // upper-cased: FROM, RUN, COPY, ...
	args string
}

// stage is one FROM and what follows it.
type stage struct {
	name, base string
	ins        []instruction
}

// parseDockerfile splits a Dockerfile into stages. It understands what this repository's
// Dockerfile uses (comments, parser directives, backslash continuations), nothing more.
func parseDockerfile(src string) ([]stage, error) {
	var (
		stages  []stage
		pending strings.Builder
		start   int
	)
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending.Len() == 0) {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending.WriteString(body + " ")
			continue
		}
		pending.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(pending.String()), " ")
		pending.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			st := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	if pending.Len() > 0 {
		return nil, fmt.Errorf("line %d: the file ends inside a continued instruction", start)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, sc.Err()
}

// shellWords splits one simple shell command into words: double and single quotes, $VAR and
// ${VAR} expanded from vars. An unknown variable is an error, so that a new build argument cannot
// slip past the test unexpanded.
func shellWords(cmd string, vars map[string]string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quote  rune
		err    error
	)
	expand := func(rest string) (string, int) {
		name, n := "", 0
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				err = fmt.Errorf("unclosed ${ in %q", cmd)
				return "", len(rest)
			}
			name, n = rest[1:end], end+1
		} else {
			m := varName.FindString(rest)
			name, n = m, len(m)
		}
		v, ok := vars[name]
		if !ok {
			err = fmt.Errorf("variable %q in %q is not one image_test.go knows; teach it what the build sets it to", name, cmd)
		}
		return v, n
	}
	for i := 0; i < len(cmd); i++ {
		c := rune(cmd[i])
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			if quote == c {
				quote = 0
			} else if quote == 0 {
				quote = c
			} else {
				cur.WriteRune(c)
			}
			inWord = true
		case c == '$':
			v, n := expand(cmd[i+1:])
			cur.WriteString(v)
			i += n
			inWord = true
		case (c == ' ' || c == '\t') && quote == 0:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", cmd)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, err
}

// imageLayout is what the test learnt from the Dockerfile and built from it.
type imageLayout struct {
	dockerfile []stage
	final      stage
	root       string            // the final stage's files, laid out for chroot
	binary     string            // the built binary, on the host
	linkerDeps string            // what the linker's -dumpdep printed while building it
	files      map[string]string // path in the image -> symlink target, or "" for a file
	entrypoint []string          // the final stage's ENTRYPOINT
}

func buildLayout(dir string) (*imageLayout, error) {
	src, err := os.ReadFile("../Dockerfile")
	if err != nil {
		return nil, fmt.Errorf("failed to read the Dockerfile: %w", err)
	}
	stages, err := parseDockerfile(string(src))
	if err != nil {
		return nil, fmt.Errorf("the Dockerfile: %w", err)
	}
	l := &imageLayout{dockerfile: stages, final: stages[len(stages)-1], files: map[string]string{}}
	l.root = filepath.Join(dir, "root")

	// The final stage: what it copies, from where; anything else it does is unknown here.
	copies := map[string][2]string{} // stage name -> {source dir, destination dir}
	for _, in := range l.final.ins {
		switch in.cmd {
		case "ARG", "LABEL", "USER": // USER is judged in testDockerfile
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &l.entrypoint); err != nil {
				return nil, fmt.Errorf("line %d of the Dockerfile: ENTRYPOINT must be the exec (JSON) form: %w", in.line, err)
			}
		case "COPY":
			f := strings.Fields(in.args)
			from, ok := strings.CutPrefix(f[0], "--from=")
			if !ok || len(f) != 3 {
				return nil, fmt.Errorf("line %d of the Dockerfile: image_test.go only knows COPY --from=STAGE SRC DST in the final stage", in.line)
			}
			copies[from] = [2]string{f[1], f[2]}
		default:
			return nil, fmt.Errorf("line %d of the Dockerfile: the final stage has %s, which image_test.go cannot lay out; teach it", in.line, in.cmd)
		}
	}
	if len(copies) != 1 {
		return nil, fmt.Errorf("the Dockerfile: the final stage copies from %d stages; image_test.go knows one", len(copies))
	}

	// The build stage's RUN with `go build`: build the binary with its flags, make its links.
	for _, st := range stages[:len(stages)-1] {
		cp, ok := copies[st.name]
		if !ok {
			continue
		}
		if err := l.runBuildStage(st, cp[0], cp[1], dir); err != nil {
			return nil, err
		}
	}
	if l.binary == "" {
		return nil, fmt.Errorf("the Dockerfile: found no `go build` in the stage the final stage copies from")
	}

	// What distroless/static brings that the binary relies on: the CA bundle (for HTTPS to
	// Cloudflare, at main.go's caBundle, the only roots the phases trust) and /tmp with mode 1777 (the demo's scratch directory). Nothing else: no
	// /etc/passwd, no /proc, no /dev, no shell.
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("the host has no CA bundle at %s to stand in for distroless's: %w", caBundle, err)
	}
	if err := os.MkdirAll(filepath.Join(l.root, path.Dir(caBundle)), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(l.root, caBundle), ca, 0o644); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(l.root, "tmp"), 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Join(l.root, "tmp"), 0o1777); err != nil {
		return nil, err
	}
	return l, nil
}

// runBuildStage does what the stage's `go build` RUN does, with the image's paths under srcDir
// mapped to dstDir in the final stage's root.
func (l *imageLayout) runBuildStage(st stage, srcDir, dstDir, dir string) error {
	vars := map[string]string{
		// BuildKit sets these for the platform being built; here it is the host's.
		"TARGETOS":   runtime.GOOS,
		"TARGETARCH": runtime.GOARCH,
	}
	var run *instruction
	for i, in := range st.ins {
		switch in.cmd {
		case "ARG":
			for _, a := range strings.Fields(in.args) {
				name, def, _ := strings.Cut(a, "=")
				if _, set := vars[name]; !set {
					vars[name] = def
				}
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				if run != nil {
					return fmt.Errorf("line %d of the Dockerfile: a second `go build`; image_test.go knows one", in.line)
				}
				run = &st.ins[i]
			}
		}
	}
	if run == nil {
		return nil
	}
	vars["VERSION"] = "image-test"
	toRoot := func(p string) (string, error) {
		rel, ok := strings.CutPrefix(p, strings.TrimSuffix(srcDir, "/")+"/")
		if !ok {
			return "", fmt.Errorf("line %d of the Dockerfile: %s is outside %s, which the final stage copies", run.line, p, srcDir)
		}
		return path.Join(dstDir, rel), nil
	}
	for _, cmd := range strings.Split(run.args, "&&") {
		words, err := shellWords(strings.TrimSpace(cmd), vars)
		if err != nil {
			return fmt.Errorf("line %d of the Dockerfile: %w", run.line, err)
		}
		var env []string
		for len(words) > 0 && assignment.MatchString(words[0]) {
			env = append(env, words[0])
			words = words[1:]
		}
		switch {
		case len(words) >= 2 && words[0] == "go" && words[1] == "build":
			args := slices.Clone(words[1:])
			i := slices.Index(args, "-o")
			if i < 0 || i+1 >= len(args) {
				return fmt.Errorf("line %d of the Dockerfile: go build without -o", run.line)
			}
			inImage, err := toRoot(args[i+1])
			if err != nil {
				return err
			}
			l.binary = filepath.Join(dir, "cfmint")
			args[i+1] = l.binary
			// The linker also prints what it kept and why (-dumpdep, which changes nothing in
			// the binary), for testDeadcode.
			if j := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "-ldflags=") }); j >= 0 {
				args[j] += " -dumpdep"
			} else {
				args = slices.Insert(args, 1, "-ldflags=-dumpdep")
			}
			l.linkerDeps = filepath.Join(dir, "linker-deps.txt")
			deps, err := os.Create(l.linkerDeps)
			if err != nil {
				return err
			}
			c := exec.Command("go", args...)
			c.Dir = ".." // the build stage's context: the repository root
			// The build image sets no GOFLAGS; neither may the host's.
			c.Env = append(os.Environ(), "GOFLAGS=")
			c.Env = append(c.Env, env...)
			c.Stdout, c.Stderr = deps, deps
			err = c.Run()
			deps.Close()
			if err != nil {
				out, _ := os.ReadFile(l.linkerDeps)
				return fmt.Errorf("failed to build the binary as the Dockerfile does (%s go %s): %w\n%s", strings.Join(env, " "), strings.Join(args, " "), err, out[max(0, len(out)-8192):])
			}
			dst := filepath.Join(l.root, inImage)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := copyFile(l.binary, dst, 0o755); err != nil {
				return err
			}
			l.files[inImage] = ""
		case len(words) == 4 && words[0] == "ln" && words[1] == "-s":
			inImage, err := toRoot(words[3])
			if err != nil {
				return err
			}
			if err := os.Symlink(words[2], filepath.Join(l.root, inImage)); err != nil {
				return err
			}
			l.files[inImage] = words[2]
		default:
			return fmt.Errorf("line %d of the Dockerfile: image_test.go does not know %q; teach it", run.line, strings.Join(words, " "))
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestImage builds the binary the way the Dockerfile does, lays out the final stage, and checks
// the result from the outside (the Dockerfile, the ELF file) and from the inside (a chroot).
func TestImage(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the image is a Linux image; these tests need Linux")
	}
	l, err := buildLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("dockerfile", func(t *testing.T) { testDockerfile(t, l) })
	t.Run("binary", func(t *testing.T) { testBinary(t, l) })
	t.Run("deadcode", func(t *testing.T) { testDeadcode(t, l) })
	t.Run("chroot", func(t *testing.T) { testChroot(t, l) })
}

// testDockerfile checks the Dockerfile against action.yml and against what the action's users
// are promised: a pinned distroless base, no USER, and both phases' names in the image.
func testDockerfile(t *testing.T, l *imageLayout) {
	act, err := runner.LoadAction("../action.yml")
	if err != nil {
		t.Fatal(err)
	}

	if !strings.HasPrefix(l.final.base, "gcr.io/distroless/static") {
		t.Errorf("final stage is FROM %s; the CA bundle path this test stands in for is distroless/static's", l.final.base)
	}
	for _, st := range l.dockerfile {
		if !digestPin.MatchString(st.base) && !slices.ContainsFunc(l.dockerfile, func(s stage) bool { return s.name == st.base }) {
			t.Errorf("FROM %s is not pinned by digest", st.base)
		}
	}
	labels := ""
	for _, in := range l.final.ins {
		switch in.cmd {
		case "USER":
			t.Errorf("Dockerfile line %d: USER; GitHub runs container actions as root and says not to set USER", in.line)
		case "LABEL":
			labels += in.args
		}
	}
	for _, label := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.licenses"} {
		if !strings.Contains(labels, label+"=") {
			t.Errorf("the final stage has no %s label", label)
		}
	}

	if !strings.EqualFold(act.Runs.Using, "docker") {
		t.Errorf("action.yml runs.using is %q, want docker", act.Runs.Using)
	}
	if img := act.Runs.Image; img != "Dockerfile" && !pinnedRef.MatchString(img) {
		t.Errorf("action.yml runs.image is %q; want Dockerfile, or docker://ghcr.io/cfmint/cfmint pinned by digest", img)
	}
	for _, ep := range []struct{ field, path string }{
		{"runs.entrypoint", act.Runs.Entrypoint},
		{"runs.post-entrypoint", act.Runs.PostEntrypoint},
	} {
		if _, ok := l.files[ep.path]; !ok {
			t.Errorf("action.yml %s is %q, which the image does not have (it has %v)", ep.field, ep.path, slices.Sorted(maps.Keys(l.files)))
		}
	}
	// The image's default is the CLI, so that `docker run IMAGE serve ...` runs the broker; the
	// runner starts each phase with action.yml's entrypoints (docker run --entrypoint), so those
	// must be named there.
	if len(l.entrypoint) != 1 || l.entrypoint[0] != "/cfmint" {
		t.Errorf("Dockerfile ENTRYPOINT is %q; want [\"/cfmint\"], the CLI", l.entrypoint)
	}
	if act.Runs.Entrypoint == "" || act.Runs.PostEntrypoint == "" {
		t.Errorf("action.yml names no entrypoint (%q) or post-entrypoint (%q); the image's default is the CLI, not a phase", act.Runs.Entrypoint, act.Runs.PostEntrypoint)
	}
}

// testBinary checks the binary is what an empty base can run: statically linked, stripped, and
// small enough for the image budget.
func testBinary(t *testing.T, l *imageLayout) {
	fi, err := os.Stat(l.binary)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("binary: %d bytes (%.1f MiB); image budget %d MiB with %d MiB for the base", fi.Size(), float64(fi.Size())/(1<<20), imageBudget>>20, baseAllowance>>20)
	if fi.Size()+baseAllowance >= imageBudget {
		t.Errorf("the binary is %d bytes; with the base image it passes the image budget of %d bytes", fi.Size(), imageBudget)
	}

	f, err := elf.Open(l.binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader the image does not have")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries the image does not have: %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table; -ldflags=-s should have stripped it")
	}
}

// testDeadcode guards the linker's dead-method elimination. The linker drops every method that
// is never called, unless a reachable function looks a method up by reflection with a name it
// cannot know (reflect.Value.Method or MethodByName, reflect.Type.Method or MethodByName with a
// name that is not a constant, which the compiler marks REFLECTMETHOD): from then on it keeps
// every exported method of every reachable type, and the binary doubles (22.4 MiB instead of
// 12.1 MiB, when protobuf, through Prometheus' client_golang, called reflect.Type.MethodByName
// through the interface, and cloudflare-go's apijson.decoderEntry, which embeds reflect.Type,
// brought that method's wrappers along). The linker's -dumpdep marks such functions
// <ReflectMethod> when it reaches them; today it reaches none, and none may come back.
func testDeadcode(t *testing.T, l *imageLayout) {
	f, err := os.Open(l.linkerDeps)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parent := map[string]string{} // symbol -> the symbol that made it reachable first
	var users []string            // the REFLECTMETHOD symbols reached, in the order reached
	edges := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			continue
		}
		edges++
		sym, flags, _ := strings.Cut(to, " <")
		if _, seen := parent[sym]; !seen {
			parent[sym], _, _ = strings.Cut(from, " <")
			if strings.Contains(flags, "ReflectMethod>") {
				users = append(users, sym)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if edges == 0 {
		t.Fatalf("the linker printed no dependency (-ldflags=-dumpdep); this test cannot tell whether it kept every method:\n%s", clipFile(l.linkerDeps))
	}
	if len(users) == 0 {
		return
	}
	var why strings.Builder
	for _, u := range users[:min(len(users), 5)] {
		chain := []string{u}
		for p := parent[u]; p != "" && p != "_" && len(chain) < 40; p = parent[p] {
			chain = append(chain, p)
		}
		slices.Reverse(chain)
		fmt.Fprintf(&why, "\n  %s, reached through:\n    %s", u, strings.Join(chain, "\n    -> "))
	}
	t.Errorf("the linker's dead-method elimination is off: it reached %d functions that look methods up by reflection with a name it cannot know, so it keeps every exported method of every reachable type (the binary is %s). Remove the import that brings them in, or the path to them. A method reached from a type (type:T -> T.MethodByName) is a wrapper of an embedded reflect.Type (cloudflare-go's apijson.decoderEntry has one), reached because something calls reflect.Type.Method or MethodByName through the interface; look for the package that does (protobuf did).%s", len(users), sizeOf(l.binary), why.String())
}

// clipFile is the start of the file at path, for a message.
func clipFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b[:min(len(b), 2048)])
}

// sizeOf is the size of the file at path, in MiB.
func sizeOf(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20))
}

// testChroot runs the binary with nothing but what the image holds: chrooted into the laid-out
// root, with an empty environment.
func testChroot(t *testing.T, l *imageLayout) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root; run the image tests as root (CI does) to run the binary inside the image's files")
	}

	t.Run("demo", func(t *testing.T) {
		code, out := runChrooted(t, l.root, "/cfmint", "demo")
		if code != 0 {
			t.Fatalf("cfmint demo exited %d:\n%s", code, out)
		}
		if !strings.Contains(out, demoSuccess) {
			t.Fatalf("cfmint demo did not say %q:\n%s", demoSuccess, out)
		}
	})
	t.Run("post without state", func(t *testing.T) {
		code, out := runChrooted(t, l.root, "/cfmint-post")
		if code != 0 {
			t.Fatalf("cfmint-post exited %d:\n%s", code, out)
		}
		if !strings.Contains(out, "Nothing to revoke") {
			t.Fatalf("cfmint-post did not say there was nothing to revoke:\n%s", out)
		}
	})
	t.Run("version", func(t *testing.T) {
		code, out := runChrooted(t, l.root, "/cfmint", "version")
		if code != 0 || !strings.Contains(out, "image-test") {
			t.Fatalf("cfmint version exited %d and said %q; want the VERSION build argument, image-test", code, out)
		}
	})
}

// runChrooted runs argv0 (a path inside root) with args, chrooted into root, in an empty
// environment, and returns its exit code and combined output. It skips the test when the
// machine does not permit chroot.
func runChrooted(t *testing.T, root, argv0 string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := &exec.Cmd{
		Path:        argv0, // resolved after the chroot
		Args:        append([]string{argv0}, args...),
		Env:         []string{}, // empty, not inherited
		Dir:         "/",
		SysProcAttr: &syscall.SysProcAttr{Chroot: root},
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if (os.IsPermission(err) || strings.Contains(err.Error(), "operation not permitted")) && os.Getenv("CI") == "" {
			t.Skipf("chroot is not permitted here (%v); the image tests need CAP_SYS_CHROOT", err)
		}
		t.Fatalf("failed to start %s in the image root: %v", argv0, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s did not finish within 2 minutes:\n%s", argv0, strings.Join(args, " "), out.String())
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String()
		}
		t.Fatalf("%s: %v", argv0, err)
	}
	return 0, out.String()
}
