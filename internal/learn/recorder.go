package learn

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// DefaultUpstream is Cloudflare's API.
const DefaultUpstream = "https://api.cloudflare.com/client/v4"

// apiPrefix is the path the API lives under; clients pointed at the recorder send it too.
const apiPrefix = "/client/v4"

// Call is one request the command made, as learn keeps it: no header, no query, no body.
type Call struct {
	Method string
	// Template is the operation's path template, or for a request the table does not know, the
	// path with its identifiers replaced by {placeholders}.
	Template string
	Status   int
	Known    bool // the table has the operation (its Groups may still be empty)
	Groups   []string
	// Params are the path's parameters by name (account_id, zone_id, bucket_name, ...).
	Params map[string]string
	// Jurisdiction is the R2 jurisdiction the request named (cf-r2-jurisdiction), if any.
	Jurisdiction string
}

// Recorder is a reverse proxy that forwards every request unchanged to the upstream API, and
// records each call's method, operation and status. It never keeps a header, a query or a
// body, except what zone and account lookups answer (ids and names).
type Recorder struct {
	table    *Table
	upstream *url.URL
	proxy    *httputil.ReverseProxy

	mu    sync.Mutex
	calls []Call
	names map[string]string // zone and account ids to their names
	// lookedUp are the zone names the command asked for with GET /zones?name=.
	lookedUp []string
}

// NewRecorder forwards to upstream (DefaultUpstream when empty) with transport (Go's default
// when nil).
func NewRecorder(upstream string, table *Table, transport http.RoundTripper) (*Recorder, error) {
	if upstream == "" {
		upstream = DefaultUpstream
	}
	u, err := url.Parse(strings.TrimRight(upstream, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s is not an http(s) URL of an API base such as %s", upstream, DefaultUpstream)
	}
	r := &Recorder{table: table, upstream: u, names: map[string]string{}}
	r.proxy = &httputil.ReverseProxy{
		Rewrite:        r.rewrite,
		Transport:      transport,
		FlushInterval:  -1, // stream both ways
		ModifyResponse: r.inspect,
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			// Without the URL, whose query may hold a secret of the command's.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			http.Error(w, "cfmint learn: "+r.upstream.Host+" did not answer: "+err.Error(), http.StatusBadGateway)
		},
	}
	return r, nil
}

// apiPath is the request's escaped path below /client/v4.
func apiPath(req *http.Request) string {
	p := req.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, apiPrefix); ok && (rest == "" || rest[0] == '/') {
		return rest
	}
	return p
}

func (r *Recorder) rewrite(pr *httputil.ProxyRequest) {
	out, err := url.Parse(r.upstream.String() + apiPath(pr.In))
	if err != nil {
		out = &url.URL{Scheme: r.upstream.Scheme, Host: r.upstream.Host, Path: r.upstream.Path + pr.In.URL.Path}
	}
	out.RawQuery = pr.In.URL.RawQuery
	pr.Out.URL = out
	pr.Out.Host = ""
}

// ServeHTTP forwards the request and records it.
func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	c := r.classify(req)
	sw := &statusWriter{ResponseWriter: w}
	r.proxy.ServeHTTP(sw, req)
	c.Status = sw.status
	if c.Status == 0 {
		c.Status = http.StatusOK
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *Recorder) classify(req *http.Request) Call {
	path := apiPath(req)
	c := Call{Method: req.Method}
	if op, params, ok := r.table.Match(req.Method, path); ok {
		c.Template, c.Known, c.Groups, c.Params = op.Path, true, op.Groups, params
	} else {
		c.Template, c.Params = r.table.Generalize(path)
	}
	for k, v := range c.Params {
		if u, err := url.PathUnescape(v); err == nil {
			c.Params[k] = u
		}
	}
	if j := req.Header.Get("cf-r2-jurisdiction"); j != "" && c.Params["bucket_name"] != "" {
		c.Jurisdiction = strings.ToLower(j)
	}
	if req.Method == http.MethodGet && c.Template == "/zones" {
		if n := req.URL.Query().Get("name"); n != "" {
			r.mu.Lock()
			r.lookedUp = append(r.lookedUp, strings.ToLower(n))
			r.mu.Unlock()
		}
	}
	return c
}

// Generalize turns a path the table does not know into a template, so that no identifier or
// name of the job's own is printed as if it were part of Cloudflare's API: a segment that
// follows a word the table follows with a parameter (accounts, zones, services, ...) becomes
// that parameter, unless the table has the two words together; any other segment that is not a
// plain word (lower-case letters, '_' and '-') becomes {id}.
func (t *Table) Generalize(path string) (string, map[string]string) {
	segs := split(path)
	params := map[string]string{}
	var b strings.Builder
	for i, s := range segs {
		b.WriteByte('/')
		var name string
		if i > 0 && t.paramAfter[segs[i-1]] != "" && !t.pairs[segs[i-1]+"/"+s] {
			name = t.paramAfter[segs[i-1]]
		} else if !plainWord(s) {
			name = "id"
		}
		if name == "" {
			b.WriteString(s)
			continue
		}
		b.WriteString("{" + name + "}")
		if _, dup := params[name]; !dup {
			params[name] = s
		}
	}
	if b.Len() == 0 {
		return "/", params
	}
	return b.String(), params
}

func plainWord(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// lookups are the operations whose answers name zones and accounts.
var lookups = map[string]bool{"GET /zones": true, "GET /zones/{zone_id}": true, "GET /accounts": true, "GET /accounts/{account_id}": true}

// maxLookup caps how much of a lookup's answer learn reads beside passing it on.
const maxLookup = 1 << 20

// inspect reads the ids and names out of zone and account lookups as they stream past.
func (r *Recorder) inspect(resp *http.Response) error {
	req := resp.Request
	op, _, ok := r.table.Match(req.Method, apiPath(req))
	if !ok || !lookups[op.Method+" "+op.Path] || resp.StatusCode != http.StatusOK {
		return nil
	}
	resp.Body = &tee{ReadCloser: resp.Body, gzip: resp.Header.Get("Content-Encoding") == "gzip", done: r.learnNames}
	return nil
}

type tee struct {
	io.ReadCloser
	buf  bytes.Buffer
	gzip bool
	done func([]byte)
	once sync.Once
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if room := maxLookup - t.buf.Len(); room > 0 {
		t.buf.Write(p[:min(n, room)])
	}
	if err == io.EOF {
		t.finish()
	}
	return n, err
}

func (t *tee) Close() error {
	t.finish()
	return t.ReadCloser.Close()
}

func (t *tee) finish() {
	t.once.Do(func() {
		b := t.buf.Bytes()
		if t.gzip {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return
			}
			b, _ = io.ReadAll(io.LimitReader(zr, maxLookup))
		}
		t.done(b)
	})
}

type named struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Account *named `json:"account"`
}

func (r *Recorder) learnNames(body []byte) {
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(body, &env) != nil {
		return
	}
	var list []named
	if json.Unmarshal(env.Result, &list) != nil {
		var one named
		if json.Unmarshal(env.Result, &one) != nil {
			return
		}
		list = []named{one}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range list {
		for _, x := range []*named{&n, n.Account} {
			if x != nil && x.ID != "" && x.Name != "" {
				r.names[x.ID] = x.Name
			}
		}
	}
}

// Calls returns the calls recorded so far, in the order they completed.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Names returns the names the command's lookups gave ids, and the zone names it looked up.
func (r *Recorder) Names() (map[string]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]string, len(r.names))
	for k, v := range r.names {
		m[k] = v
	}
	return m, append([]string(nil), r.lookedUp...)
}

// statusWriter notes the status the proxy answers with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController flush the stream through.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
