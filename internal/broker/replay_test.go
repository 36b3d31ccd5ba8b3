package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestMemoryReplayStoreSemantics(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: testNow}
	s := &MemoryReplayStore{Now: clock.Now}
	ctx := context.Background()
	claim := func(key string, until time.Time) bool {
		t.Helper()
		first, err := s.Claim(ctx, key, until)
		if err != nil {
			t.Fatalf("Claim(%q) error = %v", key, err)
		}
		return first
	}
	until := testNow.Add(5 * time.Minute)
	if !claim("iss#a", until) {
		t.Error("first claim of a = false, want true")
	}
	if claim("iss#a", until) {
		t.Error("second claim of a = true, want false")
	}
	if claim("iss#a", until.Add(time.Hour)) {
		t.Error("a claim with a later until does not renew a held key")
	}
	if !claim("iss#b", until) {
		t.Error("first claim of b = false: keys are independent")
	}
	clock.Advance(5*time.Minute - time.Nanosecond)
	if claim("iss#a", until.Add(time.Minute)) {
		t.Error("a is forgotten before its until")
	}
	clock.Advance(time.Nanosecond)
	if !claim("iss#a", testNow.Add(10*time.Minute)) {
		t.Error("a is still held at its until, want forgotten")
	}
	if claim("iss#a", testNow.Add(10*time.Minute)) {
		t.Error("a claimed again after it was forgotten and claimed")
	}
	if s.Len() != 1 {
		t.Errorf("Len() = %d, want 1: b was pruned", s.Len())
	}
}

func TestMemoryReplayStoreRefusesPastUntil(t *testing.T) {
	t.Parallel()
	s := &MemoryReplayStore{Now: fixedClock}
	for _, until := range []time.Time{testNow, testNow.Add(-time.Second)} {
		first, err := s.Claim(context.Background(), "k", until)
		if !errors.Is(err, ErrClaimExpired) || first {
			t.Errorf("Claim(until %v) = %v, %v; want false, ErrClaimExpired", until, first, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if first, err := s.Claim(ctx, "k", testNow.Add(time.Minute)); !errors.Is(err, context.Canceled) || first {
		t.Errorf("Claim() on a cancelled context = %v, %v", first, err)
	}
}

func TestMemoryReplayStoreConcurrentClaims(t *testing.T) {
	t.Parallel()
	s := &MemoryReplayStore{}
	until := time.Now().Add(time.Hour)
	const keys, racers = 16, 32
	var wins [keys]atomic.Int32
	var wg sync.WaitGroup
	for k := range keys {
		for range racers {
			wg.Go(func() {
				first, err := s.Claim(context.Background(), fmt.Sprint("jti-", k), until)
				if err != nil {
					t.Error(err)
				}
				if first {
					wins[k].Add(1)
				}
			})
		}
	}
	wg.Wait()
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Errorf("key %d was won %d times, want exactly once", k, n)
		}
	}
}

func TestMemoryReplayStoreIsBounded(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: testNow}
	s := &MemoryReplayStore{Now: clock.Now, MaxEntries: 100}
	ctx := context.Background()
	for n := range 100 {
		// Varied untils, so pruning has to order them.
		if first, err := s.Claim(ctx, fmt.Sprint(n), testNow.Add(time.Duration(1+n%7)*time.Minute)); err != nil || !first {
			t.Fatalf("Claim(%d) = %v, %v", n, first, err)
		}
	}
	if first, err := s.Claim(ctx, "one too many", testNow.Add(time.Minute)); err == nil || first {
		t.Fatalf("Claim() on a full store = %v, %v; want a refusal", first, err)
	}
	if first, _ := s.Claim(ctx, "3", testNow.Add(time.Minute)); first {
		t.Error("a full store forgot a held key")
	}
	clock.Advance(3 * time.Minute) // forgets the untils of 1, 2 and 3 minutes
	if first, err := s.Claim(ctx, "new", testNow.Add(time.Hour)); err != nil || !first {
		t.Fatalf("Claim() after expiries = %v, %v", first, err)
	}
	held := 0
	for n := range 100 {
		if 1+n%7 > 3 {
			held++
		}
	}
	if got := s.Len(); got != held+1 {
		t.Errorf("Len() = %d, want %d: expired keys are pruned", got, held+1)
	}
	clock.Advance(time.Hour)
	if _, err := s.Claim(ctx, "last", testNow.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := s.Len(); got != 1 {
		t.Errorf("Len() = %d after every until passed, want 1", got)
	}
}

// The interface is what the server will hold; a Redis store must fit it.
var _ ReplayStore = (*MemoryReplayStore)(nil)
