package broker

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/cfmint/cfmint/internal/oidctest"
)

// TestEveryAlgLayerRefusesAlone: three layers keep a token of another algorithm out, and each is
// tested alone, with the others out of the way: Verify's header check, go-oidc's
// SupportedSigningAlgs, and the key set's own parse. The token is signed with ES256 or PS256 by a
// key the key set holds, under its kid, so only the algorithm check stands in its way.
func TestEveryAlgLayerRefusesAlone(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v, _ := newTestVerifier(t, iss)
	ctx := context.Background()
	is := v.issuers[iss.URL()]
	ov, keys, err := is.discover(v.clientContext(ctx), v)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys.mu.Lock()
	keys.keys = append(keys.keys,
		jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "ec", Algorithm: string(jose.ES256), Use: "sig"},
		jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "ps", Algorithm: string(jose.PS256), Use: "sig"})
	keys.mu.Unlock()
	claims, err := json.Marshal(iss.Complete(oidctest.Claims{"aud": testAudience}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg jose.SignatureAlgorithm
		kid string
		key crypto.Signer
	}{{jose.ES256, "ec", ec}, {jose.PS256, "ps", rk}} {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", tc.kid))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		// The key set would take the token but for the algorithm: with its own parse widened,
		// it verifies (so the refusals below are the algorithm's, not a bad signature's).
		if p, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{tc.alg}); err != nil {
			t.Fatal(err)
		} else if _, ok := keys.try(p, tc.kid); !ok {
			t.Fatalf("%s: the key set holds no key that verifies the token", tc.alg)
		}
		// Layer one: Verify's header check.
		_, err = v.Verify(ctx, raw)
		var rj *Rejection
		if !errors.As(err, &rj) || rj.Check != CheckAlgorithm {
			t.Errorf("%s: Verify = %v; want a refusal of the algorithm", tc.alg, err)
		}
		// Layer two: go-oidc, past the header check, refuses before it asks the key set.
		trace := &signatureTrace{}
		if _, err := ov.Verify(context.WithValue(ctx, traceKey{}, trace), raw); err == nil || trace.checked {
			t.Errorf("%s: go-oidc's verifier passed the token to the key set (%v); SupportedSigningAlgs must be RS256 alone", tc.alg, err)
		}
		// Layer three: the key set, past both.
		if _, err := keys.verify(ctx, raw); err == nil {
			t.Errorf("%s: the key set took the token; it must parse RS256 alone", tc.alg)
		}
	}
}
