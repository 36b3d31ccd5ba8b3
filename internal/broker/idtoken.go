// Package broker is cfmint's keyless broker: it verifies a CI job's OIDC ID
// token, checks it against the trust policy and mints a Cloudflare token.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/cfmint/cfmint/internal/netaddr"
)

// Limits and defaults of the ID-token verifier.
const (
	// MaxIDTokenSize bounds a token before any parsing: GitHub's are about
	// 1-2 KiB, and go-jose before 4.0.5 could be made to exhaust memory
	// by large inputs (CVE-2025-27144).
	MaxIDTokenSize = 8 << 10
	// DefaultMaxAge is how long after its iat a token is accepted,
	// whatever its exp says: GitHub has issued tokens that live 6 hours.
	DefaultMaxAge = 10 * time.Minute
	// DefaultLeeway is how far in the future an iat may be, for clock skew.
	DefaultLeeway = time.Minute
	// maxDocumentSize bounds what the broker reads of an issuer's discovery
	// document and JWKS.
	maxDocumentSize = 1 << 20
)

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// Issuers are the issuer URLs the trust policy names, exactly as the
	// tokens' iss says them. Only these are ever contacted. Required.
	Issuers []string
	// Audience is the aud a token must have (go-oidc's ClientID): the
	// audience the policy gives the broker. Required.
	Audience string
	// HTTPClient fetches discovery documents and keys. Required: the
	// broker never uses http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxAge is how long after iat a token is accepted; zero means
	// DefaultMaxAge.
	MaxAge time.Duration
	// Leeway is how far in the future iat may be; zero means DefaultLeeway.
	Leeway time.Duration
}

// Verifier checks ID tokens of the trusted issuers. It is safe for
// concurrent use.
type Verifier struct {
	base     context.Context // values only: the key sets outlive any request
	audience string
	now      func() time.Time
	maxAge   time.Duration
	leeway   time.Duration
	hc       *http.Client
	issuers  map[string]*issuer
	order    []string // issuer URLs as configured, for messages
}

// issuer is one trusted issuer: its verifier, built on first use from its
// discovery document.
type issuer struct {
	url string

	// sem is held during discovery, so concurrent callers wait for one
	// fetch (or give up with their context) and then share its result.
	sem      chan struct{}
	verifier *oidc.IDTokenVerifier
	keys     *keySet

	// keysFetched is set once the JWKS was fetched successfully; the key
	// set keeps the keys it has when a later fetch fails.
	keysFetched atomic.Bool
}

// NewVerifier checks o and returns a Verifier. It contacts no issuer: each
// issuer's discovery document and keys are fetched on its first token or on
// Ready, so a broker can start while an issuer is down. The key sets keep
// ctx's values but not its cancellation.
func NewVerifier(ctx context.Context, o VerifierOptions) (*Verifier, error) {
	var errs []error
	if len(o.Issuers) == 0 {
		errs = append(errs, errors.New("the trust policy names no issuer; name at least one, such as https://token.actions.githubusercontent.com"))
	}
	if strings.TrimSpace(o.Audience) == "" {
		errs = append(errs, errors.New("the audience is empty; give the broker an audience such as its own URL, and have jobs ask for ID tokens for it"))
	}
	if o.HTTPClient == nil {
		errs = append(errs, errors.New("broker: VerifierOptions.HTTPClient is nil; give the verifier an HTTP client with timeouts"))
	}
	if o.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("the maximum ID-token age %v is negative; give a duration such as 10m", o.MaxAge))
	}
	if o.Leeway < 0 {
		errs = append(errs, fmt.Errorf("the clock leeway %v is negative; give a duration such as 1m", o.Leeway))
	}
	v := &Verifier{
		base:     context.WithoutCancel(ctx),
		audience: o.Audience,
		now:      o.Now,
		maxAge:   o.MaxAge,
		leeway:   o.Leeway,
		issuers:  map[string]*issuer{},
	}
	for _, u := range o.Issuers {
		if err := checkIssuerURL(u); err != nil {
			errs = append(errs, err)
			continue
		}
		if v.issuers[u] != nil {
			errs = append(errs, fmt.Errorf("issuer %q is named twice; name each issuer once", u))
			continue
		}
		v.issuers[u] = &issuer{url: u, sem: make(chan struct{}, 1)}
		v.order = append(v.order, u)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxAge == 0 {
		v.maxAge = DefaultMaxAge
	}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	hc := *o.HTTPClient
	hc.Transport = limitedTransport{base: o.HTTPClient.Transport, limit: maxDocumentSize}
	v.hc = &hc
	return v, nil
}

// checkIssuerURL accepts what OIDC allows as an issuer: an https URL without
// query or fragment. Plain http is accepted for loopback hosts only, which
// nobody else can reach (the test issuers).
func checkIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q is not a URL of the form https://host[/path]; write it as the tokens' iss says it", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if netaddr.IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("issuer %q does not use https; write the https URL the tokens' iss says", s)
}

// Issuers returns the trusted issuer URLs, in configured order.
func (v *Verifier) Issuers() []string { return slices.Clone(v.order) }

// Ready reports whether the keys of every trusted issuer have been fetched,
// fetching those that have not: the broker's /readyz. Once an issuer's keys
// were fetched it stays ready, because the key set keeps the keys it has when a
// later fetch fails. A failed fetch is tried again no sooner than
// KeyRefetchInterval after it started, whoever asks.
func (v *Verifier) Ready(ctx context.Context) error {
	var errs []error
	for _, u := range v.order {
		iss := v.issuers[u]
		if iss.keysFetched.Load() {
			continue
		}
		if err := iss.fetchKeys(v.clientContext(ctx), v); err != nil {
			errs = append(errs, fmt.Errorf("issuer %q: %w", u, err))
		}
	}
	return errors.Join(errs...)
}

func (v *Verifier) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, v.hc)
}

// discover builds the issuer's go-oidc verifier from its discovery
// document, once. A failed discovery is tried again on the next call.
func (iss *issuer) discover(ctx context.Context, v *Verifier) (*oidc.IDTokenVerifier, *keySet, error) {
	select {
	case iss.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("gave up waiting for the discovery document: %w", ctx.Err())
	}
	defer func() { <-iss.sem }()
	if iss.verifier != nil {
		return iss.verifier, iss.keys, nil
	}
	p, err := oidc.NewProvider(ctx, iss.url)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to fetch the discovery document: %w", err)
	}
	var doc struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil || doc.JWKSURL == "" {
		return nil, nil, errors.New("failed to read jwks_uri from the discovery document")
	}
	if err := checkJWKSURL(iss.url, doc.JWKSURL); err != nil {
		return nil, nil, err
	}
	keys := &keySet{url: doc.JWKSURL, hc: v.hc, base: v.base, now: v.now, fetched: &iss.keysFetched}
	iss.keys = keys
	iss.verifier = oidc.NewVerifier(iss.url, keys, &oidc.Config{
		ClientID:             v.audience,
		SupportedSigningAlgs: []string{oidc.RS256},
		Now:                  v.now,
	})
	return iss.verifier, iss.keys, nil
}

// fetchKeys fetches the issuer's JWKS, within the bound on refetches.
func (iss *issuer) fetchKeys(ctx context.Context, v *Verifier) error {
	_, keys, err := iss.discover(ctx, v)
	if err != nil {
		return err
	}
	if err := keys.refresh(ctx); err != nil {
		return fmt.Errorf("failed to fetch the keys: %w", err)
	}
	return nil
}
