package broker_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/broker/storetest"
	"github.com/cfmint/cfmint/internal/redistest"
)

// TestStores: the memory and Redis stores pass the stores' conformance test, which the
// Worker's Durable Object passes too (deploy/cloudflare).
func TestStores(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, &broker.MemoryReplayStore{})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		s, err := broker.NewRedisReplayStore(redistest.Start(t).URL(), broker.ReplayStoreOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		storetest.Run(t, s)
	})
}
