package action

import (
	"context"

	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/mint"
)

// Minter is where a phase or a command gets its token: directly with a bootstrap token, or from
// a broker that trusts the job's OIDC identity.
type Minter interface {
	// Mint mints what cfg asks for; h records what a later look needs, and masks secrets.
	Mint(ctx context.Context, cfg *config.Config, h mint.Hooks) (*mint.Issued, error)
	// Undo deletes a token that was minted but could not be handed out.
	Undo(ctx context.Context, t *mint.Issued, h mint.Hooks, cause error) error
	// Via names the broker the token comes from; empty when minted directly.
	Via() string
}

// Direct mints with the bootstrap token of the config, talking to Cloudflare itself.
func Direct(d Deps, ui UI, cfg *config.Config) Minter {
	return &direct{d: d, ui: ui, eng: Engine(d, ui, cfg.APIBase, cfg.BootstrapToken)}
}

type direct struct {
	d   Deps
	ui  UI
	eng *mint.Engine
}

func (x *direct) Mint(ctx context.Context, cfg *config.Config, h mint.Hooks) (*mint.Issued, error) {
	plan, err := Resolve(ctx, x.d, x.ui, cfg)
	if err != nil {
		return nil, err
	}
	return x.eng.Mint(ctx, plan, h)
}

func (x *direct) Undo(ctx context.Context, t *mint.Issued, h mint.Hooks, cause error) error {
	return x.eng.Undo(ctx, t, h, cause)
}

func (x *direct) Via() string { return "" }
