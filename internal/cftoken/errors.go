package cftoken

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/user"

	"github.com/cfmint/cfmint/internal/logsafe"
)

// Detail is one entry of the errors array of Cloudflare's envelope.
type Detail struct {
	Code    int64
	Message string
}

// APIError is an answer from Cloudflare that was not a success, reduced to what may be shown to a
// user: the SDK's own error carries the request, whose Authorization header holds a token.
type APIError struct {
	Op         string // what cfmint was doing, e.g. "create the token"
	Status     int
	Details    []Detail
	RetryAfter time.Duration // from a 429's Retry-After, when present
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "failed to %s: Cloudflare answered %d %s", e.Op, e.Status, http.StatusText(e.Status))
	for i, d := range e.Details {
		if i == 0 {
			b.WriteString(":")
		} else {
			b.WriteString(";")
		}
		// Cloudflare's words, printed as they are except for anything the runner would read
		// as a command (or a line break that starts one).
		fmt.Fprintf(&b, " %d %s", d.Code, logsafe.String(d.Message))
	}
	return b.String()
}

// Has reports whether Cloudflare's answer carries code.
func (e *APIError) Has(code int64) bool {
	for _, d := range e.Details {
		if d.Code == code {
			return true
		}
	}
	return false
}

// ErrQuotaFull is a create refused because the owner holds as many tokens as Cloudflare allows:
// 500 account-owned tokens per account, 50 user-owned per user, expired and revoked ones counted
// until deleted. Cloudflare answers it with 1001 "Exceeded the maximum number of API tokens";
// errors.Is(err, ErrQuotaFull) holds for that *APIError.
var ErrQuotaFull = errors.New("Cloudflare's limit on API tokens is reached")

// ErrAboveRole is a create refused because it grants more than the creator's member role on the
// account allows: Cloudflare's "Failed common permission check against resources. (Permission
// group: "<name>")" (status and code unverified, so only the words are matched).
// errors.Is(err, ErrAboveRole) holds for that *APIError; RefusedGroup names the group.
var ErrAboveRole = errors.New("the creator's role does not allow a permission group")

// Is makes errors.Is match ErrQuotaFull and ErrAboveRole by Cloudflare's words.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrQuotaFull:
		return e.says("maximum number of api tokens")
	case ErrAboveRole:
		return e.says("failed common permission check")
	}
	return false
}

// says reports whether some detail's message contains phrase (lower case).
func (e *APIError) says(phrase string) bool {
	for _, d := range e.Details {
		if strings.Contains(strings.ToLower(d.Message), phrase) {
			return true
		}
	}
	return false
}

// RefusedGroup names the permission group of an ErrAboveRole refusal, as Cloudflare wrote it
// (`(Permission group: "Workers KV Storage Write")`); ok is false when err is not one or names
// none.
func RefusedGroup(err error) (group string, ok bool) {
	var ae *APIError
	if !errors.As(err, &ae) || !ae.Is(ErrAboveRole) {
		return "", false
	}
	for _, d := range ae.Details {
		_, rest, found := strings.Cut(d.Message, "Permission group:")
		if !found {
			continue
		}
		rest = strings.TrimSpace(rest)
		rest = strings.TrimSuffix(rest, ")")
		if q, err := strconv.Unquote(strings.TrimSpace(rest)); err == nil {
			rest = q
		}
		if rest = strings.Trim(strings.TrimSpace(rest), `"`); rest != "" {
			return rest, true
		}
	}
	return "", false
}

// Retryable reports whether trying the same idempotent call again can succeed: rate limits and
// server faults can pass, every other 4xx will answer the same again.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// ErrNotFound is returned by Delete when the token does not exist (any more).
var ErrNotFound = errors.New("token not found")

// TransportError is a call whose answer never arrived (or arrived unreadable): the request may or
// may not have taken effect.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("failed to %s: no usable answer from Cloudflare: %v", e.Op, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// reduce turns whatever the SDK returned into an error safe to show: an *APIError for an answer,
// a *TransportError for anything else, or the context's error.
func reduce(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *user.Error
	if errors.As(err, &ae) {
		out := &APIError{Op: op, Status: ae.StatusCode}
		for _, d := range ae.Errors {
			out.Details = append(out.Details, Detail{Code: d.Code, Message: d.Message})
		}
		if ae.Response != nil {
			if s, perr := strconv.Atoi(ae.Response.Header.Get("Retry-After")); perr == nil && s >= 0 {
				out.RetryAfter = time.Duration(s) * time.Second
			}
		}
		return out
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("failed to %s: %w", op, err)
	}
	// A deadline is either the phase's (then retry stops, as the context is done) or one
	// attempt's RequestTimeout, which the SDK reports the same way: an answer that never came,
	// to be tried again, and for a create, a token that may exist.
	if errors.Is(err, context.DeadlineExceeded) {
		return &TransportError{Op: op, Err: context.DeadlineExceeded}
	}
	// Keep only the innermost cause of a transport error: the *url.Error around it names the URL,
	// which is harmless, but nothing else from the SDK's request may reach a log.
	var ne net.Error
	if errors.As(err, &ne) {
		return &TransportError{Op: op, Err: ne}
	}
	// Anything else is an answer that could not be read. Its text may quote the answer, and a
	// create's answer holds the new secret, so none of it is kept.
	return &TransportError{Op: op, Err: errors.New("its answer could not be read")}
}
