package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/brokerclient"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// brokerFlags are --broker, --audience and --id-token-env: mint or revoke through a cfmint
// broker, with the CI job's OIDC ID token ($CFMINT_ID_TOKEN, else the GitHub runner's, or the
// variable --id-token-env names) instead of a bootstrap token.
type brokerFlags struct {
	fs                           *flag.FlagSet
	broker, audience, idTokenEnv string
}

// registerBroker registers the flags; verb is what the broker does: "mint" or "revoke".
func registerBroker(fs *flag.FlagSet, verb string) *brokerFlags {
	b := &brokerFlags{fs: fs}
	what := "mint keyless, without a bootstrap token"
	if verb == "revoke" {
		what = "revoke through the broker that minted the token"
	}
	fs.StringVar(&b.broker, "broker", "", "a cfmint broker's URL: "+what+", with the job's ID token ($"+brokerclient.EnvIDToken+", else the GitHub runner's, or --id-token-env's)")
	fs.StringVar(&b.audience, "audience", "", "the audience to ask the runner's ID token for (default the broker URL)")
	fs.StringVar(&b.idTokenEnv, "id-token-env", "", "with --broker: the environment variable holding the ID token to spend, instead of $"+brokerclient.EnvIDToken+" or the runner's (GitLab: a second id_tokens: entry for the revoke, since the broker takes each ID token once)")
	return b
}

// check says what is wrong with --id-token-env: it needs --broker, and names a variable.
func (b *brokerFlags) check() error {
	switch v := b.idTokenEnv; {
	case v == "":
		return nil
	case strings.TrimSpace(b.broker) == "":
		return errors.New("--id-token-env: needs --broker: only a broker takes ID tokens")
	case !envName.MatchString(v):
		return fmt.Errorf("--id-token-env: %s is not a variable name; give the name alone, without $ (letters, digits and _, not starting with a digit)", logsafe.Quote(v))
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

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

// brokerClient is a client for cfg's broker, for a terminal: it takes the ID token in $idEnv when
// named, else $CFMINT_ID_TOKEN, else the runner's. mask sees every ID token before it is sent.
func (e Env) brokerClient(ui stderrUI, cfg *config.Config, idEnv string, mask func(string)) *brokerclient.Client {
	return &brokerclient.Client{
		Base: cfg.Broker, Audience: cfg.Audience, HTTPClient: e.HTTPClient, Lookup: e.Lookup, OnIDToken: mask, IDTokenEnv: idEnv,
		OnRetry: func(err *brokerclient.Error, wait time.Duration) { ui.Infof("%s", brokerclient.Retrying(err, wait)) },
	}
}

// mintVia mints as cfg says: through a broker, or directly with the bootstrap token. A broker
// mint whose answer was lost is cleaned up at once: a terminal has no post phase to do it.
func mintVia(ctx context.Context, e Env, ui stderrUI, cfg *config.Config, idEnv string) (*mint.Issued, error) {
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
	m := &brokerclient.Minter{Client: e.brokerClient(ui, cfg, idEnv, h.Mask), Fields: cfg.BrokerRequest}
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
func brokerRevoke(ctx context.Context, e Env, ui stderrUI, cfg *config.Config, idEnv string) int {
	if err := e.brokerClient(ui, cfg, idEnv, e.hooks().Mask).Revoke(ctx, cfg.TokenID); err != nil {
		// A brokerclient.Error's text is log-safe already; escaping it again would double its \\.
		fmt.Fprintf(e.Stderr, "cfmint revoke: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(e.Stderr, "Revoked token %s through the broker (or it was already gone).\n", logsafe.String(cfg.TokenID))
	return ExitOK
}
