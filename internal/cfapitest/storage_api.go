package cfapitest

// The storage calls of wrangler's kv, d1 and r2 commands (wrangler 4.86, from its
// source):
//
//	PUT  /accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}  kv key put (raw body, or multipart value+metadata)
//	GET  /accounts/{account_id}/d1/database                                            d1, to find a database by name
//	POST /accounts/{account_id}/d1/database/{database_id}/query                        d1 execute --remote --command
//	PUT  /accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key...}        r2 object put --remote (cf-r2-jurisdiction header)
//
// Groups as Cloudflare's spec annotates them (x-api-token-group): KV values need Workers KV
// Storage Write; D1 list and query accept D1 Read (or Write). The R2 object upload is not
// annotated in the spec seen; the Workers R2 Storage Write it needs is from Cloudflare's R2
// docs ("the REST API needs the account-level group"; bucket-scoped tokens work over S3
// only). Error codes for a missing namespace, database or bucket are unverified.

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	codeKVNamespaceNotFound = 10013 // unverified
	codeD1NotFound          = 7404  // unverified
	codeR2NoSuchBucket      = 10006 // "The specified bucket does not exist."
)

type kvNamespace struct {
	id, title string
	values    map[string][]byte
}

type d1Database struct {
	uuid, name string
	createdOn  time.Time
	queries    []string
}

// AddKVNamespace creates a KV namespace in the account and returns its id.
func (s *Server) AddKVNamespace(accountID, title string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID, "AddKVNamespace")
	a := s.accounts[accountID]
	if a.kv == nil {
		a.kv = map[string]*kvNamespace{}
	}
	ns := &kvNamespace{id: newID(), title: title, values: map[string][]byte{}}
	a.kv[ns.id] = ns
	return ns.id
}

// KVValue returns a key's value in a namespace.
func (s *Server) KVValue(accountID, namespaceID, key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.kv[namespaceID] == nil {
		return nil, false
	}
	v, ok := a.kv[namespaceID].values[key]
	return slices.Clone(v), ok
}

// AddD1Database creates a D1 database in the account and returns its uuid.
func (s *Server) AddD1Database(accountID, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID, "AddD1Database")
	a := s.accounts[accountID]
	if a.d1 == nil {
		a.d1 = map[string]*d1Database{}
	}
	uuid := workersUUID()
	a.d1[uuid] = &d1Database{uuid: uuid, name: name, createdOn: s.now().UTC()}
	return uuid
}

// D1Queries returns the SQL a database was sent, in order. The fake runs none of it.
func (s *Server) D1Queries(accountID, uuid string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil || a.d1[uuid] == nil {
		return nil
	}
	return slices.Clone(a.d1[uuid].queries)
}

func (c *call) putKVValue() {
	a := c.account()
	if a == nil {
		return
	}
	ns := a.kv[c.r.PathValue("namespace_id")]
	if ns == nil {
		writeErr(c.w, http.StatusNotFound, codeKVNamespaceNotFound, "put: 'namespace not found'")
		return
	}
	body, err := io.ReadAll(c.r.Body)
	if err != nil {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, "could not read the value")
		return
	}
	if mt, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		form, err := multipart.NewReader(strings.NewReader(string(body)), params["boundary"]).ReadForm(maxBody)
		if err != nil || len(form.Value["value"]) != 1 {
			writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, "a multipart value needs one 'value' part")
			return
		}
		body = []byte(form.Value["value"][0])
	}
	ns.values[c.r.PathValue("key_name")] = body
	writeResult(c.w, map[string]any{})
}

type d1Out struct {
	UUID      string `json:"uuid"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	CreatedAt string `json:"created_at"`
	NumTables int    `json:"num_tables"`
	FileSize  int    `json:"file_size"`
}

func (c *call) listD1Databases() {
	a := c.account()
	if a == nil {
		return
	}
	q := c.r.URL.Query()
	page, perPage, ok := c.paging(q, 1000, 10000)
	if !ok {
		return
	}
	out := []d1Out{}
	for _, id := range slices.Sorted(maps.Keys(a.d1)) {
		db := a.d1[id]
		if n := q.Get("name"); n != "" && db.name != n {
			continue
		}
		out = append(out, d1Out{UUID: db.uuid, Name: db.name, Version: "production", CreatedAt: db.createdOn.Format(time.RFC3339Nano)})
	}
	lo, hi, info := paginate(len(out), page, perPage)
	writeList(c.w, out[lo:hi], info)
}

// queryD1 records the SQL and answers one empty result per statement, as D1 does for
// statements that return no rows.
func (c *call) queryD1() {
	a := c.account()
	if a == nil {
		return
	}
	db := a.d1[c.r.PathValue("database_id")]
	if db == nil {
		writeErr(c.w, http.StatusNotFound, codeD1NotFound, "The database "+c.r.PathValue("database_id")+" could not be found")
		return
	}
	var in struct {
		SQL string `json:"sql"`
	}
	if !c.jsonBody(&in) {
		return
	}
	if strings.TrimSpace(in.SQL) == "" {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, "sql is required")
		return
	}
	db.queries = append(db.queries, in.SQL)
	writeResult(c.w, []any{map[string]any{
		"results": []any{},
		"success": true,
		"meta": map[string]any{
			"served_by": "cfapitest", "duration": 0.1, "changes": 0, "last_row_id": 0,
			"changed_db": true, "size_after": 8192, "rows_read": 0, "rows_written": 0,
		},
	}})
}

// putR2Object stores an object through the REST API, where the S3 endpoint of r2s3.go can read
// it back.
func (c *call) putR2Object() {
	a := c.account()
	if a == nil {
		return
	}
	juris := c.r.Header.Get("cf-r2-jurisdiction")
	if juris == "" {
		juris = "default"
	}
	b := c.s.r2Bucket(a.ID, juris, c.r.PathValue("bucket_name"))
	if b == nil {
		writeErr(c.w, http.StatusNotFound, codeR2NoSuchBucket, "The specified bucket does not exist.")
		return
	}
	body, err := io.ReadAll(c.r.Body)
	if err != nil {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, "could not read the object")
		return
	}
	key := c.r.PathValue("object_key")
	if b.objects == nil {
		b.objects = map[string]*r2Object{}
	}
	h := md5.Sum(body)
	sum := hex.EncodeToString(h[:])
	b.objects[key] = &r2Object{data: body, etag: `"` + sum + `"`, contentType: c.r.Header.Get("Content-Type"), meta: http.Header{}, modified: c.now.UTC()}
	writeResult(c.w, map[string]any{
		"key": key, "size": fmt.Sprint(len(body)), "etag": sum, "version": newID(),
		"uploaded": c.now.UTC().Format(time.RFC3339Nano), "storage_class": "Standard",
		"http_metadata": map[string]any{}, "custom_metadata": map[string]any{},
	})
}
