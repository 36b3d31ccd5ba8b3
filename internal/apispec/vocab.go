package apispec

import (
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/message"
)

// Keywords that prepareView adds to schema objects: each lists properties
// that must be absent on that side of the exchange. A custom keyword instead
// of replacing the property schema with `false` gives an error that says why
// ("readOnly property ... must not be sent in a request") rather than the
// bare "false schema".
const (
	readOnlyKeyword  = "x-apispec-readonly-properties"
	writeOnlyKeyword = "x-apispec-writeonly-properties"
)

var forbiddenKeyword = map[view]string{viewRequest: readOnlyKeyword, viewResponse: writeOnlyKeyword}

const forbiddenVocabURL = "https://apispec.invalid/vocab/access-mode"

// forbiddenVocab is the vocabulary for the two keywords above.
func forbiddenVocab() *jsonschema.Vocabulary {
	meta, err := jsonschema.UnmarshalJSON(strings.NewReader(`{
		"properties": {
			"` + readOnlyKeyword + `":  {"type": "array", "items": {"type": "string"}},
			"` + writeOnlyKeyword + `": {"type": "array", "items": {"type": "string"}}
		}
	}`))
	if err != nil {
		panic(err) // constant input
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(forbiddenVocabURL, meta); err != nil {
		panic(err)
	}
	return &jsonschema.Vocabulary{
		URL:     forbiddenVocabURL,
		Schema:  c.MustCompile(forbiddenVocabURL),
		Compile: compileForbidden,
	}
}

func compileForbidden(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
	for _, kw := range []string{readOnlyKeyword, writeOnlyKeyword} {
		list, ok := obj[kw].([]any)
		if !ok {
			continue
		}
		f := &forbiddenProps{keyword: kw}
		for _, n := range list {
			f.names = append(f.names, n.(string)) // the vocabulary schema checked the type
		}
		return f, nil
	}
	return nil, nil
}

// forbiddenProps is the compiled form of one of the keywords.
type forbiddenProps struct {
	keyword string
	names   []string
}

func (f *forbiddenProps) Validate(ctx *jsonschema.ValidatorContext, v any) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, n := range f.names {
		if _, present := obj[n]; present {
			ctx.AddError(&forbiddenPropError{keyword: f.keyword, name: n})
		}
	}
}

// forbiddenPropError is the jsonschema.ErrorKind for a property sent on the
// wrong side of the exchange.
type forbiddenPropError struct {
	keyword string
	name    string
}

func (e *forbiddenPropError) KeywordPath() []string { return []string{e.keyword} }

func (e *forbiddenPropError) LocalizedString(p *message.Printer) string {
	if e.keyword == readOnlyKeyword {
		return p.Sprintf("%s", fmt.Sprintf("property %q is readOnly and must not be sent in a request", e.name))
	}
	return p.Sprintf("%s", fmt.Sprintf("property %q is writeOnly and must not be sent in a response", e.name))
}
