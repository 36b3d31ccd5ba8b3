package broker

import (
	"testing"
	"time"
)

// TestShutdownSplit: --shutdown-timeout bounds the whole stop, the clean-up of cancelled
// exchanges included.
func TestShutdownSplit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ timeout, grace, cleanup time.Duration }{
		{10 * time.Second, 5 * time.Second, 5 * time.Second},
		{20 * time.Second, 13 * time.Second, 7 * time.Second},
		{30 * time.Second, 23 * time.Second, 7 * time.Second},
		{3 * time.Second, 1500 * time.Millisecond, 1500 * time.Millisecond},
	} {
		grace, cleanup := shutdownSplit(tc.timeout)
		if grace != tc.grace || cleanup != tc.cleanup || grace+cleanup != tc.timeout {
			t.Errorf("shutdownSplit(%s) = %s, %s; want %s, %s", tc.timeout, grace, cleanup, tc.grace, tc.cleanup)
		}
	}
}
