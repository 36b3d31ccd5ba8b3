package runner

import (
	"reflect"
	"testing"
)

func registeredForTest(name string) bool {
	_, ok := commandHandlers[name]
	return ok || name == "stop-commands"
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	cases := []struct {
		line string
		ok   bool
		want workflowCommand
	}{
		{line: "::add-mask::s3cret", ok: true, want: workflowCommand{name: "add-mask", props: map[string]string{}, data: "s3cret"}},
		{line: "   ::debug::indented", ok: true, want: workflowCommand{name: "debug", props: map[string]string{}, data: "indented"}},
		{line: "::add-mask::a%0Ab%0Dc%25d", ok: true, want: workflowCommand{name: "add-mask", props: map[string]string{}, data: "a\nb\rc%d"}},
		// %25 is undone last, so an escaped "%0A" stays literal.
		{line: "::add-mask::x%250Ay", ok: true, want: workflowCommand{name: "add-mask", props: map[string]string{}, data: "x%0Ay"}},
		{line: "::add-mask::a::b", ok: true, want: workflowCommand{name: "add-mask", props: map[string]string{}, data: "a::b"}},
		{line: "::add-mask::", ok: true, want: workflowCommand{name: "add-mask", props: map[string]string{}, data: ""}},
		{
			line: "::error file=app.go,line=10,title=Bad%2C%3A thing,empty=,=novalue::failed%0Ahere",
			ok:   true,
			want: workflowCommand{name: "error", props: map[string]string{"file": "app.go", "line": "10", "title": "Bad,: thing"}, data: "failed\nhere"},
		},
		{line: "::ERROR::upper", ok: false}, // the test registry is lower case; case folding happens in phaseRun.registered
		{line: "::unknown::x", ok: false},
		{line: "text ::add-mask::x", ok: false},
		{line: "::add-mask x", ok: false},
		// Legacy form, found anywhere in the line.
		{line: "##[add-mask]old%3Bstyle%5D", ok: true, want: workflowCommand{name: "add-mask", props: map[string]string{}, data: "old;style]"}},
		{line: "prefix ##[warning file=a.go;line=3]careful", ok: true, want: workflowCommand{name: "warning", props: map[string]string{"file": "a.go", "line": "3"}, data: "careful"}},
		{line: "##[nosuch]x", ok: false},
		{line: "##[add-mask no bracket", ok: false},
	}
	for _, tc := range cases {
		got, ok := parseCommandV2(tc.line, registeredForTest)
		if !ok {
			got, ok = parseCommandLegacy(tc.line, registeredForTest)
		}
		if ok != tc.ok {
			t.Errorf("parse(%q) ok = %v, want %v", tc.line, ok, tc.ok)
			continue
		}
		if ok && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parse(%q) = %#v, want %#v", tc.line, got, tc.want)
		}
	}
}

func TestMaskSecrets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		line    string
		secrets []string
		want    string
	}{
		{line: "no secrets here", secrets: nil, want: "no secrets here"},
		{line: "token abc123 end", secrets: []string{"abc123"}, want: "token *** end"},
		{line: "abc123abc123", secrets: []string{"abc123"}, want: "***"},      // adjacent matches merge
		{line: "abc123 abc123", secrets: []string{"abc123"}, want: "*** ***"}, // separate ones do not
		{line: "xabcdx", secrets: []string{"abc", "bcd"}, want: "x***x"},      // overlapping merge
		{line: "aaaa", secrets: []string{"aa"}, want: "***"},                  // overlapping occurrences of one secret
		{line: "long-secret short", secrets: []string{"secret", "long-secret"}, want: "*** short"},
		{line: "empty mask ignored", secrets: []string{""}, want: "empty mask ignored"},
		{line: "a%b", secrets: []string{"%"}, want: "a***b"},
	}
	for _, tc := range cases {
		if got := maskSecrets(tc.line, tc.secrets); got != tc.want {
			t.Errorf("maskSecrets(%q, %q) = %q, want %q", tc.line, tc.secrets, got, tc.want)
		}
	}
}
