package broker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/mint"
	"github.com/cfmint/cfmint/internal/policy"
)

// lookupCache keeps the permission groups and zone ids the broker looked up, and the zones it
// did not find: all change rarely, and every call saved is one more job under Cloudflare's rate
// limit.
type lookupCache struct {
	tokens mint.Tokens
	now    func() time.Time
	budget *Budget // nil: lookups are not reserved
	flight singleflight.Group
	mu     sync.Mutex
	group  map[ownerKey]groupEntry
	zone   map[string]zoneEntry // account + "/" + name or id
}

type groupEntry struct {
	groups  []policy.Group
	clock   cftoken.ServerClock
	fetched time.Time // when Cloudflare last answered with the list
	tried   time.Time // when Cloudflare last was asked for it
}

// zoneEntry is a zone found, or (err set) a name or id Cloudflare said it does not know.
type zoneEntry struct {
	zone    policy.Zone
	err     error
	fetched time.Time
}

// How long lookups are trusted, how long a zone that was not found stays not found, and how
// often an unknown permission name may force a refresh.
const (
	cacheTTL      = 10 * time.Minute
	missingTTL    = 3 * time.Minute
	refreshMinGap = 30 * time.Second
)

func newLookupCache(t mint.Tokens, now func() time.Time) *lookupCache {
	return &lookupCache{tokens: t, now: now, group: map[ownerKey]groupEntry{}, zone: map[string]zoneEntry{}}
}

type priorityKey struct{}

// withPriority says at which priority the lookups made under ctx are reserved; lookups outside
// an exchange (start, reload, policy check) are the operator's, and may use the reserve.
func withPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// reserve holds n lookups on the budget; a mint's lookups must leave room for the mint too.
func (c *lookupCache) reserve(ctx context.Context, n int) (*Hold, error) {
	if c.budget == nil {
		return nil, nil
	}
	p, ok := ctx.Value(priorityKey{}).(Priority)
	if !ok {
		p = ForRevoke
	}
	later := 0
	if p == ForMint {
		later = mintCalls + mintLater
	}
	h, wait, ok := c.budget.Take(n, later, p)
	if !ok {
		return nil, &apiError{status: http.StatusTooManyRequests, retryAfter: wait, msg: "the broker is near Cloudflare's rate limit on its bootstrap token (shared with every other user of that Cloudflare user) and keeps the rest for revokes, so it cannot look up what the request needs now; retry after the time Retry-After gives"}
	}
	return h, nil
}

// groups returns k's permission groups and the Cloudflare clock of their answer; refresh asks
// Cloudflare again unless it was asked within refreshMinGap.
func (c *lookupCache) groups(ctx context.Context, k ownerKey, refresh bool) ([]policy.Group, cftoken.ServerClock, error) {
	c.mu.Lock()
	e, ok := c.group[k]
	c.mu.Unlock()
	now := c.now()
	age := now.Sub(e.fetched)
	if ok && (age < cacheTTL || now.Sub(e.tried) < refreshMinGap) && (!refresh || age < refreshMinGap || now.Sub(e.tried) < refreshMinGap) {
		return e.groups, e.clock, nil
	}
	// Exchanges that find the list missing or old at once ask Cloudflare once between them.
	v, err, _ := c.flight.Do(k.String(), func() (any, error) {
		// An exchange that found the list missing or old, then came here after another's
		// flight ended, takes what that flight fetched.
		c.mu.Lock()
		if cur, fresh := c.group[k]; fresh && (!ok || cur.tried.After(e.tried)) {
			c.mu.Unlock()
			return cur, nil
		}
		c.mu.Unlock()
		h, err := c.reserve(ctx, 1)
		if err != nil {
			if ok {
				return e, nil // a stale list beats none
			}
			return nil, err
		}
		defer h.Release()
		g, clock, err := c.tokens.PermissionGroups(WithHold(ctx, h), k.owner, k.account)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			if old, ok := c.group[k]; ok {
				// A stale list beats no answer; and a failing Cloudflare is not asked again
				// before the gap, however many exchanges come.
				old.tried = c.now()
				c.group[k] = old
				return old, nil
			}
			return nil, err
		}
		ne := groupEntry{groups: g, clock: clock, fetched: c.now(), tried: c.now()}
		c.group[k] = ne
		return ne, nil
	})
	if err != nil {
		return nil, cftoken.ServerClock{}, err
	}
	ge := v.(groupEntry)
	return ge.groups, ge.clock, nil
}

// cached is the entry for key while it is fresh.
func (c *lookupCache) cached(key string) (zoneEntry, bool) {
	e, ok := c.zone[key]
	if !ok {
		return e, false
	}
	ttl := cacheTTL
	if e.err != nil {
		ttl = missingTTL
	}
	return e, c.now().Sub(e.fetched) < ttl
}

// zones resolves names and ids in account, from the cache where it can: a zone found is kept for
// cacheTTL, one Cloudflare said it does not know (or that is another account's) for missingTTL,
// so that a request naming missing zones does not cost a lookup each time it is repeated.
func (c *lookupCache) zones(ctx context.Context, names, ids []string, account string) ([]policy.Zone, error) {
	type miss struct {
		key      string
		name, id string
	}
	out := make([]policy.Zone, 0, len(names)+len(ids))
	var misses []miss
	var errs []error
	c.mu.Lock()
	for i, v := range append(append([]string{}, names...), ids...) {
		key := account + "/" + strings.ToLower(v)
		e, ok := c.cached(key)
		switch {
		case ok && e.err != nil:
			errs = append(errs, e.err)
		case ok:
			out = append(out, e.zone)
		case i < len(names):
			misses = append(misses, miss{key: key, name: v})
		default:
			misses = append(misses, miss{key: key, id: v})
		}
	}
	c.mu.Unlock()
	if len(misses) > 0 {
		h, err := c.reserve(ctx, len(misses))
		if err != nil {
			return nil, err
		}
		defer h.Release()
		ctx = WithHold(ctx, h)
		eng := &mint.Engine{Tokens: c.tokens, Now: c.now}
		got := make([]zoneEntry, len(misses))
		var wg sync.WaitGroup
		for i, m := range misses {
			wg.Go(func() {
				var zs []policy.Zone
				var err error
				if m.name != "" {
					zs, err = eng.Zones(ctx, []string{m.name}, nil, account)
				} else {
					zs, err = eng.Zones(ctx, nil, []string{m.id}, account)
				}
				if err == nil {
					got[i] = zoneEntry{zone: zs[0]}
				} else {
					got[i] = zoneEntry{err: err}
				}
			})
		}
		wg.Wait()
		c.mu.Lock()
		for i, e := range got {
			switch {
			case e.err == nil:
				e.fetched = c.now()
				c.zone[account+"/"+strings.ToLower(e.zone.Name)] = e
				c.zone[account+"/"+e.zone.ID] = e
				out = append(out, e.zone)
			case unanswered(e.err):
				// Nothing learnt: ask again next time.
				errs = append(errs, e.err)
			default:
				e.fetched = c.now()
				c.zone[misses[i].key] = e
				errs = append(errs, e.err)
			}
		}
		c.mu.Unlock()
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
