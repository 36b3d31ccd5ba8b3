package broker

import (
	"context"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// call makes one call through b as Instrument does: sent under ctx, answered with rl (stated
// false: an answer without Ratelimit headers).
func call(t *testing.T, b *Budget, ctx context.Context, rl cftoken.RateLimit, stated bool) {
	t.Helper()
	if _, ok := b.send(ctx); !ok {
		t.Fatalf("a call was refused with %d left", b.Remaining())
	}
	b.answered(rl, stated)
}

func TestBudgetReservesMintsUnderWay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b := NewBudget(13, 5*time.Minute, 5)
	b.Now = func() time.Time { return now }
	h1, _, ok1 := b.Take(mintCalls, mintLater, ForMint)
	h2, _, ok2 := b.Take(mintCalls, mintLater, ForMint)
	_, wait, ok3 := b.Take(mintCalls, mintLater, ForMint)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("three mints at once on 13 calls with 5 in reserve: %v %v %v; want the third refused (the first two hold 4 and will revoke with 2, and it needs 3)", ok1, ok2, ok3)
	}
	if wait != time.Second {
		t.Errorf("wait = %v, want a second: the calls held are what is missing", wait)
	}
	ctx := WithHold(context.Background(), h1)
	call(t, b, ctx, cftoken.RateLimit{}, false)
	call(t, b, ctx, cftoken.RateLimit{}, false)
	h1.Minted()
	h1.Release()
	h1.Release() // releasing twice releases once
	h2.Release() // a mint that failed owes no revoke
	if got := b.Remaining(); got != 11 {
		t.Errorf("Remaining = %d after two calls of 13, want 11", got)
	}
	// 11 left, 1 revoke owed, 3 for this mint: 7 above the reserve of 5.
	h3, _, ok := b.Take(mintCalls, mintLater, ForMint)
	if !ok {
		t.Fatalf("a mint was refused with 11 left")
	}
	h3.Minted()
	h3.Release()
	if h, _, ok := b.Take(4, mintLater, ForMint); ok {
		h.Release()
		t.Errorf("a mint of 4 calls was allowed with 11 left, 2 revokes owed and 5 in reserve")
	}
	b.Paid()
	if h, _, ok := b.Take(4, mintLater, ForMint); !ok {
		t.Errorf("a mint of 4 calls was refused with 11 left, 1 revoke owed and 5 in reserve")
	} else {
		h.Release()
	}
	// Revokes may use the reserve; unproven ones all but its last quarter.
	if h, _, ok := b.Take(11, 0, ForUnproven); ok {
		h.Release()
		t.Errorf("an unproven revoke reached into the reserve's last quarter")
	}
	if h, _, ok := b.Take(11, 0, ForRevoke); !ok {
		t.Errorf("a revoke could not use the whole budget")
	} else {
		h.Release()
	}
	now = now.Add(5 * time.Minute)
	if got := b.Remaining(); got != 13 {
		t.Errorf("Remaining = %d in a new window, want 13", got)
	}
}

// Cloudflare's count is the truth: it sees the other users of the token's Cloudflare user.
func TestBudgetFollowsCloudflaresCount(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b := NewBudget(1200, 5*time.Minute, 10)
	b.Now = func() time.Time { return now }
	bg := context.Background()
	call(t, b, bg, cftoken.RateLimit{Remaining: 40, Reset: 60 * time.Second, Quota: 100, Window: 5 * time.Minute}, true)
	if got := b.Remaining(); got != 40 {
		t.Fatalf("Remaining = %d after Cloudflare said 40, want 40 (not the ceiling's 1199)", got)
	}
	// A call in flight counts before its answer.
	if _, ok := b.send(bg); !ok {
		t.Fatal("refused")
	}
	if got := b.Remaining(); got != 39 {
		t.Errorf("Remaining = %d with a call in flight, want 39", got)
	}
	b.answered(cftoken.RateLimit{Remaining: 30, Reset: 59 * time.Second}, true) // someone else spent 9
	if got := b.Remaining(); got != 30 {
		t.Errorf("Remaining = %d, want Cloudflare's 30", got)
	}
	// An answer sent earlier that arrives late does not raise the count.
	call(t, b, bg, cftoken.RateLimit{Remaining: 35, Reset: 59 * time.Second}, true)
	if got := b.Remaining(); got != 30 {
		t.Errorf("Remaining = %d after a late answer said 35, want 30", got)
	}
	// An answer without a count: one fewer.
	call(t, b, bg, cftoken.RateLimit{}, false)
	if got := b.Remaining(); got != 29 {
		t.Errorf("Remaining = %d after an answer without a count, want 29", got)
	}
	if r, at, ok := b.Stated(); !ok || r != 29 || !at.Equal(now.Add(time.Minute)) {
		t.Errorf("Stated = %d %v %v, want 29 at %v", r, at, ok, now.Add(time.Minute))
	}
	// Refused until Cloudflare's window resets, not the broker's own.
	if _, wait, ok := b.Take(25, 0, ForMint); ok || wait != time.Minute {
		t.Errorf("Take(25) with 29 left and 10 in reserve: ok %v, wait %v; want refused for a minute", ok, wait)
	}
	// Past the reset, the quota Ratelimit-Policy stated is back until the next answer says.
	now = now.Add(61 * time.Second)
	if got := b.Remaining(); got != 100 {
		t.Errorf("Remaining = %d after Cloudflare's reset, want its quota of 100", got)
	}
	call(t, b, bg, cftoken.RateLimit{Remaining: 90, Reset: 5 * time.Minute}, true)
	if got := b.Remaining(); got != 90 {
		t.Errorf("Remaining = %d in the new window, want 90", got)
	}
	// A late answer from the old window says nothing about the new one.
	call(t, b, bg, cftoken.RateLimit{Remaining: 3, Reset: time.Second}, true)
	if got := b.Remaining(); got != 90 {
		t.Errorf("Remaining = %d after a late answer of the old window, want 90", got)
	}
}

// The ceiling caps the broker's own spending when Cloudflare's count is higher, and is the
// count when Cloudflare states none.
func TestBudgetCeiling(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b := NewBudget(10, 5*time.Minute, 0)
	b.Now = func() time.Time { return now }
	bg := context.Background()
	for range 10 {
		call(t, b, bg, cftoken.RateLimit{}, false)
	}
	if _, ok := b.send(bg); ok {
		t.Errorf("an 11th call of a ceiling of 10 was sent")
	}
	b2 := NewBudget(10, 5*time.Minute, 0)
	b2.Now = b.Now
	call(t, b2, bg, cftoken.RateLimit{Remaining: 1000, Reset: time.Minute}, true)
	if got := b2.Remaining(); got != 9 {
		t.Errorf("Remaining = %d with Cloudflare at 1000 and 9 left of the ceiling, want 9", got)
	}
}
