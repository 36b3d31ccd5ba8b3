package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/cfmint/cfmint/internal/netaddr"
)

// KeyRefetchInterval is the least time between two fetches of one issuer's keys. A token whose
// signature matches no key held makes the verifier fetch the keys again (the issuer may have
// rotated), and anyone can send such a token: without a bound, a flood of forgeries becomes a
// flood of requests to the issuer, which then throttles the broker just when it rotates. A
// token of a key published since the last fetch is refused until the interval has passed.
const KeyRefetchInterval = 30 * time.Second

// keySet is one issuer's JWKS, kept in memory. It is fetched on first use and again when a
// signature matches no key held, but never twice within KeyRefetchInterval; a fetch runs apart
// from the request that started it, so a caller that gives up does not cancel it for the others.
// Like go-oidc's RemoteKeySet, which it replaces for the bound, it keeps the keys it has when a
// fetch fails.
type keySet struct {
	url     string
	hc      *http.Client
	base    context.Context // values only
	now     func() time.Time
	fetched *atomic.Bool // set once a fetch succeeded

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	last     time.Time  // when the last fetch started
	lastErr  error      // what it failed with, or nil
	inflight *fetchCall // a fetch under way, or nil
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// keyFetchError is a JWKS that could not be fetched (or a caller that gave up waiting for one),
// as opposed to a signature that matches no key.
type keyFetchError struct{ err error }

func (e *keyFetchError) Error() string { return "fetching keys: " + e.err.Error() }
func (e *keyFetchError) Unwrap() error { return e.err }

// errNoKey is a signature that no key held verifies, even after a refetch (or with the refetch
// not yet due).
var errNoKey = errors.New("failed to verify id token signature: no key of the issuer verifies it")

type traceKey struct{}

// signatureTrace notes in the context what the signature check said, so a rejection can name
// the check that failed (go-oidc wraps the key set's error with %v).
type signatureTrace struct {
	checked bool
	err     error
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := k.verify(ctx, raw)
	if tr, ok := ctx.Value(traceKey{}).(*signatureTrace); ok {
		tr.checked, tr.err = true, err
	}
	return payload, err
}

func (k *keySet) verify(ctx context.Context, raw string) ([]byte, error) {
	// An ID token is a compact JWS; the JSON serialization is refused along with anything else.
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{oidc.RS256})
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the JWS has more than one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if p, ok := k.try(jws, kid); ok {
		return p, nil
	}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	if p, ok := k.try(jws, kid); ok {
		return p, nil
	}
	return nil, errNoKey
}

func (k *keySet) try(jws *jose.JSONWebSignature, kid string) ([]byte, bool) {
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	for i := range keys {
		if kid == "" || keys[i].KeyID == kid {
			if p, err := jws.Verify(&keys[i]); err == nil {
				return p, true
			}
		}
	}
	return nil, false
}

// refresh fetches the keys, unless a fetch is under way (then it waits for that one) or the last
// one started less than KeyRefetchInterval ago (then it returns that one's error, nil if it
// succeeded). It returns only *keyFetchError.
func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	call := k.inflight
	if call == nil {
		if !k.last.IsZero() && k.now().Sub(k.last) < KeyRefetchInterval {
			err := k.lastErr
			k.mu.Unlock()
			return err
		}
		call = &fetchCall{done: make(chan struct{})}
		k.inflight, k.last = call, k.now()
		go k.fetch(call)
	}
	k.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return &keyFetchError{fmt.Errorf("gave up waiting for the keys: %w", ctx.Err())}
	}
}

func (k *keySet) fetch(call *fetchCall) {
	keys, err := k.get()
	k.mu.Lock()
	if err != nil {
		call.err = &keyFetchError{err}
	} else {
		k.keys = keys
		k.fetched.Store(true)
	}
	k.lastErr, k.inflight = call.err, nil
	k.mu.Unlock()
	close(call.done)
}

func (k *keySet) get() ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(k.base, time.Minute) // the client's own timeout is usually shorter
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", k.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("failed to read the key set of %s: %w", k.url, err)
	}
	return set.Keys, nil
}

// isKeyFetchError tells a failed JWKS fetch (or a request that gave up waiting for one) from a
// signature that matches no key.
func isKeyFetchError(err error) bool {
	var fe *keyFetchError
	return errors.As(err, &fe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// checkJWKSURL refuses a key set that a network attacker could serve: the keys decide every
// signature, so they come over https like the discovery document (plain http only from a
// loopback host, for the test issuers).
func checkJWKSURL(issuer, jwks string) error {
	u, err := url.Parse(jwks)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("the discovery document's jwks_uri %s is not an absolute URL", quote(jwks))
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && netaddr.IsLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("the discovery document of %s names the key set %s, which is not https; the broker fetches keys over https only, so that nobody on the way can swap them", issuer, quote(jwks))
}
