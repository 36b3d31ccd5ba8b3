package action

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/cfmint/cfmint/internal/brokerclient"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// stateNonce is the step's nonce for a broker: saved before the exchange, so that post can ask
// the broker to delete what it minted for this step when main never learned the token's id.
const stateNonce = "broker-nonce"

// stateRetried is "true" when main's exchange was retried: an attempt the broker turned away
// should have minted nothing, but post also revokes by nonce then, in case one did.
const stateRetried = "broker-retried"

// stateTicket is the revoke ticket the broker answered the mint with: post shows it, and the
// broker deletes the token with one Cloudflare call instead of two. It is no secret worth the
// name: it lets its holder revoke that one token early, which this run may do anyway, and the
// broker takes it only with an ID token of this run. It is masked all the same, since the runner
// debug-logs state.
const stateTicket = "broker-ticket"

// minterFor is where cfg's token comes from: a broker, or the bootstrap token.
func minterFor(d Deps, a *githubactions.Action, cfg *config.Config) minter {
	if cfg.Broker == "" {
		return newDirect(d, a, cfg)
	}
	return &viaBroker{a: a, Minter: &brokerclient.Minter{
		Client: brokerClient(d, a, cfg, a.AddMask),
		Fields: cfg.BrokerRequest,
		Save: func(nonce string, retry bool) {
			if retry {
				// Before the retry is sent: post then revokes by nonce as well as by id.
				a.SaveState(stateRetried, "true")
				return
			}
			// Before the exchange: if this process dies with it in flight, post asks the broker
			// to delete whatever carries this run's identity and this nonce.
			a.SaveState(stateNonce, nonce)
			a.SaveState(stateRevoke, "true")
			a.SaveState(statePending, "true")
			a.SaveState(stateName, "")
			a.SaveState(stateRetried, "")
		},
	}}
}

// viaBroker is a broker's Minter that saves, once the token is there, what post needs to revoke
// it, and tells of a lost answer what post will do about it.
type viaBroker struct {
	*brokerclient.Minter
	a *githubactions.Action
}

func (x *viaBroker) Mint(ctx context.Context, h mint.Hooks) (*mint.Issued, error) {
	t, err := x.Minter.Mint(ctx, h)
	if errors.Is(err, brokerclient.ErrAnswerLost) {
		return nil, fmt.Errorf("%w; the broker may have minted a token for this step: the post phase will ask it to delete what it minted for nonce %s", err, x.Nonce)
	}
	if err != nil {
		return nil, err
	}
	x.a.SaveState(stateName, t.Name)
	x.a.SaveState(stateOwner, string(t.Owner))
	x.a.SaveState(stateAccountID, t.AccountID)
	x.a.SaveState(stateExpiresOn, t.ExpiresOn.Format(time.RFC3339))
	if t.RevokeTicket != "" {
		x.a.AddMask(t.RevokeTicket)
		x.a.SaveState(stateTicket, t.RevokeTicket)
	}
	return t, nil
}

// brokerClient is a client for cfg's broker that takes ID tokens only from the runner: an earlier
// step of the job can plant $CFMINT_ID_TOKEN through $GITHUB_ENV, so that main mints under an
// identity of its choosing, or post spends an ID token already spent and never revokes. mask
// sees every ID token before it is sent.
func brokerClient(d Deps, ui UI, cfg *config.Config, mask func(string)) *brokerclient.Client {
	return &brokerclient.Client{
		Base: cfg.Broker, Audience: cfg.Audience, HTTPClient: d.HTTPClient, Lookup: d.Lookup,
		RunnerOnly: true, OnIDToken: mask,
		OnRetry: func(err *brokerclient.Error, wait time.Duration) { ui.Infof("%s", brokerclient.Retrying(err, wait)) },
	}
}

// brokerRevokeStep is revoke mode (token-id) through a broker.
func brokerRevokeStep(ctx context.Context, d Deps, a *githubactions.Action, cfg *config.Config) error {
	if err := brokerClient(d, a, cfg, a.AddMask).Revoke(ctx, cfg.TokenID); err != nil {
		return interrupted(ctx, cfg.Timeout, fmt.Errorf("%w; a broker revokes only tokens minted for this run (the same run id and attempt)", err))
	}
	msg := fmt.Sprintf("Revoked token %s through the broker (or it was already gone).", logsafe.String(cfg.TokenID))
	a.Infof("%s", msg)
	summaryLine(d, a, "cfmint: "+msg)
	return nil
}

// postBroker is the client post revokes through: the broker and audience of the inputs main read.
func postBroker(d Deps, a *githubactions.Action, in *config.Inputs) (*brokerclient.Client, error) {
	base, err := config.ParseBroker(in.Broker)
	if err != nil {
		return nil, err
	}
	cfg := &config.Config{Broker: base, Audience: base}
	if aud := strings.TrimSpace(in.Audience); aud != "" {
		cfg.Audience = aud
	}
	return brokerClient(d, a, cfg, a.AddMask), nil
}
