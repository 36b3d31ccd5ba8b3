package mint

import (
	"testing"
	"time"
)

func TestHuman(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		15 * time.Minute:                "15m",
		time.Hour:                       "1h",
		90 * time.Minute:                "1h30m",
		90 * time.Second:                "1m30s",
		6 * time.Hour:                   "6h",
		time.Hour + 30*time.Second:      "1h0m30s",
		2*time.Hour + 5*time.Minute + 1: "2h5m0.000000001s",
	} {
		if got := Human(d); got != want {
			t.Errorf("Human(%v) = %q, want %q", d, got, want)
		}
	}
}
