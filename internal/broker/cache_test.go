package broker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/policy"
)

// groupsOnly answers permission-group lists and fails the test on any other call.
type groupsOnly struct {
	mint.Tokens // nil: any other method panics
	t           *testing.T
	mu          sync.Mutex
	calls       int
	fail        bool
	gate        chan struct{} // when set, each call waits for it
}

func (g *groupsOnly) PermissionGroups(context.Context, cftoken.Owner, string) ([]policy.Group, cftoken.ServerClock, error) {
	if g.gate != nil {
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.fail {
		return nil, cftoken.ServerClock{}, errors.New("cloudflare is down")
	}
	// The second group's name says which answer this is: a, b, c...
	return []policy.Group{{ID: "g", Name: "DNS Write", Scopes: []string{policy.ScopeZone}}, {ID: "v", Name: string(rune('a' + g.calls - 1))}}, cftoken.ServerClock{}, nil
}

func TestLookupCacheGroups(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	g := &groupsOnly{t: t}
	c := newLookupCache(g, func() time.Time { return now })
	k := ownerKey{owner: cftoken.OwnerAccount, account: "a"}
	ctx := context.Background()
	get := func(refresh bool) string {
		t.Helper()
		gs, _, err := c.groups(ctx, k, refresh)
		if err != nil {
			t.Fatal(err)
		}
		return gs[1].Name
	}
	steps := []struct {
		name    string
		advance time.Duration
		refresh bool
		fail    bool
		want    string
		calls   int
	}{
		{"first look asks Cloudflare", 0, false, false, "a", 1},
		{"then the cache answers", time.Minute, false, false, "a", 1},
		{"an unknown name refreshes once", 0, true, false, "b", 2},
		{"but not again within the gap", 10 * time.Second, true, false, "b", 2},
		{"past the gap it may", refreshMinGap, true, false, "c", 3},
		{"the cache expires", cacheTTL, false, false, "d", 4},
		{"a failed refresh keeps the stale list", cacheTTL, false, true, "d", 5},
		{"and a failing Cloudflare is not asked again within the gap", 10 * time.Second, false, true, "d", 5},
		{"nor for an unknown name", 0, true, true, "d", 5},
		{"past the gap it is", refreshMinGap, false, false, "f", 6},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		g.fail = st.fail
		if got := get(st.refresh); got != st.want || g.calls != st.calls {
			t.Errorf("%s: list version %q after %d calls, want %q after %d", st.name, got, g.calls, st.want, st.calls)
		}
	}
	// No list at all and Cloudflare down: the error, not an empty list.
	c2 := newLookupCache(&groupsOnly{t: t, fail: true}, func() time.Time { return now })
	if _, _, err := c2.groups(ctx, k, false); err == nil {
		t.Errorf("no cached list and a failing Cloudflare gave no error")
	}
}

func TestLookupCacheAsksOnceForConcurrentExchanges(t *testing.T) {
	t.Parallel()
	g := &groupsOnly{t: t, gate: make(chan struct{})}
	c := newLookupCache(g, time.Now)
	k := ownerKey{owner: cftoken.OwnerAccount, account: "a"}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, _, err := c.groups(context.Background(), k, false); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let them all reach the cache
	close(g.gate)
	wg.Wait()
	if g.calls != 1 {
		t.Errorf("%d permission-group calls for 20 exchanges on a cold cache, want 1", g.calls)
	}
}
