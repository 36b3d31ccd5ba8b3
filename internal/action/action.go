// Package action runs the action's two phases: main mints, masks, saves state, sets outputs, env and summary; post revokes.
package action

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// Deps is everything a phase takes from the outside world; main hands it down.
type Deps struct {
	Lookup     func(string) (string, bool) // the process environment
	Stdout     io.Writer                   // the runner reads commands from stdout
	HTTPClient *http.Client
	// Backoff is the first retry delay of idempotent calls (tests shorten it); 0 means the default.
	Backoff time.Duration
	// Timeout, when set, replaces the timeout input as each phase's deadline: tests shorten it
	// below the input's 10 s minimum instead of sleeping through it.
	Timeout time.Duration
	// RequestTimeout bounds one HTTP attempt (tests shorten it); 0 means cftoken's default.
	RequestTimeout time.Duration
	// VerifyWindow is how long main waits for a new token to become active (tests shorten it);
	// 0 means mint's default.
	VerifyWindow time.Duration
	// Sleep is how every retry of a Cloudflare call waits (backoff, Retry-After, the verify
	// loop): tests pass one that moves a fake clock instead of waiting. Nil: a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (d Deps) getenv(k string) string {
	v, _ := d.Lookup(k)
	return v
}

// State names shared by the phases. None holds a secret: the runner debug-logs state (the
// broker's revoke ticket, stateTicket, is no secret either, and is masked).
const (
	stateTokenID   = "token-id"
	stateOwner     = "owner"
	stateAccountID = "account-id"
	stateName      = "name"
	stateExpiresOn = "expires-on"
	stateRevoke    = "revoke"
	// statePending is "true" while a create is in flight: if main dies then, post looks for the
	// token by name, since its id never arrived.
	statePending = "create-pending"
	// stateRun says that this run's main phase wrote the state (see stateBinding).
	stateRun = "run"
)

// stateKeys are the state keys main owns, stateRun aside. State reaches post as STATE_<name>
// variables, and so does anything an earlier step of the job wrote to $GITHUB_ENV under those
// names; the runner replaces only the variables of keys main wrote. So main writes every key,
// empty, before anything else: post then sees main's values or none, never planted ones.
var stateKeys = []string{stateTokenID, stateOwner, stateAccountID, stateName, stateExpiresOn, stateRevoke, statePending, stateNonce, stateRetried, stateTicket}

// claimState is the first thing main does: every key empty, and stateRun bound to this run.
func claimState(d Deps, a *githubactions.Action, bootstrap string) {
	for _, k := range stateKeys {
		a.SaveState(k, "")
	}
	a.SaveState(stateRun, stateBinding(d, bootstrap))
}

// stateBinding ties state to the run, attempt and step (which the runner sets, and $GITHUB_ENV
// cannot change), keyed with the bootstrap token, which an earlier step does not have: a step
// that plants state cannot forge it for a main phase that never wrote its own (one whose
// container did not start, say). It is no secret: HMAC-SHA256 does not give its key away, and
// it holds only for this run's step. Through a broker there is no bootstrap token to key it with,
// and an earlier step could forge it; planted state then makes post ask the broker to revoke an
// id or nonce, and the broker revokes only tokens it minted for this run.
func stateBinding(d Deps, bootstrap string) string {
	coords := d.getenv("GITHUB_RUN_ID") + "." + d.getenv("GITHUB_RUN_ATTEMPT") + ":" + d.getenv("GITHUB_ACTION")
	mac := hmac.New(sha256.New, []byte(strings.TrimSpace(bootstrap)))
	mac.Write([]byte("cfmint main-phase state\x00" + coords))
	return coords + ":" + hex.EncodeToString(mac.Sum(nil)[:16])
}

// ErrReported means the phase failed and has already said why through ::error:: commands.
var ErrReported = errors.New("failed; see the errors above")

func newActions(d Deps) *githubactions.Action {
	return githubactions.New(githubactions.WithWriter(d.Stdout), githubactions.WithGetenv(d.getenv))
}

// phrase words the engine's errors for a workflow: the post phase looks again for what main
// could not settle.
var phrase = mint.Phrase{
	Unseen: func(name string) string {
		return "the post phase will look again for tokens named " + logsafe.Quote(name)
	},
	Undo: func(string) string { return "the post phase will try again" },
}

// report prints each joined error as its own annotation and returns ErrReported.
func report(a *githubactions.Action, err error) error {
	if err == nil {
		return nil
	}
	for _, line := range phrase.Lines(err) {
		a.Errorf("%s", line)
	}
	return ErrReported
}

// requireFiles checks the runner's file commands are there, so that a run outside GitHub Actions
// fails with a sentence instead of a panic halfway through a mint.
func requireFiles(d Deps, names ...string) error {
	var missing []string
	for _, n := range names {
		if d.getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not running as a GitHub Actions step: %s not set; in a terminal use `cfmint mint`", strings.Join(missing, ", "))
	}
	return nil
}

// runContext is what the runner says about this run.
func runContext(d Deps) config.Context {
	return config.Context{
		Repository: d.getenv("GITHUB_REPOSITORY"),
		RunID:      d.getenv("GITHUB_RUN_ID"),
		RunAttempt: d.getenv("GITHUB_RUN_ATTEMPT"),
		Job:        d.getenv("GITHUB_JOB"),
		Action:     d.getenv("GITHUB_ACTION"),
		SHA:        d.getenv("GITHUB_SHA"),
		Nonce:      nonce(),
	}
}

// nonce is 6 random hex characters for the default token name: names must be unique per step
// run, and the legs of a matrix job share every other coordinate.
func nonce() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func fileSafe(what, v string) error {
	if strings.ContainsAny(v, "\r\n") || strings.Contains(v, logsafe.FileCommandDelimiter) {
		return fmt.Errorf("refusing to write %s: its value contains a line break or the file-command delimiter", what)
	}
	return nil
}

// mdEscape keeps a value from breaking out of a markdown table cell or code span.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "`", "'", "<", "&lt;", ">", "&gt;", "\n", " ", "\r", " ").Replace(s)
}

// Phase names: the image holds the binary under these names and action.yml names them as the
// entrypoints.
const (
	MainName = "cfmint-main"
	PostName = "cfmint-post"
)

// IsPhase reports whether argv0 (by its base name) names one of the action's phases.
func IsPhase(argv0 string) bool {
	switch filepath.Base(argv0) {
	case MainName, PostName:
		return true
	}
	return false
}

// RunPhase runs the phase the binary was started as (by the base name of argv0) and returns its
// exit code; ok is false when argv0 names no phase.
func RunPhase(ctx context.Context, argv0 string, d Deps) (code int, ok bool) {
	var err error
	switch filepath.Base(argv0) {
	case MainName:
		err = Main(ctx, d)
	case PostName:
		err = Post(ctx, d)
	default:
		return 0, false
	}
	if err == nil {
		return 0, true
	}
	if !errors.Is(err, ErrReported) {
		// Errors are reported as annotations; anything unreported still gets one.
		newActions(d).Errorf("%s", err.Error())
	}
	return 1, true
}

// proxyFor is the proxy (host and port, never its user information) that d's client sends
// requests for base through, or "" when it sends them directly.
func proxyFor(d Deps, base string) string {
	if d.HTTPClient == nil {
		return ""
	}
	t, ok := d.HTTPClient.Transport.(*http.Transport)
	if !ok || t.Proxy == nil {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	p, err := t.Proxy(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
	if err != nil || p == nil {
		return ""
	}
	return p.Host
}
