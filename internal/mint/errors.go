package mint

import (
	"errors"
	"fmt"
	"time"

	"github.com/cfmint/cfmint/internal/field"
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
