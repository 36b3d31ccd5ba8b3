package cfapitest

// AWS Signature Version 4 verification for the R2 S3 endpoint, with the
// standard library only: the production binary embeds this package for its
// demo and must not link the AWS SDK. The rules are S3's, from "Authenticating
// Requests (AWS Signature Version 4)" in the Amazon S3 API reference; R2
// follows them with region "auto".

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	sigV4Terminator = "aws4_request"
	amzDateFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// maxClockSkew is how far x-amz-date may be from the server's clock.
	maxClockSkew = 15 * time.Minute
)

// sigV4Auth is a parsed "Authorization: AWS4-HMAC-SHA256 ..." header.
type sigV4Auth struct {
	accessKeyID   string
	date          string // YYYYMMDD of the credential scope
	region        string
	service       string
	terminator    string
	signedHeaders []string // as listed, lower-cased
	signature     string
}

// scope is the credential scope, date/region/service/aws4_request.
func (a sigV4Auth) scope() string {
	return a.date + "/" + a.region + "/" + a.service + "/" + a.terminator
}

// parseSigV4 parses the Authorization header. Components may be separated
// by "," or ", " (AWS's own examples use both).
func parseSigV4(header string) (sigV4Auth, *s3Error) {
	rest, ok := strings.CutPrefix(header, sigV4Algorithm+" ")
	if !ok {
		return sigV4Auth{}, &s3Error{http.StatusBadRequest, "InvalidRequest",
			"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."}
	}
	var a sigV4Auth
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sigV4Auth{}, malformedAuth("the authorization header is malformed; a component is not key=value")
		}
		switch k {
		case "Credential":
			fields := strings.Split(v, "/")
			if len(fields) != 5 || fields[0] == "" {
				return sigV4Auth{}, malformedAuth("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"")
			}
			a.accessKeyID, a.date, a.region, a.service, a.terminator = fields[0], fields[1], fields[2], fields[3], fields[4]
			haveCred = true
		case "SignedHeaders":
			for h := range strings.SplitSeq(v, ";") {
				a.signedHeaders = append(a.signedHeaders, strings.ToLower(strings.TrimSpace(h)))
			}
			haveSigned = v != ""
		case "Signature":
			a.signature = v
			haveSig = true
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return sigV4Auth{}, malformedAuth("the authorization header requires Credential, SignedHeaders and Signature")
	}
	return a, nil
}

func malformedAuth(msg string) *s3Error {
	return &s3Error{http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed; " + strings.TrimPrefix(msg, "the authorization header is malformed; ")}
}

// s3CanonicalRequest builds SigV4's canonical request as S3 does:
//
//	METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
//
// S3 takes the path as the object's name: it URI-encodes each byte of the
// decoded path once (unreserved characters and "/" stay), and does not
// normalise "." or ".." segments or repeated slashes. Other services encode
// the already-encoded path a second time; S3 does not.
func s3CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL.Path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	return uriEncode(path, false)
}

// canonicalQuery sorts the query's parameters by name, then value, each
// URI-encoded ("+" in the request stands for a space, as url.ParseQuery
// reads it, and is encoded as %20).
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type param struct{ k, v string }
	var ps []param
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		ps = append(ps, param{uriEncode(k, true), uriEncode(v, true)})
	}
	slices.SortFunc(ps, func(a, b param) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&")
}

// canonicalHeaderValue is one signed header's value: its values joined by
// ",", each trimmed with inner runs of spaces folded to one.
func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		h := r.Host
		if h == "" {
			h = r.URL.Host
		}
		vals = []string{h}
	default:
		vals = r.Header.Values(name)
		if len(vals) == 0 && name == "content-length" && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = trimAll(v)
	}
	return strings.Join(out, ",")
}

// trimAll trims a header value and folds each inner run of spaces to one,
// SigV4's "Trimall".
func trimAll(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// uriEncode percent-encodes every byte but the unreserved characters
// (A-Z a-z 0-9 - . _ ~), with uppercase hex; "/" stays unless encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// sigV4StringToSign is the string to sign for a canonical request.
func sigV4StringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// sigV4Signature signs stringToSign with the key derived from a secret
// access key for the credential scope date/region/service.
func sigV4Signature(secretAccessKey, date, region, service, stringToSign string) string {
	k := hmacSHA256([]byte("AWS4"+secretAccessKey), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, sigV4Terminator)
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signatureMatches recomputes the request's signature with secretAccessKey
// and compares it in constant time.
func signatureMatches(r *http.Request, a sigV4Auth, amzDate, payloadHash, secretAccessKey string) bool {
	canonical := s3CanonicalRequest(r, a.signedHeaders, payloadHash)
	want := sigV4Signature(secretAccessKey, a.date, a.region, a.service, sigV4StringToSign(amzDate, a.scope(), canonical))
	return hmac.Equal([]byte(want), []byte(a.signature))
}

// s3SecretAccessKey is the S3 secret of an API token: the lowercase hex
// SHA-256 of the token's value.
func s3SecretAccessKey(tokenSecret string) string {
	sum := sha256.Sum256([]byte(tokenSecret))
	return hex.EncodeToString(sum[:])
}
