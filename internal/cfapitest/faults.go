package cfapitest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Fault makes matching requests misbehave, for robustness tests. Set one of
// Status, Hang, Malformed and LoseAnswer, or only Latency to slow requests
// down and answer them normally.
type Fault struct {
	Method string // "" matches any method
	// Path is a ServeMux-style path pattern below /client/v4, such as
	// "/accounts/{account_id}/tokens", or "/cdn-cgi/trace", or one below
	// /r2/ for the S3 endpoint (answered in S3's XML form); "" matches any.
	Path    string
	TokenID string // when set, only requests authenticated by this token id
	Times   int    // how many matching requests it affects; 0 means all

	Latency time.Duration // delay before answering
	// Status answers with this HTTP status and a Cloudflare error envelope
	// instead of handling the request.
	Status int
	// RetryAfter, with Status 429, sends Retry-After (whole seconds) and the
	// RateLimit headers Cloudflare sends with it, as the fake's own rate
	// limit does; without it the 429 carries none of them, like one from a
	// proxy.
	RetryAfter time.Duration
	Code       int    // error code to send with Status; default 971 for 429, else 10001 (unverified)
	Message    string // error message to send with Status; default from the status

	Hang       bool // never answer, until the client gives up or the server closes
	Malformed  bool // answer 200 with a body that is not valid JSON, without handling
	LoseAnswer bool // handle the request (it takes effect), then drop the connection unanswered
	// Hold handles the request (it takes effect), then waits this long before answering: the
	// window in which a client that dies has made a change it never heard of.
	Hold time.Duration
}

// faultState is an injected fault and how many uses it has left (-1: no
// limit).
type faultState struct {
	Fault
	pattern string // Path made absolute
	left    int
}

// InjectFault adds a fault. Faults are tried in the order they were
// injected; the first that matches and has uses left applies. A malformed
// Path panics: it is a mistake in the test.
func (s *Server) InjectFault(f Fault) {
	pattern := f.Path
	if method, path, ok := strings.Cut(pattern, " "); ok {
		// Accept "POST /user/tokens", the way ServeMux patterns are written.
		if f.Method == "" {
			f.Method = method
		}
		pattern = path
	}
	switch {
	case pattern == "":
	case !strings.HasPrefix(pattern, "/"):
		panic(fmt.Sprintf("cfapitest: InjectFault: path pattern %q must start with /", f.Path))
	case strings.HasPrefix(pattern, "/cdn-cgi/"), strings.HasPrefix(pattern, apiPrefix+"/"), isR2Path(pattern):
	default:
		pattern = apiPrefix + pattern
	}
	left := f.Times
	if left <= 0 {
		left = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f, pattern: pattern, left: left})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency adds d to every request from now on (0 removes it).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// takeFault finds the fault for a request and uses it up; nil when none.
func (s *Server) takeFault(r *http.Request, tokenID string) *Fault {
	for _, f := range s.faults {
		switch {
		case f.left == 0,
			f.Method != "" && !strings.EqualFold(f.Method, r.Method),
			f.pattern != "" && !matchPattern(f.pattern, r.URL.Path),
			f.TokenID != "" && f.TokenID != tokenID:
			continue
		}
		if f.left > 0 {
			f.left--
		}
		fc := f.Fault
		return &fc
	}
	return nil
}

// kind names the fault in the request log.
func (f *Fault) kind() string {
	switch {
	case f == nil:
		return ""
	case f.Hang:
		return "hang"
	case f.Status != 0:
		return "status"
	case f.Malformed:
		return "malformed"
	case f.LoseAnswer:
		return "lose-answer"
	default:
		return "latency"
	}
}

// answer writes the fault's error envelope; policy is the quota a 429's
// RateLimit-Policy states.
func (f *Fault) answer(w http.ResponseWriter, policy func() (int, time.Duration)) {
	code, msg := f.Code, f.Message
	if code == 0 {
		code = codeFault
		if f.Status == http.StatusTooManyRequests {
			code = codeRateLimited
		}
	}
	if msg == "" {
		msg = http.StatusText(f.Status)
		if f.Status == http.StatusTooManyRequests {
			msg = msgRateLimited
		}
	}
	if f.Status == http.StatusTooManyRequests && f.RetryAfter > 0 {
		quota, window := policy()
		setRateLimited(w.Header(), quota, window, f.RetryAfter)
	}
	writeErr(w, f.Status, code, msg)
}
