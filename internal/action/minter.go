package action

import (
	"context"

	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/mint"
)

// minter is where main gets its token: directly with the bootstrap token, or from a broker that
// trusts the job's OIDC identity (*brokerclient.Minter, through viaBroker).
type minter interface {
	// Mint mints; h records what a later look needs, and masks secrets.
	Mint(ctx context.Context, h mint.Hooks) (*mint.Issued, error)
	// Undo deletes a token that was minted but could not be handed out.
	Undo(ctx context.Context, t *mint.Issued, h mint.Hooks, cause error) error
	// Via names the broker the token comes from; empty when minted directly.
	Via() string
}

// direct mints with the bootstrap token of the config, talking to Cloudflare itself.
type direct struct {
	d   Deps
	ui  UI
	cfg *config.Config
	eng *mint.Engine
}

func newDirect(d Deps, ui UI, cfg *config.Config) *direct {
	return &direct{d: d, ui: ui, cfg: cfg, eng: engine(d, ui, cfg.APIBase, cfg.BootstrapToken)}
}

func (x *direct) Mint(ctx context.Context, h mint.Hooks) (*mint.Issued, error) {
	plan, err := resolve(ctx, x.d, x.ui, x.cfg)
	if err != nil {
		return nil, err
	}
	return x.eng.Mint(ctx, plan, h)
}

func (x *direct) Undo(ctx context.Context, t *mint.Issued, h mint.Hooks, cause error) error {
	return x.eng.Undo(ctx, t, h, cause)
}

func (x *direct) Via() string { return "" }
