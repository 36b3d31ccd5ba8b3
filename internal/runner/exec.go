package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// The runner's cancellation timings: SIGINT, then SIGTERM 7.5 s later, then
// SIGKILL 2.5 s after that.
const (
	DefaultTermAfter = 7500 * time.Millisecond
	DefaultKillAfter = 2500 * time.Millisecond
)

// Binary runs a built binary as Docker runs the image's entrypoint.
type Binary struct {
	// Path is the binary to run.
	Path string
	// Dir is the working directory; empty means the caller's.
	Dir string
	// TermAfter is how long after SIGINT a cancelled container gets SIGTERM;
	// zero means DefaultTermAfter.
	TermAfter time.Duration
	// KillAfter is how long after SIGTERM it gets SIGKILL; zero means
	// DefaultKillAfter.
	KillAfter time.Duration
}

// ExecBinary returns an Executor that runs the binary at path with the
// runner's timings. See Binary.Exec.
func ExecBinary(path string) Executor {
	return (&Binary{Path: path}).Exec
}

// Exec runs the binary through a symlink named like the entrypoint's base
// name in a fresh temporary directory, with argv[0] set to that base name,
// so the binary tells main from post by its own name as it will in the image
// (where /cfmint-post is a second name of /cfmint). The process gets exactly
// env: nothing of this process's environment is inherited. When ctx is done
// it gets SIGINT, SIGTERM after TermAfter and SIGKILL after KillAfter more.
// A process ended by a signal reports 128+signal, as docker run does.
func (b *Binary) Exec(ctx context.Context, argv0 string, args []string, env []string, stdout, stderr io.Writer) (int, error) {
	base := filepath.Base(argv0)
	if argv0 == "" || base == "/" || base == "." {
		return -1, fmt.Errorf("entrypoint %q has no file name", argv0)
	}
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("failed to start %s: %w", argv0, err)
	}
	target, err := filepath.Abs(b.Path)
	if err != nil {
		return -1, fmt.Errorf("failed to resolve %s: %w", b.Path, err)
	}
	if _, err := os.Stat(target); err != nil {
		return -1, fmt.Errorf("failed to find the binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "runner-entrypoint-*")
	if err != nil {
		return -1, fmt.Errorf("failed to create a directory for the entrypoint link: %w", err)
	}
	defer os.RemoveAll(dir)
	link := filepath.Join(dir, base)
	if err := os.Symlink(target, link); err != nil {
		return -1, fmt.Errorf("failed to link %s to %s: %w", link, target, err)
	}

	if env == nil {
		env = []string{} // a nil Env would inherit this process's environment
	}
	cmd := &exec.Cmd{
		Path:   link,
		Args:   append([]string{base}, args...),
		Env:    env,
		Dir:    b.Dir,
		Stdout: stdout,
		Stderr: stderr,
		// Bounds the wait for output pipes a grandchild might keep open.
		WaitDelay: 5 * time.Second,
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("failed to start %s: %w", argv0, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		waitErr = b.stop(cmd.Process, done)
	}
	return exitCode(cmd, waitErr)
}

// stop escalates SIGINT, SIGTERM, SIGKILL until the process exits.
func (b *Binary) stop(p *os.Process, done <-chan error) error {
	termAfter, killAfter := b.TermAfter, b.KillAfter
	if termAfter <= 0 {
		termAfter = DefaultTermAfter
	}
	if killAfter <= 0 {
		killAfter = DefaultKillAfter
	}
	_ = p.Signal(os.Interrupt)
	select {
	case err := <-done:
		return err
	case <-time.After(termAfter):
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(killAfter):
	}
	_ = p.Kill()
	return <-done
}

func exitCode(cmd *exec.Cmd, err error) (int, error) {
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return -1, fmt.Errorf("failed to wait for %s: %w", cmd.Args[0], err)
		}
	}
	st := cmd.ProcessState
	if st == nil {
		return -1, fmt.Errorf("failed to wait for %s: %w", cmd.Args[0], err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return st.ExitCode(), nil
}
