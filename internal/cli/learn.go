package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cfmint/cfmint/internal/learn"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/netaddr"
)

const learnUsage = `Usage: cfmint learn [--api-base URL] [--json] -- COMMAND [ARGS...]

Runs COMMAND once with $CLOUDFLARE_API_BASE_URL (wrangler) and $CLOUDFLARE_BASE_URL
(Cloudflare's SDKs) pointing at a recorder on 127.0.0.1, which forwards every request
unchanged to Cloudflare's API. Then it prints the least permission groups that allow
every call the command made: a cfmint step to paste, the broker rule's allow block,
the calls it has no permission data for, and the calls refused with 403.

COMMAND uses its own credentials ($CLOUDFLARE_API_TOKEN); learn never logs or keeps
them, and creates nothing at Cloudflare itself. It sees only what COMMAND did in this
run: a step that runs only on release needs a release run.

  cfmint learn -- npx wrangler deploy

Exit codes: COMMAND's own; 2 bad flags; 127 COMMAND could not be started.
`

func learnCmd(ctx context.Context, e Env, args []string) int {
	fs := newFlagSet(e, "learn", learnUsage)
	base := fs.String("api-base", learn.DefaultUpstream, "the API to forward to")
	asJSON := fs.Bool("json", false, "print the report as one JSON object on the last line of stdout")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(e.Stderr, "cfmint learn: give the command to run after --, e.g. cfmint learn -- npx wrangler deploy")
		return ExitUsage
	}
	if err := checkAPIBase(*base); err != nil {
		fmt.Fprintf(e.Stderr, "cfmint learn: --api-base: %v\n", err)
		return ExitUsage
	}
	var transport http.RoundTripper
	if e.HTTPClient != nil {
		transport = e.HTTPClient.Transport
	}
	rec, err := learn.NewRecorder(*base, learn.DefaultTable(), transport)
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint learn: --api-base: %v\n", err)
		return ExitUsage
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(e.Stderr, "cfmint learn: cannot listen on 127.0.0.1: %v\n", err)
		return ExitFail
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	local := "http://" + ln.Addr().String() + "/client/v4"

	code := runRecorded(ctx, e, fs.Args(), local)
	// The command has ended; what it left running may still be talking, but the report is of
	// what it did.
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(shut)
	cancel()
	names, lookedUp := rec.Names()
	r := learn.Analyze(rec.Calls(), names, lookedUp)
	if *asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(e.Stdout, string(logsafe.JSON(b)))
	} else {
		r.WriteText(e.Stdout)
	}
	return code
}

// checkAPIBase allows https, and http to a loopback address only: the command's credentials
// pass through.
func checkAPIBase(base string) error {
	u, err := url.Parse(base)
	switch {
	case err != nil || u.Host == "":
		return fmt.Errorf("%s is not a URL; give the API base, such as %s", logsafe.Quote(base), learn.DefaultUpstream)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && netaddr.IsLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%s is neither https nor http to a loopback address; the command's token would cross the network in the clear", logsafe.Quote(base))
}

// runRecorded runs the command with the API variables pointing at the recorder, forwards
// SIGINT and SIGTERM to it, and returns its exit code.
func runRecorded(ctx context.Context, e Env, argv []string, local string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, e.Stdout, e.Stderr
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLOUDFLARE_API_BASE_URL=") && !strings.HasPrefix(kv, "CLOUDFLARE_BASE_URL=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "CLOUDFLARE_API_BASE_URL="+local, "CLOUDFLARE_BASE_URL="+local)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(e.Stderr, "cfmint learn: cannot run %s: %v\n", logsafe.Quote(argv[0]), err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	forwarded := false
	ctxDone := ctx.Done()
	for {
		select {
		case s := <-sigs:
			forwarded = true
			_ = cmd.Process.Signal(s)
		case <-ctxDone:
			ctxDone = nil
			// A signal reaches sigs before main's context is cancelled for it; a context
			// cancelled otherwise (a caller's deadline) stops the command the same way.
			select {
			case s := <-sigs:
				forwarded = true
				_ = cmd.Process.Signal(s)
			default:
				if !forwarded {
					_ = cmd.Process.Signal(syscall.SIGTERM)
				}
			}
		case err := <-done:
			var exit *exec.ExitError
			switch {
			case err == nil:
				return ExitOK
			case errors.As(err, &exit):
				if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return exit.ExitCode()
			default:
				fmt.Fprintf(e.Stderr, "cfmint learn: %v\n", err)
				return ExitFail
			}
		}
	}
}
