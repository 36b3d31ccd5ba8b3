// Command cfmint mints a least-privilege, IP-pinned, short-lived Cloudflare API token for a CI job
// and revokes it afterwards. As a GitHub Action its image runs it as /cfmint-main (main phase) and
// /cfmint-post (post phase); from a terminal it takes a subcommand.
package main

import (
	"context"
	_ "embed"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/cfmint/cfmint/internal/action"
	"github.com/cfmint/cfmint/internal/cli"
)

//go:embed action.yml
var actionYML []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := realMain(ctx, os.Args, os.Stdout, os.Stderr, hup)
	stop()
	os.Exit(code)
}

// realMain picks the phase by the name the binary was started under: the image holds one binary
// under two names, and a name cannot go missing the way an argument or a state value can, so the
// post phase can never mint.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer, hup <-chan os.Signal) int {
	deps := action.Deps{
		Lookup:     os.LookupEnv,
		Stdout:     stdout,
		HTTPClient: newHTTPClient(),
	}
	if code, ok := action.RunPhase(ctx, args[0], deps); ok {
		return code
	}
	return cli.Run(ctx, cli.Env{
		Args:       args[1:],
		Lookup:     os.LookupEnv,
		Stdout:     stdout,
		Stderr:     stderr,
		HTTPClient: deps.HTTPClient,
		ActionYML:  actionYML,
		Hangup:     hup,
	})
}

// newHTTPClient is the one HTTP client of the process. Timeouts are per request (set by cftoken)
// and per phase (a context deadline); proxies come from the usual variables.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Transport: t}
}
