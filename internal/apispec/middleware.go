package apispec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Violation is one exchange that broke the spec.
type Violation struct {
	// Method is the request method.
	Method string
	// Path is the request path relative to the API base, as matched against
	// the spec (e.g. "/user/tokens/verify").
	Path string
	// OperationID names the spec operation the exchange was checked against.
	OperationID string
	// Kind is "request" or "response".
	Kind string
	// Status is the response status; 0 for request violations.
	Status int
	// Err describes every problem found on that side of the exchange. It
	// never contains header values.
	Err error
}

// String formats the violation for a test log.
func (v Violation) String() string {
	if v.Kind == "response" {
		return fmt.Sprintf("apispec: %s violation: %s %s -> %d: %v", v.Kind, v.Method, v.Path, v.Status, v.Err)
	}
	return fmt.Sprintf("apispec: %s violation: %s %s: %v", v.Kind, v.Method, v.Path, v.Err)
}

// Middleware wraps next, the fake API served under prefix (e.g.
// "/client/v4"), and reports through report every request or response that
// breaks the spec. Only requests whose path, after stripping prefix, has an
// operation in the spec are checked; all others pass through unchecked.
//
// Requests and responses reach next and the client unchanged: the request
// body is read and restored, and the response is copied to the client as it
// is written while a copy is kept for validation. At most one violation per
// side is reported for an exchange, request before response. The handler is
// safe for concurrent use, and report is never called concurrently by it, so
// report may append to a slice without locking (read the slice only after
// the server has finished serving).
func (s *Spec) Middleware(prefix string, next http.Handler, report func(Violation)) http.Handler {
	prefix = strings.TrimSuffix(prefix, "/")
	var reportMu sync.Mutex
	emit := func(v Violation) {
		reportMu.Lock()
		defer reportMu.Unlock()
		report(v)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// EscapedPath keeps an encoded "/" inside a segment from splitting it.
		rel, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		op, ok := s.Operation(r.Method, rel)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		base := Violation{Method: r.Method, Path: rel, OperationID: op.OperationID}

		body, readErr := readAndRestoreBody(r)
		if err := checkRequest(op, r, rel, body, readErr); err != nil {
			v := base
			v.Kind, v.Err = "request", err
			emit(v)
		}

		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.hijacked {
			return // the handler dropped the connection: no answer was sent to check
		}

		status := rec.status
		if !rec.wroteHeader {
			status = http.StatusOK // what net/http sends for a handler that writes nothing
		}
		ct := w.Header().Get("Content-Type")
		if ct == "" && rec.body.Len() > 0 {
			// net/http sniffs a missing Content-Type from the body; validate
			// what the client actually receives.
			ct = http.DetectContentType(rec.body.Bytes())
		}
		if err := op.ValidateResponse(status, ct, rec.body.Bytes()); err != nil {
			v := base
			v.Kind, v.Status, v.Err = "response", status, err
			emit(v)
		}
	})
}

// readAndRestoreBody reads the whole request body and puts an identical
// reader back, so the wrapped handler sees the same bytes.
func readAndRestoreBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, err
}

// checkRequest validates path parameters, the body's Content-Type, the
// query and the body. It deliberately never looks at other headers, so no
// error can carry an Authorization value.
func checkRequest(op *Operation, r *http.Request, rel string, body []byte, readErr error) error {
	var errs []error
	if readErr != nil {
		errs = append(errs, fmt.Errorf("read request body: %w", readErr))
	}
	if err := op.ValidatePath(rel); err != nil {
		errs = append(errs, err)
	}
	if op.body != nil && len(bytes.TrimSpace(body)) > 0 {
		ct := r.Header.Get("Content-Type")
		if _, _, err := pickMedia(op.body.media, ct); err != nil {
			errs = append(errs, op.wrap("request", err))
		}
	}
	if err := op.ValidateRequest(r.URL.Query(), body); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// recorder passes a response through to the client while keeping the
// status and a copy of the body. Headers need no copy: they live in the
// underlying writer's map, which the middleware reads afterwards.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	hijacked    bool
	body        bytes.Buffer
}

// Hijack hands the connection to the handler (which drops it to lose an answer) and notes that
// nothing was answered.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil {
		rec.hijacked = true
	}
	return c, rw, err
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader && code >= 200 {
		// 1xx are informational and may precede the real status; only the
		// first final status counts, as in net/http.
		rec.status, rec.wroteHeader = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.body.Write(p[:n])
	return n, err
}

// Flush forwards to the client's writer when it supports flushing, so a
// streaming handler behaves the same with and without the middleware.
func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the client's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
