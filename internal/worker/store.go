package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
)

// Store is the broker's store on Workers: the single use of ID tokens, the fair shares
// (max_mints, max_active, revokes of tokens not the caller's), the sweep lock and the tokens
// each nonce minted (so that a revoke by nonce in any isolate deletes them by id), all in one
// Durable Object with SQLite storage (ReplayStore in deploy/cloudflare/src/index.js). A Durable
// Object runs one call at a time and each call is one SQLite transaction, so every isolate sees
// the same counts, as every replica of `cfmint serve` does in Redis.
//
// Each method is one call of Call: the method's name and its arguments as a JSON object, times
// in Unix milliseconds and durations in milliseconds; the answer is JSON. On Workers, Call is the
// Durable Object's RPC (js.go); run-local's control port serves the same calls to tests.
type Store struct {
	Call func(ctx context.Context, method string, args []byte) ([]byte, error)
}

var (
	_ broker.ReplayStore = Store{}
	_ broker.ShareStore  = Store{}
	_ broker.NonceStore  = Store{}
)

// call runs method with args and decodes its answer into out (nil: none expected). Every error
// wraps broker.ErrReplayUnavailable, so that the broker answers 503 and never skips a check.
func (s Store) call(ctx context.Context, method string, args, out any) error {
	if s.Call == nil {
		return fmt.Errorf("%w: no Durable Object binding REPLAY", broker.ErrReplayUnavailable)
	}
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	res, err := s.Call(ctx, method, b)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: the Durable Object's %s: %v", broker.ErrReplayUnavailable, method, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("%w: the Durable Object's %s answered %.80q: %v", broker.ErrReplayUnavailable, method, res, err)
	}
	return nil
}

func ms(t time.Time) int64            { return t.UnixMilli() }
func msOf(d time.Duration) int64      { return d.Milliseconds() }
func duration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// Claim implements broker.ReplayStore: key is inserted unless it is held unexpired.
func (s Store) Claim(ctx context.Context, key string, until time.Time) (bool, error) {
	now := time.Now()
	if !until.After(now) {
		return false, broker.ErrClaimExpired
	}
	var first bool
	err := s.call(ctx, "claim", map[string]any{"key": key, "until": ms(until), "now": ms(now)}, &first)
	return first, err
}

// Reserve implements broker.ShareStore.
func (s Store) Reserve(ctx context.Context, key, member string, l broker.Shares, now, pending time.Time) (broker.ShareVerdict, error) {
	var v struct {
		Over  string `json:"over"`
		Count int    `json:"count"`
		Wait  int64  `json:"wait"`
	}
	err := s.call(ctx, "reserve", map[string]any{"key": key, "member": member, "mints": l.Mints, "window": msOf(l.Window), "active": l.Active, "now": ms(now), "pending": ms(pending)}, &v)
	if err == nil && v.Over != "" && v.Over != "max_mints" && v.Over != "max_active" {
		err = fmt.Errorf("%w: the Durable Object's reserve named the limit %q", broker.ErrReplayUnavailable, v.Over)
	}
	return broker.ShareVerdict{Over: v.Over, Count: v.Count, Wait: duration(v.Wait)}, err
}

// Confirm implements broker.ShareStore.
func (s Store) Confirm(ctx context.Context, key, member, tokenID string, expires time.Time) error {
	return s.call(ctx, "confirm", map[string]any{"key": key, "member": member, "token": tokenID, "expires": ms(expires)}, nil)
}

// Cancel implements broker.ShareStore.
func (s Store) Cancel(ctx context.Context, key, member string) error {
	return s.call(ctx, "cancel", map[string]any{"key": key, "member": member}, nil)
}

// Release implements broker.ShareStore.
func (s Store) Release(ctx context.Context, key, tokenID string) error {
	return s.call(ctx, "release", map[string]any{"key": key, "token": tokenID}, nil)
}

// Strangers implements broker.ShareStore.
func (s Store) Strangers(ctx context.Context, key string, add int, window time.Duration, now time.Time) (int, time.Duration, error) {
	var v struct {
		Count int   `json:"count"`
		Left  int64 `json:"left"`
	}
	err := s.call(ctx, "strangers", map[string]any{"key": key, "add": add, "window": msOf(window), "now": ms(now)}, &v)
	return v.Count, duration(v.Left), err
}

// TryLock implements broker.ShareStore: held is held, whoever asks, until it lapses.
func (s Store) TryLock(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	var got bool
	err := s.call(ctx, "tryLock", map[string]any{"name": name, "holder": holder, "ttl": msOf(ttl), "now": ms(now)}, &got)
	return got, err
}

// RememberNonce implements broker.NonceStore.
func (s Store) RememberNonce(ctx context.Context, key, ref string, until time.Time) error {
	return s.call(ctx, "rememberNonce", map[string]any{"key": key, "ref": ref, "until": ms(until), "now": ms(time.Now())}, nil)
}

// NonceRefs implements broker.NonceStore.
func (s Store) NonceRefs(ctx context.Context, key string) ([]string, error) {
	var refs []string
	err := s.call(ctx, "nonceRefs", map[string]any{"key": key, "now": ms(time.Now())}, &refs)
	return refs, err
}
