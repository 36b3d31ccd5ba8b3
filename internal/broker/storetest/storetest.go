// Package storetest is the conformance test of the broker's stores: every store a broker can be
// given (the memory store, Redis, the Worker's Durable Object) must pass Run, so that a policy's
// limits mean the same wherever the broker runs.
package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
)

// Store is what the broker keeps: the single use of ID tokens, the fair shares and the locks.
type Store interface {
	broker.ReplayStore
	broker.ShareStore
}

// Run checks s: claims are single until they lapse, and refused once lapsed; the fair shares
// count a sliding window of mints and live slots held until expiry or release, cancelled
// reservations not counted, stranger revokes in a fixed window; a lock is held until it lapses,
// whoever asks. Windows are driven by the now the caller gives, except where a store keeps its
// own clock (Redis's expiries: the strangers' window, the lock, the claims), which are checked
// with short real lapses. s must be empty.
func Run(t *testing.T, s Store) {
	t.Helper()
	t.Run("claims", func(t *testing.T) { claims(t, s) })
	t.Run("shares", func(t *testing.T) { shares(t, s) })
	t.Run("lock", func(t *testing.T) { lock(t, s) })
	if ns, ok := s.(broker.NonceStore); ok {
		t.Run("nonces", func(t *testing.T) { nonces(t, ns) })
	}
}

// nonces checks a store that keeps the nonce map: a nonce's set holds every ref added to it
// (once each) until the latest until it was given, and is then forgotten whole.
func nonces(t *testing.T, s broker.NonceStore) {
	ctx := context.Background()
	refs := func(key string) string {
		t.Helper()
		r, err := s.NonceRefs(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(r)
		return strings.Join(r, ",")
	}
	remember := func(key, ref string, until time.Time) {
		t.Helper()
		if err := s.RememberNonce(ctx, key, ref, until); err != nil {
			t.Fatal(err)
		}
	}
	until := time.Now().Add(time.Minute)
	remember("run:nonce1", "account|a1|t1|deploy", until)
	remember("run:nonce1", "?", until)
	remember("run:nonce1", "account|a1|t1|deploy", until)
	if got := refs("run:nonce1"); got != "?,account|a1|t1|deploy" {
		t.Fatalf("the nonce's refs: %q", got)
	}
	if got := refs("run:nonce2"); got != "" {
		t.Fatalf("a nonce never written: %q", got)
	}
	remember("run:brief", "account|a1|t2|deploy", time.Now().Add(lapse))
	if got := refs("run:brief"); got != "account|a1|t2|deploy" {
		t.Fatalf("a brief nonce's refs: %q", got)
	}
	time.Sleep(2 * lapse)
	if got := refs("run:brief"); got != "" {
		t.Fatalf("a nonce's refs after their until: %q", got)
	}
}

// lapse is how long the checks of a store's own clock wait past a lapse: enough for a store that
// keeps milliseconds.
const lapse = 250 * time.Millisecond

func claims(t *testing.T, s Store) {
	ctx := context.Background()
	claim := func(key string, until time.Time) bool {
		t.Helper()
		first, err := s.Claim(ctx, key, until)
		if err != nil {
			t.Fatalf("claim %s: %v", key, err)
		}
		return first
	}
	until := time.Now().Add(time.Minute)
	if !claim("jti-1", until) {
		t.Fatal("the first claim of a key was refused")
	}
	if claim("jti-1", until) {
		t.Fatal("a second claim of a key was granted")
	}
	if !claim("jti-2", until) {
		t.Fatal("another key's first claim was refused")
	}
	if _, err := s.Claim(ctx, "jti-3", time.Now().Add(-time.Second)); !errors.Is(err, broker.ErrClaimExpired) {
		t.Fatalf("a claim until a past instant: %v, want ErrClaimExpired", err)
	}
	if !claim("jti-short", time.Now().Add(lapse)) {
		t.Fatal("a short claim was refused")
	}
	time.Sleep(2 * lapse)
	if !claim("jti-short", time.Now().Add(time.Minute)) {
		t.Fatal("a key was still held after its until")
	}
}

func lock(t *testing.T, s Store) {
	ctx := context.Background()
	try := func(holder string, ttl time.Duration) bool {
		t.Helper()
		got, err := s.TryLock(ctx, "storetest", holder, ttl, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if !try("a", lapse) {
		t.Fatal("a free lock was not taken")
	}
	if try("b", time.Minute) || try("a", time.Minute) {
		t.Fatal("a held lock was taken again")
	}
	if got, err := s.TryLock(ctx, "other", "b", time.Minute, time.Now()); err != nil || !got {
		t.Fatalf("another lock: %v, %v", got, err)
	}
	time.Sleep(2 * lapse)
	if !try("b", time.Minute) {
		t.Fatal("a lapsed lock was not taken")
	}
}

func shares(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Second)
	l := broker.Shares{Mints: 2, Window: time.Hour, Active: 10}
	reserve := func(key, member string, at time.Time) broker.ShareVerdict {
		t.Helper()
		v, err := s.Reserve(ctx, key, member, l, at, at.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := reserve("a", "m1", t0); v.Over != "" || v.Count != 1 {
		t.Fatalf("first mint: %+v", v)
	}
	if v := reserve("a", "m2", t0.Add(10*time.Minute)); v.Over != "" {
		t.Fatalf("second mint: %+v", v)
	}
	if v := reserve("a", "m3", t0.Add(20*time.Minute)); v.Over != "max_mints" || v.Count != 2 || v.Wait != 40*time.Minute {
		t.Fatalf("third mint: %+v; want max_mints, 2, 40m", v)
	}
	if v := reserve("b", "m1", t0.Add(20*time.Minute)); v.Over != "" {
		t.Fatalf("another key: %+v", v)
	}
	// A cancelled mint does not count.
	if err := s.Cancel(ctx, "a", "m2"); err != nil {
		t.Fatal(err)
	}
	if v := reserve("a", "m4", t0.Add(20*time.Minute)); v.Over != "" {
		t.Fatalf("after a cancel: %+v", v)
	}
	if v := reserve("a", "m5", t0.Add(time.Hour+time.Second)); v.Over != "" {
		t.Fatalf("after the first mint left the window: %+v", v)
	}

	// Live slots: two confirmed tokens fill max_active 2 until one is released or expires.
	l = broker.Shares{Mints: 100, Window: time.Hour, Active: 2}
	at := t0.Add(3 * time.Hour)
	for i, id := range []string{"tok1", "tok2"} {
		member := "r" + id
		reserve("c", member, at)
		if err := s.Confirm(ctx, "c", member, id, at.Add(time.Duration(i+1)*10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if v := reserve("c", "r3", at); v.Over != "max_active" || v.Count != 2 || v.Wait != 10*time.Minute {
		t.Fatalf("a third live token: %+v; want max_active, 2, 10m", v)
	}
	if err := s.Release(ctx, "c", "tok1"); err != nil {
		t.Fatal(err)
	}
	if v := reserve("c", "r4", at); v.Over != "" {
		t.Fatalf("after a release: %+v", v)
	}
	if v := reserve("c", "r5", at); v.Over != "max_active" {
		t.Fatalf("full again: %+v", v)
	}
	// tok2 expires at +20m; r4's reservation, never confirmed, lapsed at +1m.
	if v := reserve("c", "r6", at.Add(20*time.Minute)); v.Over != "" || v.Count != 4 { // mints in the window: tok1, tok2, r4, r6
		t.Fatalf("after the expiries: %+v", v)
	}

	for i := 1; i <= 3; i++ {
		n, left, err := s.Strangers(ctx, "repo", 1, 5*time.Minute, t0)
		if err != nil || n != i || left <= 0 || left > 5*time.Minute {
			t.Fatalf("stranger %d: %d, %s, %v", i, n, left, err)
		}
	}
	if n, _, err := s.Strangers(ctx, "repo", 0, 5*time.Minute, t0); err != nil || n != 3 {
		t.Fatalf("reading the count: %d, %v", n, err)
	}
	if n, _, err := s.Strangers(ctx, "other", 0, 5*time.Minute, t0); err != nil || n != 0 {
		t.Fatalf("another repository's count: %d, %v", n, err)
	}
	// The window ends: the count starts again.
	if n, _, err := s.Strangers(ctx, "brief", 2, lapse, time.Now()); err != nil || n != 2 {
		t.Fatalf("a brief window: %d, %v", n, err)
	}
	time.Sleep(2 * lapse)
	if n, _, err := s.Strangers(ctx, "brief", 0, time.Minute, time.Now()); err != nil || n != 0 {
		t.Fatalf("after the window ended: %d, %v; want 0", n, err)
	}
}
