package apispec

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// This file holds the helpers that walk the parsed OpenAPI document: JSON
// pointers, local $ref resolution, and the view preparation described in the
// package doc.

// maxRefHops bounds $ref chains so a cyclic reference cannot hang Load.
const maxRefHops = 32

// ptrJoin appends tokens to a JSON pointer, escaping them (RFC 6901).
func ptrJoin(base string, toks ...string) string {
	var sb strings.Builder
	sb.WriteString(base)
	for _, t := range toks {
		sb.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		t = strings.ReplaceAll(t, "/", "~1")
		sb.WriteString(t)
	}
	return sb.String()
}

// ptrToFragment percent-encodes each pointer token, because the compiler
// percent-decodes URL fragments and path keys contain "{" and "}".
func ptrToFragment(ptr string) string {
	toks := strings.Split(ptr, "/")
	for i, t := range toks {
		toks[i] = url.PathEscape(t)
	}
	return strings.Join(toks, "/")
}

// lookup finds the value at a JSON pointer.
func lookup(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	v := doc
	for _, t := range strings.Split(ptr[1:], "/") {
		t = strings.ReplaceAll(t, "~1", "/")
		t = strings.ReplaceAll(t, "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			// No arrays are ever addressed by the $refs this package follows.
			return nil, false
		}
		if v, ok = m[t]; !ok {
			return nil, false
		}
	}
	return v, true
}

// resolveRef follows local "$ref"s from node (found at ptr) to the object
// they finally point at, returning it and its pointer. Used for OpenAPI
// objects (parameters, request bodies, responses), not for schemas, whose
// $refs the schema compiler resolves itself.
func resolveRef(doc map[string]any, node any, ptr string) (map[string]any, string, error) {
	for range maxRefHops {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("%s is not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr, nil
		}
		target, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return nil, "", fmt.Errorf("%s: only local $refs are supported, got %q", ptr, ref)
		}
		unescaped, err := url.PathUnescape(target)
		if err != nil {
			return nil, "", fmt.Errorf("%s: bad $ref %q: %w", ptr, ref, err)
		}
		ptr = unescaped
		if node, ok = lookup(doc, ptr); !ok {
			return nil, "", fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	return nil, "", fmt.Errorf("%s: $ref chain too long", ptr)
}

// derefSchema follows a schema's local $ref chain (ignoring $ref siblings).
func derefSchema(doc map[string]any, sch any, depth int) (map[string]any, bool) {
	for ; depth < maxRefHops; depth++ {
		m, ok := sch.(map[string]any)
		if !ok {
			return nil, false
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, true
		}
		target, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return nil, false
		}
		if sch, ok = lookup(doc, target); !ok {
			return nil, false
		}
	}
	return nil, false
}

// schemaTypes returns the JSON types a schema names through "type", "$ref"
// and "allOf". It only serves to convert query/path strings into the JSON
// value the schema expects; the schema itself does the validating.
func schemaTypes(doc map[string]any, sch any, depth int) []string {
	if depth > maxRefHops {
		return nil
	}
	m, ok := sch.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	switch t := m["type"].(type) {
	case string:
		out = append(out, t)
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	if ref, ok := m["$ref"].(string); ok {
		if target, ok := strings.CutPrefix(ref, "#"); ok {
			if next, ok := lookup(doc, target); ok {
				out = append(out, schemaTypes(doc, next, depth+1)...)
			}
		}
	}
	if all, ok := m["allOf"].([]any); ok {
		for _, sub := range all {
			out = append(out, schemaTypes(doc, sub, depth+1)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// view says which side of the exchange a copy of the document validates.
type view int

const (
	viewRequest view = iota
	viewResponse
)

// prepareView rewrites one parsed copy of the document in place so that
// plain JSON Schema 2020-12 validation gives OpenAPI's meaning (see the
// package doc for why each rewrite exists).
// amendResponses widens the response view where Cloudflare answers more than
// the spec admits. Each amendment fails loudly if the spec changed under it.
//   - iam_token_status: the spec enumerates active, disabled and expired, but
//     Cloudflare also lists a token it revoked itself (for instance one found
//     in a public repository) with status "revoked (exposed)" (since
//     2026-04; "revoked" before), as the project's Cloudflare reference
//     records.
func amendResponses(doc map[string]any) error {
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	status, _ := schemas["iam_token_status"].(map[string]any)
	enum, ok := status["enum"].([]any)
	if !ok {
		return fmt.Errorf("apispec: amend: components/schemas/iam_token_status has no enum")
	}
	for _, extra := range []string{"revoked", "revoked (exposed)"} {
		if !slices.Contains(enum, any(extra)) {
			enum = append(enum, extra)
		}
	}
	status["enum"] = enum
	return nil
}

func prepareView(doc map[string]any, v view) {
	forEachSchema(doc, func(s map[string]any) {
		applyNullable(s)
		applyAccessMode(doc, s, v)
	})
}

// forEachSchema calls fn for every schema object in the OpenAPI document:
// the roots (components/schemas/*, and every "schema" of a parameter, media
// type or header) and all their subschemas.
func forEachSchema(doc map[string]any, fn func(map[string]any)) {
	if comps, ok := doc["components"].(map[string]any); ok {
		if schemas, ok := comps["schemas"].(map[string]any); ok {
			for _, s := range schemas {
				walkSchema(s, fn)
			}
		}
	}
	var walkOpenAPI func(node any, key string)
	walkOpenAPI = func(node any, key string) {
		switch n := node.(type) {
		case map[string]any:
			for k, v := range n {
				switch {
				case k == "schema":
					walkSchema(v, fn)
				case k == "example" || k == "examples":
					// Example values are data, not schemas.
				case key == "components" && k == "schemas":
					// Already visited above.
				default:
					walkOpenAPI(v, k)
				}
			}
		case []any:
			for _, v := range n {
				walkOpenAPI(v, key)
			}
		}
	}
	walkOpenAPI(doc, "")
}

// Subschema-holding keywords of JSON Schema 2020-12, by shape.
var (
	schemaKeywords      = []string{"additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contentSchema"}
	schemaListKeywords  = []string{"allOf", "anyOf", "oneOf", "prefixItems"}
	schemaMapKeywords   = []string{"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"}
	propertyFlagForView = map[view]string{viewRequest: "readOnly", viewResponse: "writeOnly"}
)

func walkSchema(node any, fn func(map[string]any)) {
	s, ok := node.(map[string]any)
	if !ok {
		return // boolean schema
	}
	fn(s)
	for _, k := range schemaKeywords {
		walkSchema(s[k], fn)
	}
	for _, k := range schemaListKeywords {
		if list, ok := s[k].([]any); ok {
			for _, sub := range list {
				walkSchema(sub, fn)
			}
		}
	}
	for _, k := range schemaMapKeywords {
		if m, ok := s[k].(map[string]any); ok {
			for _, sub := range m {
				walkSchema(sub, fn)
			}
		}
	}
}

// applyNullable turns OpenAPI 3.0's "nullable: true" into a 2020-12 type
// list. The zones_* schemas were copied verbatim from a 3.0 document, and
// Cloudflare does send null for fields like original_registrar; JSON Schema
// would otherwise ignore the unknown keyword and reject those nulls.
func applyNullable(s map[string]any) {
	if n, _ := s["nullable"].(bool); !n {
		return
	}
	switch t := s["type"].(type) {
	case string:
		if t != "null" {
			s["type"] = []any{t, "null"}
		}
	case []any:
		if !slices.Contains(t, any("null")) {
			s["type"] = append(t, "null")
		}
	}
}

// applyAccessMode implements OpenAPI's readOnly/writeOnly property rules for
// the given view: in requests a readOnly property is not required and must
// not be sent; in responses the same holds for writeOnly properties.
// Properties are only looked up in the schema object that lists them under
// "required"/"properties"; that is the only shape the spec uses.
func applyAccessMode(doc map[string]any, s map[string]any, v view) {
	props, ok := s["properties"].(map[string]any)
	if !ok {
		return
	}
	flag := propertyFlagForView[v]
	var forbidden []any
	for name, p := range props {
		if hasFlag(doc, p, flag, 0) {
			forbidden = append(forbidden, name)
		}
	}
	if len(forbidden) == 0 {
		return
	}
	slices.SortFunc(forbidden, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	if req, ok := s["required"].([]any); ok {
		s["required"] = slices.DeleteFunc(slices.Clone(req), func(r any) bool {
			return slices.Contains(forbidden, r)
		})
	}
	s[forbiddenKeyword[v]] = forbidden
}

// hasFlag reports whether a property schema carries flag (readOnly or
// writeOnly) directly, through its $ref chain, or in an allOf member.
func hasFlag(doc map[string]any, sch any, flag string, depth int) bool {
	if depth > maxRefHops {
		return false
	}
	m, ok := sch.(map[string]any)
	if !ok {
		return false
	}
	if b, _ := m[flag].(bool); b {
		return true
	}
	if ref, ok := m["$ref"].(string); ok {
		if target, ok := strings.CutPrefix(ref, "#"); ok {
			if next, ok := lookup(doc, target); ok && hasFlag(doc, next, flag, depth+1) {
				return true
			}
		}
	}
	if all, ok := m["allOf"].([]any); ok {
		for _, sub := range all {
			if hasFlag(doc, sub, flag, depth+1) {
				return true
			}
		}
	}
	return false
}
