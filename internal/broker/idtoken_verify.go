package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/trust"
)

// Identity is what a verified ID token says about the job that sent it.
type Identity struct {
	Issuer   string
	Subject  string
	Audience string // the one audience the token names: the broker's
	JTI      string
	IssuedAt time.Time
	Expiry   time.Time
	// ValidUntil is when the verifier starts refusing the token: the earlier
	// of Expiry and IssuedAt plus the maximum age. A replay store must
	// remember the token's jti until then.
	ValidUntil time.Time
	// Claims are the token's claims by name, as trust.ClaimsFrom reads them:
	// strings as they are (GitHub's claims are all strings, ids and booleans
	// included), other types (iat, nbf and exp among them) as a mark of
	// their type that no rule matches, so a rule fails closed on them and a
	// denial can say what the token has.
	Claims map[string]string
}

// ReplayKey is the key under which the token's single use is recorded: its
// jti, which is unique per issuer only, qualified by the issuer.
func (id *Identity) ReplayKey() string { return id.Issuer + "#" + id.JTI }

// Verify checks raw, an ID token a job sent, and returns who sent it. Every
// refusal is a *Rejection naming the check that failed; its message never
// contains the token. The checks, in order: size (before any parsing), JWT
// form, alg RS256, an iss among the trusted issuers, the signature against
// that issuer's keys (refetched when no key held verifies it, at most once
// per KeyRefetchInterval), aud, exp, nbf, a single audience, sub, jti, iat
// neither in the future nor older than the maximum age, nbf at most the
// leeway ahead.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if raw == "" {
		return nil, reject(CheckFormat, nil, "no ID token was sent; send the job's OIDC ID token")
	}
	if len(raw) > MaxIDTokenSize {
		return nil, reject(CheckSize, nil, "the ID token is %d bytes, more than the %d accepted; send the token the CI system issued, unchanged", len(raw), MaxIDTokenSize)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, reject(CheckFormat, nil, "the ID token is not a JWT (three base64url parts joined by dots); send the token the CI system issued, unchanged")
	}
	headerPart, rest, _ := strings.Cut(raw, ".")
	payloadPart, _, _ := strings.Cut(rest, ".")
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodePart(headerPart, &header); err != nil {
		return nil, reject(CheckFormat, err, "the ID token's header is not base64url-encoded JSON; send the token the CI system issued, unchanged")
	}
	if header.Alg != oidc.RS256 {
		return nil, reject(CheckAlgorithm, nil, "the ID token is signed with alg %s; only RS256 is accepted", quote(header.Alg))
	}
	var claims map[string]any
	if err := decodePart(payloadPart, &claims); err != nil || claims == nil {
		return nil, reject(CheckFormat, err, "the ID token's claims are not a base64url-encoded JSON object; send the token the CI system issued, unchanged")
	}
	issURL, _ := claims["iss"].(string)
	if issURL == "" {
		// Anyone may send a token: the answer does not list the issuers the broker trusts (an
		// enterprise's slug, a GitHub Enterprise Server's address); its operator has the policy.
		return nil, reject(CheckIssuer, nil, "the ID token has no iss claim; send a token from an issuer this broker's policy trusts")
	}
	iss := v.issuers[issURL]
	if iss == nil {
		return nil, reject(CheckIssuer, nil, "the ID token's issuer %s is not trusted by this broker; its policy names the issuers it trusts", quote(issURL))
	}

	cctx := v.clientContext(ctx)
	ov, _, err := iss.discover(cctx, v)
	if err != nil {
		return nil, reject(CheckKeys, err, "the broker could not fetch the keys of issuer %q; try again later", iss.url)
	}
	trace := &signatureTrace{}
	tok, err := ov.Verify(context.WithValue(cctx, traceKey{}, trace), raw)
	if err != nil {
		return nil, v.classify(err, trace, iss.url, header.Kid, claims)
	}

	var verified map[string]any
	if err := tok.Claims(&verified); err != nil {
		return nil, reject(CheckClaims, err, "the ID token's claims cannot be read; send the token the CI system issued, unchanged")
	}
	now := v.now()
	if len(tok.Audience) != 1 {
		return nil, reject(CheckAudience, nil, "the ID token names %d audiences; ask for an ID token for %q alone", len(tok.Audience), v.audience)
	}
	if tok.Subject == "" {
		return nil, reject(CheckSubject, nil, "the ID token has no sub claim; send a token the CI system issued for a job")
	}
	jti, _ := verified["jti"].(string)
	if jti == "" {
		return nil, reject(CheckJTI, nil, "the ID token has no jti claim, so the broker cannot make sure it is used once; send a token from an issuer that sets jti")
	}
	if _, ok := verified["iat"].(float64); !ok {
		return nil, reject(CheckIssuedAt, nil, "the ID token has no iat claim, so its age is unknown; send a token from an issuer that sets iat")
	}
	if tok.IssuedAt.After(now.Add(v.leeway)) {
		return nil, reject(CheckIssuedAt, nil, "the ID token's iat %s is in the future; check the clocks of the CI system and the broker", tok.IssuedAt.UTC().Format(time.RFC3339))
	}
	// go-oidc allows an nbf up to 5 minutes ahead; the broker allows the same leeway as for iat.
	if nbf, ok := verified["nbf"].(float64); ok {
		if t := time.Unix(0, 0).Add(time.Duration(nbf * float64(time.Second))); t.After(now.Add(v.leeway)) {
			return nil, reject(CheckNotBefore, nil, "the ID token is not valid before %s (nbf), more than %s ahead of the broker's clock; check the clocks of the CI system and the broker", t.UTC().Format(time.RFC3339), v.leeway)
		}
	}
	if age := now.Sub(tok.IssuedAt); age > v.maxAge {
		return nil, reject(CheckAge, nil, "the ID token was issued %s ago, more than the %s this broker accepts; ask the CI system for a fresh one", age.Round(time.Second), v.maxAge)
	}

	id := &Identity{
		Issuer:     tok.Issuer,
		Subject:    tok.Subject,
		Audience:   tok.Audience[0],
		JTI:        jti,
		IssuedAt:   tok.IssuedAt,
		Expiry:     tok.Expiry,
		ValidUntil: tok.Expiry,
		Claims:     trust.ClaimsFrom(verified),
	}
	if limit := tok.IssuedAt.Add(v.maxAge); limit.Before(id.ValidUntil) {
		id.ValidUntil = limit
	}
	return id, nil
}

// classify turns a go-oidc refusal into a Rejection. go-oidc checks the
// signature first; once it has passed, the claims it parsed are authentic
// and say which claim check failed.
func (v *Verifier) classify(err error, trace *signatureTrace, issURL, kid string, claims map[string]any) *Rejection {
	switch {
	case !trace.checked:
		return reject(CheckFormat, err, "the ID token is not a valid signed JWT; send the token the CI system issued, unchanged")
	case trace.err != nil && isKeyFetchError(trace.err):
		return reject(CheckKeys, err, "the broker could not fetch the keys of issuer %q; try again later", issURL)
	case trace.err != nil:
		return reject(CheckSignature, err, "the ID token's signature matches no key of issuer %q (kid %s); send a token that issuer signed, unchanged, or retry in %s if the issuer has just added a key (its keys are fetched again at most that often)", issURL, quote(kid), KeyRefetchInterval)
	}
	exp, hasExp := numericDate(claims["exp"])
	var expired *oidc.TokenExpiredError
	switch {
	case !hasExp:
		return reject(CheckExpiry, err, "the ID token has no numeric exp claim; send a token from an issuer that sets exp")
	case !audienceHas(claims["aud"], v.audience):
		return reject(CheckAudience, err, "the ID token is for audience %s, not %q; ask the CI system for an ID token with audience %q", quote(fmt.Sprint(claims["aud"])), v.audience, v.audience)
	case errors.As(err, &expired):
		return reject(CheckExpiry, err, "the ID token expired at %s; ask the CI system for a fresh one", exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && nbf.After(v.now()) {
		return reject(CheckNotBefore, err, "the ID token is not valid before %s (nbf); check the clocks of the CI system and the broker", nbf.UTC().Format(time.RFC3339))
	}
	return reject(CheckClaims, err, "the ID token's claims do not have the types OIDC requires (iss, sub and aud strings, exp, iat and nbf numbers); send the token the CI system issued, unchanged")
}

// decodePart decodes one base64url part of a compact JWS into v, keeping
// numbers exact.
func decodePart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, 0).Add(time.Duration(f * float64(time.Second))), true
}

func audienceHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if x == want {
				return true
			}
		}
	}
	return false
}

// quote quotes a value taken from a token for a message, cut short: the
// sender chose it, and a message should stay one readable line.
func quote(s string) string { return strconv.Quote(logsafe.Clip(s, 64)) }
