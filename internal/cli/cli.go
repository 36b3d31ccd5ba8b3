// Package cli is cfmint's terminal interface: its subcommands, flags, help and exit codes.
package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/cfmint/cfmint/internal/logsafe"
)

// Env is everything the CLI takes from the process; main hands it down.
type Env struct {
	Args           []string // without the program name
	Lookup         func(string) (string, bool)
	Stdout, Stderr io.Writer
	HTTPClient     *http.Client
	ActionYML      []byte // the action's contract, embedded in the binary
	// Hangup delivers SIGHUP: serve reloads its policy.
	Hangup <-chan os.Signal
	// Phase runs one of the action's phases in this process, as the image runs it: argv0 names
	// the phase, lookup is its environment, stdout where the runner reads its commands; ok is
	// false when argv0 names no phase. The demo runs the action through it; main hands it down,
	// so that the CLI, a front end of its own, does not import the action's.
	Phase func(ctx context.Context, argv0 string, lookup func(string) (string, bool), stdout io.Writer, hc *http.Client) (code int, ok bool)
}

// Exit codes.
const (
	ExitOK    = 0 // success
	ExitFail  = 1 // the operation failed (Cloudflare refused, a check failed)
	ExitUsage = 2 // the command line was wrong
)

// Version is set at build time (-ldflags "-X github.com/cfmint/cfmint/internal/cli.Version=v1.2.3").
var Version = "dev"

const usage = `cfmint mints a least-privilege, IP-pinned, short-lived Cloudflare API token
for one CI job, and revokes it when the job ends.

As a GitHub Action it runs as /cfmint-main (main phase) and /cfmint-post (post
phase); see action.yml. From a terminal:

  cfmint mint         mint a token and print it on stdout
  cfmint revoke ID    revoke a token by id
  cfmint permissions  list the permission groups a token may be granted
  cfmint sweep        delete tokens cfmint minted that were left behind
  cfmint serve        run the keyless broker: OIDC ID tokens in, tokens out
  cfmint policy       check a broker's trust policy, or test it against claims
  cfmint learn        run a command once and print the least permissions it needs
  cfmint demo         run the action's main and post phases against a built-in,
                      in-memory Cloudflare API, and show what a workflow sees
  cfmint version      print the version
  cfmint help         this text

'cfmint COMMAND --help' describes each command and its flags. The bootstrap token
comes from --bootstrap-token or $CLOUDFLARE_BOOTSTRAP_TOKEN, the account from
--account-id or $CLOUDFLARE_ACCOUNT_ID, and $CLOUDFLARE_API_BASE_URL points cfmint
at another API host.

Exit codes: 0 success, 1 Cloudflare refused or a check failed, 2 bad command line.
`

// Run runs one command and returns the process exit code.
func Run(ctx context.Context, e Env) int {
	if len(e.Args) == 0 {
		fmt.Fprint(e.Stderr, usage)
		return ExitUsage
	}
	switch cmd, rest := e.Args[0], e.Args[1:]; cmd {
	case "help", "-h", "--help":
		fmt.Fprint(e.Stdout, usage)
		return ExitOK
	case "version", "--version":
		fmt.Fprintln(e.Stdout, "cfmint", Version)
		return ExitOK
	case "demo":
		return demo(ctx, e, rest)
	case "mint":
		return mintCmd(ctx, e, rest)
	case "revoke":
		return revokeCmd(ctx, e, rest)
	case "permissions":
		return permissionsCmd(ctx, e, rest)
	case "sweep":
		return sweepCmd(ctx, e, rest)
	case "serve":
		return serveCmd(ctx, e, rest)
	case "policy":
		return policyCmd(ctx, e, rest)
	case "learn":
		return learnCmd(ctx, e, rest)
	default:
		fmt.Fprintf(e.Stderr, "cfmint: unknown command %s; commands: %s\n", logsafe.Quote(cmd), strings.Join([]string{"mint", "revoke", "permissions", "sweep", "serve", "policy", "learn", "demo", "version", "help"}, ", "))
		return ExitUsage
	}
}
