package broker

import (
	"testing"
	"time"
)

func TestBudgetReservesMintsUnderWay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b := NewBudget(10, 5*time.Minute, 6)
	b.Now = func() time.Time { return now }
	r1, _, ok1 := b.TakeMint()
	r2, _, ok2 := b.TakeMint()
	_, wait, ok3 := b.TakeMint()
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("three mints at once on 10 calls with 6 in reserve: %v %v %v; want the third refused (the first two will spend 4)", ok1, ok2, ok3)
	}
	if wait != 5*time.Minute {
		t.Errorf("wait = %v, want the rest of the window", wait)
	}
	b.Record(2) // the first mint's calls, counted by Instrument
	r1()
	r1() // releasing twice releases once
	if _, _, ok := b.TakeMint(); ok {
		t.Errorf("a mint was allowed with 2 calls made, 2 under way and 6 in reserve")
	}
	r2()
	if _, _, ok := b.TakeMint(); !ok {
		t.Errorf("a mint was refused with 8 calls left and none under way")
	}
	now = now.Add(5 * time.Minute)
	if got := b.Remaining(); got != 10 {
		t.Errorf("Remaining = %d in a new window, want 10", got)
	}
}
