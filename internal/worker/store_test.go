package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
)

// TestStoreFailsClosed: whatever goes wrong with the Durable Object is ErrReplayUnavailable, so
// the broker answers 503 and never skips a check; what it answers is decoded strictly.
func TestStoreFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	answer := func(out string, err error) Store {
		return Store{Call: func(context.Context, string, []byte) ([]byte, error) { return []byte(out), err }}
	}
	until := time.Now().Add(time.Minute)
	for name, s := range map[string]Store{
		"no binding":    {},
		"an error":      answer("", errors.New("the object is overloaded")),
		"not JSON":      answer("<html>", nil),
		"another shape": answer(`{"first":true}`, nil),
	} {
		if _, err := s.Claim(ctx, "k", until); !errors.Is(err, broker.ErrReplayUnavailable) {
			t.Errorf("%s: Claim: %v, want ErrReplayUnavailable", name, err)
		}
	}
	if _, err := answer(`{"over":"max_everything","count":1}`, nil).Reserve(ctx, "k", "m", broker.Shares{Active: 1}, time.Now(), until); !errors.Is(err, broker.ErrReplayUnavailable) || !strings.Contains(err.Error(), "max_everything") {
		t.Errorf("a limit the broker does not know: %v", err)
	}
	if _, err := answer("true", nil).Claim(ctx, "k", time.Now().Add(-time.Second)); !errors.Is(err, broker.ErrClaimExpired) {
		t.Errorf("a claim until the past: %v", err)
	}
	// What the Durable Object is asked: the method and its arguments, times in milliseconds.
	var method, args string
	s := Store{Call: func(_ context.Context, m string, a []byte) ([]byte, error) {
		method, args = m, string(a)
		return []byte(`{"over":"max_mints","count":3,"wait":1500}`), nil
	}}
	now := time.UnixMilli(1_800_000_000_000)
	v, err := s.Reserve(ctx, "iss:1:rule", "pending:x", broker.Shares{Mints: 3, Window: time.Hour, Active: 2}, now, now.Add(time.Minute))
	if err != nil || v != (broker.ShareVerdict{Over: "max_mints", Count: 3, Wait: 1500 * time.Millisecond}) {
		t.Errorf("Reserve: %+v, %v", v, err)
	}
	want := `{"active":2,"key":"iss:1:rule","member":"pending:x","mints":3,"now":1800000000000,"pending":1800000060000,"window":3600000}`
	if method != "reserve" || args != want {
		t.Errorf("asked %s %s, want reserve %s", method, args, want)
	}
}
