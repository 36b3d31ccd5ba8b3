package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// NonceStore remembers, for a token's lifetime, which tokens the broker minted for a run's nonce,
// so that a revoke by nonce deletes them by id instead of listing every token of the owner (four
// calls at 150 tokens, eleven at the quota). The key binds the run (mint.BrokerRunPrefix), so a
// caller reaches only its own run's entries. *RedisReplayStore is one, shared by replicas; a
// broker with the memory replay store keeps them in its process.
type NonceStore interface {
	// RememberNonce adds ref to key's set until until.
	RememberNonce(ctx context.Context, key, ref string, until time.Time) error
	// NonceRefs is key's set; none when the broker never wrote it or it expired.
	NonceRefs(ctx context.Context, key string) ([]string, error)
}

// unknownRef marks a nonce whose mint may have created a token the broker never learnt the id
// of: a revoke by that nonce must list.
const unknownRef = "?"

// nonceRef is where a token lives, its id and its rule, as a NonceStore keeps it.
func nonceRef(owner cftoken.Owner, account, id, rule string) string {
	return string(owner) + "|" + account + "|" + id + "|" + rule
}

func parseNonceRef(ref string) (k ownerKey, id, rule string, ok bool) {
	parts := strings.SplitN(ref, "|", 4)
	if len(parts) != 4 || !cftoken.ValidID(parts[2]) {
		return ownerKey{}, "", "", false
	}
	return ownerKey{owner: cftoken.Owner(parts[0]), account: parts[1]}, parts[2], parts[3], true
}

// memoryNonces is the NonceStore of a single broker.
type memoryNonces struct {
	now    func() time.Time
	mu     sync.Mutex
	sets   map[string]*nonceSet
	writes int
}

type nonceSet struct {
	refs  []string
	until time.Time
}

func newMemoryNonces(now func() time.Time) *memoryNonces {
	return &memoryNonces{now: now, sets: map[string]*nonceSet{}}
}

func (m *memoryNonces) RememberNonce(_ context.Context, key, ref string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.writes++; m.writes%1024 == 0 {
		for k, s := range m.sets {
			if !now.Before(s.until) {
				delete(m.sets, k)
			}
		}
	}
	s := m.sets[key]
	if s == nil || !now.Before(s.until) {
		s = &nonceSet{}
		m.sets[key] = s
	}
	if !strings.Contains("\x00"+strings.Join(s.refs, "\x00")+"\x00", "\x00"+ref+"\x00") {
		s.refs = append(s.refs, ref)
	}
	if until.After(s.until) {
		s.until = until
	}
	return nil
}

func (m *memoryNonces) NonceRefs(_ context.Context, key string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sets[key]
	if s == nil || !m.now().Before(s.until) {
		return nil, nil
	}
	return append([]string(nil), s.refs...), nil
}

// nonceKeyPrefix starts the Redis keys of the nonce map; the rest is a SHA-256 of the key.
const nonceKeyPrefix = "cfmint:nonce:"

func redisNonceKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return nonceKeyPrefix + hex.EncodeToString(sum[:])
}

// RememberNonce implements NonceStore: SADD, then PEXPIREAT until (the tokens of one nonce are
// one step's, and share their lifetime).
func (s *RedisReplayStore) RememberNonce(ctx context.Context, key, ref string, until time.Time) error {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k := redisNonceKey(key)
	at := until.Add(time.Millisecond - time.Nanosecond).UnixMilli()
	_, err := s.client.TxPipelined(cctx, func(p redis.Pipeliner) error {
		p.SAdd(cctx, k, ref)
		p.PExpireAt(cctx, k, time.UnixMilli(at))
		return nil
	})
	return s.result(ctx, err)
}

// NonceRefs implements NonceStore.
func (s *RedisReplayStore) NonceRefs(ctx context.Context, key string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	refs, err := s.client.SMembers(cctx, redisNonceKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return refs, s.result(ctx, err)
}

func (s *RedisReplayStore) result(ctx context.Context, err error) error {
	switch {
	case err == nil:
		s.answered()
		return nil
	case callerGaveUp(ctx) != nil:
		return callerGaveUp(ctx)
	}
	return s.failed(err)
}
