package broker_test

import (
	"net/http"
	"testing"

	"github.com/cfmint/cfmint/internal/broker"
)

// TestMaxActiveNonceRevoke: a revoke by nonce frees the slots of the tokens it deletes, whether
// the broker knew the nonce's tokens (one call each) or had to list them (after a restart).
func TestMaxActiveNonceRevoke(t *testing.T) {
	t.Parallel()
	w := newShareWorld(t, nil, "    max_active: 1\n")
	store := memoryStore(t)
	r := w.replica(t, store)
	body := map[string]string{"permissions": "DNS Read", "zones": "example.com", "ttl": "10m", "nonce": "0a0a0a0a0a0a0a01"}
	mustStatus(t, "mint", w.do(t, http.MethodPost, r.url+"/v1/tokens", repoA, body), http.StatusCreated)
	mustStatus(t, "a second live token", w.do(t, http.MethodPost, r.url+"/v1/tokens", repoA, body), http.StatusTooManyRequests)
	mustStatus(t, "revoke by nonce", w.do(t, http.MethodDelete, r.url+"/v1/tokens?nonce=0a0a0a0a0a0a0a01", repoA, nil), http.StatusOK)
	body["nonce"] = "0a0a0a0a0a0a0a02"
	mustStatus(t, "a mint after the revoke by nonce", w.do(t, http.MethodPost, r.url+"/v1/tokens", repoA, body), http.StatusCreated)
	// A replica whose store keeps no nonces (a memory store of its own would not) never saw the
	// mint: it lists the tokens, and frees the slot too.
	other := w.replica(t, struct {
		broker.ReplayStore
		broker.ShareStore
	}{store, store.(broker.ShareStore)})
	mustStatus(t, "revoke by nonce, listing", w.do(t, http.MethodDelete, other.url+"/v1/tokens?nonce=0a0a0a0a0a0a0a02", repoA, nil), http.StatusOK)
	mustStatus(t, "a mint after the listed revoke", w.do(t, http.MethodPost, r.url+"/v1/tokens", repoA, body), http.StatusCreated)
}
