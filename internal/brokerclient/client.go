package brokerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/mint"
)

const (
	// maxBrokerAnswer bounds what is read of a broker's answer: an issued token is a few KiB.
	maxBrokerAnswer = 256 << 10
	// maxSentence clips the broker's error sentence quoted back to the user.
	maxSentence = 1000
	// firstBackoff is the wait before a retry whose answer carried no Retry-After; it doubles.
	firstBackoff = time.Second
	// maxBackoff caps a wait the client chooses itself.
	maxBackoff = 30 * time.Second
	// attemptsWithoutDeadline bounds the attempts when the context has no deadline.
	attemptsWithoutDeadline = 5
	// unreachableAttempts bounds the attempts at a broker that refuses connections or whose
	// host does not resolve: a broker restarting comes back within seconds, and a wrong URL
	// never does, so such a call fails fast (1 s and 2 s of waiting) instead of backing off
	// for the whole timeout.
	unreachableAttempts = 3
	// unreachableBudget bounds the time such a call takes in all, attempts and waits included.
	unreachableBudget = 20 * time.Second
)

// TicketHeader carries a revoke's ticket (see docs/broker.md, HTTP API).
const TicketHeader = "Cfmint-Revoke-Ticket"

// ErrAnswerLost means a mint request reached the broker but no usable answer came back, or the
// broker answered 502 (its create may have minted a token it could not confirm or undo): the
// broker may have minted a token nobody holds. Clean up with RevokeNonce and the nonce sent.
var ErrAnswerLost = errors.New("the broker's answer to the mint was lost")

// Client asks a cfmint broker for tokens. Each call, and each retry, spends a fresh ID token:
// the broker accepts every ID token once.
type Client struct {
	// Base is the broker's URL, without a trailing slash.
	Base string
	// Audience is the audience the ID token is asked for.
	Audience string
	// HTTPClient talks to the broker and to the runner; nil: http.DefaultClient.
	HTTPClient *http.Client
	// Lookup reads the environment, for FetchIDToken.
	Lookup func(string) (string, bool)
	// RunnerOnly ignores $CFMINT_ID_TOKEN and asks only the GitHub runner for ID tokens
	// (FetchRunnerIDToken): the action's phases set it.
	RunnerOnly bool
	// IDTokenEnv, when set, names the environment variable that holds the ID token to spend
	// (FetchIDTokenFrom), instead of $CFMINT_ID_TOKEN or the runner: a GitLab job has one
	// `id_tokens:` entry for its mint and another for its revoke.
	IDTokenEnv string
	// OnIDToken, when set, sees each ID token before it is sent: the action masks it there.
	OnIDToken func(string)
	// OnRetry, when set, hears of each retry before its wait: the error that caused it, and how
	// long the client waits.
	OnRetry func(err *Error, wait time.Duration)
	// Sleep waits d or until ctx ends; nil: a timer. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock the deadline is compared with; nil: time.Now.
	Now func() time.Time
}

// Error is a call the broker refused or could not answer. It holds the broker's sentence and
// the HTTP status, never a token. Its text is safe in a log line (logsafe): the sentence is the
// broker's, and a broker, or whatever answers in its place, could write a workflow command.
type Error struct {
	Op       string // "mint", "revoke"
	Status   int    // 0: no answer
	Msg      string // the broker's sentence, or what went wrong on the way; not log-safe
	Attempts int
	Waited   time.Duration // time spent waiting between attempts
	// Unreachable is set when no connection to the broker could be made: the connection was
	// refused or the host name does not resolve. Base is then the broker's URL.
	Unreachable bool
	Base        string
	// Lost is set for a mint whose request was sent but whose answer never arrived, or that the
	// broker answered 502; errors.Is with ErrAnswerLost tells it.
	Lost bool
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Status != 0:
		fmt.Fprintf(&b, "the broker refused the %s (HTTP %d): %s", e.Op, e.Status, logsafe.String(e.Msg))
	case e.Unreachable:
		fmt.Fprintf(&b, "could not reach the broker at %s for the %s: %s", logsafe.String(e.Base), e.Op, logsafe.String(e.Msg))
	default:
		fmt.Fprintf(&b, "failed to reach the broker for the %s: %s", e.Op, logsafe.String(e.Msg))
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts and %s of waiting)", e.Attempts, e.Waited.Round(time.Millisecond))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrAnswerLost) true for a lost mint answer.
func (e *Error) Is(target error) bool { return target == ErrAnswerLost && e.Lost }

// Mint exchanges an ID token for a Cloudflare token. fields are the action's inputs by their
// names (preset, permissions, zones, r2-buckets, ttl, ip-filter, nonce). A request that may have
// minted without an answer returns an *Error for which errors.Is(err, ErrAnswerLost) holds.
func (c *Client) Mint(ctx context.Context, fields map[string]string) (*mint.Issued, error) {
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("brokerclient: %w", err)
	}
	var out mint.Issued
	err = c.do(ctx, "mint", http.MethodPost, "/v1/tokens", "", body, http.StatusCreated, &out)
	if err != nil {
		return nil, err
	}
	if out.ID == "" || out.Secret == "" {
		return nil, &Error{Op: "mint", Msg: "the broker's answer holds no token id or token", Lost: true}
	}
	return &out, nil
}

// Revoke deletes token id through the broker; a token already gone is no error.
func (c *Client) Revoke(ctx context.Context, id string) error {
	return c.RevokeWithTicket(ctx, id, "")
}

// RevokeWithTicket deletes token id through the broker, showing the revoke ticket its mint
// answered with (mint.Issued.RevokeTicket): the broker then deletes it with one Cloudflare call
// instead of reading its name first. An empty ticket is a plain Revoke.
func (c *Client) RevokeWithTicket(ctx context.Context, id, ticket string) error {
	return c.do(ctx, "revoke", http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), ticket, nil, http.StatusNoContent, nil)
}

// RevokeNonce deletes every token the broker minted for the caller's run with nonce, and says
// how many there were.
func (c *Client) RevokeNonce(ctx context.Context, nonce string) (int, error) {
	var out struct {
		Deleted int `json:"deleted"`
	}
	err := c.do(ctx, "revoke", http.MethodDelete, "/v1/tokens?nonce="+url.QueryEscape(nonce), "", nil, http.StatusOK, &out)
	return out.Deleted, err
}

// do makes a call, retrying what the broker asks to be retried, within ctx's deadline.
func (c *Client) do(ctx context.Context, op, method, path, ticket string, body []byte, want int, out any) error {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	sleep := c.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	var (
		waited  time.Duration
		backoff = firstBackoff
		lastTok string
		last    *Error
		start   = now()
	)
	for attempt := 1; ; attempt++ {
		tok, err := c.idToken(ctx, hc)
		if err != nil {
			if last != nil {
				// The earlier answer says more than why no retry could start.
				last.Msg += "; then no fresh ID token for a retry: " + err.Error()
				return last
			}
			return err
		}
		// A token whose request never reached the broker is unspent, and may be sent again.
		if last != nil && !last.Unreachable && tok == lastTok {
			last.Msg += fmt.Sprintf("; not retried: the ID token (from $%s) is the one already spent, and the broker takes each once", c.tokenEnv())
			return last
		}
		lastTok = tok
		if c.OnIDToken != nil {
			c.OnIDToken(tok)
		}
		retryAfter, e := c.once(ctx, hc, op, method, path, ticket, body, want, out, tok)
		if e == nil {
			return nil
		}
		e.Attempts, e.Waited = attempt, waited
		last = e
		if retryAfter < 0 {
			return e
		}
		asked := retryAfter > 0
		wait := retryAfter
		if wait == 0 {
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
		if e.Unreachable && (attempt >= unreachableAttempts || now().Sub(start)+wait >= unreachableBudget) {
			e.Msg += "; check the URL, and that the broker is running and reachable from here"
			return e
		}
		if dl, ok := ctx.Deadline(); ok {
			if left := dl.Sub(now()); wait >= left {
				if asked {
					e.Msg += fmt.Sprintf("; the broker asked to wait %s before retrying, longer than the %s left of the timeout", wait.Round(time.Second), left.Round(time.Second))
				} else {
					e.Msg += fmt.Sprintf("; not retried: the next retry would wait %s, longer than the %s left of the timeout", wait.Round(time.Second), left.Round(time.Second))
				}
				return e
			}
		} else if attempt >= attemptsWithoutDeadline {
			return e
		}
		if c.OnRetry != nil {
			c.OnRetry(e, wait)
		}
		if err := sleep(ctx, wait); err != nil {
			e.Msg += "; stopped waiting to retry: " + err.Error()
			return e
		}
		waited += wait
	}
}

// idToken is the ID token for the next attempt: from c.IDTokenEnv when set, else the runner's
// (RunnerOnly), else $CFMINT_ID_TOKEN or the runner's.
func (c *Client) idToken(ctx context.Context, hc *http.Client) (string, error) {
	switch {
	case c.IDTokenEnv != "":
		return FetchIDTokenFrom(c.Lookup, c.IDTokenEnv)
	case c.RunnerOnly:
		return FetchRunnerIDToken(ctx, hc, c.Lookup, c.Audience)
	}
	return FetchIDToken(ctx, hc, c.Lookup, c.Audience)
}

// tokenEnv names the variable the ID tokens come from when they do not come from the runner.
func (c *Client) tokenEnv() string {
	if c.IDTokenEnv != "" {
		return c.IDTokenEnv
	}
	return EnvIDToken
}

// unreachable words an error that means no connection to the broker could be made: a refused
// connection, or a host name that does not resolve. ok is false for any other error.
func unreachable(err error) (why string, ok bool) {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return fmt.Sprintf("its host name %s does not resolve", logsafe.Quote(dns.Name)), true
		}
		return fmt.Sprintf("its host name %s could not be looked up (%s)", logsafe.Quote(dns.Name), dns.Err), true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused", true
	}
	return "", false
}

// once makes one attempt. retryAfter is how long to wait before the next one (0: the client
// chooses), or negative when another attempt cannot help or must not be made.
func (c *Client) once(ctx context.Context, hc *http.Client, op, method, path, ticket string, body []byte, want int, out any, tok string) (retryAfter time.Duration, _ *Error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// Whether the request was written tells a mint that never reached the broker (safe to
	// retry) from one whose answer was lost (maybe minted: never retried, cleaned up by nonce).
	wrote := false
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote = true }})
	req, err := http.NewRequestWithContext(tctx, method, c.Base+path, rd)
	if err != nil {
		return -1, &Error{Op: op, Msg: fmt.Sprintf("%q is not a URL", c.Base)}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if ticket != "" {
		req.Header.Set(TicketHeader, ticket)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		// url.Error names the method and URL, neither of which holds a secret.
		e := &Error{Op: op, Msg: err.Error()}
		switch why, refused := unreachable(err); {
		case ctx.Err() != nil:
			e.Lost = method == http.MethodPost && wrote
			return -1, e
		case method == http.MethodPost && wrote:
			e.Lost = true
			e.Msg += "; the broker may have minted a token whose answer never came back"
			return -1, e
		case refused:
			e.Msg, e.Unreachable, e.Base = why, true, c.Base
		}
		return 0, e
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBrokerAnswer+1))
	if resp.StatusCode == want {
		switch {
		case rerr != nil || len(raw) > maxBrokerAnswer:
			return -1, &Error{Op: op, Msg: "failed to read the broker's answer", Lost: method == http.MethodPost}
		case out == nil:
			return 0, nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			// Never quote the body: a mint's answer holds the token.
			return -1, &Error{Op: op, Msg: "the broker's answer is not the JSON it should be", Lost: method == http.MethodPost}
		}
		return 0, nil
	}
	msg, fromBroker := sentence(raw, tok)
	e := &Error{Op: op, Status: resp.StatusCode, Msg: msg}
	if !fromBroker {
		// An answer in no broker's shape came from something in between (a proxy, a load
		// balancer): for a mint, the broker behind it may have minted.
		e.Msg = fmt.Sprintf("an answer that is not the broker's (%s)", http.StatusText(resp.StatusCode))
		if method == http.MethodPost {
			e.Lost = true
			return -1, e
		}
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), e
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		if method != http.MethodPost {
			return 0, e
		}
		if resp.StatusCode == http.StatusBadGateway {
			// The broker's 502 to a mint: its create may have minted a token it could neither
			// confirm nor delete. A retry would mint a second; clean up by nonce instead.
			e.Lost = true
		}
	}
	return -1, e
}

// sentence reads the broker's {"error": "..."}; ok is false when the body is not of that form.
// The sentence is clipped, stripped of control characters and of the ID token, should a broker
// ever echo it.
func sentence(raw []byte, tok string) (string, bool) {
	var v struct {
		Error string `json:"error"`
	}
	if len(raw) > maxBrokerAnswer || json.Unmarshal(raw, &v) != nil || strings.TrimSpace(v.Error) == "" {
		return "", false
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return ' '
		}
		return r
	}, v.Error)
	if tok != "" {
		s = strings.ReplaceAll(s, tok, "***")
	}
	return strings.TrimSpace(logsafe.Clip(s, maxSentence)), true
}

// parseRetryAfter reads Retry-After: seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
