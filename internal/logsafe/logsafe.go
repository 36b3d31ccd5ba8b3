// Package logsafe writes values into log lines so that the runner reads no workflow command in them.
//
// The runner reads a line as a command when, after leading white space, it starts with
// "::name" and holds a second "::" (ActionCommand.TryParseV2), or when it holds "##[name"
// followed by "]" anywhere (the legacy ActionCommand.TryParse), name being one of its commands.
// A value printed in a log line (a token name from an input, a zone, a group name or an error
// message from Cloudflare, a token name another user chose) could otherwise carry
// "##[set-output name=r2-endpoint]https://evil.example" and set the step's outputs, or, through
// a line break, start a line of its own.
//
// The escape is visible and reversible, in Go's backslash style: a line break becomes \n, a
// second ':' in a row becomes \:, a '[' after "##" becomes \[, and '\' itself becomes \\, so
// "::add-mask::x" prints as ":\:add-mask:\:x". Invisible characters (a zero-width space
// between the two '#', say) would defeat the parsers too, but a reader could not see that the
// value was changed, and a value copied out of the log would silently differ.
package logsafe

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s as it may be printed inside a log line: without line breaks or other
// control or format characters (escaped as \n, \r, \t, \xNN, \uNNNN), without "::" and
// without "##[". A value that needs none of that is returned unchanged. The line stays safe as
// long as the fixed text around the value is: text ending in ':' or '#' right before the value,
// or starting with ':' or '[' right after it, could complete a command with it.
func String(s string) string {
	if !needsWork(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && needsEscape(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff && needsEscape(r): // < would do too: U+FFFF is no character needsEscape takes
			fmt.Fprintf(&b, `\u%04x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return defuse(b.String())
}

// Quote is strconv.Quote (what %q prints) with "::" and "##[" broken the same way, for values
// quoted back in error messages: an error is printed as a plain line wherever a front end does
// not wrap it in ::error::.
func Quote(s string) string {
	return defuse(strconv.Quote(s))
}

// needsEscape reports the characters String escapes: control characters (a line break among
// them), format characters (bidirectional overrides, zero-width ones) and the line and
// paragraph separators.
func needsEscape(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

func needsWork(s string) bool {
	if strings.Contains(s, "::") || strings.Contains(s, "##[") || strings.IndexByte(s, '\\') >= 0 || !utf8.ValidString(s) {
		return true
	}
	return strings.IndexFunc(s, needsEscape) >= 0
}

// defuse puts a '\' before every ':' that follows a ':' and every '[' that follows "##", looking
// at what it has already written, so the result holds neither "::" nor "##[". s must hold no
// unescaped '\' of its own, or the result could not be read back.
func defuse(s string) string {
	if !strings.Contains(s, "::") && !strings.Contains(s, "##[") {
		return s
	}
	var b strings.Builder
	var last, before byte // the last two bytes written
	put := func(c byte) {
		b.WriteByte(c)
		before, last = last, c
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c == ':' && last == ':') || (c == '[' && last == '#' && before == '#') {
			put('\\')
		}
		put(c)
	}
	return b.String()
}

// JSON returns JSON text with every "::" written ":\u003a" and every "##[" written "##\u005b".
// Both can only stand inside a string of valid JSON, where the escape means the same character,
// so the result decodes to the same value; printed line by line (indented JSON), no line holds
// a command. Use it for JSON a front end prints that holds values from inputs or Cloudflare.
func JSON(b []byte) []byte {
	s := strings.ReplaceAll(string(b), "::", `:\u003a`)
	return []byte(strings.ReplaceAll(s, "##[", `##\u005b`))
}

// Clip shortens a value quoted back in a message, so that one bad value cannot flood the log: a
// value of at most n characters is returned unchanged, a longer one is cut to n characters, the
// last three of them "...". It never cuts a character in two; each byte that is not valid UTF-8
// counts as one character and is kept as it is. n below 4 keeps the first n characters without
// the dots.
func Clip(s string, n int) string {
	if n < 0 { // <= would do too: it sets a 0 to 0
		n = 0
	}
	keep := n - len("...")
	if keep < 1 {
		keep = n
	}
	var cut int // the byte offset after keep characters, set when count reaches keep, before it reaches n
	count := 0
	for i := 0; i < len(s); {
		if count == keep {
			cut = i
		}
		if count == n {
			if keep == n {
				return s[:i]
			}
			return s[:cut] + "..."
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return s
}

// FileCommandDelimiter is the heredoc delimiter go-githubactions writes file commands
// ($GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_STATE) with: a value holding it, or a line break, could
// end the value early and inject variables.
const FileCommandDelimiter = "_GitHubActionsFileCommandDelimeter_"
