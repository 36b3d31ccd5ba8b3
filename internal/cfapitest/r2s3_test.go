package cfapitest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// s3Cred is an R2 S3 credential pair.
type s3Cred struct{ akid, secret string }

// r2Cred derives a token's S3 credentials the way R2 documents them.
func r2Cred(b Bootstrap) s3Cred {
	sum := sha256.Sum256([]byte(b.Secret))
	return s3Cred{akid: b.ID, secret: hex.EncodeToString(sum[:])}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// s3Req is one signed request to the fake's S3 endpoint.
type s3Req struct {
	cred                  s3Cred
	from                  string // client address; default 127.0.0.1
	method                string
	account, juris        string // default: the fixture's account, "default"
	bucket, key, rawQuery string
	body                  []byte
	payloadHash           string        // default: hex SHA-256 of body
	skew                  time.Duration // signing time minus the fake's clock
	region                string        // default "auto"
	escapeTwice           bool          // sign as non-S3 services do
	header                http.Header   // set before signing
	after                 func(*http.Request)
}

// s3Answer is the fake's answer, with the S3 error code decoded.
type s3Answer struct {
	status int
	header http.Header
	body   []byte
	code   string
}

// escapeKey encodes an object key for a URL path as S3 clients do: every
// byte but the unreserved characters and "/".
func escapeKey(key string) string {
	var b strings.Builder
	for _, c := range []byte(key) {
		if c == '/' || c == '-' || c == '_' || c == '.' || c == '~' ||
			('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (w *world) s3(t *testing.T, q s3Req) s3Answer {
	t.Helper()
	if q.account == "" {
		q.account = w.Account.ID
	}
	if q.region == "" {
		q.region = "auto"
	}
	if q.from == "" {
		q.from = "127.0.0.1"
	}
	u := w.R2Endpoint(q.account, q.juris) + "/" + q.bucket
	if q.key != "" {
		u += "/" + escapeKey(q.key)
	}
	if q.rawQuery != "" {
		u += "?" + q.rawQuery
	}
	var body io.Reader
	if q.body != nil {
		body = bytes.NewReader(q.body)
	}
	req, err := http.NewRequestWithContext(context.Background(), q.method, u, body)
	if err != nil {
		t.Fatalf("failed to build request: %v", err)
	}
	for k, v := range q.header {
		req.Header[k] = v
	}
	hash := q.payloadHash
	if hash == "" {
		hash = sha256Hex(q.body)
	}
	if err := signS3(req, q.cred.akid, q.cred.secret, hash, q.region, w.clock.Now().Add(q.skew), q.escapeTwice); err != nil {
		t.Fatalf("failed to sign: %v", err)
	}
	if q.after != nil {
		q.after(req)
	}
	res, err := clientFrom(q.from).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", q.method, u, err)
	}
	defer res.Body.Close()
	a := s3Answer{status: res.StatusCode, header: res.Header}
	if a.body, err = io.ReadAll(res.Body); err != nil {
		t.Fatalf("failed to read answer: %v", err)
	}
	if res.StatusCode >= 300 && len(a.body) > 0 {
		var e struct {
			XMLName xml.Name `xml:"Error"`
			Code    string   `xml:"Code"`
		}
		if err := xml.Unmarshal(a.body, &e); err != nil {
			t.Fatalf("error answer %d %q is not S3's XML: %v", res.StatusCode, a.body, err)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/xml" {
			t.Errorf("error Content-Type = %q, want application/xml", ct)
		}
		a.code = e.Code
	}
	return a
}

func wantS3(t *testing.T, a s3Answer, status int, code string) {
	t.Helper()
	if a.status != status || a.code != code {
		t.Fatalf("answer = %d %q %s, want %d %q", a.status, a.code, a.body, status, code)
	}
}

// r2World is a world with R2 tokens and buckets for the S3 tests.
type r2World struct {
	*world
	other, eu                          Bucket
	bucketWriter, accountWriter        Bootstrap
	bucketReader, ipFiltered, euWriter Bootstrap
	expired, deleted                   Bootstrap
}

func bucketKey(b Bucket) string { return prefixBucket + b.resourceName() }

func newR2World(t *testing.T) *r2World {
	t.Helper()
	w := &r2World{world: newWorld(t)}
	w.other = w.AddBucket(w.Account.ID, "default", "other")
	w.eu = w.AddBucket(w.Account.ID, "eu", "eu-assets")
	onBucket := func(name string, b Bucket, group string) TokenSpec {
		return TokenSpec{Name: name, OwnerAccount: w.Account.ID,
			Policies: []Policy{{Groups: []string{group}, Resources: map[string]any{bucketKey(b): "*"}}}}
	}
	w.bucketWriter = w.issue(t, onBucket("bucket writer", w.Bucket, "Workers R2 Storage Bucket Item Write"))
	w.bucketReader = w.issue(t, onBucket("bucket reader", w.Bucket, "Workers R2 Storage Bucket Item Read"))
	w.euWriter = w.issue(t, onBucket("eu writer", w.eu, "Workers R2 Storage Bucket Item Write"))
	w.accountWriter = w.issue(t, TokenSpec{Name: "account writer", OwnerAccount: w.Account.ID,
		Policies: []Policy{{Groups: []string{"Workers R2 Storage Write"}, Resources: map[string]any{acctKey(w.Account.ID): "*"}}}})
	spec := onBucket("ip filtered", w.Bucket, "Workers R2 Storage Bucket Item Write")
	spec.IPIn = []string{"127.0.0.1/32"}
	w.ipFiltered = w.issue(t, spec)
	spec = onBucket("expired", w.Bucket, "Workers R2 Storage Bucket Item Write")
	spec.ExpiresOn = testStart.Add(-time.Hour)
	w.expired = w.issue(t, spec)
	w.deleted = w.issue(t, onBucket("deleted", w.Bucket, "Workers R2 Storage Bucket Item Write"))
	wantOK(t, w.do(t, defaultClient, http.MethodDelete, "/accounts/"+w.Account.ID+"/tokens/"+w.deleted.ID, w.AccountBootstrap.Secret, nil))
	return w
}

func TestR2Endpoints(t *testing.T) {
	t.Parallel()
	acct := "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ juris, real string }{
		{"", "https://" + acct + ".r2.cloudflarestorage.com"},
		{"default", "https://" + acct + ".r2.cloudflarestorage.com"},
		{"eu", "https://" + acct + ".eu.r2.cloudflarestorage.com"},
		{"fedramp", "https://" + acct + ".fedramp.r2.cloudflarestorage.com"},
		{"mars", ""},
	} {
		if got := R2RealEndpoint(acct, tc.juris); got != tc.real {
			t.Errorf("R2RealEndpoint(%q) = %q, want %q", tc.juris, got, tc.real)
		}
	}
	if got := New().R2Endpoint(acct, "eu"); got != "" {
		t.Errorf("R2Endpoint before Start = %q, want empty", got)
	}
	w := newWorld(t)
	if got, want := w.R2Endpoint(acct, ""), "http://"+w.Host()+"/r2/"+acct+"/default"; got != want {
		t.Errorf("R2Endpoint = %q, want %q", got, want)
	}
}

// TestR2S3 runs each case on a fresh world, so cases cannot see each
// other's objects. A case may first store objects with the account writer.
func TestR2S3(t *testing.T) {
	t.Parallel()
	t.Logf("signing with the %s", signerName)
	const unicodeKey = "dir/my file ü+ñ (1)&=.txt"
	type setup struct{ juris, bucket, key, body string }
	cases := []struct {
		name   string
		seed   []setup
		req    func(w *r2World) s3Req
		status int
		code   string
		check  func(t *testing.T, w *r2World, a s3Answer)
	}{
		{
			name: "bucket writer puts an object",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "a.txt", body: []byte("hello"),
					header: http.Header{"Content-Type": {"text/plain"}}}
			},
			status: http.StatusOK,
			check: func(t *testing.T, w *r2World, a s3Answer) {
				if got, ok := w.Object(w.Account.ID, "default", "assets", "a.txt"); !ok || string(got) != "hello" {
					t.Errorf("Object = %q, %v; want hello", got, ok)
				}
				if want := `"5d41402abc4b2a76b9719d911017c592"`; a.header.Get("ETag") != want {
					t.Errorf("ETag = %q, want %q", a.header.Get("ETag"), want)
				}
				g := w.s3(t, s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "a.txt"})
				wantS3(t, g, http.StatusOK, "")
				if string(g.body) != "hello" || g.header.Get("Content-Type") != "text/plain" {
					t.Errorf("GET = %q %q, want hello as text/plain", g.body, g.header.Get("Content-Type"))
				}
			},
		},
		{
			name: "bucket writer gets an object",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "seed.txt"}
			},
			status: http.StatusOK,
			check: func(t *testing.T, w *r2World, a s3Answer) {
				if string(a.body) != "seeded" {
					t.Errorf("body = %q, want seeded", a.body)
				}
			},
		},
		{
			name: "bucket reader gets an object",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: "seed.txt"}
			},
			status: http.StatusOK,
		},
		{
			name: "head object",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketReader), method: http.MethodHead, bucket: "assets", key: "seed.txt"}
			},
			status: http.StatusOK,
			check: func(t *testing.T, _ *r2World, a s3Answer) {
				if a.header.Get("Content-Length") != "6" || a.header.Get("ETag") == "" {
					t.Errorf("HEAD headers = %v, want Content-Length 6 and an ETag", a.header)
				}
			},
		},
		{
			name: "range read",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: "seed.txt",
					header: http.Header{"Range": {"bytes=0-2"}}}
			},
			status: http.StatusPartialContent,
			check: func(t *testing.T, _ *r2World, a s3Answer) {
				if string(a.body) != "see" {
					t.Errorf("body = %q, want see", a.body)
				}
			},
		},
		{
			name: "bucket reader cannot put",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketReader), method: http.MethodPut, bucket: "assets", key: "a.txt", body: []byte("x")}
			},
			status: http.StatusForbidden, code: "AccessDenied",
			check: func(t *testing.T, w *r2World, _ s3Answer) {
				if _, ok := w.Object(w.Account.ID, "default", "assets", "a.txt"); ok {
					t.Error("a refused PUT stored the object")
				}
			},
		},
		{
			name: "bucket reader cannot delete",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketReader), method: http.MethodDelete, bucket: "assets", key: "seed.txt"}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "bucket writer deletes",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodDelete, bucket: "assets", key: "seed.txt"}
			},
			status: http.StatusNoContent,
			check: func(t *testing.T, w *r2World, _ s3Answer) {
				if _, ok := w.Object(w.Account.ID, "default", "assets", "seed.txt"); ok {
					t.Error("the object is still there")
				}
			},
		},
		{
			name: "bucket-scoped token on another bucket",
			seed: []setup{{"default", "other", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "other", key: "seed.txt"}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "bucket-scoped token on a missing bucket",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "nope", key: "a"}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "account writer on any bucket",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.accountWriter), method: http.MethodPut, bucket: "other", key: "b.bin", body: []byte{0, 1, 2}}
			},
			status: http.StatusOK,
			check: func(t *testing.T, w *r2World, _ s3Answer) {
				if got, ok := w.Object(w.Account.ID, "default", "other", "b.bin"); !ok || !bytes.Equal(got, []byte{0, 1, 2}) {
					t.Errorf("Object = %v, %v", got, ok)
				}
			},
		},
		{
			name: "account writer on a missing bucket",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.accountWriter), method: http.MethodGet, bucket: "nope", key: "a"}
			},
			status: http.StatusNotFound, code: "NoSuchBucket",
		},
		{
			name: "account writer in another account",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.accountWriter), account: w.OtherAccount.ID, method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "missing key",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: "nope"}
			},
			status: http.StatusNotFound, code: "NoSuchKey",
		},
		{
			name: "token with no R2 group",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.AccountBootstrap), method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "wrong secret",
			req: func(w *r2World) s3Req {
				return s3Req{cred: s3Cred{w.bucketWriter.ID, sha256Hex([]byte("not the secret"))}, method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "SignatureDoesNotMatch",
		},
		{
			name: "the token value itself as the secret",
			req: func(w *r2World) s3Req {
				return s3Req{cred: s3Cred{w.bucketWriter.ID, w.bucketWriter.Secret}, method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "SignatureDoesNotMatch",
		},
		{
			name: "unknown access key id",
			req: func(w *r2World) s3Req {
				return s3Req{cred: s3Cred{newID(), sha256Hex([]byte("x"))}, method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "InvalidAccessKeyId",
		},
		{
			name: "deleted token",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.deleted), method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "InvalidAccessKeyId",
		},
		{
			name: "expired token",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.expired), method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "InvalidAccessKeyId",
		},
		{
			name: "IP filter refuses 127.0.0.2",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.ipFiltered), from: "127.0.0.2", method: http.MethodPut, bucket: "assets", key: "a", body: []byte("x")}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "IP filter lets 127.0.0.1 in",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.ipFiltered), from: "127.0.0.1", method: http.MethodPut, bucket: "assets", key: "a", body: []byte("x")}
			},
			status: http.StatusOK,
		},
		{
			name: "tampered body, signed hash of the original",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "t", body: []byte("good"),
					after: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("evil")) }}
			},
			status: http.StatusBadRequest, code: "XAmzContentSHA256Mismatch",
			check: func(t *testing.T, w *r2World, _ s3Answer) {
				if _, ok := w.Object(w.Account.ID, "default", "assets", "t"); ok {
					t.Error("the tampered object was stored")
				}
			},
		},
		{
			name: "tampered body with its hash swapped in",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "t", body: []byte("good"),
					after: func(r *http.Request) {
						r.Body = io.NopCloser(strings.NewReader("evil"))
						r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte("evil")))
					}}
			},
			status: http.StatusForbidden, code: "SignatureDoesNotMatch",
		},
		{
			name: "unsigned payload",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "u", body: []byte("any"), payloadHash: unsignedPayload}
			},
			status: http.StatusOK,
		},
		{
			name: "changed header after signing",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "c", body: []byte("x"),
					header: http.Header{"Content-Type": {"text/plain"}},
					after:  func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }}
			},
			status: http.StatusForbidden, code: "SignatureDoesNotMatch",
		},
		{
			name: "unsigned x-amz header",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "c", body: []byte("x"),
					after: func(r *http.Request) { r.Header.Set("X-Amz-Meta-Owner", "mallory") }}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "key with spaces, unicode and sub-delimiters",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: unicodeKey, body: []byte("u")}
			},
			status: http.StatusOK,
			check: func(t *testing.T, w *r2World, _ s3Answer) {
				if got, ok := w.Object(w.Account.ID, "default", "assets", unicodeKey); !ok || string(got) != "u" {
					t.Errorf("Object(%q) = %q, %v", unicodeKey, got, ok)
				}
				g := w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: unicodeKey})
				wantS3(t, g, http.StatusOK, "")
			},
		},
		{
			name: "key with empty and dot segments is taken literally",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "a//b/./c/../d", body: []byte("d")}
			},
			status: http.StatusOK,
			check: func(t *testing.T, w *r2World, _ s3Answer) {
				if _, ok := w.Object(w.Account.ID, "default", "assets", "a//b/./c/../d"); !ok {
					t.Error("the key was normalised")
				}
			},
		},
		{
			name: "path signed twice-encoded, as non-S3 services sign",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: unicodeKey, body: []byte("u"), escapeTwice: true}
			},
			status: http.StatusForbidden, code: "SignatureDoesNotMatch",
		},
		{
			name: "date 16 minutes ahead",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "a", skew: 16 * time.Minute}
			},
			status: http.StatusForbidden, code: "RequestTimeTooSkewed",
		},
		{
			name: "date 16 minutes behind",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "a", skew: -16 * time.Minute}
			},
			status: http.StatusForbidden, code: "RequestTimeTooSkewed",
		},
		{
			name: "date 14 minutes behind",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "seed.txt", skew: -14 * time.Minute}
			},
			status: http.StatusOK,
		},
		{
			name: "region us-east-1",
			seed: []setup{{"default", "assets", "seed.txt", "seeded"}},
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "seed.txt", region: "us-east-1"}
			},
			status: http.StatusOK,
		},
		{
			name: "region eu-west-1",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "seed.txt", region: "eu-west-1"}
			},
			status: http.StatusBadRequest, code: "AuthorizationHeaderMalformed",
		},
		{
			name: "eu bucket",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.euWriter), juris: "eu", method: http.MethodPut, bucket: "eu-assets", key: "e", body: []byte("eu")}
			},
			status: http.StatusOK,
			check: func(t *testing.T, w *r2World, _ s3Answer) {
				if got, ok := w.Object(w.Account.ID, "eu", "eu-assets", "e"); !ok || string(got) != "eu" {
					t.Errorf("Object = %q, %v", got, ok)
				}
				if _, ok := w.Object(w.Account.ID, "default", "eu-assets", "e"); ok {
					t.Error("the eu object shows in the default jurisdiction")
				}
			},
		},
		{
			name: "eu bucket through the default endpoint, account-wide",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.accountWriter), method: http.MethodGet, bucket: "eu-assets", key: "e"}
			},
			status: http.StatusNotFound, code: "NoSuchBucket",
		},
		{
			name: "eu bucket through the default endpoint, bucket-scoped",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.euWriter), method: http.MethodGet, bucket: "eu-assets", key: "e"}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "default bucket through the eu endpoint",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), juris: "eu", method: http.MethodGet, bucket: "assets", key: "a"}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "object too large",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "big",
					body: make([]byte, maxObjectSize+1), payloadHash: unsignedPayload}
			},
			status: http.StatusBadRequest, code: "EntityTooLarge",
		},
		{
			name: "object at the size limit",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "big", body: make([]byte, maxObjectSize)}
			},
			status: http.StatusOK,
		},
		{
			name: "no Authorization header",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "a",
					after: func(r *http.Request) { r.Header.Del("Authorization") }}
			},
			status: http.StatusForbidden, code: "AccessDenied",
		},
		{
			name: "multipart upload",
			req: func(w *r2World) s3Req {
				return s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPost, bucket: "assets", key: "a", rawQuery: "uploads"}
			},
			status: http.StatusNotImplemented, code: "NotImplemented",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newR2World(t)
			for _, s := range tc.seed {
				a := w.s3(t, s3Req{cred: r2Cred(w.accountWriter), juris: s.juris, method: http.MethodPut, bucket: s.bucket, key: s.key, body: []byte(s.body)})
				wantS3(t, a, http.StatusOK, "")
			}
			a := w.s3(t, tc.req(w))
			wantS3(t, a, tc.status, tc.code)
			if tc.check != nil {
				tc.check(t, w, a)
			}
		})
	}
}

func TestR2ListObjectsV2(t *testing.T) {
	t.Parallel()
	w := newR2World(t)
	keys := []string{"a.txt", "dir/one", "dir/sub/two", "dir/three", "z z.txt"}
	for _, k := range keys {
		wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: k, body: []byte(k)}), http.StatusOK, "")
	}
	type result struct {
		KeyCount              int
		IsTruncated           bool
		NextContinuationToken string
		Contents              []struct {
			Key  string
			Size int
			ETag string
		}
		CommonPrefixes []struct{ Prefix string }
	}
	list := func(t *testing.T, query string) (result, []string) {
		t.Helper()
		a := w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", rawQuery: query})
		wantS3(t, a, http.StatusOK, "")
		var r result
		if err := xml.Unmarshal(a.body, &r); err != nil {
			t.Fatalf("failed to decode %s: %v", a.body, err)
		}
		var got []string
		for _, c := range r.Contents {
			// Each object's content is its key.
			if k, err := url.PathUnescape(c.Key); err != nil || c.Size != len(k) || c.ETag == "" {
				t.Errorf("entry %+v: want Size %d and an ETag", c, len(k))
			}
			got = append(got, c.Key)
		}
		for _, p := range r.CommonPrefixes {
			got = append(got, p.Prefix+"*")
		}
		if r.KeyCount != len(got) {
			t.Errorf("KeyCount = %d, want %d", r.KeyCount, len(got))
		}
		return r, got
	}
	cases := []struct {
		name, query string
		want        []string
	}{
		{"all", "list-type=2", keys},
		{"prefix", "list-type=2&prefix=dir%2F", []string{"dir/one", "dir/sub/two", "dir/three"}},
		{"delimiter", "list-type=2&delimiter=%2F", []string{"a.txt", "z z.txt", "dir/*"}},
		{"prefix and delimiter", "list-type=2&prefix=dir/&delimiter=/", []string{"dir/one", "dir/three", "dir/sub/*"}},
		{"start-after", "list-type=2&start-after=dir%2Fsub%2Ftwo", []string{"dir/three", "z z.txt"}},
		{"url encoding", "list-type=2&prefix=z&encoding-type=url", []string{"z%20z.txt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, got := list(t, tc.query)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("keys = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		var all []string
		token := ""
		for range 10 {
			q := "list-type=2&max-keys=2&delimiter=/"
			if token != "" {
				q += "&continuation-token=" + token
			}
			r, got := list(t, q)
			all = append(all, got...)
			if !r.IsTruncated {
				break
			}
			token = r.NextContinuationToken
		}
		if want := "a.txt,dir/*,z z.txt"; strings.Join(all, ",") != want {
			t.Errorf("pages = %q, want %s", all, want)
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		t.Parallel()
		a := w.s3(t, s3Req{cred: r2Cred(w.accountWriter), method: http.MethodGet, bucket: "nope", rawQuery: "list-type=2"})
		wantS3(t, a, http.StatusNotFound, "NoSuchBucket")
	})
	t.Run("head bucket", func(t *testing.T) {
		t.Parallel()
		wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodHead, bucket: "assets"}), http.StatusOK, "")
		wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodHead, bucket: "other"}), http.StatusForbidden, "")
	})
}

func TestR2LogAndFaults(t *testing.T) {
	t.Parallel()
	w := newR2World(t)
	wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodPut, bucket: "assets", key: "logged", body: []byte("x")}), http.StatusOK, "")
	wantS3(t, w.s3(t, s3Req{cred: s3Cred{w.bucketWriter.ID, "wrong"}, method: http.MethodGet, bucket: "assets", key: "logged"}),
		http.StatusForbidden, "SignatureDoesNotMatch")

	w.InjectFault(Fault{Method: http.MethodGet, Path: "/r2/{account}/{jurisdiction}/{bucket}/{key...}", TokenID: w.bucketReader.ID, Status: 503, Times: 1})
	wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketWriter), method: http.MethodGet, bucket: "assets", key: "logged"}), http.StatusOK, "")
	wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: "logged"}), http.StatusServiceUnavailable, "SlowDown")
	wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: "logged"}), http.StatusOK, "")

	var r2 []Request
	for _, r := range w.Requests() {
		if strings.HasPrefix(r.Path, "/r2/") {
			r2 = append(r2, r)
		}
	}
	wantIDs := []string{w.bucketWriter.ID, "", w.bucketWriter.ID, w.bucketReader.ID, w.bucketReader.ID}
	wantFault := []string{"", "", "", "status", ""}
	if len(r2) != len(wantIDs) {
		t.Fatalf("%d S3 requests logged, want %d", len(r2), len(wantIDs))
	}
	for i, r := range r2 {
		if r.TokenID != wantIDs[i] || r.Fault != wantFault[i] {
			t.Errorf("request %d: TokenID %q fault %q, want %q %q", i, r.TokenID, r.Fault, wantIDs[i], wantFault[i])
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("request %d logged its Authorization header", i)
		}
		if want := "/r2/" + w.Account.ID + "/default/assets/logged"; r.Path != want {
			t.Errorf("request %d: path %q, want %q", i, r.Path, want)
		}
	}
	if info, _ := w.Token(w.bucketWriter.ID); !info.LastUsedOn.Equal(testStart) {
		t.Errorf("LastUsedOn = %v, want %v", info.LastUsedOn, testStart)
	}
}

func TestR2MalformedFault(t *testing.T) {
	t.Parallel()
	w := newR2World(t)
	w.InjectFault(Fault{Path: "/r2/{account}/{jurisdiction}/{bucket}/{key...}", Malformed: true, Times: 1})
	a := w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: "x"})
	var v struct{ Name string }
	if a.status != http.StatusOK || xml.Unmarshal(a.body, &v) == nil {
		t.Errorf("answer = %d %q, want 200 with truncated XML", a.status, a.body)
	}
	wantS3(t, w.s3(t, s3Req{cred: r2Cred(w.bucketReader), method: http.MethodGet, bucket: "assets", key: "x"}), http.StatusNotFound, "NoSuchKey")
}

// TestSigV4GetObjectExample checks the verifier's pieces against "Example:
// GET Object" of "Signature Calculations for the Authorization Header"
// (Amazon S3 API reference).
func TestSigV4GetObjectExample(t *testing.T) {
	t.Parallel()
	const (
		secret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		amzDate   = "20130524T000000Z"
		wantSig   = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
		auth      = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
			"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=" + wantSig
	)
	r := httptest.NewRequest(http.MethodGet, "http://examplebucket.s3.amazonaws.com/test.txt", nil)
	r.Header.Set("Range", "bytes=0-9")
	r.Header.Set("x-amz-content-sha256", emptyHash)
	r.Header.Set("x-amz-date", amzDate)
	r.Header.Set("Authorization", auth)

	a, e := parseSigV4(auth)
	if e != nil {
		t.Fatalf("parseSigV4: %+v", e)
	}
	if a.accessKeyID != "AKIAIOSFODNN7EXAMPLE" || a.scope() != "20130524/us-east-1/s3/aws4_request" || a.signature != wantSig {
		t.Fatalf("parsed %+v", a)
	}
	canonical := s3CanonicalRequest(r, a.signedHeaders, emptyHash)
	wantCanonical := "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n" +
		"x-amz-content-sha256:" + emptyHash + "\nx-amz-date:" + amzDate + "\n\n" +
		"host;range;x-amz-content-sha256;x-amz-date\n" + emptyHash
	if canonical != wantCanonical {
		t.Fatalf("canonical request:\n%s\nwant:\n%s", canonical, wantCanonical)
	}
	sts := sigV4StringToSign(amzDate, a.scope(), canonical)
	wantSTS := "AWS4-HMAC-SHA256\n" + amzDate + "\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
	if sts != wantSTS {
		t.Fatalf("string to sign:\n%s\nwant:\n%s", sts, wantSTS)
	}
	if got := sigV4Signature(secret, "20130524", "us-east-1", "s3", sts); got != wantSig {
		t.Fatalf("signature = %s, want %s", got, wantSig)
	}
	if !signatureMatches(r, a, amzDate, emptyHash, secret) {
		t.Error("signatureMatches = false for the example")
	}
	if signatureMatches(r, a, amzDate, emptyHash, secret+"x") {
		t.Error("signatureMatches = true with another secret")
	}
}

func TestSigV4Canonicalisation(t *testing.T) {
	t.Parallel()
	paths := []struct{ path, want string }{
		{"", "/"},
		{"/", "/"},
		{"/b/my file ü.txt", "/b/my%20file%20%C3%BC.txt"},
		{"/b/a+b=c&d~e_f-g.h", "/b/a%2Bb%3Dc%26d~e_f-g.h"},
		{"/b/a//b/../c", "/b/a//b/../c"},
		{"/b/100%", "/b/100%25"},
	}
	for _, tc := range paths {
		if got := canonicalURI(tc.path); got != tc.want {
			t.Errorf("canonicalURI(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	queries := []struct{ raw, want string }{
		{"", ""},
		{"list-type=2&prefix=a%20b&max-keys=5", "list-type=2&max-keys=5&prefix=a%20b"},
		{"uploads", "uploads="},
		{"prefix=a+b", "prefix=a%20b"},
		{"prefix=a%2Bb", "prefix=a%2Bb"},
		{"b=2&a=2&a=1", "a=1&a=2&b=2"},
		{"prefix=dir/&delimiter=/", "delimiter=%2F&prefix=dir%2F"},
		{"x=%7E*", "x=~%2A"},
	}
	for _, tc := range queries {
		if got := canonicalQuery(tc.raw); got != tc.want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
	r := httptest.NewRequest(http.MethodPut, "http://h/", strings.NewReader("abc"))
	r.Header.Add("X-Multi", "  a   b ")
	r.Header.Add("X-Multi", "c")
	r.Header.Del("Content-Length")
	for _, tc := range []struct{ name, want string }{
		{"host", "h"}, {"x-multi", "a b,c"}, {"content-length", "3"}, {"x-missing", ""},
	} {
		if got := canonicalHeaderValue(r, tc.name); got != tc.want {
			t.Errorf("header %s = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := r.Header.Values("X-Multi"); got[0] != "  a   b " {
		t.Errorf("canonicalHeaderValue changed the request's header: %q", got)
	}
}

func TestParseSigV4Rejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ header, code string }{
		{"Bearer abc", "InvalidRequest"},
		{"AWS AKID:sig", "InvalidRequest"},
		{"AWS4-HMAC-SHA256 Credential=a/b/c/s3, SignedHeaders=host, Signature=x", "AuthorizationHeaderMalformed"},
		{"AWS4-HMAC-SHA256 Credential=a/20130524/auto/s3/aws4_request, Signature=x", "AuthorizationHeaderMalformed"},
		{"AWS4-HMAC-SHA256 Credential=a/20130524/auto/s3/aws4_request, SignedHeaders=host", "AuthorizationHeaderMalformed"},
		{"AWS4-HMAC-SHA256 garbage", "AuthorizationHeaderMalformed"},
	} {
		if _, e := parseSigV4(tc.header); e == nil || e.code != tc.code {
			t.Errorf("parseSigV4(%q) = %+v, want %s", tc.header, e, tc.code)
		}
	}
}
