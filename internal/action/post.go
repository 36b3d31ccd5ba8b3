package action

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// Post runs the post phase: it revokes the token main saved in state. It never mints: it reads
// no permission inputs, only the state main left and the bootstrap token. It acts on state only
// when stateRun shows that this run's main phase wrote it (claimState).
func Post(ctx context.Context, d Deps) error {
	a := newActions(d)
	in, err := config.ReadInputs(ctx, d.Lookup)
	if err != nil {
		return report(a, err)
	}
	token := strings.TrimSpace(in.BootstrapToken)
	state := func(k string) string { return d.getenv("STATE_" + k) }
	if got := state(stateRun); !hmac.Equal([]byte(got), []byte(stateBinding(d, token))) {
		// This run's main wrote none of what is there: act on none of it.
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
		a.Infof("Nothing to revoke: the main phase did not leave a token.")
		return nil
	}
	id, name, expires, nonce := state(stateTokenID), state(stateName), state(stateExpiresOn), state(stateNonce)
	// Through a broker, main knows the step's nonce before it knows a name.
	pending := state(statePending) == "true" && (name != "" || nonce != "")
	if id == "" && !pending {
		a.Infof("Nothing to revoke: the main phase did not leave a token.")
		return nil
	}
	// revoke: false keeps a token that was handed out; one whose create was interrupted never
	// was, and nobody can use or revoke it but this phase.
	if state(stateRevoke) == "false" && !pending {
		a.Infof("revoke is false: token %s (id %s) is left to expire at %s.", logsafe.String(name), logsafe.String(id), logsafe.String(expires))
		summaryLine(d, a, fmt.Sprintf("cfmint: token `%s` (`%s`) was left to expire at %s (revoke: false).", mdEscape(name), id, expires))
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
	if nonce != "" {
		// Main went through a broker: so does the revoke, with a fresh ID token.
		return brokerPost(ctx, d, a, in, timeout, id, name, expires, nonce, state(stateRetried) == "true")
	}
	what := "token " + id
	if id == "" {
		what = "tokens named " + logsafe.Quote(name)
	}
	if token == "" {
		return report(a, fmt.Errorf("input \"bootstrap-token\": is empty in the post phase, so %s cannot be revoked; it expires at %s", what, expires))
	}
	// The same input main read: the bootstrap token goes where the workflow file says, never
	// where an environment variable an earlier step wrote says.
	base, err := config.ParseAPIBase(in.APIBaseURL)
	if err != nil {
		return report(a, field.Errorf("api-base-url", "%v; %s cannot be revoked, and expires at %s", err, what, expires))
	}
	owner := cftoken.Owner(state(stateOwner))
	acct := state(stateAccountID)
	// The revoke retries until the phase's deadline: giving up early leaves a live token behind.
	eng := &mint.Engine{Tokens: newClient(d, base, token, -1), UI: a}

	var errs []error
	gone := false // the bootstrap token itself is no longer valid
	if id != "" {
		switch err := eng.Tokens.Delete(ctx, owner, acct, id); {
		case err == nil:
			a.Infof("Revoked token %s (id %s).", logsafe.String(name), id)
			summaryLine(d, a, fmt.Sprintf("cfmint: revoked token `%s` (`%s`).", mdEscape(name), id))
		case errors.Is(err, cftoken.ErrNotFound):
			// Already gone (deleted elsewhere, or by main after a failure): the goal is met.
			a.Infof("Token %s (id %s) was already gone.", logsafe.String(name), id)
			summaryLine(d, a, fmt.Sprintf("cfmint: token `%s` (`%s`) was already gone.", mdEscape(name), id))
		default:
			gone = eng.BootstrapGone(ctx, owner, acct, err)
			errs = append(errs, err)
		}
	}
	if pending {
		// Main was interrupted with a create in flight: whatever carries this run's name is ours.
		exp, _ := time.Parse(time.RFC3339, expires)
		n, err := eng.DeleteByName(ctx, owner, acct, name, exp)
		if err != nil {
			gone = gone || eng.BootstrapGone(ctx, owner, acct, err)
			errs = append(errs, err)
		} else {
			a.Infof("The main phase's create had no clear answer (interrupted while creating, or lost); %d token(s) named %s were found and deleted.", n, logsafe.String(name))
			summaryLine(d, a, fmt.Sprintf("cfmint: the main phase's create had no clear answer; %d token(s) named `%s` were found and deleted.", n, mdEscape(name)))
		}
	}
	if len(errs) > 0 {
		summaryLine(d, a, fmt.Sprintf("cfmint: **failed to revoke** %s; it expires at %s.", mdEscape(what), expires))
		if gone {
			fix := "delete them in the dashboard"
			if id != "" {
				fix = "once a valid bootstrap token is at hand (in $CLOUDFLARE_BOOTSTRAP_TOKEN), run `" + mint.RevokeCommand(owner, acct, id) + "`, or delete it in the dashboard"
			}
			return report(a, fmt.Errorf("the bootstrap token is no longer valid (%w), so %s could not be revoked; it stays live until %s: %s; then replace the bootstrap token's secret", errors.Join(errs...), what, expires, fix))
		}
		fix := "delete them in the dashboard"
		if id != "" {
			fix = "delete it in the dashboard, or run `cfmint revoke " + id + "`"
		}
		return report(a, interrupted(ctx, timeout, fmt.Errorf("%w; %s may still be live until %s: %s", errors.Join(errs...), what, expires, fix)))
	}
	return nil
}

func summaryLine(d Deps, a interface{ AddStepSummary(string) }, line string) {
	if d.getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(line + "\n")
	}
}
