package apispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ValidateRequest checks a request's query parameters and body against the
// operation.
//
// Each present query parameter the spec declares is converted to the JSON
// type its schema names (number, integer, boolean; comma-separated or
// repeated values for arrays) and validated against that schema; parameters
// the spec does not declare are allowed, as Cloudflare ignores them. A
// declared but missing required parameter is an error.
//
// When the operation has a requestBody with a JSON schema, body must be
// present if the spec marks it required and must validate; readOnly
// properties must not be sent. A requestBody without a schema (DELETE token)
// accepts an absent body or any JSON. A body sent to an operation that
// declares none is an error. All problems are reported together.
func (op *Operation) ValidateRequest(query url.Values, body []byte) error {
	var errs []error
	for _, p := range op.queryParams {
		vals, present := query[p.name]
		if !present {
			if p.required {
				errs = append(errs, fmt.Errorf("query parameter %q is required", p.name))
			}
			continue
		}
		if err := p.validate(vals); err != nil {
			errs = append(errs, fmt.Errorf("query parameter %q: %w", p.name, err))
		}
	}
	if err := op.validateRequestBody(body); err != nil {
		errs = append(errs, err)
	}
	return op.wrap("request", errors.Join(errs...))
}

func (op *Operation) validateRequestBody(body []byte) error {
	empty := len(bytes.TrimSpace(body)) == 0
	if op.body == nil {
		if !empty {
			return errors.New("request body sent, but the operation declares none")
		}
		return nil
	}
	// The spec's request bodies are JSON only, and ValidateRequest has no
	// content type to choose by; the middleware checks the header.
	sch, hasJSON := op.body.media["application/json"]
	if empty {
		// A required body whose media type has no schema is treated as
		// optional: see the package doc (DELETE token).
		if op.body.required && hasJSON && sch != nil {
			return errors.New("request body is required")
		}
		return nil
	}
	inst, err := parseJSON(body)
	if err != nil {
		return fmt.Errorf("request body is not valid JSON: %w", err)
	}
	if sch == nil {
		return nil
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// ValidatePath checks the values of the operation's path parameters in path
// (relative to the API base, as for [Spec.Operation]) against their schemas,
// e.g. that an account_id is 32 characters long. It fails if path does not
// match the operation's template.
func (op *Operation) ValidatePath(path string) error {
	segs, ok := splitPath(path)
	if !ok || !matches(op.segments, segs) {
		return op.wrap("request", fmt.Errorf("path %q does not match %s", path, op.PathTemplate))
	}
	vals := pathValues(op.segments, segs)
	var errs []error
	for _, p := range op.pathParams {
		v, ok := vals[p.name]
		if !ok {
			continue // declared but not in the template: Load rejects the reverse only
		}
		if err := p.validate([]string{v}); err != nil {
			errs = append(errs, fmt.Errorf("path parameter %q: %w", p.name, err))
		}
	}
	return op.wrap("request", errors.Join(errs...))
}

// ValidateResponse checks a response against the operation. The response
// description is chosen by exact status ("200"), then its range ("4XX"),
// then "default"; a status the operation does not describe is an error.
// When the description has content, contentType must be one of its media
// types and a JSON body must validate against that media type's schema.
func (op *Operation) ValidateResponse(status int, contentType string, body []byte) error {
	return op.wrap("response", op.validateResponse(status, contentType, body))
}

func (op *Operation) validateResponse(status int, contentType string, body []byte) error {
	key := strconv.Itoa(status)
	resp := op.responses[key]
	if resp == nil {
		key = fmt.Sprintf("%dXX", status/100)
		resp = op.responses[key]
	}
	if resp == nil {
		key = "DEFAULT"
		resp = op.responses[key]
	}
	if resp == nil {
		return fmt.Errorf("status %d is not documented (documented: %s)", status, strings.Join(op.responseKeys(), ", "))
	}
	if len(resp.media) == 0 {
		return nil // the spec describes no body for this status
	}
	mt, sch, err := pickMedia(resp.media, contentType)
	if err != nil {
		return fmt.Errorf("status %d: %w", status, err)
	}
	if !isJSON(mt) {
		return nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("status %d: empty body, want %s", status, mt)
	}
	inst, err := parseJSON(body)
	if err != nil {
		return fmt.Errorf("status %d: body is not valid JSON: %w", status, err)
	}
	if sch == nil {
		return nil
	}
	if err := sch.Validate(inst); err != nil {
		if key == "DEFAULT" {
			key = "default"
		}
		return fmt.Errorf("status %d (spec response %q): %w", status, key, err)
	}
	return nil
}

func (op *Operation) responseKeys() []string {
	keys := make([]string, 0, len(op.responses))
	for k := range op.responses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// wrap prefixes err with the operation, so a failure in a test log says
// which operation was being checked.
func (op *Operation) wrap(kind string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s (%s) %s: %w", op.Method, op.PathTemplate, op.OperationID, kind, err)
}

// pickMedia finds the documented media type for a Content-Type header value:
// exact type first, then "type/*", then "*/*".
func pickMedia(media map[string]*jsonschema.Schema, contentType string) (string, *jsonschema.Schema, error) {
	want := make([]string, 0, len(media))
	for k := range media {
		want = append(want, k)
	}
	sort.Strings(want)
	if contentType == "" {
		return "", nil, fmt.Errorf("no Content-Type, want %s", strings.Join(want, " or "))
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", nil, fmt.Errorf("bad content type %q: %w", contentType, err)
	}
	mt = strings.ToLower(mt)
	major, _, _ := strings.Cut(mt, "/")
	for _, k := range []string{mt, major + "/*", "*/*"} {
		if sch, ok := media[k]; ok {
			return mt, sch, nil
		}
	}
	return "", nil, fmt.Errorf("content type %q is not documented, want %s", mt, strings.Join(want, " or "))
}

func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// parseJSON decodes body the way the schema library expects (numbers as
// json.Number, so integer checks are exact), rejecting trailing data.
func parseJSON(body []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(body))
}

// validate converts a parameter's raw string values and validates them.
func (p *param) validate(vals []string) error {
	if p.schema == nil {
		return nil
	}
	if slices.Contains(p.types, "array") {
		var items []any
		for _, v := range vals {
			parts := []string{v}
			if !p.explode {
				parts = strings.Split(v, ",")
			}
			for _, part := range parts {
				items = append(items, convertScalar(part, p.itemTypes))
			}
		}
		return p.schema.Validate(items)
	}
	var errs []error
	for _, v := range vals {
		if err := p.schema.Validate(convertScalar(v, p.types)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// convertScalar turns a query/path string into the JSON value the schema
// expects when the string has that shape; otherwise it stays a string, and
// the schema's type check reports the mismatch.
func convertScalar(s string, types []string) any {
	if slices.Contains(types, "integer") || slices.Contains(types, "number") {
		if v, err := parseJSON([]byte(s)); err == nil {
			if n, ok := v.(json.Number); ok {
				return n
			}
		}
	}
	if slices.Contains(types, "boolean") {
		switch s {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return s
}
