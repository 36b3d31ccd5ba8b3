package broker

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Budget is the broker's own count of its calls to Cloudflare against the rate limit (1200
// requests per 5 minutes per user, shared with the dashboard). Mints stop while fewer than
// Reserve calls are left in the window, so that a storm of mints never leaves a minted token
// that cannot be revoked: revokes and clean-ups may use the reserve.
type Budget struct {
	Limit   int
	Window  time.Duration
	Reserve int
	Now     func() time.Time

	mu      sync.Mutex
	start   time.Time
	used    int // calls made in the window
	pending int // calls the mints under way will make, not made yet
}

// mintCost is what a warm mint spends: create and verify.
const mintCost = 2

// NewBudget is a budget of limit calls per window, keeping reserve for revokes.
func NewBudget(limit int, window time.Duration, reserve int) *Budget {
	return &Budget{Limit: limit, Window: window, Reserve: reserve, Now: time.Now}
}

func (b *Budget) roll() time.Time {
	now := b.Now()
	if b.start.IsZero() || now.Sub(b.start) >= b.Window {
		b.start, b.used = now, 0
	}
	return now
}

// Record counts calls made.
func (b *Budget) Record(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	b.used += n
}

// Remaining is how many calls are left in the current window.
func (b *Budget) Remaining() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	return max(b.Limit-b.used, 0)
}

// TakeMint reserves a mint's calls if the window still has them beside the reserve: mints that
// start together each count the others' calls, which are not made yet. release ends the
// reservation once the mint's calls were made (and counted by Instrument). When refused, wait is
// how long until the window turns.
func (b *Budget) TakeMint() (release func(), wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.roll()
	if b.Limit-b.used-b.pending-mintCost < b.Reserve {
		return nil, max(b.start.Add(b.Window).Sub(now), time.Second), false
	}
	b.pending += mintCost
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.pending -= mintCost
			b.mu.Unlock()
		})
	}, 0, true
}

// Instrument wraps rt so that every call to Cloudflare is counted against b (when set) and
// recorded in m (when set), by operation and status.
func Instrument(rt http.RoundTripper, m *Metrics, b *Budget) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		res, err := rt.RoundTrip(r)
		if b != nil {
			b.Record(1)
		}
		if m != nil {
			status := 0
			if err == nil {
				status = res.StatusCode
			}
			m.CloudflareCall(operation(r), status, time.Since(start))
		}
		return res, err
	})
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
