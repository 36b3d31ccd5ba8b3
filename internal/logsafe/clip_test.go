package logsafe

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sethvargo/go-githubactions"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 10, ""},
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ..."},
		{strings.Repeat("x", 100), 80, strings.Repeat("x", 77) + "..."},
		// Multibyte characters count as one each and are never cut in two.
		{"ééééé", 5, "ééééé"},
		{"éééééé", 5, "éé..."},
		{"日本語のテキストです", 8, "日本語のテ..."},
		{"a😀b😀c😀d", 6, "a😀b..."},
		{"😀😀😀😀😀", 4, "😀..."},
		// A byte that is not UTF-8 counts as one character and is kept as it is.
		{"\xff\xfe\xfd\xfc\xfb", 4, "\xff..."},
		{"ab\xffcd", 5, "ab\xffcd"},
		// Below four there is no room for the dots.
		{"abcdef", 3, "abc"},
		{"é日😀x", 3, "é日😀"},
		{"abc", 0, ""},
		{"abc", -1, ""},
	} {
		if got := Clip(tc.s, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func FuzzClip(f *testing.F) {
	for _, s := range append(hostile, "ééééééé", "日本語のテキストです", "a😀b😀c😀d") {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 200
		if n < 0 {
			n = -n
		}
		got := Clip(s, n)
		chars := utf8.RuneCountInString(got)
		if utf8.RuneCountInString(s) <= n {
			if got != s {
				t.Fatalf("Clip(%q, %d) = %q; a value that fits must come back unchanged", s, n, got)
			}
			return
		}
		if chars != n {
			t.Fatalf("Clip(%q, %d) = %q has %d characters, want %d", s, n, got, chars, n)
		}
		head := got
		if n >= 4 {
			var ok bool
			if head, ok = strings.CutSuffix(got, "..."); !ok {
				t.Fatalf("Clip(%q, %d) = %q does not end in ...", s, n, got)
			}
		}
		if !strings.HasPrefix(s, head) {
			t.Fatalf("Clip(%q, %d) = %q is not the value's head", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Clip(%q, %d) = %q cut a character in two", s, n, got)
		}
	})
}

// The delimiter is the one go-githubactions really writes.
func TestFileCommandDelimiter(t *testing.T) {
	out := filepath.Join(t.TempDir(), "output")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GITHUB_OUTPUT": out}
	githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }), githubactions.WithWriter(io.Discard)).SetOutput("k", "v")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "k<<" + FileCommandDelimiter + "\nv\n" + FileCommandDelimiter + "\n"; string(b) != want {
		t.Errorf("go-githubactions wrote %q, want %q", b, want)
	}
}
