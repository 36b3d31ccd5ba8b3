// Package apispec validates Cloudflare API traffic against the official
// OpenAPI schemas.
//
// The spec is a self-contained subset of Cloudflare's OpenAPI 3.1 document
// (see testdata/PROVENANCE.md), embedded into the package. Tests wrap the
// in-memory fake of Cloudflare's API with [Spec.Middleware] so that every
// request cfmint sends and every answer the fake gives is checked against the
// schemas of the operation involved. That keeps the fake honest: a fake that
// drifts from the real API would otherwise let bugs through.
//
// The package is meant for tests only. It embeds the spec, so importing it
// from non-test code would ship the spec in the action's binary for nothing.
//
// Where the spec's literal JSON-Schema meaning differs from how Cloudflare and
// its own SDK behave, the package follows OpenAPI's intent and says so:
//   - readOnly properties are not required in requests and must not be sent
//     there (Cloudflare rejects a policy "id" on create with error 1001, and
//     cloudflare-go v6 has no field for it); writeOnly is the mirror image for
//     responses;
//   - the OpenAPI 3.0 keyword "nullable: true", left in the zones_* schemas
//     that were copied from a 3.0 document, is honoured by adding "null" to the
//     schema's type;
//   - a requestBody marked required but declaring no schema (DELETE token)
//     may be omitted, because cloudflare-go v6 sends such DELETEs without a
//     body.
//
// Where the spec lags behind what Cloudflare is known to answer, the
// response view is amended (amendResponses) and the amendment names its
// source; the embedded file itself stays a byte-for-byte copy.
package apispec

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed testdata/cloudflare-openapi-tokens.json
var specJSON []byte

// Resource URLs under which the two views of the document are registered
// with the schema compiler. They are never fetched: the ".invalid" TLD only
// makes them recognisable in error messages.
const (
	requestDocURL  = "https://apispec.invalid/request/cloudflare-openapi-tokens.json"
	responseDocURL = "https://apispec.invalid/response/cloudflare-openapi-tokens.json"
)

// httpMethods are the keys of an OpenAPI path item that hold operations.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Spec is the parsed and compiled spec. It is immutable after [Load] and safe
// for concurrent use.
type Spec struct {
	paths []*pathEntry
}

// pathEntry groups the operations sharing one path template.
type pathEntry struct {
	template string
	segments []string // "{name}" for a template segment
	ops      map[string]*Operation
}

// Operation is one operation of the spec, with its compiled schemas.
type Operation struct {
	// Method is the upper-case HTTP method, e.g. "POST".
	Method string
	// PathTemplate is the spec's path key, e.g. "/accounts/{account_id}/tokens".
	PathTemplate string
	// OperationID is the spec's operationId, e.g. "account-api-tokens-create-token".
	OperationID string

	segments    []string
	pathParams  []*param
	queryParams []*param
	body        *requestBody         // nil when the operation declares no requestBody
	responses   map[string]*response // keys "200", "4XX", "DEFAULT", ...
}

// param is a path or query parameter.
type param struct {
	name      string
	required  bool
	explode   bool     // only matters for array-typed query parameters
	types     []string // JSON types the schema allows, for string conversion
	itemTypes []string // for array parameters
	schema    *jsonschema.Schema
}

// requestBody is an operation's requestBody.
type requestBody struct {
	required bool
	media    map[string]*jsonschema.Schema // nil schema: any body of that type
}

// response is one entry of an operation's responses.
type response struct {
	media map[string]*jsonschema.Schema // empty: no body described
}

var loadOnce = sync.OnceValues(load)

// Load parses the embedded spec and compiles its schemas. The result is
// computed once and shared: a *Spec is immutable, and compiling on every call
// would only slow tests down.
func Load() (*Spec, error) {
	return loadOnce()
}

func load() (*Spec, error) {
	// Two independently parsed copies: the request view and the response view
	// differ in how readOnly/writeOnly properties are treated (see package
	// doc), and shared component schemas are used on both sides.
	reqDoc, err := parseDoc()
	if err != nil {
		return nil, err
	}
	respDoc, err := parseDoc()
	if err != nil {
		return nil, err
	}
	if err := amendResponses(respDoc); err != nil {
		return nil, err
	}
	prepareView(reqDoc, viewRequest)
	prepareView(respDoc, viewResponse)

	c := jsonschema.NewCompiler()
	// OpenAPI 3.1 schemas are JSON Schema 2020-12; the document has no
	// $schema, so say it explicitly instead of relying on the library default.
	c.DefaultDraft(jsonschema.Draft2020)
	// 2020-12 treats "format" as an annotation unless asked; the spec's
	// formats (date-time, hostname) are ones Cloudflare does honour, and the
	// library's RFC 3339 check accepts what Cloudflare sends ("...Z").
	c.AssertFormat()
	// Needed for the package's own x-apispec-* keywords (vocab.go).
	c.AssertVocabs()
	c.RegisterVocabulary(forbiddenVocab())
	if err := c.AddResource(requestDocURL, reqDoc); err != nil {
		return nil, fmt.Errorf("apispec: add request view: %w", err)
	}
	if err := c.AddResource(responseDocURL, respDoc); err != nil {
		return nil, fmt.Errorf("apispec: add response view: %w", err)
	}

	b := &builder{c: c, req: reqDoc, resp: respDoc}
	return b.build()
}

func parseDoc() (map[string]any, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(specJSON))
	if err != nil {
		return nil, fmt.Errorf("apispec: parse embedded spec: %w", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("apispec: embedded spec is not a JSON object")
	}
	return doc, nil
}

// builder turns the parsed views into Operations.
type builder struct {
	c    *jsonschema.Compiler
	req  map[string]any
	resp map[string]any
}

func (b *builder) build() (*Spec, error) {
	paths, ok := b.req["paths"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("apispec: spec has no paths")
	}
	templates := make([]string, 0, len(paths))
	for t := range paths {
		templates = append(templates, t)
	}
	sort.Strings(templates) // deterministic Load errors

	s := &Spec{}
	for _, tmpl := range templates {
		item, ok := paths[tmpl].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("apispec: path %q is not an object", tmpl)
		}
		segs, err := splitTemplate(tmpl)
		if err != nil {
			return nil, err
		}
		pe := &pathEntry{template: tmpl, segments: segs, ops: map[string]*Operation{}}
		itemPtr := ptrJoin("", "paths", tmpl)
		for _, m := range httpMethods {
			raw, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			op, err := b.operation(tmpl, segs, m, item, itemPtr, raw)
			if err != nil {
				return nil, fmt.Errorf("apispec: %s %s: %w", strings.ToUpper(m), tmpl, err)
			}
			pe.ops[op.Method] = op
		}
		s.paths = append(s.paths, pe)
	}
	return s, nil
}

func (b *builder) operation(tmpl string, segs []string, method string, item map[string]any, itemPtr string, raw map[string]any) (*Operation, error) {
	opPtr := ptrJoin(itemPtr, method)
	op := &Operation{
		Method:       strings.ToUpper(method),
		PathTemplate: tmpl,
		segments:     segs,
		responses:    map[string]*response{},
	}
	op.OperationID, _ = raw["operationId"].(string)

	// Path-item parameters apply to every operation; operation parameters
	// override them by (name, in), as OpenAPI says.
	type key struct{ name, in string }
	params := map[key]*param{}
	var order []key
	for _, src := range []struct {
		node any
		ptr  string
	}{{item["parameters"], ptrJoin(itemPtr, "parameters")}, {raw["parameters"], ptrJoin(opPtr, "parameters")}} {
		list, _ := src.node.([]any)
		for i, p := range list {
			pm, pptr, err := resolveRef(b.req, p, ptrJoin(src.ptr, fmt.Sprint(i)))
			if err != nil {
				return nil, err
			}
			name, _ := pm["name"].(string)
			in, _ := pm["in"].(string)
			if in != "path" && in != "query" {
				// Headers and cookies are not checked: the middleware must never
				// look at headers (Authorization).
				continue
			}
			compiled, err := b.param(pm, pptr)
			if err != nil {
				return nil, fmt.Errorf("parameter %q: %w", name, err)
			}
			k := key{name, in}
			if _, seen := params[k]; !seen {
				order = append(order, k)
			}
			params[k] = compiled
		}
	}
	for _, k := range order {
		if k.in == "path" {
			op.pathParams = append(op.pathParams, params[k])
		} else {
			op.queryParams = append(op.queryParams, params[k])
		}
	}
	for _, seg := range segs {
		if name, ok := templateName(seg); ok && !slices.ContainsFunc(op.pathParams, func(p *param) bool { return p.name == name }) {
			return nil, fmt.Errorf("path parameter %q is not declared", name)
		}
	}

	if rb, ok := raw["requestBody"]; ok {
		rbm, rbPtr, err := resolveRef(b.req, rb, ptrJoin(opPtr, "requestBody"))
		if err != nil {
			return nil, err
		}
		media, err := b.content(requestDocURL, rbm, rbPtr)
		if err != nil {
			return nil, fmt.Errorf("requestBody: %w", err)
		}
		required, _ := rbm["required"].(bool)
		op.body = &requestBody{required: required, media: media}
	}

	resps, _ := raw["responses"].(map[string]any)
	if len(resps) == 0 {
		return nil, fmt.Errorf("no responses")
	}
	for code, r := range resps {
		// The response view is a separate document but has the same layout,
		// so pointers computed here are valid in both.
		rm, rPtr, err := resolveRef(b.resp, r, ptrJoin(opPtr, "responses", code))
		if err != nil {
			return nil, err
		}
		media, err := b.content(responseDocURL, rm, rPtr)
		if err != nil {
			return nil, fmt.Errorf("response %s: %w", code, err)
		}
		op.responses[strings.ToUpper(code)] = &response{media: media}
	}
	return op, nil
}

func (b *builder) param(pm map[string]any, ptr string) (*param, error) {
	p := &param{}
	p.name, _ = pm["name"].(string)
	p.required, _ = pm["required"].(bool)
	// OpenAPI: style defaults to "form" for query parameters, and explode
	// defaults to true for style "form".
	p.explode = true
	if e, ok := pm["explode"].(bool); ok {
		p.explode = e
	}
	sch, ok := pm["schema"]
	if !ok {
		return p, nil // content-based parameters: nothing to check here
	}
	p.types = schemaTypes(b.req, sch, 0)
	if slices.Contains(p.types, "array") {
		if sm, ok := derefSchema(b.req, sch, 0); ok {
			p.itemTypes = schemaTypes(b.req, sm["items"], 0)
		}
	}
	var err error
	p.schema, err = b.compile(requestDocURL, ptrJoin(ptr, "schema"))
	return p, err
}

// content compiles the schemas of a requestBody's or response's "content".
func (b *builder) content(docURL string, node map[string]any, ptr string) (map[string]*jsonschema.Schema, error) {
	out := map[string]*jsonschema.Schema{}
	content, _ := node["content"].(map[string]any)
	for mt, m := range content {
		mm, _ := m.(map[string]any)
		var sch *jsonschema.Schema
		if _, ok := mm["schema"]; ok {
			var err error
			sch, err = b.compile(docURL, ptrJoin(ptr, "content", mt, "schema"))
			if err != nil {
				return nil, err
			}
		}
		out[strings.ToLower(mt)] = sch
	}
	return out, nil
}

func (b *builder) compile(docURL, ptr string) (*jsonschema.Schema, error) {
	sch, err := b.c.Compile(docURL + "#" + ptrToFragment(ptr))
	if err != nil {
		return nil, fmt.Errorf("compile schema at %s: %w", ptr, err)
	}
	return sch, nil
}

// Operation finds the spec operation for method and a path relative to the
// API base, e.g. ("GET", "/accounts/0123.../tokens/verify"). Templated
// segments match any non-empty segment, but a literal segment wins over a
// template, so "/user/tokens/verify" is the verify operation and not
// "/user/tokens/{token_id}". As in OpenAPI, the path is matched first and the
// method second: ok is false when no path matches or the best-matching path
// has no operation for method. The path carries no query string and may be
// percent-encoded.
func (s *Spec) Operation(method, path string) (op *Operation, ok bool) {
	pe, _ := s.match(path)
	if pe == nil {
		return nil, false
	}
	op, ok = pe.ops[strings.ToUpper(method)]
	return op, ok
}

// match returns the best path entry for path and the values of its template
// segments.
func (s *Spec) match(path string) (*pathEntry, map[string]string) {
	segs, ok := splitPath(path)
	if !ok {
		return nil, nil
	}
	var best *pathEntry
	for _, pe := range s.paths {
		if !matches(pe.segments, segs) {
			continue
		}
		if best == nil || moreSpecific(pe.segments, best.segments) {
			best = pe
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, pathValues(best.segments, segs)
}

func matches(tmpl, segs []string) bool {
	if len(tmpl) != len(segs) {
		return false
	}
	for i, t := range tmpl {
		if _, isParam := templateName(t); isParam {
			if segs[i] == "" {
				return false // "/user/tokens/" is not token "".
			}
			continue
		}
		if t != segs[i] {
			return false
		}
	}
	return true
}

// moreSpecific reports whether template a beats template b: at the first
// position where one has a literal and the other a template, the literal wins.
func moreSpecific(a, b []string) bool {
	for i := range a {
		_, aParam := templateName(a[i])
		_, bParam := templateName(b[i])
		if aParam != bParam {
			return !aParam
		}
	}
	return false
}

func pathValues(tmpl, segs []string) map[string]string {
	vals := map[string]string{}
	for i, t := range tmpl {
		if name, ok := templateName(t); ok {
			vals[name] = segs[i]
		}
	}
	return vals
}

// splitPath splits a request path into unescaped segments.
func splitPath(path string) ([]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	raw := strings.Split(path[1:], "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		u, err := url.PathUnescape(r)
		if err != nil {
			return nil, false
		}
		segs[i] = u
	}
	return segs, true
}

func splitTemplate(tmpl string) ([]string, error) {
	if !strings.HasPrefix(tmpl, "/") {
		return nil, fmt.Errorf("apispec: path %q does not start with /", tmpl)
	}
	segs := strings.Split(tmpl[1:], "/")
	for _, s := range segs {
		if _, ok := templateName(s); !ok && strings.ContainsAny(s, "{}") {
			// Only whole-segment templates exist in the spec; refuse anything
			// else rather than matching it wrongly.
			return nil, fmt.Errorf("apispec: path %q: partial template segment %q is not supported", tmpl, s)
		}
	}
	return segs, nil
}

func templateName(seg string) (string, bool) {
	if len(seg) > 2 && strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}
