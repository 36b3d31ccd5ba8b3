package runner

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// PhaseFunc runs one phase of an action inside this process, the way the action's binary would
// run it: argv0 names the phase, lookup reads the environment the container would get, and
// stdout is where the runner reads workflow commands. ok is false when argv0 names no phase.
type PhaseFunc func(ctx context.Context, argv0 string, lookup func(string) (string, bool), stdout io.Writer) (code int, ok bool)

// InProcess returns an Executor that runs phase in this process instead of a container: the
// same code, exactly the environment the container would get (nothing of this process's), and
// its stdout. As with Binary, a phase whose ctx is done before it starts never starts. The
// runner package knows no action; the caller passes the phase in.
func InProcess(phase PhaseFunc) Executor {
	return func(ctx context.Context, argv0 string, _ []string, env []string, stdout, _ io.Writer) (int, error) {
		if err := ctx.Err(); err != nil {
			return -1, fmt.Errorf("failed to start %s: %w", argv0, err)
		}
		vars := make(map[string]string, len(env))
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
		lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
		code, ok := phase(ctx, argv0, lookup, stdout)
		if !ok {
			return -1, fmt.Errorf("%s is not a phase of the action", argv0)
		}
		return code, nil
	}
}
