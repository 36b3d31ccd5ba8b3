package action

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
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

// minterFor is where cfg's token comes from: a broker, or the bootstrap token.
func minterFor(d Deps, a *githubactions.Action, cfg *config.Config) Minter {
	if cfg.Broker != "" {
		return &viaBroker{d: d, ui: a, cfg: cfg, save: a.SaveState, runnerOnly: true}
	}
	return Direct(d, a, cfg)
}

// BrokerMinter mints through cfg.Broker with the job's OIDC ID token ($CFMINT_ID_TOKEN, else
// the runner's). save records state for post (nil: nothing is saved, as in a terminal).
func BrokerMinter(d Deps, ui UI, cfg *config.Config, save func(k, v string)) Minter {
	if save == nil {
		save = func(string, string) {}
	}
	return &viaBroker{d: d, ui: ui, cfg: cfg, save: save}
}

type viaBroker struct {
	d    Deps
	ui   UI
	cfg  *config.Config
	save func(k, v string)
	// runnerOnly takes ID tokens only from the runner (an action's phase): see brokerClient.
	runnerOnly bool
	// Nonce is the nonce of the last Mint, for a caller that must clean up by it.
	nonce string
}

// Nonce is the nonce the last Mint sent; a caller whose mint answer was lost cleans up by it.
func (x *viaBroker) Nonce() string { return x.nonce }

// BrokerClient is a client for cfg's broker, for a terminal: it takes $CFMINT_ID_TOKEN, else
// the runner's ID token. mask sees every ID token before it is sent.
func BrokerClient(d Deps, ui UI, cfg *config.Config, mask func(string)) *brokerclient.Client {
	return brokerClient(d, ui, cfg, mask, false)
}

// brokerClient is BrokerClient; runnerOnly ignores $CFMINT_ID_TOKEN, as the action's phases
// must: an earlier step of the job can plant it through $GITHUB_ENV, so that main mints under
// an identity of its choosing, or post spends an ID token already spent and never revokes.
func brokerClient(d Deps, ui UI, cfg *config.Config, mask func(string), runnerOnly bool) *brokerclient.Client {
	return &brokerclient.Client{
		Base: cfg.Broker, Audience: cfg.Audience, HTTPClient: d.HTTPClient, Lookup: d.Lookup,
		RunnerOnly: runnerOnly, OnIDToken: mask,
		OnRetry: func(err *brokerclient.Error, wait time.Duration) {
			ui.Infof("The broker answered HTTP %d (%s); retrying in %s with a fresh ID token.", err.Status, logsafe.String(err.Msg), wait.Round(time.Second))
		},
	}
}

func (x *viaBroker) Mint(ctx context.Context, cfg *config.Config, h mint.Hooks) (*mint.Issued, error) {
	x.nonce = brokerNonce()
	// Before the exchange: if this process dies with it in flight, post asks the broker to
	// delete whatever carries this run's identity and this nonce.
	x.save(stateNonce, x.nonce)
	x.save(stateRevoke, "true")
	x.save(statePending, "true")
	x.save(stateName, "")
	x.save(stateRetried, "")
	fields := maps.Clone(cfg.BrokerRequest)
	if fields == nil {
		fields = map[string]string{}
	}
	fields["nonce"] = x.nonce
	c := brokerClient(x.d, x.ui, cfg, h.Mask, x.runnerOnly)
	onRetry := c.OnRetry
	c.OnRetry = func(err *brokerclient.Error, wait time.Duration) {
		// Before the retry is sent: post then revokes by nonce as well as by id.
		x.save(stateRetried, "true")
		onRetry(err, wait)
	}
	t, err := c.Mint(ctx, fields)
	switch {
	case errors.Is(err, brokerclient.ErrAnswerLost):
		return nil, fmt.Errorf("%w; the broker may have minted a token for this step: the post phase will ask it to delete what it minted for nonce %s", err, x.nonce)
	case err != nil:
		// A refusal, or a request that never reached the broker: nothing was minted.
		if h.Settled != nil {
			h.Settled()
		}
		return nil, err
	}
	if h.Created != nil {
		h.Created(t.ID)
	}
	if h.Mask != nil {
		h.Mask(t.Secret)
		if s3 := t.S3Secret(); s3 != "" {
			h.Mask(s3)
		}
	}
	x.save(stateName, t.Name)
	x.save(stateOwner, string(t.Owner))
	x.save(stateAccountID, t.AccountID)
	x.save(stateExpiresOn, t.ExpiresOn.Format(time.RFC3339))
	return t, nil
}

func (x *viaBroker) Undo(ctx context.Context, t *mint.Issued, h mint.Hooks, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mint.CleanupBudget)
	defer cancel()
	if err := brokerClient(x.d, x.ui, x.cfg, h.Mask, x.runnerOnly).Revoke(cctx, t.ID); err != nil {
		return &mint.UndoError{ID: t.ID, ExpiresOn: t.ExpiresOn, Cause: cause, DeleteErr: err}
	}
	if h.Undone != nil {
		h.Undone(t.ID)
	}
	return fmt.Errorf("%w; token %s was revoked through the broker", cause, t.ID)
}

func (x *viaBroker) Via() string { return x.cfg.Broker }

// brokerNonce is 16 random hex characters: the broker takes 8 to 32 [a-z0-9].
func brokerNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// brokerRevokeStep is revoke mode (token-id) through a broker.
func brokerRevokeStep(ctx context.Context, d Deps, a *githubactions.Action, cfg *config.Config) error {
	if err := brokerClient(d, a, cfg, a.AddMask, true).Revoke(ctx, cfg.TokenID); err != nil {
		return interrupted(ctx, cfg.Timeout, fmt.Errorf("%w; a broker revokes only tokens minted for this run (the same run id and attempt)", err))
	}
	msg := fmt.Sprintf("Revoked token %s through the broker (or it was already gone).", logsafe.String(cfg.TokenID))
	a.Infof("%s", msg)
	summaryLine(d, a, "cfmint: "+msg)
	return nil
}

// brokerPost is post for a token from a broker, once Post has checked the state is main's: by id
// when main learned it, else by the step's nonce; by both when main's exchange was retried, in
// case an attempt before the one that answered minted too. It needs a fresh ID token for each
// call: the job's id-token permission lasts the whole job.
func brokerPost(ctx context.Context, d Deps, a *githubactions.Action, in *config.Inputs, timeout time.Duration, id, name, expires, nonce string, retried bool) error {
	what := "token " + logsafe.String(id)
	if id == "" {
		what = "the token the broker may have minted for this step (nonce " + logsafe.String(nonce) + ")"
	} else if retried {
		what += " and any other token the broker minted for this step (nonce " + logsafe.String(nonce) + ")"
	}
	base, err := config.ParseBroker(in.Broker)
	if err != nil {
		return report(a, fmt.Errorf("input \"broker\": %v in the post phase, so %s cannot be revoked; it expires by itself", err, what))
	}
	cfg := &config.Config{Broker: base, Audience: base}
	if aud := strings.TrimSpace(in.Audience); aud != "" {
		cfg.Audience = aud
	}
	c := brokerClient(d, a, cfg, a.AddMask, true)
	if id != "" {
		err = c.Revoke(ctx, id)
		if err == nil {
			a.Infof("Revoked token %s (id %s) through the broker.", logsafe.String(name), logsafe.String(id))
			summaryLine(d, a, fmt.Sprintf("cfmint: revoked token `%s` (`%s`) through the broker.", mdEscape(name), mdEscape(id)))
		}
	}
	if err == nil && (id == "" || retried) {
		var n int
		n, err = c.RevokeNonce(ctx, nonce)
		switch {
		case err != nil:
		case id == "":
			a.Infof("The main phase never learned its token's id (its answer was lost or it was interrupted); the broker deleted %d token(s) minted for this step (nonce %s).", n, logsafe.String(nonce))
			summaryLine(d, a, fmt.Sprintf("cfmint: the main phase's exchange had no clear answer; the broker deleted %d token(s) minted for this step.", n))
		default:
			a.Infof("The main phase's exchange was retried; the broker deleted %d more token(s) minted for this step (nonce %s).", n, logsafe.String(nonce))
			if n > 0 {
				summaryLine(d, a, fmt.Sprintf("cfmint: the main phase's exchange was retried; the broker deleted %d more token(s) minted for this step.", n))
			}
		}
	}
	if err != nil {
		until := "its expiry"
		if expires != "" {
			until = logsafe.String(expires)
		}
		summaryLine(d, a, fmt.Sprintf("cfmint: **failed to revoke** %s through the broker.", mdEscape(what)))
		return report(a, interrupted(ctx, timeout, fmt.Errorf("%w; %s may still be live until %s: re-run the job's post, or ask the broker's operator to delete it", err, what, until)))
	}
	return nil
}
