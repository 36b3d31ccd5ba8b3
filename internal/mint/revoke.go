package mint

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// Revoke deletes one token by id. A token that is already gone is success: gone is the goal.
func (e *Engine) Revoke(ctx context.Context, owner cftoken.Owner, accountID, id string) (alreadyGone bool, err error) {
	err = e.Tokens.Delete(ctx, owner, accountID, id)
	if errors.Is(err, cftoken.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// Swept is one token a sweep found.
type Swept struct {
	ID, Name, Status string
	IssuedOn         time.Time
	ExpiresOn        time.Time
	Reason           string // "expired", "revoked" or "older than ..."
	Err              error  // set when deleting it failed
}

// SweepOptions say what a sweep takes.
type SweepOptions struct {
	Owner     cftoken.Owner
	AccountID string
	// Repo limits the sweep to tokens cfmint named for that repository, by the action
	// (NamedFor) or by a broker (BrokerNamedFor); "*" takes every repository's, the
	// brokers' included.
	Repo string
	// OlderThan also takes live tokens issued longer ago than this; 0 takes only expired ones.
	OlderThan time.Duration
	DryRun    bool
}

// Sweep deletes the tokens cfmint minted that were left behind (a runner that died before its
// post phase; revoke: false): expired ones and ones Cloudflare revoked, which still count
// against the token quota until deleted, and optionally old ones. It recognises cfmint's tokens by the names it gives them
// (NamedFor), and never touches any other token, nor another repository's.
//
// Expired and old are Cloudflare's word and clock, never the runner's: a runner whose clock is
// fast must not delete a token that still works. A token is expired when Cloudflare's status
// says so, or when its expiry is past by the Date of the list answer; its age is measured
// against that Date too. An answer without a Date leaves only the status to go by.
func (e *Engine) Sweep(ctx context.Context, o SweepOptions) ([]Swept, error) {
	ts, clock, err := e.Tokens.List(ctx, o.Owner, o.AccountID)
	if err != nil {
		return nil, err
	}
	now, onClock := clock.Now()
	if !onClock {
		e.UI.Warningf("Cloudflare's answer to the token list carried no Date header, so the sweep went by Cloudflare's status alone: only tokens it lists as expired were taken, none for being old")
	}
	var out []Swept
	var errs []error
	for _, t := range ts {
		if !NamedFor(t.Name, o.Repo) && !BrokerNamedFor(t.Name, o.Repo) {
			continue
		}
		s := Swept{ID: t.ID, Name: t.Name, Status: t.Status, IssuedOn: t.IssuedOn, ExpiresOn: t.ExpiresOn}
		switch {
		case t.Status == "expired" || (onClock && !t.ExpiresOn.IsZero() && !t.ExpiresOn.After(now)):
			s.Reason = "expired"
		case strings.HasPrefix(t.Status, "revoked"):
			// Cloudflare revoked it (a leaked secret: "revoked (exposed)"); it never works again.
			s.Reason = "revoked"
		case onClock && o.OlderThan > 0 && !t.IssuedOn.IsZero() && now.Sub(t.IssuedOn) > o.OlderThan:
			s.Reason = "older than " + Human(o.OlderThan)
		default:
			continue
		}
		if !o.DryRun {
			if err := e.Tokens.Delete(ctx, o.Owner, o.AccountID, t.ID); err != nil && !errors.Is(err, cftoken.ErrNotFound) {
				s.Err = err
				errs = append(errs, err)
			}
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// Human prints a duration the way a user writes it: 15m, 1h30m, 90s.
func Human(d time.Duration) string {
	s := d.String()
	s = strings.Replace(s, "m0s", "m", 1)
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// BootstrapGone reports whether err, Cloudflare's refusal of a call made with the bootstrap
// token, means the bootstrap token itself is no longer valid (expired, revoked by Cloudflare's
// leak scanner, deleted) rather than short of a permission. The refusal alone does not say
// which: the bootstrap token's own verify, asked on this failure path only, does.
func (e *Engine) BootstrapGone(ctx context.Context, owner cftoken.Owner, accountID string, err error) bool {
	var ae *cftoken.APIError
	if !errors.As(err, &ae) || (ae.Status != 401 && ae.Status != 403) {
		return false
	}
	_, verr := e.Tokens.Verify(ctx, owner, accountID, "")
	var ve *cftoken.APIError
	return errors.As(verr, &ve) && ve.Has(1000)
}

// RevokeCommand is the command that revokes token id later, with a valid bootstrap token in
// $CLOUDFLARE_BOOTSTRAP_TOKEN.
func RevokeCommand(owner cftoken.Owner, accountID, id string) string {
	if owner == cftoken.OwnerUser {
		return "cfmint revoke " + id + " --token-owner user"
	}
	return "cfmint revoke " + id + " --account-id " + accountID
}
