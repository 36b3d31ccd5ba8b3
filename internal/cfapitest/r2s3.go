package cfapitest

// R2's S3-compatible API, for the buckets added with AddBucket.
//
// Real R2 serves it at https://<ACCOUNT_ID>.r2.cloudflarestorage.com (with
// ".eu." or ".fedramp." before "r2" for those jurisdictions). Tests cannot
// use that host name, so the fake serves it on its own listener below
// /r2/<ACCOUNT_ID>/<JURISDICTION>, with path-style addressing:
//
//	PUT|GET|HEAD|DELETE /r2/<ACCOUNT_ID>/<JURISDICTION>/<BUCKET>/<KEY>
//	GET                 /r2/<ACCOUNT_ID>/<JURISDICTION>/<BUCKET>?list-type=2
//	HEAD                /r2/<ACCOUNT_ID>/<JURISDICTION>/<BUCKET>
//
// Credentials derive from an API token as on R2: the access key id is the
// token's id, the secret access key the lowercase hex SHA-256 of its value.
// Requests are signed with AWS Signature Version 4 (see r2sigv4.go); the
// token's status, expiry and IP filter apply, and its R2 permission groups
// decide what it may read and write. Anything else S3 offers (multipart
// uploads, copies, presigned URLs, ListBuckets, ...) answers 501
// NotImplemented. S3 requests do not count against the API's rate limit.

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// r2Prefix is where the S3 endpoint lives on the fake's listener.
const r2Prefix = "/r2/"

// Limits of the fake's object store; R2's own are far larger.
const (
	maxObjectSize  = 8 << 20  // bytes in one object
	maxStoredBytes = 64 << 20 // bytes in all objects of a server
	maxListKeys    = 1000     // S3's ceiling for max-keys
)

// The permission groups that open R2 buckets to S3 requests. A Write group
// implies its Read twin (groupCatalog.implied).
var (
	r2AccountRead  = groupKey{"Workers R2 Storage Read", scopeAccount}
	r2AccountWrite = groupKey{"Workers R2 Storage Write", scopeAccount}
	r2BucketRead   = groupKey{"Workers R2 Storage Bucket Item Read", scopeBucket}
	r2BucketWrite  = groupKey{"Workers R2 Storage Bucket Item Write", scopeBucket}
)

// r2Object is a stored object.
type r2Object struct {
	data        []byte
	etag        string // quoted hex MD5, as S3 sends it
	contentType string
	meta        http.Header // the X-Amz-Meta-* headers it was stored with
	modified    time.Time
}

// s3Error is an answer in S3's error form.
type s3Error struct {
	status        int
	code, message string
}

var (
	errS3AccessDenied = &s3Error{http.StatusForbidden, "AccessDenied", "Access Denied"}
	errS3NoSuchBucket = &s3Error{http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist."}
	errS3NoSuchKey    = &s3Error{http.StatusNotFound, "NoSuchKey", "The specified key does not exist."}
	errS3BadAKID      = &s3Error{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
	errS3BadSignature = &s3Error{http.StatusForbidden, "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your secret access key and signing method."}
	errS3Skewed       = &s3Error{http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large."}
	errS3TooLarge     = &s3Error{http.StatusBadRequest, "EntityTooLarge", fmt.Sprintf("Your proposed upload exceeds the maximum allowed object size (%d bytes in this fake).", maxObjectSize)}
	errS3NotSupported = &s3Error{http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented."}
)

// R2RealEndpoint is the real S3 endpoint of an account's R2 buckets in a
// jurisdiction ("" or "default", "eu", "fedramp"), such as
// "https://<ACCOUNT_ID>.r2.cloudflarestorage.com"; "" for an unknown
// jurisdiction.
func R2RealEndpoint(accountID, jurisdiction string) string {
	switch jurisdiction {
	case "", "default":
		return "https://" + accountID + ".r2.cloudflarestorage.com"
	case "eu", "fedramp":
		return "https://" + accountID + "." + jurisdiction + ".r2.cloudflarestorage.com"
	}
	return ""
}

// R2Endpoint is the fake's stand-in for R2RealEndpoint, for S3 clients in
// path-style mode: "http://127.0.0.1:PORT/r2/<ACCOUNT_ID>/<JURISDICTION>",
// without a trailing slash, as S3 SDKs expect an endpoint. An empty
// jurisdiction means "default". It is "" before Start.
func (s *Server) R2Endpoint(accountID, jurisdiction string) string {
	h := s.Host()
	if h == "" {
		return ""
	}
	if jurisdiction == "" {
		jurisdiction = "default"
	}
	return "http://" + h + r2Prefix + accountID + "/" + jurisdiction
}

// Object returns a copy of a stored object's content. An empty jurisdiction
// means "default".
func (s *Server) Object(accountID, jurisdiction, bucket, key string) ([]byte, bool) {
	if jurisdiction == "" {
		jurisdiction = "default"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.r2Bucket(accountID, jurisdiction, bucket)
	if b == nil {
		return nil, false
	}
	o, ok := b.objects[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(o.data), true
}

func isR2Path(path string) bool { return strings.HasPrefix(path, r2Prefix) }

// bodyLimit is the largest request body the fake reads for a path.
func bodyLimit(path string) int64 {
	if isR2Path(path) {
		return maxObjectSize
	}
	return maxBody
}

func (s *Server) r2Bucket(accountID, jurisdiction, name string) *bucket {
	return s.findBucket(Bucket{AccountID: accountID, Jurisdiction: jurisdiction, Name: name}.resourceName())
}

// anyToken finds a token by id, live or deleted.
func (s *Server) anyToken(id string) *token {
	if t := s.tokens[id]; t != nil {
		return t
	}
	for _, t := range s.deleted {
		if t.id == id {
			return t
		}
	}
	return nil
}

// s3SignerID names, for the request log and faults, the token whose S3
// secret signed the request, whatever the token's state; "" when none did.
// It runs under s.mu.
func (s *Server) s3SignerID(r *http.Request) string {
	a, e := parseSigV4(r.Header.Get("Authorization"))
	if e != nil {
		return ""
	}
	t := s.anyToken(a.accessKeyID)
	if t == nil {
		return ""
	}
	if signatureMatches(r, a, r.Header.Get("X-Amz-Date"), r.Header.Get("X-Amz-Content-Sha256"), s3SecretAccessKey(t.secret)) {
		return t.id
	}
	return ""
}

// s3Authenticate checks a request's signature and returns the token that
// signed it. The order of the checks is S3's as far as it is known; where
// two failures coincide, which one real R2 reports is unverified.
func (s *Server) s3Authenticate(r *http.Request, body []byte, now time.Time) (*token, *s3Error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if r.URL.Query().Has("X-Amz-Signature") {
			return nil, &s3Error{http.StatusNotImplemented, "NotImplemented", "Presigned URLs are not implemented by this fake."}
		}
		return nil, errS3AccessDenied // anonymous access to a private bucket
	}
	a, e := parseSigV4(header)
	if e != nil {
		return nil, e
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return nil, &s3Error{http.StatusForbidden, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"}
	}
	switch {
	case a.date != amzDate[:8]:
		return nil, malformedAuth("Invalid credential date. Date is not the same as X-Amz-Date.")
	case a.region != "auto" && a.region != "us-east-1" && a.region != "":
		// R2 takes "auto", and "us-east-1" or "" as aliases for it.
		return nil, malformedAuth(fmt.Sprintf("the region '%s' is wrong; expecting 'auto'", a.region))
	case a.service != "s3":
		return nil, malformedAuth(fmt.Sprintf("the service '%s' is wrong; expecting 's3'", a.service))
	case a.terminator != sigV4Terminator:
		return nil, malformedAuth("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"")
	}
	t := s.tokens[a.accessKeyID]
	if t == nil || !t.usable(now) {
		return nil, errS3BadAKID
	}
	if d := now.Sub(at); d > maxClockSkew || d < -maxClockSkew {
		return nil, errS3Skewed
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payloadHash == "":
		return nil, &s3Error{http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"}
	case strings.HasPrefix(payloadHash, "STREAMING-"):
		return nil, &s3Error{http.StatusNotImplemented, "NotImplemented", "Streaming (aws-chunked) uploads are not implemented by this fake."}
	case payloadHash != unsignedPayload && !isSHA256Hex(payloadHash):
		return nil, &s3Error{http.StatusBadRequest, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-..., or a valid sha256 value."}
	}
	if !slices.Contains(a.signedHeaders, "host") {
		return nil, &s3Error{http.StatusForbidden, "AccessDenied", "There were headers present in the request which were not signed"}
	}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-amz-") && !slices.Contains(a.signedHeaders, l) {
			return nil, &s3Error{http.StatusForbidden, "AccessDenied", "There were headers present in the request which were not signed"}
		}
	}
	if !signatureMatches(r, a, amzDate, payloadHash, s3SecretAccessKey(t.secret)) {
		return nil, errS3BadSignature
	}
	if payloadHash != unsignedPayload {
		// S3's answer when the signed hash is not the body's; R2's is
		// unverified.
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != payloadHash {
			return nil, &s3Error{http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed."}
		}
	}
	if !t.ipAllowed(clientIP(r.RemoteAddr)) {
		return nil, errS3AccessDenied
	}
	return t, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// r2Allowed reports whether t may read (or write) a bucket: an R2 Storage
// group on its account or a Bucket Item group on the bucket, and no deny
// policy for the same. The bucket need not exist.
func (s *Server) r2Allowed(t *token, accountID, resourceName string, write bool) bool {
	accGroup, bktGroup := r2AccountRead, r2BucketRead
	if write {
		accGroup, bktGroup = r2AccountWrite, r2BucketWrite
	}
	cat := catalog()
	reach := s.reach(t.ownerKind, t.owner)
	if !slices.Contains(reach, accountID) {
		return false
	}
	checks := []struct {
		group *permissionGroup
		tg    target
	}{
		{cat.byNameScope[accGroup], accountTarget(accountID)},
		{cat.byNameScope[bktGroup], target{kind: kindBucket, account: accountID, bucket: resourceName}},
	}
	allowed := false
	for _, p := range t.policies {
		for _, c := range checks {
			if !p.grantsGroup(c.group) || !p.covers(c.tg, reach) {
				continue
			}
			if p.effect == "deny" {
				return false
			}
			allowed = true
		}
	}
	return allowed
}

// objectSubresources are query parameters that turn an object request into
// an operation the fake does not implement.
var objectSubresources = []string{
	"acl", "attributes", "legal-hold", "partNumber", "restore", "retention",
	"select", "tagging", "torrent", "uploadId", "uploads",
}

// serveR2 handles a request below r2Prefix. Like every endpoint it runs
// under s.mu, with the body already read and bounded by serve.
func (s *Server) serveR2(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := s.now()
	t, e := s.s3Authenticate(r, body, now)
	if e != nil {
		writeS3Error(w, e)
		return
	}
	// Unverified: whether S3 use updates a token's last_used_on.
	t.lastUsed = now.UTC().Truncate(time.Second)

	rest := strings.TrimPrefix(r.URL.Path, r2Prefix)
	acct, rest, _ := strings.Cut(rest, "/")
	juris, rest, _ := strings.Cut(rest, "/")
	name, key, _ := strings.Cut(rest, "/")
	q := r.URL.Query()

	var write bool
	var op func(*bucket)
	switch {
	case name == "":
		// ListBuckets and the like.
		writeS3Error(w, errS3NotSupported)
		return
	case key == "" && r.Method == http.MethodGet && q.Get("list-type") == "2":
		op = func(b *bucket) { s.listObjectsV2(w, b, q) }
	case key == "" && r.Method == http.MethodHead && len(q) == 0:
		op = func(*bucket) { w.WriteHeader(http.StatusOK) }
	case key == "":
		writeS3Error(w, errS3NotSupported)
		return
	case slices.ContainsFunc(objectSubresources, q.Has), r.Header.Get("X-Amz-Copy-Source") != "":
		writeS3Error(w, errS3NotSupported)
		return
	case r.Method == http.MethodGet, r.Method == http.MethodHead:
		op = func(b *bucket) { s.getObject(w, r, b, key) }
	case r.Method == http.MethodPut:
		write = true
		op = func(b *bucket) { s.putObject(w, r, b, key, body, now) }
	case r.Method == http.MethodDelete:
		write = true
		op = func(b *bucket) {
			delete(b.objects, key)
			w.WriteHeader(http.StatusNoContent)
		}
	case r.Method == http.MethodPost:
		writeS3Error(w, errS3NotSupported)
		return
	default:
		writeS3Error(w, &s3Error{http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource."})
		return
	}

	// A token that may not touch the bucket learns nothing of whether it
	// exists; one that may (account-wide) is told NoSuchBucket. Unverified.
	res := Bucket{AccountID: acct, Jurisdiction: juris, Name: name}.resourceName()
	if !s.r2Allowed(t, acct, res, write) {
		writeS3Error(w, errS3AccessDenied)
		return
	}
	b := s.findBucket(res)
	if b == nil {
		writeS3Error(w, errS3NoSuchBucket)
		return
	}
	op(b)
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, b *bucket, key string) {
	o, ok := b.objects[key]
	if !ok {
		writeS3Error(w, errS3NoSuchKey)
		return
	}
	h := w.Header()
	maps.Copy(h, o.meta.Clone())
	h.Set("ETag", o.etag)
	h.Set("Content-Type", o.contentType)
	// ServeContent answers Range and conditional requests, and HEAD.
	http.ServeContent(w, r, "", o.modified, bytes.NewReader(o.data))
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, b *bucket, key string, body []byte, now time.Time) {
	sum := md5.Sum(body)
	if want := r.Header.Get("Content-MD5"); want != "" && want != base64.StdEncoding.EncodeToString(sum[:]) {
		writeS3Error(w, &s3Error{http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received."})
		return
	}
	stored := 0
	for _, bk := range s.buckets {
		for k, o := range bk.objects {
			if bk != b || k != key {
				stored += len(o.data)
			}
		}
	}
	if stored+len(body) > maxStoredBytes {
		// The fake's own limit; R2 has no such answer.
		writeS3Error(w, &s3Error{http.StatusBadRequest, "EntityTooLarge",
			fmt.Sprintf("The fake holds at most %d bytes of objects in all; delete some first.", maxStoredBytes)})
		return
	}
	o := &r2Object{
		data:        bytes.Clone(body),
		etag:        `"` + hex.EncodeToString(sum[:]) + `"`,
		contentType: r.Header.Get("Content-Type"),
		meta:        http.Header{},
		modified:    now.UTC().Truncate(time.Second),
	}
	if o.contentType == "" {
		o.contentType = "application/octet-stream"
	}
	for k, v := range r.Header {
		if strings.HasPrefix(k, "X-Amz-Meta-") {
			o.meta[k] = slices.Clone(v)
		}
	}
	if b.objects == nil {
		b.objects = map[string]*r2Object{}
	}
	b.objects[key] = o
	w.Header().Set("ETag", o.etag)
	w.WriteHeader(http.StatusOK)
}

// listBucketResult is ListObjectsV2's answer.
type listBucketResult struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	KeyCount              int            `xml:"KeyCount"`
	IsTruncated           bool           `xml:"IsTruncated"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []listEntry    `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type listEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// listObjectsV2 lists keys in UTF-8 order with prefix, delimiter, max-keys,
// start-after and continuation-token (an opaque cursor: the last key or
// common prefix of the previous page).
func (s *Server) listObjectsV2(w http.ResponseWriter, b *bucket, q url.Values) {
	get := q.Get
	prefix, delim, startAfter, token := get("prefix"), get("delimiter"), get("start-after"), get("continuation-token")
	maxKeys := maxListKeys
	if v := get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeS3Error(w, &s3Error{http.StatusBadRequest, "InvalidArgument", "Provided max-keys not an integer or within integer range"})
			return
		}
		maxKeys = min(n, maxListKeys)
	}
	after := ""
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			writeS3Error(w, &s3Error{http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect"})
			return
		}
		after = string(raw)
	}
	enc := func(s string) string { return s }
	encType := get("encoding-type")
	switch encType {
	case "":
	case "url":
		enc = func(s string) string { return uriEncode(s, false) }
	default:
		writeS3Error(w, &s3Error{http.StatusBadRequest, "InvalidArgument", "Invalid Encoding Method specified in Request"})
		return
	}

	out := listBucketResult{
		Name: b.Name, Prefix: enc(prefix), Delimiter: enc(delim), MaxKeys: maxKeys,
		EncodingType: encType, ContinuationToken: token, StartAfter: enc(startAfter),
	}
	last := ""
	for _, k := range slices.Sorted(maps.Keys(b.objects)) {
		if !strings.HasPrefix(k, prefix) || (startAfter != "" && k <= startAfter) {
			continue
		}
		item, isPrefix := k, false
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				item, isPrefix = k[:len(prefix)+i+len(delim)], true
			}
		}
		if (after != "" && item <= after) || (isPrefix && item == last) {
			continue
		}
		if out.KeyCount == maxKeys {
			out.IsTruncated = true
			out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
			break
		}
		if isPrefix {
			out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{enc(item)})
		} else {
			o := b.objects[k]
			out.Contents = append(out.Contents, listEntry{
				Key: enc(k), LastModified: o.modified.Format("2006-01-02T15:04:05.000Z"),
				ETag: o.etag, Size: len(o.data), StorageClass: "STANDARD",
			})
		}
		out.KeyCount++
		last = item
	}
	writeXML(w, http.StatusOK, out)
}

// s3ErrorBody is S3's error document.
type s3ErrorBody struct {
	XMLName xml.Name `xml:"Error"`
	Code    string   `xml:"Code"`
	Message string   `xml:"Message"`
}

func writeS3Error(w http.ResponseWriter, e *s3Error) {
	writeXML(w, e.status, s3ErrorBody{Code: e.code, Message: e.message})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	data, err := xml.Marshal(v)
	if err != nil {
		// The fake's own types always encode.
		panic(fmt.Sprintf("cfapitest: failed to encode XML: %v", err))
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(data)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(data)
}

// answerS3 is a Status or Malformed fault's answer on the S3 endpoint.
func (f *Fault) answerS3(w http.ResponseWriter) {
	if f.Malformed {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusOK)
		// A truncated document: what a proxy cutting the answer short leaves.
		_, _ = io.WriteString(w, xml.Header+`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>`)
		return
	}
	code := "InternalError"
	switch f.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		code = "SlowDown"
	case http.StatusForbidden:
		code = "AccessDenied"
	case http.StatusNotFound:
		code = "NoSuchKey"
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	if f.Status == http.StatusTooManyRequests && f.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((f.RetryAfter+time.Second-1)/time.Second)))
	}
	writeS3Error(w, &s3Error{f.Status, code, msg})
}
