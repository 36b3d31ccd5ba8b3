package mint

import (
	"errors"
	"fmt"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
)

// UnseenError is a create whose outcome is unknown (its answer was lost, or the wait for it
// cancelled) and whose token, if Cloudflare stored it, was not found yet: someone must look for
// tokens of that name again.
type UnseenError struct {
	Name string
	Err  error
}

func (e *UnseenError) Error() string { return e.Err.Error() }
func (e *UnseenError) Unwrap() error { return e.Err }

// UndoError is a token that had to be deleted after its create, whose delete failed: it is live
// until it expires, unless someone revokes it.
type UndoError struct {
	ID        string
	ExpiresOn time.Time
	Cause     error // why it had to go
	DeleteErr error
}

func (e *UndoError) Error() string {
	return fmt.Sprintf("%v; deleting token %s also failed (%v); it expires at %s", e.Cause, e.ID, e.DeleteErr, e.ExpiresOn.Format(time.RFC3339))
}
func (e *UndoError) Unwrap() error { return e.Cause }

// Split lists the problems of an errors.Join (of joins, at any depth), or the one error, so that
// each can be reported on its own.
func Split(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, Split(e)...)
	}
	return out
}

// Phrase renders each problem of err for a front end: field renders a FieldError's field name
// ("input \"zones\"", "--zones", "zones"); unseen and undo add who looks again. Problems that
// are none of these keep their text.
type Phrase struct {
	Field  func(name string) string
	Unseen func(name string) string // the sentence after "; "
	Undo   func(id string) string
}

// Lines phrases every problem of err, one string each.
func (ph Phrase) Lines(err error) []string {
	var out []string
	for _, e := range Split(err) {
		out = append(out, ph.One(e))
	}
	return out
}

// One phrases one problem.
func (ph Phrase) One(err error) string {
	var fe *field.Error
	var ue *UnseenError
	var de *UndoError
	switch {
	case errors.As(err, &fe) && ph.Field != nil && err == error(fe):
		return ph.Field(fe.Name) + ": " + fe.Err.Error()
	case errors.As(err, &ue) && ph.Unseen != nil:
		return err.Error() + "; " + ph.Unseen(ue.Name)
	case errors.As(err, &de) && ph.Undo != nil:
		return err.Error() + ": " + ph.Undo(de.ID)
	}
	return err.Error()
}

// explainQuotaFull says what a create refused for the token quota means, and what to do. It keeps
// err (errors.Is(result, cftoken.ErrQuotaFull) still holds).
func explainQuotaFull(err error, p *Plan) error {
	who, limit := "account "+p.AccountID, "500 account-owned tokens per account"
	if p.Owner == cftoken.OwnerUser {
		who, limit = "the bootstrap token's user", "50 user-owned tokens per user"
	}
	return fmt.Errorf("%w: %s reached Cloudflare's limit on API tokens (%s, counting expired and revoked ones until they are deleted); "+
		"delete cfmint's expired and revoked tokens with `cfmint sweep`, and other unused tokens in the dashboard, then re-run", err, who, limit)
}

// explainAboveRole says what a create refused for the creator's role means: the bootstrap
// token's user may not grant a permission group on the account, whatever the token itself holds.
func explainAboveRole(err error, p *Plan) error {
	group := "one of the permission groups asked for"
	if g, ok := cftoken.RefusedGroup(err); ok {
		group = "permission group " + logsafe.Quote(g)
	}
	where := "the account"
	if p.AccountID != "" {
		where = "account " + p.AccountID
	}
	return fmt.Errorf("%w: the bootstrap token's user may not grant %s on %s: Cloudflare caps a new token at its creator's member role; "+
		"ask an administrator of %s for a role that includes it, or leave that permission out", err, group, where, where)
}
