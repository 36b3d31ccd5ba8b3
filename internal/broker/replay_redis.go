package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrReplayUnavailable is wrapped by every error of a replay store that
// could not be asked, with the cause beside it. The broker refuses the ID
// token (503 with Retry-After) rather than skip the single-use check.
var ErrReplayUnavailable = errors.New("the broker's replay store is unavailable, so it refuses ID tokens for now; try again shortly")

// DefaultReplayTimeout bounds one call to a Redis replay store, dial
// included, when ReplayStoreOptions sets no Timeout.
const DefaultReplayTimeout = 2 * time.Second

// replayKeyPrefix starts every key the Redis store writes. The rest is a
// SHA-256 of the replay key, so a jti of any length or bytes makes a key
// of fixed size that needs no escaping and cannot collide with another
// application's keys.
const replayKeyPrefix = "cfmint:jti:"

// ReplayStoreOptions configures OpenReplayStore and NewRedisReplayStore.
type ReplayStoreOptions struct {
	// Logger receives one line when the store becomes unreachable and one
	// when it answers again. Required.
	Logger *slog.Logger
	// OnError, if set, is called with each error of the store (not with a
	// refused replay, nor with a caller's own cancellation): the hook for a
	// metric of store errors. It must be safe for concurrent use.
	OnError func(error)
	// Timeout bounds each call to Redis; zero means DefaultReplayTimeout.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ReplayPinger is a ReplayStore that depends on a service /readyz should
// check. *RedisReplayStore is one; *MemoryReplayStore is not.
type ReplayPinger interface {
	Ping(ctx context.Context) error
}

// PingReplayStore checks that s can record claims: nil for a store
// without a service behind it, else s's Ping.
func PingReplayStore(ctx context.Context, s ReplayStore) error {
	if p, ok := s.(ReplayPinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// OpenReplayStore opens the store that --replay-store names: "memory" (one
// broker replica) or a redis:// or rediss:// URL (shared by replicas),
// redis://[user:password@]host[:port][/db][?option=value]. Close the
// returned Closer at shutdown; it is never nil. Errors show the value with
// its password redacted.
func OpenReplayStore(spec string, o ReplayStoreOptions) (ReplayStore, io.Closer, error) {
	switch {
	case spec == "memory":
		return &MemoryReplayStore{Now: o.Now}, nopCloser{}, nil
	case spec == "":
		// Not memory by default: an empty value is more likely an unset
		// variable in a template meant for Redis, and a memory store on each
		// replica would let a token be used once per replica.
		return nil, nil, errors.New(`--replay-store is empty; write memory (one broker replica) or redis://host:port/db (shared by replicas)`)
	}
	if !strings.HasPrefix(spec, "redis://") && !strings.HasPrefix(spec, "rediss://") {
		return nil, nil, fmt.Errorf("--replay-store %q is neither memory nor a redis:// or rediss:// URL; write memory (one broker replica) or redis://host:port/db (shared by replicas)", RedactReplayStore(spec))
	}
	s, err := NewRedisReplayStore(spec, o)
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// RedisReplayStore is a ReplayStore that replicas share through Redis: a
// claim is `SET cfmint:jti:<sha256> 1 NX PXAT <until>`, which is atomic in
// Redis, so of concurrent claims on any replicas exactly one wins. A Redis
// that cannot be asked makes Claim fail with ErrReplayUnavailable; it
// never reports a claim it could not record. It is safe for concurrent use.
type RedisReplayStore struct {
	client  *redis.Client
	display string // the URL with its password redacted
	logger  *slog.Logger
	onError func(error)
	timeout time.Duration
	now     func() time.Time

	// down is set by the first failure of an outage and cleared by the
	// first success after it, so each edge logs once however many
	// requests fail in between.
	down      atomic.Bool
	downSince atomic.Int64 // UnixNano, for the "reachable again" line
}

// NewRedisReplayStore parses rawURL as go-redis's ParseURL does (redis://
// or rediss://) and returns a store on it. It does not connect: the first
// Claim or Ping does, and a Redis that is down then is reported then.
// Retries of commands are off whatever the URL says: a SET NX whose reply
// was lost and which is sent again would answer "already used" to the
// token's only use.
func NewRedisReplayStore(rawURL string, o ReplayStoreOptions) (*RedisReplayStore, error) {
	display := RedactReplayStore(rawURL)
	if o.Logger == nil {
		return nil, errors.New("broker: NewRedisReplayStore needs a Logger")
	}
	opts, err := parseRedisURL(rawURL, display)
	if err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultReplayTimeout
	}
	opts.MaxRetries = -1
	// One dial a call: retried dials to a Redis that refuses connections
	// would hold each request for their backoff, and the caller retries
	// after the broker's Retry-After anyway.
	opts.DialerRetries = 1
	opts.ContextTimeoutEnabled = true
	// CLIENT SETINFO and maintenance notifications are round trips, and on
	// a plain Redis failures that go-redis logs, that a SET NX does not need.
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	for _, d := range []*time.Duration{&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout} {
		if *d == 0 {
			*d = timeout
		}
	}
	quietGoRedis.Do(func() { redis.SetLogger(discardRedisLog{}) })
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &RedisReplayStore{
		client:  redis.NewClient(opts),
		display: display,
		logger:  o.Logger,
		onError: o.OnError,
		timeout: timeout,
		now:     now,
	}, nil
}

// parseRedisURL checks what go-redis would accept silently or report with
// the URL in its text, then lets go-redis parse the rest.
func parseRedisURL(rawURL, display string) (*redis.Options, error) {
	const allowed = "write redis://[user:password@]host[:port][/db] or rediss://... with the password percent-encoded"
	if strings.Contains(rawURL, "#") {
		return nil, fmt.Errorf("--replay-store %q has a '#', which ends a URL; percent-encode it as %%23 in the password, and %s", display, allowed)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the whole URL, password and all.
		return nil, fmt.Errorf("--replay-store %q is not a valid URL; %s", display, allowed)
	}
	if strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "@") {
		// A password with an unencoded '/' or '?' ends the host early; what
		// follows would be quoted back as a database or an option.
		return nil, fmt.Errorf("--replay-store %q has an '@' after its host; percent-encode '/', '?' and '@' in the password as %%2F, %%3F and %%40, and %s", display, allowed)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("--replay-store %q names no host; %s", display, allowed)
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--replay-store %q: %s; %s", display, strings.TrimPrefix(err.Error(), "redis: "), allowed)
	}
	return opts, nil
}

// Claim implements ReplayStore.
func (s *RedisReplayStore) Claim(ctx context.Context, key string, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !until.After(s.now()) {
		return false, ErrClaimExpired
	}
	// Rounded up, so the key is held at least until until.
	at := until.Add(time.Millisecond - time.Nanosecond).UnixMilli()
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.client.Do(cctx, "SET", redisReplayKey(key), "1", "NX", "PXAT", at).Err()
	switch {
	case err == nil:
		s.answered()
		return true, nil
	case errors.Is(err, redis.Nil): // NX and the key is held
		s.answered()
		return false, nil
	case callerGaveUp(ctx) != nil:
		// That says nothing about Redis.
		return false, callerGaveUp(ctx)
	default:
		return false, s.failed(err)
	}
}

// Ping reports whether Redis answers, as /readyz wants to know: nil, or an
// error wrapping ErrReplayUnavailable. It logs and counts like Claim.
func (s *RedisReplayStore) Ping(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.client.Ping(cctx).Err()
	switch {
	case err == nil:
		s.answered()
		return nil
	case callerGaveUp(ctx) != nil:
		return callerGaveUp(ctx)
	default:
		return s.failed(err)
	}
}

// Close closes the connections to Redis.
func (s *RedisReplayStore) Close() error { return s.client.Close() }

// String returns the store's URL with its password redacted.
func (s *RedisReplayStore) String() string { return s.display }

// callerGaveUp returns the caller's context error, also when its deadline
// has passed but its timer has not fired yet: go-redis turns that deadline
// into the socket's, whose i/o timeout can come first.
func callerGaveUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (s *RedisReplayStore) failed(cause error) error {
	err := &replayUnavailableError{store: s.display, cause: cause}
	if s.onError != nil {
		s.onError(err)
	}
	if s.down.CompareAndSwap(false, true) {
		s.downSince.Store(time.Now().UnixNano())
		s.logger.Error("replay store unreachable; refusing ID tokens until it answers", "store", s.display, "error", cause.Error())
	}
	return err
}

func (s *RedisReplayStore) answered() {
	if s.down.CompareAndSwap(true, false) {
		down := time.Since(time.Unix(0, s.downSince.Load())).Round(time.Millisecond)
		s.logger.Info("replay store reachable again", "store", s.display, "down_for", down.String())
	}
}

// replayUnavailableError is ErrReplayUnavailable with its store and cause,
// for the log; an HTTP answer should say no more than the sentinel.
type replayUnavailableError struct {
	store string // redacted
	cause error
}

func (e *replayUnavailableError) Error() string {
	return fmt.Sprintf("the replay store %s cannot be used (%v), so ID tokens are refused until it can", e.store, e.cause)
}

func (e *replayUnavailableError) Unwrap() []error { return []error{ErrReplayUnavailable, e.cause} }

func redisReplayKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return replayKeyPrefix + hex.EncodeToString(sum[:])
}

// RedactReplayStore returns a --replay-store value fit for logs and
// errors: the password (or a lone user name, which may be a misplaced
// password) and secret-looking query values become xxxxx. It works on the
// raw text, so a value that is not a valid URL is redacted too.
func RedactReplayStore(spec string) string {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		// Not a URL, but user:password@host:port is a likely mistake.
		if at := strings.LastIndexByte(spec, '@'); at >= 0 {
			return "xxxxx" + spec[at:]
		}
		return spec
	}
	// The last '@' ends the user info: a password may hold '@', '/' or '?'
	// that the writer did not percent-encode.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		if hasPassword {
			rest = user + ":xxxxx" + rest[at:]
		} else {
			rest = "xxxxx" + rest[at:]
		}
	}
	if base, query, ok := strings.Cut(rest, "?"); ok {
		q, err := url.ParseQuery(query)
		if err != nil {
			return scheme + "://" + base + "?xxxxx"
		}
		for name := range q {
			if secretQueryName(name) {
				q[name] = []string{"xxxxx"}
			}
		}
		rest = base + "?" + q.Encode()
	}
	return scheme + "://" + rest
}

func secretQueryName(name string) bool {
	name = strings.ToLower(name)
	for _, word := range []string{"pass", "pwd", "secret", "token", "auth", "key", "cred"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// go-redis logs each failed dial to stderr through a process-wide logger;
// the store logs an outage once instead, and its errors carry the cause.
var quietGoRedis sync.Once

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}
