package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cfmint/cfmint/internal/redistest"
)

// logBuffer collects a logger's JSON lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns how many lines have the message msg.
func (l *logBuffer) count(msg string) int {
	return strings.Count(l.String(), `"msg":"`+msg+`"`)
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, nil)), buf
}

func newTestRedisStore(t *testing.T, rawURL string, o ReplayStoreOptions) *RedisReplayStore {
	t.Helper()
	if o.Logger == nil {
		o.Logger, _ = newTestLogger()
	}
	s, err := NewRedisReplayStore(rawURL, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRedisReplayStoreClaims(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	replicaA := newTestRedisStore(t, srv.URL(), ReplayStoreOptions{})
	replicaB := newTestRedisStore(t, srv.URL(), ReplayStoreOptions{})
	until := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond).Add(250 * time.Microsecond)

	claim := func(s *RedisReplayStore, key string) bool {
		t.Helper()
		first, err := s.Claim(ctx, key, until)
		if err != nil {
			t.Fatalf("Claim(%q) error = %v", key, err)
		}
		return first
	}
	const key = "https://token.actions.githubusercontent.com#9f1c2e"
	if !claim(replicaA, key) {
		t.Error("first claim = false, want true")
	}
	if claim(replicaA, key) {
		t.Error("second claim on the same replica = true, want false")
	}
	if claim(replicaB, key) {
		t.Error("claim on another replica = true, want false: the token was used on the first")
	}
	// Odd jti strings are safe: the key is a hash.
	for _, k := range []string{"iss#", "iss#with space\r\nSET x 1", "iss#" + strings.Repeat("é", 5000), "iss#*?[]"} {
		if !claim(replicaB, k) {
			t.Errorf("first claim of %.20q = false", k)
		}
		if claim(replicaA, k) {
			t.Errorf("second claim of %.20q = true", k)
		}
	}

	// What Redis holds: the hashed key, "1", until rounded up to the millisecond.
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	name := redisReplayKey(key)
	if !strings.HasPrefix(name, "cfmint:jti:") || len(name) != len("cfmint:jti:")+64 {
		t.Errorf("key name = %q, want cfmint:jti: and 64 hex digits", name)
	}
	if v, err := raw.Get(ctx, name).Result(); err != nil || v != "1" {
		t.Errorf("GET %s = %q, %v; want 1", name, v, err)
	}
	at, err := raw.Do(ctx, "PEXPIRETIME", name).Int64()
	if want := until.UnixMilli() + 1; err != nil || at != want {
		t.Errorf("PEXPIRETIME = %d, %v; want %d (until rounded up)", at, err, want)
	}
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "cfmint:jti:") {
			t.Errorf("Redis holds key %q outside cfmint:jti:", k)
		}
	}
	if len(keys) != 5 {
		t.Errorf("Redis holds %d keys, want 5", len(keys))
	}
}

func TestRedisReplayStoreRefusesPastUntil(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newTestRedisStore(t, srv.URL(), ReplayStoreOptions{Now: fixedClock})
	for _, until := range []time.Time{testNow, testNow.Add(-time.Second)} {
		first, err := s.Claim(context.Background(), "k", until)
		if !errors.Is(err, ErrClaimExpired) || first {
			t.Errorf("Claim(until %v) = %v, %v; want false, ErrClaimExpired", until, first, err)
		}
	}
	// Redis keeps a key whose PXAT passed not at all, so without the check
	// above the claim would be "first" every time.
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	if n, err := raw.DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE = %d, %v; want 0: nothing is written for an expired token", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if first, err := s.Claim(ctx, "k", testNow.Add(time.Minute)); !errors.Is(err, context.Canceled) || first {
		t.Errorf("Claim() on a cancelled context = %v, %v", first, err)
	}
}

func TestRedisReplayStoreForgetsAtUntil(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newTestRedisStore(t, srv.URL(), ReplayStoreOptions{})
	ctx := context.Background()
	until := time.Now().Add(300 * time.Millisecond)
	if first, err := s.Claim(ctx, "iss#short", until); err != nil || !first {
		t.Fatalf("Claim() = %v, %v", first, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		first, err := s.Claim(ctx, "iss#short", time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if first {
			// Redis and the test share this machine's clock.
			if time.Now().Before(until) {
				t.Errorf("the key was forgotten before its until")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the key was still held 30s after its until")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisReplayStoreConcurrentClaims(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	replicas := []*RedisReplayStore{
		newTestRedisStore(t, srv.URL(), ReplayStoreOptions{}),
		newTestRedisStore(t, srv.URL(), ReplayStoreOptions{}),
	}
	until := time.Now().Add(time.Hour)
	const keys, racers = 8, 20
	var wins [keys]atomic.Int32
	var wg sync.WaitGroup
	for k := range keys {
		for r := range racers {
			wg.Go(func() {
				first, err := replicas[r%2].Claim(context.Background(), fmt.Sprint("iss#race-", k), until)
				if err != nil {
					t.Error(err)
				}
				if first {
					wins[k].Add(1)
				}
			})
		}
	}
	wg.Wait()
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Errorf("key %d was won %d times across two replicas, want exactly once", k, n)
		}
	}
}

func TestRedisReplayStoreOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	logger, logs := newTestLogger()
	var errorsSeen atomic.Int32
	s := newTestRedisStore(t, srv.URL(), ReplayStoreOptions{
		Logger:  logger,
		OnError: func(error) { errorsSeen.Add(1) },
		Timeout: time.Second,
	})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	if first, err := s.Claim(ctx, "iss#before", until); err != nil || !first {
		t.Fatalf("Claim() before the outage = %v, %v", first, err)
	}
	if err := PingReplayStore(ctx, s); err != nil {
		t.Fatalf("Ping() before the outage = %v", err)
	}

	srv.Stop()
	const failures = 10
	for n := range failures {
		first, err := s.Claim(ctx, fmt.Sprint("iss#during-", n), until)
		if first || !errors.Is(err, ErrReplayUnavailable) {
			t.Fatalf("Claim() with Redis stopped = %v, %v; want false and ErrReplayUnavailable", first, err)
		}
		if !strings.Contains(err.Error(), srv.Addr()) {
			t.Errorf("error %q does not name the store", err)
		}
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrReplayUnavailable) {
		t.Errorf("Ping() with Redis stopped = %v, want ErrReplayUnavailable", err)
	}
	if got := errorsSeen.Load(); got != failures+1 {
		t.Errorf("OnError was called %d times, want %d", got, failures+1)
	}
	if n := logs.count("replay store unreachable; refusing ID tokens until it answers"); n != 1 {
		t.Errorf("%d unreachable lines for %d failures, want 1:\n%s", n, failures+1, logs)
	}
	if n := logs.count("replay store reachable again"); n != 0 {
		t.Errorf("reachable again logged during the outage:\n%s", logs)
	}

	srv.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		first, err := s.Claim(ctx, "iss#after", until)
		if err == nil {
			if !first {
				t.Error("first claim after the outage = false")
			}
			break
		}
		if !errors.Is(err, ErrReplayUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Claim() after Redis restarted = %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for n := range 5 {
		if _, err := s.Claim(ctx, fmt.Sprint("iss#later-", n), until); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping() after the outage = %v", err)
	}
	if n := logs.count("replay store reachable again"); n != 1 {
		t.Errorf("%d reachable-again lines, want 1:\n%s", n, logs)
	}
	if n := logs.count("replay store unreachable; refusing ID tokens until it answers"); n != 1 {
		t.Errorf("%d unreachable lines in all, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), `"store":"`+srv.URL()+`"`) {
		t.Errorf("the outage line is not an error naming the store:\n%s", logs)
	}
}

// A Redis that accepts connections and never answers must not hold a
// request longer than the store's timeout.
func TestRedisReplayStoreTimesOut(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				go func() { _, _ = bufio.NewReader(c).WriteTo(discardWriter{}) }()
				<-stop
			})
		}
	}()

	logger, logs := newTestLogger()
	var errorsSeen atomic.Int32
	s := newTestRedisStore(t, "redis://"+l.Addr().String()+"/0", ReplayStoreOptions{
		Logger:  logger,
		OnError: func(error) { errorsSeen.Add(1) },
		Timeout: 200 * time.Millisecond,
	})
	start := time.Now()
	first, err := s.Claim(context.Background(), "iss#x", time.Now().Add(time.Hour))
	if first || !errors.Is(err, ErrReplayUnavailable) {
		t.Fatalf("Claim() on a silent server = %v, %v; want ErrReplayUnavailable", first, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Claim() took %v with a 200ms timeout", took)
	}

	// The caller's own cancellation is not an outage: no error counted, no line.
	errorsBefore, linesBefore := errorsSeen.Load(), logs.String()
	s2 := newTestRedisStore(t, "redis://"+l.Addr().String()+"/0", ReplayStoreOptions{
		Logger:  logger,
		OnError: func(error) { errorsSeen.Add(1) },
		Timeout: time.Minute,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if first, err := s2.Claim(ctx, "iss#y", time.Now().Add(time.Hour)); first || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrReplayUnavailable) {
		t.Errorf("Claim() whose caller gave up = %v, %v; want the caller's context error", first, err)
	}
	if errorsSeen.Load() != errorsBefore || logs.String() != linesBefore {
		t.Errorf("a caller's cancellation was counted or logged:\n%s", logs)
	}
}

// A claim that Redis recorded but whose answer never came back fails as
// unavailable: sent again, it would find its own key and call the token's
// only use a replay.
func TestRedisReplayStoreLostAnswerIsNotRetried(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var lose atomic.Bool // the next claim's answer is lost
	lose.Store(true)
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { loseClaimAnswer(c, srv.Addr(), &lose) })
		}
	}()

	s := newTestRedisStore(t, "redis://"+l.Addr().String()+"/0", ReplayStoreOptions{Timeout: 10 * time.Second})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	if first, err := s.Claim(ctx, "iss#lost", until); first || !errors.Is(err, ErrReplayUnavailable) {
		t.Fatalf("Claim() whose answer was lost = %v, %v; want false and ErrReplayUnavailable, not a retry that finds its own key", first, err)
	}
	if lose.Load() {
		t.Fatal("the proxy lost no answer")
	}
	if first, err := s.Claim(ctx, "iss#next", until); !first || err != nil {
		t.Errorf("the next Claim() = %v, %v; want true", first, err)
	}
}

// loseClaimAnswer relays a client's connection c to Redis at addr, and
// closes it instead of relaying the answer to the first claim (a command
// with a replay key) it sees while lose is set.
func loseClaimAnswer(c net.Conn, addr string, lose *atomic.Bool) {
	defer c.Close()
	r, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer r.Close()
	var losing atomic.Bool
	go func() {
		defer r.Close()
		var seen []byte // what the client sent, for a key split across reads
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				seen = append(seen, buf[:n]...)
				if bytes.Contains(seen, []byte(replayKeyPrefix)) && lose.CompareAndSwap(true, false) {
					losing.Store(true)
				}
				if _, err := r.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if losing.Load() {
				return // Redis has answered the claim: the client never hears it
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestRedisReplayStorePassword(t *testing.T) {
	t.Parallel()
	const password = "s3cr@t:pa/ss?w0rd"
	srv := redistest.Start(t, "--requirepass", password)
	withPassword := func(pw string) string {
		u := url.URL{Scheme: "redis", User: url.UserPassword("", pw), Host: srv.Addr(), Path: "/0"}
		return u.String()
	}
	secrets := []string{password, url.PathEscape(password), url.QueryEscape(password), "pa/ss", "s3cr"}

	good := newTestRedisStore(t, withPassword(password), ReplayStoreOptions{})
	if first, err := good.Claim(context.Background(), "iss#a", time.Now().Add(time.Minute)); err != nil || !first {
		t.Fatalf("Claim() with the right password = %v, %v", first, err)
	}
	if want := "redis://:xxxxx@" + srv.Addr() + "/0"; good.String() != want {
		t.Errorf("String() = %q, want %q", good.String(), want)
	}

	for _, rawURL := range []string{withPassword("wrong-" + password), srv.URL()} {
		logger, logs := newTestLogger()
		s := newTestRedisStore(t, rawURL, ReplayStoreOptions{Logger: logger})
		_, err := s.Claim(context.Background(), "iss#b", time.Now().Add(time.Minute))
		if !errors.Is(err, ErrReplayUnavailable) {
			t.Fatalf("Claim() refused by Redis = %v, want ErrReplayUnavailable", err)
		}
		if err := s.Ping(context.Background()); !errors.Is(err, ErrReplayUnavailable) {
			t.Errorf("Ping() refused by Redis = %v", err)
		}
		for _, secret := range secrets {
			if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
				t.Errorf("the password (%q) is in the error or the log:\n%v\n%s", secret, err, logs)
			}
		}
		if logs.count("replay store unreachable; refusing ID tokens until it answers") != 1 {
			t.Errorf("an authentication failure was not logged once:\n%s", logs)
		}
	}
}

func TestOpenReplayStore(t *testing.T) {
	t.Parallel()
	logger, _ := newTestLogger()
	s, closer, err := OpenReplayStore("memory", ReplayStoreOptions{Logger: logger, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	mem, ok := s.(*MemoryReplayStore)
	if !ok || closer == nil || closer.Close() != nil {
		t.Fatalf("OpenReplayStore(memory) = %T, %v", s, closer)
	}
	if first, err := mem.Claim(context.Background(), "k", testNow.Add(time.Minute)); err != nil || !first {
		t.Errorf("the memory store does not use the clock given: %v, %v", first, err)
	}
	if err := PingReplayStore(context.Background(), s); err != nil {
		t.Errorf("PingReplayStore(memory) = %v", err)
	}

	for _, spec := range []string{"redis://127.0.0.1:6379/0", "rediss://user:pw@redis.internal:6380/2?dial_timeout=3s", "redis://[::1]"} {
		s, closer, err := OpenReplayStore(spec, ReplayStoreOptions{Logger: logger})
		if err != nil {
			t.Errorf("OpenReplayStore(%q) = %v", spec, err)
			continue
		}
		if rs, ok := s.(*RedisReplayStore); !ok || closer != io.Closer(rs) {
			t.Errorf("OpenReplayStore(%q) = %T, %T", spec, s, closer)
		}
		if _, ok := s.(ReplayPinger); !ok {
			t.Errorf("a Redis store is no ReplayPinger")
		}
		_ = closer.Close()
	}
	if _, _, err := OpenReplayStore("redis://127.0.0.1", ReplayStoreOptions{}); err == nil {
		t.Error("OpenReplayStore() without a Logger succeeded")
	}
}

func TestOpenReplayStoreRejects(t *testing.T) {
	t.Parallel()
	logger, _ := newTestLogger()
	for _, tc := range []struct {
		spec   string
		want   []string // in the error
		secret string   // never in it
	}{
		{spec: "", want: []string{"--replay-store is empty", "memory", "redis://"}},
		{spec: "Memory", want: []string{`--replay-store "Memory"`, "neither memory nor", "redis://host:port/db"}},
		{spec: "localhost:6379", want: []string{`"localhost:6379"`, "redis://"}},
		{spec: "u:hunter2@localhost:6379", want: []string{`"xxxxx@localhost:6379"`}, secret: "hunter2"},
		{spec: "unix:///run/redis.sock", want: []string{"neither memory nor a redis:// or rediss:// URL"}},
		{spec: "http://:hunter2@h", want: []string{`"http://:xxxxx@h"`}, secret: "hunter2"},
		{spec: "redis://:hunter2@h/x", want: []string{`"redis://:xxxxx@h/x"`, "invalid database number"}, secret: "hunter2"},
		{spec: "redis://h/0/1", want: []string{"invalid URL path"}},
		{spec: "redis://:hunter2@h/0?password=hunter3", want: []string{"unexpected option: password", "password=xxxxx"}, secret: "hunter"},
		{spec: "redis://h?dial_timeout=soon", want: []string{"invalid dial_timeout duration"}},
		{spec: "redis://:hunter2@/0", want: []string{"names no host", `"redis://:xxxxx@/0"`}, secret: "hunter2"},
		{spec: "redis://:hun#ter2@h:6379", want: []string{"'#'", "%23", `"redis://:xxxxx@h:6379"`}, secret: "hun"},
		// url.Parse fails on these and its error would quote them whole.
		{spec: "redis://:hunter2@h:port", want: []string{"is not a valid URL", `"redis://:xxxxx@h:port"`}, secret: "hunter2"},
		{spec: "redis://us er:hun ter2\x7f@h", want: []string{"is not a valid URL", "xxxxx@h"}, secret: "hun ter2"},
		{spec: "redis://u:12/zz9@h/0", want: []string{"an '@' after its host", "%2F", `"redis://u:xxxxx@h/0"`}, secret: "zz9"},
		{spec: "redis://u:12?zz9@h", want: []string{"an '@' after its host", `"redis://u:xxxxx@h"`}, secret: "zz9"},
		{spec: "redis://:a/b@c@h", want: []string{`"redis://:xxxxx@h"`}, secret: "a/b@c"},
	} {
		s, closer, err := OpenReplayStore(tc.spec, ReplayStoreOptions{Logger: logger})
		if err == nil {
			t.Errorf("OpenReplayStore(%q) = %T, want an error", tc.spec, s)
			_ = closer.Close()
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("OpenReplayStore(%q) error %q does not say %q", tc.spec, err, w)
			}
		}
		if tc.spec != "" && !strings.Contains(err.Error(), "--replay-store") {
			t.Errorf("OpenReplayStore(%q) error %q does not name --replay-store", tc.spec, err)
		}
		if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("OpenReplayStore(%q) error %q shows the password", tc.spec, err)
		}
	}
}

func TestRedactReplayStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"memory", "memory"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:pw@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"rediss://alice:p%40w@h/1", "rediss://alice:xxxxx@h/1"},
		{"redis://pw-as-user@h", "redis://xxxxx@h"},
		{"redis://:p@w/x?y@h/0", "redis://:xxxxx@h/0"},
		{"redis://h/0?dial_timeout=3s&client_name=a", "redis://h/0?client_name=a&dial_timeout=3s"},
		{"redis://h/0?password=pw&AuthToken=t", "redis://h/0?AuthToken=xxxxx&password=xxxxx"},
		{"redis://h/0?%zz=pw", "redis://h/0?xxxxx"},
		{"u:pw@h", "xxxxx@h"},
	} {
		if got := RedactReplayStore(tc.in); got != tc.want {
			t.Errorf("RedactReplayStore(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var (
	_ ReplayStore  = (*RedisReplayStore)(nil)
	_ ReplayPinger = (*RedisReplayStore)(nil)
)
