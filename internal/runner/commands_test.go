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

func TestFindCommand(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text string
		want string // "" when the runner reads no command
	}{
		{text: "plain text", want: ""},
		{text: "", want: ""},
		{text: "::add-mask::x", want: "add-mask"},
		{text: "  \t::set-output name=r2-endpoint::https://evil.example", want: "set-output"},
		{text: "::WARNING::case folds", want: "warning"},
		{text: "::stop-commands::tok", want: "stop-commands"},
		{text: "Minted ::add-mask::x", want: ""},                                     // the :: form only starts a line
		{text: "a::b::c", want: ""},                                                  // nor is a registered name
		{text: "::nosuch::x", want: ""},                                              // unregistered names are text
		{text: "::add-mask x", want: ""},                                             // no closing ::
		{text: "name ##[set-output name=r]https://evil.example", want: "set-output"}, // legacy anywhere
		{text: "##[SAVE-STATE name=k]v", want: "save-state"},
		{text: "##[group]title", want: "group"},
		{text: "##[nosuch]x", want: ""},
		{text: "##[add-mask no bracket", want: ""},
		// Only the first ##[ counts, as in ActionCommand.TryParse.
		{text: "##[nosuch] then ##[add-mask]x", want: ""},
		{text: "##\\[add-mask]x", want: ""},
		{text: "#\u200b#[add-mask]x", want: ""},
		{text: ":\\:add-mask::x", want: ""},
		// A value with a line break prints two lines; the second is read on its own.
		{text: "name: a\n::add-mask::x", want: "add-mask"},
		{text: "name: a\r::debug::x", want: "debug"},
		{text: "name: a\r\n##[error]x", want: "error"},
	}
	for _, tc := range cases {
		got, ok := FindCommand(tc.text)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("FindCommand(%q) = %q, %v; want %q", tc.text, got, ok, tc.want)
		}
	}
}

// TestFindCommandAgreesWithPhase checks FindCommand against what a phase does with the same
// line: a command takes effect (an output, a mask, an annotation, a paused parser), text is
// logged as it is.
func TestFindCommandAgreesWithPhase(t *testing.T) {
	t.Parallel()
	lines := []string{
		"plain", "Minted ::add-mask::x", "::add-mask::s3cret", "::set-output name=a::b",
		"x ##[set-output name=a]b", "##[save-state name=k]v", "::warning::w", "x ##[error]e",
		"::stop-commands::resume-token-1", "::nosuch::x", "##[nosuch]x", "::debug x",
	}
	for _, line := range lines {
		j := NewJob(JobOptions{})
		r := &phaseRun{job: j, phase: &Phase{Outputs: map[string]string{}, State: map[string]string{}}}
		r.processLine(line)
		tookEffect := len(r.phase.Outputs) > 0 || len(r.phase.State) > 0 || len(r.phase.Masks) > 0 ||
			len(r.phase.Annotations) > 0 || r.stopped || r.phase.Errors != nil
		loggedAsText := len(r.lines) == 1 && r.lines[0] == line
		_, found := FindCommand(line)
		if found != tookEffect || found == loggedAsText {
			t.Errorf("%q: FindCommand found %v; the phase took effect %v, logged it as text %v", line, found, tookEffect, loggedAsText)
		}
	}
}
