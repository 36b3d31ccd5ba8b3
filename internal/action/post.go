package action

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/brokerclient"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// left is what main left in state for post, read once.
type left struct {
	id, name  string
	expiresOn string // RFC 3339, as main saved it
	// nonce is set when main went through a broker: it knows the step's nonce before a name.
	nonce string
	// ticket is the broker's revoke ticket for id, when it answered with one.
	ticket  string
	owner   cftoken.Owner
	account string
	// pending: main was interrupted with a create or exchange in flight, so post looks for the
	// token by name or nonce.
	pending bool
	// retried: main's exchange with the broker was retried, and an earlier attempt may have
	// minted too.
	retried bool
	// keep: revoke is false, and the token was handed out.
	keep bool
}

// readLeft reads the state main left; ok is false when this run's main phase did not write it
// (claimState), which it then warns about: post acts on none of it.
func readLeft(d Deps, a *githubactions.Action, bootstrap string) (l left, ok bool) {
	state := func(k string) string { return d.getenv("STATE_" + k) }
	if got := state(stateRun); !hmac.Equal([]byte(got), []byte(stateBinding(d, bootstrap))) {
		var planted []string
		for _, k := range append(slices.Clone(stateKeys), stateRun) {
			if state(k) != "" {
				planted = append(planted, k)
			}
		}
		if len(planted) > 0 {
			also := ""
			if id := state(stateTokenID); id != "" {
				also = fmt.Sprintf(" (then revoke token %s by hand; it expires at %s)", logsafe.String(id), logsafe.String(state(stateExpiresOn)))
			}
			a.Warningf("ignored the state this phase found (%s), and revoked nothing: this step's main phase did not write it, so an earlier step of the job may have planted it through $GITHUB_ENV; or main wrote it with another bootstrap-token than this phase's%s", strings.Join(planted, ", "), also)
		}
		return left{}, false
	}
	l = left{
		id: state(stateTokenID), name: state(stateName), expiresOn: state(stateExpiresOn), nonce: state(stateNonce),
		ticket: state(stateTicket), owner: cftoken.Owner(state(stateOwner)), account: state(stateAccountID),
		retried: state(stateRetried) == "true",
	}
	l.pending = state(statePending) == "true" && (l.name != "" || l.nonce != "")
	// revoke: false keeps a token that was handed out; one whose create was interrupted never
	// was, and nobody can use or revoke it but this phase.
	l.keep = state(stateRevoke) == "false" && !l.pending
	return l, true
}

// Post runs the post phase: it revokes the token main saved in state. It never mints: it reads
// no permission inputs, only the state main left and the bootstrap token. It acts on state only
// when stateRun shows that this run's main phase wrote it (claimState).
func Post(ctx context.Context, d Deps) error {
	a := newActions(d)
	in, err := config.ReadInputs(ctx, d.Lookup)
	if err != nil {
		return report(a, err)
	}
	l, ok := readLeft(d, a, strings.TrimSpace(in.BootstrapToken))
	if !ok || (l.id == "" && !l.pending) {
		a.Infof("Nothing to revoke: the main phase did not leave a token.")
		return nil
	}
	if l.keep {
		a.Infof("revoke is false: token %s (id %s) is left to expire at %s.", logsafe.String(l.name), logsafe.String(l.id), logsafe.String(l.expiresOn))
		summaryLine(d, a, fmt.Sprintf("cfmint: token `%s` (`%s`) was left to expire at %s (revoke: false).", mdEscape(l.name), l.id, l.expiresOn))
		return nil
	}
	timeout, err := config.ParseTimeout(in.Timeout)
	if err != nil {
		// Main already reported it; post still revokes, within the default bound.
		timeout = config.DefaultTimeout
	}
	if d.Timeout > 0 {
		timeout = d.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if l.nonce != "" {
		// Main went through a broker: so does the revoke, with a fresh ID token.
		return report(a, revokeViaBroker(ctx, d, a, in, timeout, l))
	}
	return report(a, revokeDirect(ctx, d, a, in, timeout, l))
}

// revokeDirect is post for a token main minted with the bootstrap token: by id when main learned
// it, and by name when its create had no clear answer.
func revokeDirect(ctx context.Context, d Deps, a *githubactions.Action, in *config.Inputs, timeout time.Duration, l left) error {
	token := strings.TrimSpace(in.BootstrapToken)
	what := "token " + l.id
	if l.id == "" {
		what = "tokens named " + logsafe.Quote(l.name)
	}
	if token == "" {
		return fmt.Errorf("input \"bootstrap-token\": is empty in the post phase, so %s cannot be revoked; it expires at %s", what, l.expiresOn)
	}
	// The same input main read: the bootstrap token goes where the workflow file says, never
	// where an environment variable an earlier step wrote says.
	base, err := config.ParseAPIBase(in.APIBaseURL)
	if err != nil {
		return field.Errorf("api-base-url", "%v; %s cannot be revoked, and expires at %s", err, what, l.expiresOn)
	}
	// The revoke retries until the phase's deadline: giving up early leaves a live token behind.
	eng := mint.New(token, mint.Options{BaseURL: base, HTTPClient: d.HTTPClient, Backoff: d.Backoff, Attempts: -1, Sleep: d.Sleep, UI: a})
	var errs []error
	gone := false // the bootstrap token itself is no longer valid
	failed := func(err error) {
		gone = gone || eng.BootstrapGone(ctx, l.owner, l.account, err)
		errs = append(errs, err)
	}
	if l.id != "" {
		if err := deleteByID(ctx, d, a, eng, l); err != nil {
			failed(err)
		}
	}
	if l.pending {
		if err := deleteByName(ctx, d, a, eng, l); err != nil {
			failed(err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	summaryLine(d, a, fmt.Sprintf("cfmint: **failed to revoke** %s; it expires at %s.", mdEscape(what), l.expiresOn))
	if gone {
		fix := "delete them in the dashboard"
		if l.id != "" {
			fix = "once a valid bootstrap token is at hand (in $CLOUDFLARE_BOOTSTRAP_TOKEN), run `" + mint.RevokeCommand(l.owner, l.account, l.id) + "`, or delete it in the dashboard"
		}
		return fmt.Errorf("the bootstrap token is no longer valid (%w), so %s could not be revoked; it stays live until %s: %s; then replace the bootstrap token's secret", errors.Join(errs...), what, l.expiresOn, fix)
	}
	fix := "delete them in the dashboard"
	if l.id != "" {
		fix = "delete it in the dashboard, or run `cfmint revoke " + l.id + "`"
	}
	return interrupted(ctx, timeout, fmt.Errorf("%w; %s may still be live until %s: %s", errors.Join(errs...), what, l.expiresOn, fix))
}

// deleteByID deletes the token main learned the id of; one already gone is no error.
func deleteByID(ctx context.Context, d Deps, a *githubactions.Action, eng *mint.Engine, l left) error {
	switch err := eng.Tokens.Delete(ctx, l.owner, l.account, l.id); {
	case err == nil:
		a.Infof("Revoked token %s (id %s).", logsafe.String(l.name), l.id)
		summaryLine(d, a, fmt.Sprintf("cfmint: revoked token `%s` (`%s`).", mdEscape(l.name), l.id))
	case errors.Is(err, cftoken.ErrNotFound):
		// Already gone (deleted elsewhere, or by main after a failure): the goal is met.
		a.Infof("Token %s (id %s) was already gone.", logsafe.String(l.name), l.id)
		summaryLine(d, a, fmt.Sprintf("cfmint: token `%s` (`%s`) was already gone.", mdEscape(l.name), l.id))
	default:
		return err
	}
	return nil
}

// deleteByName deletes what carries this run's name: main was interrupted with a create in
// flight, so whatever has the name is ours.
func deleteByName(ctx context.Context, d Deps, a *githubactions.Action, eng *mint.Engine, l left) error {
	exp, _ := time.Parse(time.RFC3339, l.expiresOn)
	n, err := eng.DeleteByName(ctx, l.owner, l.account, l.name, exp)
	if err != nil {
		return err
	}
	a.Infof("The main phase's create had no clear answer (interrupted while creating, or lost); %d token(s) named %s were found and deleted.", n, logsafe.String(l.name))
	summaryLine(d, a, fmt.Sprintf("cfmint: the main phase's create had no clear answer; %d token(s) named `%s` were found and deleted.", n, mdEscape(l.name)))
	return nil
}

// revokeViaBroker is post for a token from a broker: by id when main learned it, else by the
// step's nonce; by both when main's exchange was retried, in case an attempt before the one that
// answered minted too. Each call spends a fresh ID token: the job's id-token permission lasts
// the whole job.
func revokeViaBroker(ctx context.Context, d Deps, a *githubactions.Action, in *config.Inputs, timeout time.Duration, l left) error {
	what := "token " + logsafe.String(l.id)
	if l.id == "" {
		what = "the token the broker may have minted for this step (nonce " + logsafe.String(l.nonce) + ")"
	} else if l.retried {
		what += " and any other token the broker minted for this step (nonce " + logsafe.String(l.nonce) + ")"
	}
	c, err := postBroker(d, a, in)
	if err != nil {
		return fmt.Errorf("input \"broker\": %v in the post phase, so %s cannot be revoked; it expires by itself", err, what)
	}
	if l.id != "" {
		err = c.RevokeWithTicket(ctx, l.id, l.ticket)
		if err == nil {
			a.Infof("Revoked token %s (id %s) through the broker.", logsafe.String(l.name), logsafe.String(l.id))
			summaryLine(d, a, fmt.Sprintf("cfmint: revoked token `%s` (`%s`) through the broker.", mdEscape(l.name), mdEscape(l.id)))
		}
	}
	if err == nil && (l.id == "" || l.retried) {
		err = revokeNonce(ctx, d, a, c, l)
	}
	if err == nil {
		return nil
	}
	until := "its expiry"
	if l.expiresOn != "" {
		until = logsafe.String(l.expiresOn)
	}
	summaryLine(d, a, fmt.Sprintf("cfmint: **failed to revoke** %s through the broker.", mdEscape(what)))
	return interrupted(ctx, timeout, fmt.Errorf("%w; %s may still be live until %s: re-run the job's post, or ask the broker's operator to delete it", err, what, until))
}

// revokeNonce asks the broker to delete whatever it minted for this step's nonce.
func revokeNonce(ctx context.Context, d Deps, a *githubactions.Action, c *brokerclient.Client, l left) error {
	n, err := c.RevokeNonce(ctx, l.nonce)
	switch {
	case err != nil:
		return err
	case l.id == "":
		a.Infof("The main phase never learned its token's id (its answer was lost or it was interrupted); the broker deleted %d token(s) minted for this step (nonce %s).", n, logsafe.String(l.nonce))
		summaryLine(d, a, fmt.Sprintf("cfmint: the main phase's exchange had no clear answer; the broker deleted %d token(s) minted for this step.", n))
	default:
		a.Infof("The main phase's exchange was retried; the broker deleted %d more token(s) minted for this step (nonce %s).", n, logsafe.String(l.nonce))
		if n > 0 {
			summaryLine(d, a, fmt.Sprintf("cfmint: the main phase's exchange was retried; the broker deleted %d more token(s) minted for this step.", n))
		}
	}
	return nil
}

func summaryLine(d Deps, a interface{ AddStepSummary(string) }, line string) {
	if d.getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(line + "\n")
	}
}
