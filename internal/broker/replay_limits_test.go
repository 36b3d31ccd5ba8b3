package broker

import (
	"context"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/redistest"
)

// TestShareStores: the memory and Redis stores count alike: a sliding window of mints, live
// slots held until expiry or release, cancelled reservations not counted, stranger revokes in a
// fixed window. Redis's windows are driven by the now the caller gives, except the strangers'
// counter, whose window is the key's own expiry.
func TestShareStores(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) ShareStore{
		"memory": func(*testing.T) ShareStore { return &MemoryReplayStore{} },
		"redis": func(t *testing.T) ShareStore {
			return newTestRedisStore(t, redistest.Start(t).URL(), ReplayStoreOptions{})
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			ctx := context.Background()
			t0 := time.Now().Truncate(time.Second)
			l := Shares{Mints: 2, Window: time.Hour, Active: 10}
			reserve := func(key, member string, at time.Time) ShareVerdict {
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
			l = Shares{Mints: 100, Window: time.Hour, Active: 2}
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
		})
	}
}
