package mint

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
)

// TestNew: the engine's calls go to the base given, with the bootstrap token; Tokens retries as
// Options.Attempts says, while Once makes one attempt (the new token's verify has its own loop).
func TestNew(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		auth.Store(r.Header.Get("Authorization"))
		if !strings.HasPrefix(r.URL.Path, "/client/v4/") {
			t.Errorf("call to %s, want one under the base given", r.URL.Path)
		}
		http.Error(w, `{"success":false,"errors":[{"code":10000,"message":"unavailable"}]}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	eng := New("bootstrap-secret", Options{BaseURL: srv.URL + "/client/v4", HTTPClient: srv.Client(), Backoff: time.Millisecond, Attempts: 2})
	const id = "0123456789abcdef0123456789abcdef"
	if err := eng.Tokens.Delete(context.Background(), cftoken.OwnerAccount, "023e105f4ecef8ad9ca31a8372d0c353", id); err == nil {
		t.Fatal("Delete succeeded against a server that answers 503")
	}
	if got := n.Swap(0); got != 2 {
		t.Errorf("Tokens made %d attempts, want 2", got)
	}
	if got := auth.Load(); got != "Bearer bootstrap-secret" {
		t.Errorf("Authorization = %q, want the bootstrap token", got)
	}
	if _, err := eng.Once.Get(context.Background(), cftoken.OwnerAccount, "023e105f4ecef8ad9ca31a8372d0c353", id); err == nil {
		t.Fatal("Get succeeded against a server that answers 503")
	}
	if got := n.Load(); got != 1 {
		t.Errorf("Once made %d attempts, want 1", got)
	}
}
