package broker

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ReplayStore records the single use of ID tokens. Claim records key (an
// Identity's ReplayKey) until the instant until and reports whether this
// call was the first to claim it since it was last forgotten. It is Redis's
// `SET key 1 NX PXAT until`: first is the reply being OK.
type ReplayStore interface {
	Claim(ctx context.Context, key string, until time.Time) (first bool, err error)
}

// ErrClaimExpired is Claim's answer for an until that has already passed:
// the token expired between its verification and its claim.
var ErrClaimExpired = errors.New("the ID token expired before the broker could record its use; ask the CI system for a fresh one")

// DefaultReplayEntries bounds a MemoryReplayStore that sets no bound.
const DefaultReplayEntries = 1 << 20

// MemoryReplayStore is a ReplayStore for one broker process. It forgets a
// key at its until and prunes forgotten keys as it goes, so it holds no
// more than the tokens still valid. Its zero value is ready to use.
type MemoryReplayStore struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxEntries bounds the keys held at once; zero means
	// DefaultReplayEntries. A full store refuses claims rather than forget
	// a key that is still valid.
	MaxEntries int

	mu      sync.Mutex
	until   map[string]time.Time
	expires expiryHeap
	shares  memoryShares // replay_limits.go
}

// Claim implements ReplayStore.
func (s *MemoryReplayStore) Claim(ctx context.Context, key string, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	if !until.After(now) {
		return false, ErrClaimExpired
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = map[string]time.Time{}
	}
	s.prune(now)
	if _, held := s.until[key]; held {
		return false, nil
	}
	limit := s.MaxEntries
	if limit <= 0 {
		limit = DefaultReplayEntries
	}
	if len(s.until) >= limit {
		return false, fmt.Errorf("the broker's replay store holds %d ID tokens, its limit; try again in a few minutes", len(s.until))
	}
	s.until[key] = until
	heap.Push(&s.expires, expiry{key: key, at: until})
	return true, nil
}

// Len returns how many keys the store holds, forgotten ones not yet pruned
// included.
func (s *MemoryReplayStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.until)
}

// prune forgets every key whose until is not after now. A key is pushed
// once per claim and claimed again only after it was forgotten, so the heap
// never holds two live entries for one key.
func (s *MemoryReplayStore) prune(now time.Time) {
	for len(s.expires) > 0 && !s.expires[0].at.After(now) {
		e := heap.Pop(&s.expires).(expiry)
		if at, ok := s.until[e.key]; ok && at.Equal(e.at) {
			delete(s.until, e.key)
		}
	}
}

type expiry struct {
	key string
	at  time.Time
}

// expiryHeap is a min-heap of expiries, the earliest first.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
