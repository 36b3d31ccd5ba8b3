package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// Budget is Cloudflare's rate limit as the broker spends it: 1200 requests per 5 minutes per
// user, shared with the dashboard, API keys, every other token of the user and every replica of
// the broker; passing it locks every call out for the rest of the window, revokes included.
//
// What is left is what Cloudflare's latest Ratelimit header said, less the calls the broker has
// reserved or sent and not yet seen answered: other replicas and other users of the same
// Cloudflare user show in Cloudflare's count, so they are accounted for without the broker
// knowing about them. The broker's own count of its calls (Ceiling per Window) is the fallback
// when Cloudflare states no count, and a ceiling on the broker's own spending otherwise.
//
// Every call is reserved before it is made (Take), at a priority: a mint starts only when its
// calls and the revoke it will need later fit above Reserve; revokes may use the reserve.
type Budget struct {
	Ceiling int // the broker's own calls per Window at most (--rate-limit)
	Window  time.Duration
	Reserve int // calls only revokes may use (--rate-reserve)
	Now     func() time.Time

	mu    sync.Mutex
	start time.Time // the broker's own window
	used  int       // calls sent in it

	stated  cftoken.RateLimit // Cloudflare's latest count
	resetAt time.Time         // when Cloudflare's window resets, by the local clock
	seen    bool

	held     int // calls reserved and not sent yet
	inflight int // calls sent and not answered yet
	// owed is the calls the revokes of the tokens minted (or being minted) in this window will
	// make: a mint must leave room for them all above the reserve, not only for its own.
	owed int
}

// Priority is how deep into the budget a reservation may reach.
type Priority int

const (
	// ForMint leaves the reserve untouched: a mint and its lookups.
	ForMint Priority = iota
	// ForUnproven is a revoke's look at a token before the broker knows it is the caller's (a
	// revoke by id without a ticket, a nonce revoke that must list): it may use the reserve but
	// its last quarter, so that a flood of revokes of ids nobody owns cannot starve the revokes
	// of tokens that are the callers'.
	ForUnproven
	// ForRevoke is the delete of a token known to be the caller's (by ticket, by the name check,
	// by the nonce map) and clean-ups: it may use the whole reserve.
	ForRevoke
)

// mintCalls is what a warm mint spends: create and verify. mintLater is the revoke it will need:
// one DELETE (with its ticket; without one, the GET before it may use the reserve).
const (
	mintCalls = 2
	mintLater = 1
)

// NewBudget is a budget of at most ceiling of the broker's own calls per window, keeping reserve
// for revokes.
func NewBudget(ceiling int, window time.Duration, reserve int) *Budget {
	return &Budget{Ceiling: ceiling, Window: window, Reserve: reserve, Now: time.Now}
}

func (b *Budget) roll() time.Time {
	now := b.Now()
	if b.start.IsZero() || now.Sub(b.start) >= b.Window {
		b.start, b.used, b.owed = now, 0, 0
	}
	return now
}

// base is what is left before reservations and calls in flight: Cloudflare's count when it
// stated one, capped by the broker's own ceiling.
func (b *Budget) base(now time.Time) int {
	own := b.Ceiling - b.used
	if !b.seen {
		return own
	}
	cf := b.stated.Remaining
	if !now.Before(b.resetAt) {
		// Cloudflare's window has turned since it last said: its quota, when stated, is back.
		cf = b.stated.Quota
		if cf == 0 {
			return own
		}
	}
	return min(own, cf)
}

func (b *Budget) left(now time.Time) int { return b.base(now) - b.held - b.inflight }

// floor is how much of the budget p must leave.
func (b *Budget) floor(p Priority) int {
	switch p {
	case ForMint:
		return b.Reserve
	case ForUnproven:
		return b.Reserve / 4
	}
	return 0
}

// Remaining is how many calls are left now: Cloudflare's count (or the broker's own), less the
// calls reserved or in flight.
func (b *Budget) Remaining() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.left(b.roll()), 0)
}

// Stated is Cloudflare's latest count as it stated it: requests left and when the window resets.
// ok is false until an answer stated one.
func (b *Budget) Stated() (remaining int, resetAt time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stated.Remaining, b.resetAt, b.seen
}

// Record counts n calls made outside any reservation, answered without a count.
func (b *Budget) Record(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	b.used += n
}

// Hold is a reservation of calls: the calls made under its context (WithHold) spend it, and
// Release gives back what was not spent.
type Hold struct {
	b      *Budget
	left   int
	later  int // owed while the hold is, and after it when Minted
	minted bool
}

// Take reserves n calls at priority p if they fit, with later more calls that must fit too but
// are not held (the revoke a mint will need). When refused, wait is how long until calls are
// likely to be back.
func (b *Budget) Take(n, later int, p Priority) (h *Hold, wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.roll()
	need := n + later
	if p == ForMint {
		need += b.owed
	}
	if b.left(now)-need < b.floor(p) {
		return nil, b.wait(now, need, p), false
	}
	b.held += n
	h = &Hold{b: b, left: n}
	if p == ForMint {
		h.later = later
		b.owed += later
	}
	return h, 0, true
}

// wait is how long a refused reservation of n calls at p should wait: a second when the calls in
// flight are what is missing (their answers free them), else until the window turns.
func (b *Budget) wait(now time.Time, n int, p Priority) time.Duration {
	if b.base(now)-n >= b.floor(p) {
		return time.Second
	}
	// Until the window that binds turns: Cloudflare's when its count is the lower, else the
	// broker's own.
	end := b.start.Add(b.Window)
	if b.seen && now.Before(b.resetAt) && b.stated.Remaining <= b.Ceiling-b.used {
		end = b.resetAt
	}
	return max(end.Sub(now), time.Second)
}

// Release gives back what h did not spend; a nil Hold and a second Release do nothing.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.b.held -= h.left
	h.left = 0
	if !h.minted {
		h.b.owed = max(h.b.owed-h.later, 0)
	}
	h.later = 0
}

// Minted says the mint h was taken for made a token: its revoke stays owed after Release.
func (h *Hold) Minted() {
	if h == nil {
		return
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.minted = true
}

// Paid notes a revoke's DELETE made.
func (b *Budget) Paid() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	b.owed = max(b.owed-1, 0)
}

type holdKey struct{}

// WithHold makes the calls made under ctx spend h.
func WithHold(ctx context.Context, h *Hold) context.Context {
	if h == nil {
		return ctx
	}
	return context.WithValue(ctx, holdKey{}, h)
}

// send counts a call about to be made: it spends the hold of ctx when there is one with calls
// left, or else must fit in what is left at all (a retry, a verify that had to be asked again).
// ok is false when it does not: the call is not made.
func (b *Budget) send(ctx context.Context) (wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.roll()
	if h, _ := ctx.Value(holdKey{}).(*Hold); h != nil && h.b == b && h.left > 0 {
		h.left--
		b.held--
	} else if b.left(now) < 1 {
		return b.wait(now, 1, ForRevoke), false
	}
	b.inflight++
	b.used++
	return 0, true
}

// answered notes the answer to a call: Cloudflare's count when the answer states it (and the
// call was the bootstrap token's: stated is false for the new token's verify, whose count may
// be another owner's), else one call fewer left.
func (b *Budget) answered(rl cftoken.RateLimit, stated bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.roll()
	b.inflight--
	if !stated {
		if b.seen && now.Before(b.resetAt) && b.stated.Remaining > 0 {
			b.stated.Remaining--
		}
		return
	}
	reset := now.Add(rl.Reset)
	// The count is exact to the second: answers of one window state resets within a second or
	// two of each other.
	const slack = 2 * time.Second
	switch {
	case !b.seen, !now.Before(b.resetAt), reset.After(b.resetAt.Add(slack)):
		// The first count, or a new window. What is owed starts again: a token whose revoke
		// did not come within a window may never come (a GitLab job has no post phase), and
		// the reserve is there for the rest.
		if b.seen {
			b.owed = 0
		}
		b.stated, b.resetAt, b.seen = rl, reset, true
	case reset.Before(b.resetAt.Add(-slack)):
		// An answer from a window that has turned since, arriving late: it says nothing now.
	default:
		// The same window: answers can arrive out of order, and the count only goes down.
		if rl.Remaining < b.stated.Remaining {
			b.stated.Remaining = rl.Remaining
		}
		if rl.Quota > 0 {
			b.stated.Quota, b.stated.Window = rl.Quota, rl.Window
		}
	}
}

// Instrument wraps rt so that every call to Cloudflare is counted against b (when set) and
// recorded in m (when set), by operation and status. A call that fits in no reservation and in
// nothing left is not made: it gets a 429 of the broker's own, in Cloudflare's shape, so that the
// caller's error path is a rate limit's.
func Instrument(rt http.RoundTripper, m *Metrics, b *Budget) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		op := operation(r)
		if b != nil {
			if wait, ok := b.send(r.Context()); !ok {
				return refused(r, wait), nil
			}
		}
		start := time.Now()
		res, err := rt.RoundTrip(r)
		if b != nil {
			var rl cftoken.RateLimit
			stated := false
			if err == nil && op != "verify" {
				rl, stated = cftoken.ParseRateLimit(res.Header)
			}
			b.answered(rl, stated)
		}
		if m != nil {
			status := 0
			if err == nil {
				status = res.StatusCode
			}
			m.CloudflareCall(op, status, time.Since(start))
		}
		return res, err
	})
}

// refused is the broker's own 429 for a call its budget has no room for.
func refused(r *http.Request, wait time.Duration) *http.Response {
	body := `{"success":false,"errors":[{"code":971,"message":"not sent: the broker's budget of Cloudflare requests is spent until the window turns"}],"messages":[],"result":null}`
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	return &http.Response{
		Status: fmt.Sprintf("%d %s", http.StatusTooManyRequests, http.StatusText(http.StatusTooManyRequests)), StatusCode: http.StatusTooManyRequests,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Request: r,
		Body: io.NopCloser(bytes.NewReader([]byte(body))), ContentLength: int64(len(body)),
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// operation names a Cloudflare call by what it does, never by its ids.
func operation(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/tokens/verify"):
		return "verify"
	case strings.HasSuffix(p, "/permission_groups"):
		return "permission_groups"
	case strings.Contains(p, "/zones"):
		return "zones"
	case strings.HasSuffix(p, "/tokens") && r.Method == http.MethodPost:
		return "create"
	case strings.HasSuffix(p, "/tokens"):
		return "list"
	case strings.Contains(p, "/tokens/") && r.Method == http.MethodDelete:
		return "delete"
	case strings.Contains(p, "/tokens/"):
		return "get"
	case strings.HasSuffix(p, "/cdn-cgi/trace"):
		return "trace"
	}
	return "other"
}

// take reserves n calls at p on s's budget, or answers why not; with no budget, nothing.
func (s *Server) take(n, later int, p Priority, what string) (*Hold, *apiError) {
	if s.o.Budget == nil {
		return nil, nil
	}
	h, wait, ok := s.o.Budget.Take(n, later, p)
	if !ok {
		return nil, &apiError{status: http.StatusTooManyRequests, retryAfter: wait,
			msg: fmt.Sprintf("the broker is near Cloudflare's rate limit on its bootstrap token (shared with every other user of that Cloudflare user) and keeps the rest for revokes, so it cannot %s now; retry after the time Retry-After gives", what)}
	}
	return h, nil
}
