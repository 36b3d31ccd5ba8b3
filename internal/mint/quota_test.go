package mint

import (
	"errors"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/policy"
)

// TestExplainQuotaFull says that the owner reached Cloudflare's limit and what to do, and keeps
// the typed error for callers that map it (the broker's 503).
func TestExplainQuotaFull(t *testing.T) {
	t.Parallel()
	full := apiErr(400, 1001, "Exceeded the maximum number of API tokens")
	p := plan()
	err := explainCreate(full, p)
	if !errors.Is(err, cftoken.ErrQuotaFull) {
		t.Errorf("%v: not ErrQuotaFull", err)
	}
	for _, w := range []string{"account " + acct + " reached Cloudflare's limit on API tokens", "500 account-owned tokens", "expired and revoked", "`cfmint sweep`"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v\nlacks %q", err, w)
		}
	}
	p.Owner = cftoken.OwnerUser
	if err := explainCreate(full, p); !strings.Contains(err.Error(), "50 user-owned tokens per user") {
		t.Errorf("user owner: %v", err)
	}
	if errors.Is(explainCreate(unauthorized, p), cftoken.ErrQuotaFull) {
		t.Error("a 9109 is ErrQuotaFull")
	}
}

// TestExplainAboveRole names the refused group and the cause, not the 9109 guesswork.
func TestExplainAboveRole(t *testing.T) {
	t.Parallel()
	refused := apiErr(403, 9109, `Failed common permission check against resources. (Permission group: "Workers KV Storage Write")`)
	p := plan()
	p.Zones = []policy.Zone{{ID: "z1", Name: "example.com"}}
	err := explainCreate(refused, p)
	if !errors.Is(err, cftoken.ErrAboveRole) {
		t.Errorf("%v: not ErrAboveRole", err)
	}
	for _, w := range []string{`may not grant permission group "Workers KV Storage Write" on account ` + acct, "member role"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v\nlacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "does not exist") {
		t.Errorf("%v\nguesses at a missing resource", err)
	}
}
