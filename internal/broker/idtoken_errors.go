package broker

import "fmt"

// Check names one check of an ID token, for logs, metrics and callers.
type Check string

// The checks Verify makes.
const (
	CheckSize      Check = "size"      // larger than MaxIDTokenSize
	CheckFormat    Check = "format"    // not a compact JWS of JSON
	CheckAlgorithm Check = "alg"       // not RS256
	CheckIssuer    Check = "iss"       // missing, or not a trusted issuer
	CheckKeys      Check = "keys"      // the issuer's keys could not be fetched: the broker's fault, answer 503
	CheckSignature Check = "signature" // no published key of the issuer verifies it
	CheckAudience  Check = "aud"       // not the broker's audience, or more than one
	CheckExpiry    Check = "exp"       // missing or past
	CheckNotBefore Check = "nbf"       // not valid yet
	CheckSubject   Check = "sub"       // missing
	CheckJTI       Check = "jti"       // missing: single use cannot be enforced
	CheckIssuedAt  Check = "iat"       // missing or in the future
	CheckAge       Check = "age"       // iat older than the maximum age
	CheckClaims    Check = "claims"    // a registered claim of the wrong type
)

// Rejection is an ID token Verify refused. Its message is one sentence that
// says what was wrong and what to do, safe to show the caller: it never
// contains the token. Unwrap gives go-oidc's error, for the broker's log.
type Rejection struct {
	Check  Check
	Reason string
	err    error
}

func (r *Rejection) Error() string { return r.Reason }

func (r *Rejection) Unwrap() error { return r.err }

func reject(c Check, cause error, format string, args ...any) *Rejection {
	return &Rejection{Check: c, Reason: fmt.Sprintf(format, args...), err: cause}
}
