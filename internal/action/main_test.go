package action_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/policy"
)

func TestMain(m *testing.M) {
	if err := warmEncoders(); err != nil {
		fmt.Fprintln(os.Stderr, "warming cloudflare-go's encoders:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// warmEncoders creates a token of each shape the tests mint (owned by the account and by the
// user, flat and nested resources, with an IP condition) before any test runs in parallel.
// cloudflare-go's JSON encoder (internal/apijson) keeps one encoder value in the closures it
// caches and writes to it while it builds an encoder for a type it has not cached yet, so the
// race detector reports two phases in one process that marshal such a type at once. The binary
// runs one phase per process; these tests run many phases in this one.
func warmEncoders() error {
	srv := cfapitest.New()
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	fx := srv.Seed()
	group := func(owner cftoken.Owner) []policy.Group {
		if owner == cftoken.OwnerUser {
			return []policy.Group{{ID: "4755a26eedb94da69e1066d98aa820be", Name: "DNS Write"}}
		}
		return []policy.Group{{ID: "e086da7e2179491d91ee5f35b3ca210a", Name: "Workers Scripts Write"}}
	}
	for _, c := range []struct {
		owner cftoken.Owner
		token string
	}{{cftoken.OwnerAccount, fx.AccountBootstrap.Secret}, {cftoken.OwnerUser, fx.UserBootstrap.Secret}} {
		client := cftoken.New(c.token, cftoken.Options{BaseURL: srv.URL(), HTTPClient: loopbackClient, Attempts: 1})
		for _, res := range []map[string]any{
			{"com.cloudflare.api.account.zone." + fx.Zone.ID: "*"},
			{"com.cloudflare.api.account." + fx.Account.ID: map[string]any{"com.cloudflare.api.account.zone.*": "*"}},
		} {
			// The fake may refuse a group for a resource; the body was marshalled all the same.
			_, _ = client.Create(context.Background(), c.owner, fx.Account.ID, policy.Request{
				Name:      "warm-up",
				Policies:  []policy.Policy{{Groups: group(c.owner), Resources: res}},
				CIDRs:     []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
				ExpiresOn: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
			})
		}
	}
	return nil
}
