package mint

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// TestVerifyWaitsOnSleep: the new token's verify loop waits on Engine.Sleep, 200 ms doubled up
// to 2 s, and its window is counted in those waits: a Sleep that does not wait (a test's fake
// clock) still ends the loop when the window is spent, as a real timer would.
func TestVerifyWaitsOnSleep(t *testing.T) {
	t.Parallel()
	unknown := &cftoken.APIError{Op: "verify the token", Status: 401, Details: []cftoken.Detail{{Code: 1000, Message: "Invalid API Token"}}}
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		inactive int // verify answers 1000 this many times, then active (-1: always)
		verifies int
		waits    []time.Duration
		wantErr  string
	}{
		{"active on the third try", 2, 3, []time.Duration{200 * ms, 400 * ms}, ""},
		{"never active: the 15 s window spent in waits", -1, 11,
			[]time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second},
			"did not become active in time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var waits []time.Duration
			verifies := 0
			f := &fakeTokens{t: t, create: good,
				verify: func(string) (string, error) {
					verifies++
					if tc.inactive < 0 || verifies <= tc.inactive {
						return "", unknown
					}
					return "active", nil
				},
				delete: func(string) error { return nil },
			}
			e := &Engine{Tokens: f, Once: f, UI: &quietUI{}, Sleep: func(_ context.Context, d time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				waits = append(waits, d)
				return nil
			}}
			_, err := e.Mint(context.Background(), plan(), Hooks{})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to say %q", err, tc.wantErr)
			}
			if verifies != tc.verifies {
				t.Errorf("%d verifies, want %d", verifies, tc.verifies)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(waits, tc.waits) {
				t.Errorf("waits = %v, want %v", waits, tc.waits)
			}
		})
	}
}
