package brokerclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

// NewNonce is 16 random hex characters, a step's nonce: the broker takes 8 to 32 [a-z0-9], puts
// it in the token's name, and deletes by it what it minted for a run when the answer was lost.
func NewNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Minter mints through a broker as a front end does: each Mint sends a fresh nonce, so that a
// mint whose answer was lost can be cleaned up by it, and a token that could not be handed out
// is revoked again (Undo).
type Minter struct {
	Client *Client
	// Fields are the request's fields (preset, permissions, zones, ...); Mint adds the nonce.
	Fields map[string]string
	// Save, when set, is called before each attempt of the exchange is sent: with retry false
	// and the new nonce before the first, with retry true before each retry. A front end that
	// may die with a request in flight saves what it needs to ask the broker to delete what it
	// minted for that nonce; a retried exchange may have minted more than the token it returns.
	Save func(nonce string, retry bool)
	// Nonce is the nonce the last Mint sent; a caller whose answer was lost cleans up by it.
	Nonce string
}

// Mint asks the broker for a token; h.Created, h.Mask and h.Settled are called as the engine
// calls them. A mint whose answer was lost returns an error for which
// errors.Is(err, ErrAnswerLost) holds: clean up with Client.RevokeNonce(ctx, m.Nonce).
func (m *Minter) Mint(ctx context.Context, h mint.Hooks) (*mint.Issued, error) {
	m.Nonce = NewNonce()
	save := m.Save
	if save == nil {
		save = func(string, bool) {}
	}
	// Before the exchange: if the process dies with it in flight, the nonce is all there is to
	// find what the broker minted.
	save(m.Nonce, false)
	fields := maps.Clone(m.Fields)
	if fields == nil {
		fields = map[string]string{}
	}
	fields["nonce"] = m.Nonce
	c := *m.Client
	onRetry, nonce := c.OnRetry, m.Nonce
	c.OnRetry = func(err *Error, wait time.Duration) {
		save(nonce, true)
		if onRetry != nil {
			onRetry(err, wait)
		}
	}
	t, err := c.Mint(ctx, fields)
	switch {
	case errors.Is(err, ErrAnswerLost):
		return nil, err
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
	return t, nil
}

// Undo revokes, through the broker, a token that was minted but could not be handed out; cause is
// why. It returns cause, saying what became of the token.
func (m *Minter) Undo(ctx context.Context, t *mint.Issued, h mint.Hooks, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mint.CleanupBudget)
	defer cancel()
	if err := m.Client.RevokeWithTicket(cctx, t.ID, t.RevokeTicket); err != nil {
		return &mint.UndoError{ID: t.ID, ExpiresOn: t.ExpiresOn, Cause: cause, DeleteErr: err}
	}
	if h.Undone != nil {
		h.Undone(t.ID)
	}
	return fmt.Errorf("%w; token %s was revoked through the broker", cause, t.ID)
}

// Via names the broker the tokens come from.
func (m *Minter) Via() string { return m.Client.Base }

// Retrying is the sentence a front end prints when a Client retries (Client.OnRetry).
func Retrying(err *Error, wait time.Duration) string {
	if err.Status == 0 {
		what := "Could not reach the broker"
		if err.Unreachable {
			what += " at " + logsafe.String(err.Base)
		}
		return fmt.Sprintf("%s (%s); retrying in %s.", what, logsafe.String(err.Msg), wait.Round(time.Second))
	}
	return fmt.Sprintf("The broker answered HTTP %d (%s); retrying in %s with a fresh ID token.", err.Status, logsafe.String(err.Msg), wait.Round(time.Second))
}
