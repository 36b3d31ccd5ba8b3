package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ShareStore keeps what the broker's fair shares count, beside the replay store's claims and in
// the same place, so that every replica sharing the store shares the counts: the mints of each
// repository in a sliding window, its live tokens, its revokes of tokens it does not own, and
// the lock that lets one replica sweep at a time. *MemoryReplayStore and *RedisReplayStore are
// ShareStores. key is a repository under a rule (shareKey); every method is safe for concurrent
// use, and a Redis store runs each as one atomic script.
type ShareStore interface {
	// Reserve counts a mint about to be made, if the key's limits allow it: the mints in the
	// window (now-window, now] stay below l.Mints, and the live tokens (those whose expiry is
	// after now, reservations included) below l.Active. The reservation, member, holds a live
	// slot until now+pending, when a replica that died mid-mint frees it by itself.
	Reserve(ctx context.Context, key, member string, l Shares, now, pending time.Time) (ShareVerdict, error)
	// Confirm turns a reservation into the token minted: a live slot until the token expires.
	Confirm(ctx context.Context, key, member, tokenID string, expires time.Time) error
	// Cancel forgets a reservation whose mint failed: only successful mints count.
	Cancel(ctx context.Context, key, member string) error
	// Release frees a token's live slot: it was revoked or swept before it expired.
	Release(ctx context.Context, key, tokenID string) error
	// Strangers adds add (0: none, to read) to the key's count of revokes of tokens that were not
	// its own, counted in fixed windows of window, and returns the count and the time left in
	// the window.
	Strangers(ctx context.Context, key string, add int, window time.Duration, now time.Time) (int, time.Duration, error)
	// TryLock takes the lock name for holder until now+ttl, unless it is held (by anyone).
	TryLock(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
}

// Shares are a rule's limits on one repository; zero means no limit.
type Shares struct {
	Mints  int
	Window time.Duration
	Active int
}

// ShareVerdict is Reserve's answer.
type ShareVerdict struct {
	// Over names the limit that refused the mint ("max_mints" or "max_active"); "" when the mint
	// was counted.
	Over string
	// Count is the mints in the window, or the live tokens, that the limit counted.
	Count int
	// Wait is how long until the limit has room again: the oldest mint leaves the window, or the
	// first live token expires.
	Wait time.Duration
}

// ---- memory ----

// memoryShares is a MemoryReplayStore's fair-share counts.
type memoryShares struct {
	mu        sync.Mutex
	mints     map[string]map[string]time.Time // key -> member -> minted at
	active    map[string]map[string]time.Time // key -> member or token id -> until
	strangers map[string]fixedWindow
	locks     map[string]heldLock
}

type fixedWindow struct {
	n   int
	end time.Time
}

type heldLock struct {
	holder string
	until  time.Time
}

func (m *memoryShares) init() {
	if m.mints == nil {
		m.mints, m.active = map[string]map[string]time.Time{}, map[string]map[string]time.Time{}
		m.strangers, m.locks = map[string]fixedWindow{}, map[string]heldLock{}
	}
}

// pruneBefore forgets the entries of set at or before t, and the set when it is left empty.
func pruneBefore(sets map[string]map[string]time.Time, key string, t time.Time) map[string]time.Time {
	set := sets[key]
	for k, at := range set {
		if !at.After(t) {
			delete(set, k)
		}
	}
	if len(set) == 0 {
		delete(sets, key)
		return nil
	}
	return set
}

func earliest(set map[string]time.Time) time.Time {
	times := make([]time.Time, 0, len(set))
	for _, t := range set {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	return times[0]
}

// Reserve implements ShareStore.
func (s *MemoryReplayStore) Reserve(ctx context.Context, key, member string, l Shares, now, pending time.Time) (ShareVerdict, error) {
	if err := ctx.Err(); err != nil {
		return ShareVerdict{}, err
	}
	m := &s.shares
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	mints := pruneBefore(m.mints, key, now.Add(-l.Window))
	if l.Mints > 0 && len(mints) >= l.Mints {
		return ShareVerdict{Over: "max_mints", Count: len(mints), Wait: earliest(mints).Add(l.Window).Sub(now)}, nil
	}
	active := pruneBefore(m.active, key, now)
	if l.Active > 0 && len(active) >= l.Active {
		return ShareVerdict{Over: "max_active", Count: len(active), Wait: earliest(active).Sub(now)}, nil
	}
	if mints == nil {
		mints = map[string]time.Time{}
		m.mints[key] = mints
	}
	if active == nil {
		active = map[string]time.Time{}
		m.active[key] = active
	}
	mints[member], active[member] = now, pending
	return ShareVerdict{Count: len(mints)}, nil
}

// Confirm implements ShareStore.
func (s *MemoryReplayStore) Confirm(_ context.Context, key, member, tokenID string, expires time.Time) error {
	m := &s.shares
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	set := m.active[key]
	if set == nil {
		set = map[string]time.Time{}
		m.active[key] = set
	}
	delete(set, member)
	set[tokenID] = expires
	return nil
}

// Cancel implements ShareStore.
func (s *MemoryReplayStore) Cancel(_ context.Context, key, member string) error {
	m := &s.shares
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	delete(m.mints[key], member)
	delete(m.active[key], member)
	return nil
}

// Release implements ShareStore.
func (s *MemoryReplayStore) Release(_ context.Context, key, tokenID string) error {
	m := &s.shares
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	delete(m.active[key], tokenID)
	return nil
}

// Strangers implements ShareStore.
func (s *MemoryReplayStore) Strangers(_ context.Context, key string, add int, window time.Duration, now time.Time) (int, time.Duration, error) {
	m := &s.shares
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	w := m.strangers[key]
	if !w.end.After(now) {
		w = fixedWindow{end: now.Add(window)}
	}
	w.n += add
	if w.n > 0 {
		m.strangers[key] = w
	} else {
		delete(m.strangers, key)
	}
	return w.n, w.end.Sub(now), nil
}

// TryLock implements ShareStore.
func (s *MemoryReplayStore) TryLock(_ context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	m := &s.shares
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	// As Redis's SET NX: held is held, whoever asks.
	if l, ok := m.locks[name]; ok && l.until.After(now) {
		return false, nil
	}
	m.locks[name] = heldLock{holder: holder, until: now.Add(ttl)}
	return true, nil
}

// ---- Redis ----

// shareKeyPrefix starts the keys of the fair shares. The repository's key is hashed (fixed size,
// no escaping) and in braces, so that a key's sets share a Redis Cluster slot.
const shareKeyPrefix = "cfmint:share:"

func redisShareKey(key, kind string) string {
	sum := sha256.Sum256([]byte(key))
	return shareKeyPrefix + "{" + hex.EncodeToString(sum[:16]) + "}:" + kind
}

// reserveScript is Reserve: two sorted sets, the mints scored by when, the live tokens by until
// (Unix milliseconds).
var reserveScript = redis.NewScript(`
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local minted = redis.call('ZCARD', KEYS[1])
if tonumber(ARGV[3]) > 0 and minted >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, minted, tonumber(first[2]) + window - now}
end
local active = redis.call('ZCARD', KEYS[2])
if tonumber(ARGV[4]) > 0 and active >= tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {2, active, tonumber(first[2]) - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return {0, minted + 1, 0}
`)

// confirmScript is Confirm: the reservation's slot becomes the token's, held until it expires.
var confirmScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`)

// strangersScript is Strangers: a counter that lives for one window from its first count.
var strangersScript = redis.NewScript(`
local add = tonumber(ARGV[1])
local n = 0
if add > 0 then
  n = redis.call('INCRBY', KEYS[1], add)
  if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
else
  n = tonumber(redis.call('GET', KEYS[1]) or '0')
end
return {n, redis.call('PTTL', KEYS[1])}
`)

// run runs one of the store's commands within its timeout, logging and counting an outage as
// Claim does.
func (s *RedisReplayStore) run(ctx context.Context, f func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := f(cctx)
	switch {
	case err == nil, errors.Is(err, redis.Nil):
		s.answered()
		return nil
	case callerGaveUp(ctx) != nil:
		return callerGaveUp(ctx)
	default:
		return s.failed(err)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// Reserve implements ShareStore.
func (s *RedisReplayStore) Reserve(ctx context.Context, key, member string, l Shares, now, pending time.Time) (ShareVerdict, error) {
	var v ShareVerdict
	err := s.run(ctx, func(ctx context.Context) error {
		res, err := reserveScript.Run(ctx, s.client, []string{redisShareKey(key, "mints"), redisShareKey(key, "active")},
			ms(now), l.Window.Milliseconds(), l.Mints, l.Active, member, ms(pending)).Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != 3 {
			return fmt.Errorf("the reserve script answered %d values, not 3", len(res))
		}
		v = ShareVerdict{Over: []string{"", "max_mints", "max_active"}[res[0]], Count: int(res[1]), Wait: time.Duration(res[2]) * time.Millisecond}
		return nil
	})
	return v, err
}

// Confirm implements ShareStore.
func (s *RedisReplayStore) Confirm(ctx context.Context, key, member, tokenID string, expires time.Time) error {
	return s.run(ctx, func(ctx context.Context) error {
		return confirmScript.Run(ctx, s.client, []string{redisShareKey(key, "active")}, member, tokenID, ms(expires)).Err()
	})
}

// Cancel implements ShareStore.
func (s *RedisReplayStore) Cancel(ctx context.Context, key, member string) error {
	return s.run(ctx, func(ctx context.Context) error {
		_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, redisShareKey(key, "mints"), member)
			p.ZRem(ctx, redisShareKey(key, "active"), member)
			return nil
		})
		return err
	})
}

// Release implements ShareStore.
func (s *RedisReplayStore) Release(ctx context.Context, key, tokenID string) error {
	return s.run(ctx, func(ctx context.Context) error {
		return s.client.ZRem(ctx, redisShareKey(key, "active"), tokenID).Err()
	})
}

// Strangers implements ShareStore. The window is Redis's clock (the key's expiry), not now.
func (s *RedisReplayStore) Strangers(ctx context.Context, key string, add int, window time.Duration, _ time.Time) (int, time.Duration, error) {
	var n int
	var left time.Duration
	err := s.run(ctx, func(ctx context.Context) error {
		res, err := strangersScript.Run(ctx, s.client, []string{redisShareKey(key, "strangers")}, add, window.Milliseconds()).Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != 2 {
			return fmt.Errorf("the strangers script answered %d values, not 2", len(res))
		}
		n, left = int(res[0]), max(time.Duration(res[1])*time.Millisecond, 0)
		return nil
	})
	return n, left, err
}

// TryLock implements ShareStore: SET NX PX, so of replicas asking at once exactly one gets it.
// The lock is not released: it lapses after ttl, so that it also spaces the sweeps of all
// replicas.
func (s *RedisReplayStore) TryLock(ctx context.Context, name, holder string, ttl time.Duration, _ time.Time) (bool, error) {
	var got bool
	err := s.run(ctx, func(ctx context.Context) error {
		err := s.client.SetArgs(ctx, "cfmint:lock:"+name, holder, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
		got = err == nil
		return err
	})
	return got, err
}
