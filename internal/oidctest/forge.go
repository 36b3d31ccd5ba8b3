package oidctest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"time"
)

// Forgery is a way to make an ID token a verifier must refuse.
type Forgery int

const (
	// AlgNone is unsigned: header alg "none", empty signature.
	AlgNone Forgery = iota + 1
	// HS256WithPublicKey is signed HMAC-SHA256 keyed with the issuer's
	// public key (its PEM), the classic algorithm-confusion attack.
	HS256WithPublicKey
	// OtherKey is signed by a key the issuer never published, under the
	// kid of its current key.
	OtherKey
	// UnknownKID is signed by an unpublished key under a kid the JWKS does
	// not have, which makes a verifier refetch the keys.
	UnknownKID
	// Expired has exp a minute ago (iat six minutes ago).
	Expired
	// FutureIssuedAt has iat ten minutes ahead (nbf now, so only iat is
	// wrong).
	FutureIssuedAt
	// TooOld has iat twenty minutes ago and exp still ahead, like the
	// long-lived samples GitHub has issued.
	TooOld
	// WrongAudience is for audience "https://wrong.example" instead of
	// what the claims ask for.
	WrongAudience
	// WrongIssuer says it comes from https://token.actions.githubusercontent.com
	// but is signed by this issuer's key.
	WrongIssuer
	// NoJTI has no jti claim.
	NoJTI
	// NoExpiry has no exp claim.
	NoExpiry
	// NotJWT is a string that is no JWT at all.
	NotJWT
	// ManyDots is thousands of dots, the input of CVE-2025-27144.
	ManyDots
	// TooLarge is a validly signed token of more than 64 KiB.
	TooLarge
)

var forgeryNames = map[Forgery]string{
	AlgNone:            "alg none",
	HS256WithPublicKey: "HS256 keyed with the public key",
	OtherKey:           "signed by another key",
	UnknownKID:         "unknown kid",
	Expired:            "expired",
	FutureIssuedAt:     "iat in the future",
	TooOld:             "iat too old",
	WrongAudience:      "wrong audience",
	WrongIssuer:        "wrong issuer",
	NoJTI:              "no jti",
	NoExpiry:           "no exp",
	NotJWT:             "not a JWT",
	ManyDots:           "many dots",
	TooLarge:           "too large",
}

func (f Forgery) String() string {
	if n, ok := forgeryNames[f]; ok {
		return n
	}
	return "unknown forgery"
}

// Forgeries lists every Forgery, for table tests.
func Forgeries() []Forgery {
	out := make([]Forgery, 0, len(forgeryNames))
	for f := AlgNone; f <= TooLarge; f++ {
		out = append(out, f)
	}
	return out
}

// GitHubIssuer is the real issuer of GitHub Actions' ID tokens. Tests only
// ever write it into claims; nothing contacts it.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// Forge returns a token made from c (completed as Complete does) and spoiled
// as f says.
func (i *Issuer) Forge(f Forgery, c Claims) string {
	i.t.Helper()
	c = Claims(copyClaims(c))
	now := i.now()
	switch f {
	case Expired:
		c["iat"] = now.Add(-6 * time.Minute).Unix()
		c["exp"] = now.Add(-time.Minute).Unix()
	case FutureIssuedAt:
		c["iat"] = now.Add(10 * time.Minute).Unix()
		c["nbf"] = now.Unix()
		c["exp"] = now.Add(15 * time.Minute).Unix()
	case TooOld:
		c["iat"] = now.Add(-20 * time.Minute).Unix()
		c["exp"] = now.Add(5 * time.Minute).Unix()
	case WrongAudience:
		c["aud"] = "https://wrong.example"
	case WrongIssuer:
		c["iss"] = GitHubIssuer
	case NoJTI:
		c["jti"] = nil
	case NoExpiry:
		c["exp"] = nil
	case TooLarge:
		c["padding"] = strings.Repeat("x", 64<<10)
	}
	full := i.Complete(c)
	cur := i.current()
	switch f {
	case AlgNone:
		return i.compact(map[string]any{"alg": "none", "typ": "JWT"}, full) + "."
	case HS256WithPublicKey:
		der, err := x509.MarshalPKIXPublicKey(&cur.priv.PublicKey)
		if err != nil {
			i.t.Fatalf("oidctest: failed to encode the public key: %v", err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		signingInput := i.compact(map[string]any{"alg": "HS256", "typ": "JWT", "kid": cur.kid}, full)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signingInput))
		return signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	case OtherKey:
		return i.sign(i.strangerKey().priv, cur.kid, full)
	case UnknownKID:
		return i.sign(i.strangerKey().priv, "unknown-"+randomHex(8), full)
	case NotJWT:
		return "this is not a JWT"
	case ManyDots:
		return strings.Repeat(".", 7000)
	}
	return i.sign(cur.priv, cur.kid, full)
}

func copyClaims(c Claims) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// compact is the signing input of a JWS: base64url(header) "." base64url(payload).
func (i *Issuer) compact(header map[string]any, claims Claims) string {
	i.t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		i.t.Fatalf("oidctest: failed to encode a header: %v", err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		i.t.Fatalf("oidctest: failed to encode claims: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
}
