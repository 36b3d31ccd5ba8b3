// Package field ties a problem to the request field it is about, so that each front end can name
// the field in its own words: input "zones" (the action), --zones (the CLI), zones (the broker).
package field

import "fmt"

// Error is a problem with one field, named as action.yml names the input; the CLI's flags and the
// broker's JSON keys carry the same names.
type Error struct {
	Name string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("input %q: %v", e.Name, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Errorf is an *Error for the named field with a formatted message.
func Errorf(name, format string, args ...any) error {
	return &Error{Name: name, Err: fmt.Errorf(format, args...)}
}

// Wrap ties err to the named field.
func Wrap(name string, err error) error { return &Error{Name: name, Err: err} }
