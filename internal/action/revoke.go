package action

import (
	"context"
	"fmt"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/config"
)

// revokeStep is the action's revoke mode (token-id): revoke and exit; post has nothing to do.
func revokeStep(ctx context.Context, d Deps, a *githubactions.Action, cfg *config.Config) error {
	if cfg.Broker != "" {
		return brokerRevokeStep(ctx, d, a, cfg)
	}
	gone, err := engine(d, a, cfg.APIBase, cfg.BootstrapToken).Revoke(ctx, cfg.Owner, cfg.AccountID, cfg.TokenID)
	if err != nil {
		return fmt.Errorf("%w; check token-id, token-owner and account-id", err)
	}
	msg := fmt.Sprintf("Revoked token %s.", cfg.TokenID)
	if gone {
		msg = fmt.Sprintf("Token %s was already gone.", cfg.TokenID)
	}
	a.Infof("%s", msg)
	summaryLine(d, a, "cfmint: "+msg)
	return nil
}
