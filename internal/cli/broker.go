package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/brokerclient"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// brokerFlags are --broker and --audience: mint or revoke through a cfmint broker, with the CI
// job's OIDC ID token ($CFMINT_ID_TOKEN, else the GitHub runner's) instead of a bootstrap token.
type brokerFlags struct {
	fs               *flag.FlagSet
	broker, audience string
}

func registerBroker(fs *flag.FlagSet) *brokerFlags {
	b := &brokerFlags{fs: fs}
	fs.StringVar(&b.broker, "broker", "", "a cfmint broker's URL: mint keyless with the job's ID token ($"+brokerclient.EnvIDToken+", else the GitHub runner's)")
	fs.StringVar(&b.audience, "audience", "", "the audience to ask the ID token for (default the broker URL)")
	return b
}

// apply puts the flags into in. With a broker, the bootstrap token and account id that the
// environment supplies by default are dropped: the broker needs neither. Given as flags, they
// stay, and the validator says they cannot be combined.
func (b *brokerFlags) apply(in *config.Inputs) {
	in.Broker, in.Audience = b.broker, b.audience
	if strings.TrimSpace(b.broker) == "" {
		return
	}
	set := map[string]bool{}
	b.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["bootstrap-token"] {
		in.BootstrapToken = ""
	}
	if !set["account-id"] {
		in.AccountID = ""
	}
}

// inWorkflow reports a GitHub Actions step, where the runner reads workflow commands from
// stderr too: secrets are masked there before they are printed.
func inWorkflow(e Env) bool { return getenv(e, "GITHUB_ACTIONS") == "true" }

func (e Env) hooks() mint.Hooks {
	h := mint.Hooks{}
	if inWorkflow(e) {
		h.Mask = func(s string) { fmt.Fprintf(e.Stderr, "::add-mask::%s\n", s) }
	}
	return h
}

// brokerClient is a client for cfg's broker, for a terminal: it takes $CFMINT_ID_TOKEN, else the
// runner's ID token. mask sees every ID token before it is sent.
func (e Env) brokerClient(ui stderrUI, cfg *config.Config, mask func(string)) *brokerclient.Client {
	return &brokerclient.Client{
		Base: cfg.Broker, Audience: cfg.Audience, HTTPClient: e.HTTPClient, Lookup: e.Lookup, OnIDToken: mask,
		OnRetry: func(err *brokerclient.Error, wait time.Duration) { ui.Infof("%s", brokerclient.Retrying(err, wait)) },
	}
}

// mintVia mints as cfg says: through a broker, or directly with the bootstrap token. A broker
// mint whose answer was lost is cleaned up at once: a terminal has no post phase to do it.
func mintVia(ctx context.Context, e Env, ui stderrUI, cfg *config.Config) (*mint.Issued, error) {
	h := e.hooks()
	if cfg.Broker == "" {
		// Inside a workflow step (`run: cfmint mint`), the runner reads commands from stderr as
		// from stdout: the token and its S3 secret are masked before either reaches a line,
		// while stdout keeps the token alone for $(...) capture.
		plan, err := e.resolve(ctx, ui, cfg)
		if err != nil {
			return nil, err
		}
		return e.engine(ui, cfg).Mint(ctx, plan, h)
	}
	m := &brokerclient.Minter{Client: e.brokerClient(ui, cfg, h.Mask), Fields: cfg.BrokerRequest}
	t, err := m.Mint(ctx, h)
	if !errors.Is(err, brokerclient.ErrAnswerLost) {
		return t, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mint.CleanupBudget)
	defer cancel()
	n, cerr := m.Client.RevokeNonce(cctx, m.Nonce)
	if cerr != nil {
		return nil, fmt.Errorf("%w; cleaning up failed too (%v): a token minted for this run with nonce %s may be live until its ttl ends", err, cerr, m.Nonce)
	}
	return nil, fmt.Errorf("%w; cfmint asked the broker to delete what it minted for nonce %s: %d token(s) deleted", err, m.Nonce, n)
}

// brokerRevoke is `cfmint revoke --broker URL ID`.
func brokerRevoke(ctx context.Context, e Env, ui stderrUI, cfg *config.Config) int {
	if err := e.brokerClient(ui, cfg, e.hooks().Mask).Revoke(ctx, cfg.TokenID); err != nil {
		// A brokerclient.Error's text is log-safe already; escaping it again would double its \\.
		fmt.Fprintf(e.Stderr, "cfmint revoke: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(e.Stderr, "Revoked token %s through the broker (or it was already gone).\n", logsafe.String(cfg.TokenID))
	return ExitOK
}
