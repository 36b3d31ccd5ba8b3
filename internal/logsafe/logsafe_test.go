package logsafe

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cfmint/cfmint/internal/runner"
)

// The values of issue 9 and their like: a name built from a commit message, a Cloudflare
// answer, a token name another user chose.
var hostile = []string{
	"##[set-output name=r2-endpoint]https://evil.example",
	"::set-output name=r2-endpoint::https://evil.example",
	"  ::add-mask::x",
	"deploy\n::add-mask::x",
	"deploy\r##[save-state name=cfmint-token-id]0123",
	"deploy\r\n::stop-commands::t0ken",
	"a:::b",
	"####[group]x",
	"#\\#[debug]x",
	":\\:debug::x",
	"\\",
	"\x1b[31mred\x1b[0m",
	"bidi \u202e override",
	"\xff\xfe not utf-8",
	"line\u2028separator",
	"",
}

func TestString(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"cfmint:octo/site:dns-edit:1.1-abc123:deploy:cf", "cfmint:octo/site:dns-edit:1.1-abc123:deploy:cf"},
		{"Access: Organizations, Identity Providers, and Groups Write", "Access: Organizations, Identity Providers, and Groups Write"},
		{"https://api.cloudflare.com/client/v4", "https://api.cloudflare.com/client/v4"},
		{"é ünïcode ✓", "é ünïcode ✓"},
		{"##[set-output name=r]x", `##\[set-output name=r]x`},
		{"::add-mask::x", `:\:add-mask:\:x`},
		{":::", `:\:\:`},
		{"::::", `:\:\:\:`},
		{"###[", `###\[`},
		{"# #[", "# #["},
		{`a\b`, `a\\b`},
		{`\`, `\\`},
		{`\n`, `\\n`},
		{"a\nb\rc\td", `a\nb\rc\td`},
		{"\x00\x1b\x7f", `\x00\x1b\x7f`},
		{"\xff", `\xff`},
		{"\u0085\u200b\u2028\u202e", `\u0085\u200b\u2028\u202e`},
		{"\u0080", `\u0080`}, // the first character past ASCII: \x80 would read back as a byte
		{"\U000e0001", `\U000e0001`},
	}
	for _, tc := range cases {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"DNS Write", `"DNS Write"`},
		{"a\nb", `"a\nb"`},
		{"##[set-output name=r]x", `"##\[set-output name=r]x"`},
		{"::add-mask::x", `":\:add-mask:\:x"`},
		{`\:`, `"\\:"`},
	}
	for _, tc := range cases {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// checkSafe asserts that v, printed alone, after fixed text or indented, is read as no command.
func checkSafe(t *testing.T, what, in, v string) {
	t.Helper()
	if strings.ContainsAny(v, "\r\n") || strings.Contains(v, "::") || strings.Contains(v, "##[") {
		t.Errorf("%s(%q) = %q holds a line break, :: or ##[", what, in, v)
	}
	for _, line := range []string{v, "   " + v, "Minted token " + v + " (id 0123).", "\t" + v + " "} {
		if name, ok := runner.FindCommand(line); ok {
			t.Errorf("%s(%q): the runner reads ::%s:: in %q", what, in, name, line)
		}
	}
}

func TestHostileValues(t *testing.T) {
	t.Parallel()
	for _, s := range hostile {
		checkSafe(t, "String", s, String(s))
		checkSafe(t, "Quote", s, Quote(s))
		if got := unescape(String(s)); got != s {
			t.Errorf("String(%q) = %q does not read back: %q", s, String(s), got)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := String(s)
		checkSafe(t, "String", s, v)
		if !utf8.ValidString(v) {
			t.Errorf("String(%q) = %q is not UTF-8", s, v)
		}
		if got := unescape(v); got != s {
			t.Errorf("String(%q) = %q reads back as %q", s, v, got)
		}
		ordinary := utf8.ValidString(s) && !strings.ContainsAny(s, "\\") && !strings.Contains(s, "::") && !strings.Contains(s, "##[") &&
			strings.IndexFunc(s, func(r rune) bool { return needsEscape(r) }) < 0
		if ordinary && v != s {
			t.Errorf("String(%q) = %q changed an ordinary value", s, v)
		}

		q := Quote(s)
		checkSafe(t, "Quote", s, q)
		if got, err := strconv.Unquote(undefuse(q)); err != nil || got != s {
			t.Errorf("Quote(%q) = %s reads back as %q (%v)", s, q, got, err)
		}
	})
}

// unescape undoes String: it proves the escape loses nothing.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			v, _ := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if c == 'x' {
				b.WriteByte(byte(v))
			} else {
				b.WriteRune(rune(v))
			}
			i += n
		default: // \\, \: and \[
			b.WriteByte(c)
		}
	}
	return b.String()
}

// undefuse removes the \ that Quote puts before a second : or a [ after ##, leaving Go's
// own escapes (\\ among them) for strconv.Unquote.
func undefuse(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			if q[i+1] != ':' && q[i+1] != '[' {
				b.WriteByte('\\')
			}
			b.WriteByte(q[i+1])
			i++
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// TestJSON: the escaped JSON decodes to the same value, and no line of it is a command.
func TestJSON(t *testing.T) {
	t.Parallel()
	for _, v := range hostile {
		if !utf8.ValidString(v) {
			continue // encoding/json would change it anyway
		}
		in := map[string]any{"name": v, "list": []string{v, "x" + v}}
		b, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		out := JSON(b)
		var back map[string]any
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("JSON(%q) is not JSON: %v\n%s", v, err, out)
		}
		if back["name"] != v || back["list"].([]any)[1] != "x"+v {
			t.Errorf("JSON(%q) decodes to %q", v, back)
		}
		if name, ok := runner.FindCommand(string(out)); ok {
			t.Errorf("JSON(%q) holds a %s command:\n%s", v, name, out)
		}
	}
}

// TestJSONAlone: JSON's own escape, apart from the layer before it. In indented JSON every line
// starts with white space and a quote or a bracket, so a "::" left in a value could never start
// a line and TestJSON's runner check alone would not notice it gone; here the output holds no
// "::" and no "##[" anywhere, on one line or many.
func TestJSONAlone(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`"::add-mask::x"`,
		`{"a":"::set-output name=x::y","b":"##[debug]z"}`,
		"[\"a:::b\",\n\"####[group]x\"]",
	} {
		out := string(JSON([]byte(in)))
		if strings.Contains(out, "::") || strings.Contains(out, "##[") {
			t.Errorf("JSON(%s) = %s still holds :: or ##[", in, out)
		}
		var a, b any
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &b); err != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("JSON(%s) = %s decodes to %v (%v), not %v", in, out, b, err, a)
		}
	}
}
