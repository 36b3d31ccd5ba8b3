package action

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
)

// Post runs the post phase: it revokes the token main saved in state. It never mints: it reads
// no permission inputs, only the state main left and the bootstrap token.
func Post(ctx context.Context, d Deps) error {
	a := newActions(d)
	ctx, cancel := context.WithTimeout(ctx, PhaseTimeout)
	defer cancel()

	id := d.getenv("STATE_" + stateTokenID)
	name := d.getenv("STATE_" + stateName)
	if id == "" {
		a.Infof("Nothing to revoke: the main phase did not leave a token.")
		return nil
	}
	if d.getenv("STATE_"+stateRevoke) == "false" {
		a.Infof("revoke is false: token %s (id %s) is left to expire at %s.", name, id, d.getenv("STATE_"+stateExpiresOn))
		summaryLine(d, a, fmt.Sprintf("cfmint: token `%s` (`%s`) was left to expire at %s (revoke: false).", mdEscape(name), id, d.getenv("STATE_"+stateExpiresOn)))
		return nil
	}
	in, err := config.ReadInputs(ctx, d.Lookup)
	if err != nil {
		return report(a, err)
	}
	token := strings.TrimSpace(in.BootstrapToken)
	if token == "" {
		return report(a, fmt.Errorf("input \"bootstrap-token\": is empty in the post phase, so token %s cannot be revoked; it expires at %s", id, d.getenv("STATE_"+stateExpiresOn)))
	}
	owner := cftoken.Owner(d.getenv("STATE_" + stateOwner))
	acct := d.getenv("STATE_" + stateAccountID)
	err = newClient(d, token).Delete(ctx, owner, acct, id)
	switch {
	case err == nil:
		a.Infof("Revoked token %s (id %s).", name, id)
		summaryLine(d, a, fmt.Sprintf("cfmint: revoked token `%s` (`%s`).", mdEscape(name), id))
	case errors.Is(err, cftoken.ErrNotFound):
		// Already gone (deleted elsewhere, or by main after a failure): the goal is met.
		a.Infof("Token %s (id %s) was already gone.", name, id)
		summaryLine(d, a, fmt.Sprintf("cfmint: token `%s` (`%s`) was already gone.", mdEscape(name), id))
	default:
		summaryLine(d, a, fmt.Sprintf("cfmint: **failed to revoke** token `%s` (`%s`); it expires at %s.", mdEscape(name), id, d.getenv("STATE_"+stateExpiresOn)))
		return report(a, fmt.Errorf("%w; token %s is still live until %s: delete it in the dashboard or with `cfmint revoke %s`", err, id, d.getenv("STATE_"+stateExpiresOn), id))
	}
	return nil
}

func summaryLine(d Deps, a interface{ AddStepSummary(string) }, line string) {
	if d.getenv("GITHUB_STEP_SUMMARY") != "" {
		a.AddStepSummary(line + "\n")
	}
}
