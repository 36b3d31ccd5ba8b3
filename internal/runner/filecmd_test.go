package runner

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseFileCommand(t *testing.T) {
	t.Parallel()
	type p = FileCommandPair
	cases := []struct {
		name     string
		in       string
		want     []p
		wantErr  string // substring of the runner's reason
		wantLine int
	}{
		{name: "empty file", in: "", want: nil},
		{name: "simple", in: "a=1\nb=two words\n", want: []p{{"a", "1"}, {"b", "two words"}}},
		{name: "no final newline", in: "a=1", want: []p{{"a", "1"}}},
		{name: "empty lines skipped", in: "\n\na=1\n\n", want: []p{{"a", "1"}}},
		{name: "empty value", in: "a=\n", want: []p{{"a", ""}}},
		{name: "value keeps = and <<", in: "a=b=c<<d\n", want: []p{{"a", "b=c<<d"}}},
		{name: "later value wins in order", in: "a=1\na=2\n", want: []p{{"a", "1"}, {"a", "2"}}},
		{name: "empty name is accepted like the runner", in: "=v\n", want: []p{{"", "v"}}},
		{name: "byte order mark dropped", in: "\ufeffa=1\n", want: []p{{"a", "1"}}},
		{
			name: "CRLF: the CR stays in the value on Linux",
			in:   "a=1\r\nb=2\r\n",
			want: []p{{"a", "1\r"}, {"b", "2\r"}},
		},
		{
			name: "heredoc",
			in:   "json<<EOF\n{\n  \"a\": 1\n}\nEOF\nnext=1\n",
			want: []p{{"json", "{\n  \"a\": 1\n}"}, {"next", "1"}},
		},
		{name: "heredoc empty value", in: "a<<EOF\nEOF\n", want: []p{{"a", ""}}},
		{name: "heredoc one empty line", in: "a<<EOF\n\nEOF\n", want: []p{{"a", ""}}},
		{name: "heredoc two empty lines", in: "a<<EOF\n\n\nEOF\n", want: []p{{"a", "\n"}}},
		{name: "heredoc delimiter without final newline", in: "a<<EOF\nv\nEOF", want: []p{{"a", "v"}}},
		{name: "heredoc name first when << comes before =", in: "a<<X=Y\nv\nX=Y\n", want: []p{{"a", "v"}}},
		{name: "heredoc value with = and <<", in: "a<<D\nb=c\nd<<e\nD\n", want: []p{{"a", "b=c\nd<<e"}}},
		{
			name: "heredoc keeps CR of value lines",
			in:   "a<<EOF\nx\r\nEOF\n",
			want: []p{{"a", "x\r"}},
		},
		{
			// The delimiter read from the header is "EOF\r" too, so it closes.
			name: "CRLF heredoc closes but keeps the CR of each value line",
			in:   "a<<EOF\r\nx\r\ny\r\nEOF\r\n",
			want: []p{{"a", "x\r\ny\r"}},
		},
		{
			name:     "LF header with a CRLF delimiter line never closes on Linux",
			in:       "a<<EOF\nx\nEOF\r\n",
			wantErr:  "Matching delimiter not found 'EOF'",
			wantLine: 1,
		},
		{
			// The injection the product must prevent: a value containing
			// its delimiter line ends early, and the rest becomes entries.
			name: "value containing the delimiter ends early and injects",
			in:   "token<<EOF\nabc\nEOF\nadmin=true\nEOF\n",
			want: []p{{"token", "abc"}, {"admin", "true"}},
			// ...and the dangling delimiter line is then a bad entry.
			wantErr:  "Invalid format 'EOF'",
			wantLine: 5,
		},
		{
			name: "a newline in a simple value cannot hide: it is a new line",
			in:   "note=line1\nadmin=true\n",
			want: []p{{"note", "line1"}, {"admin", "true"}},
		},
		{
			name:     "unterminated heredoc",
			in:       "ok=1\na<<EOF\nv\n",
			want:     []p{{"ok", "1"}},
			wantErr:  "Matching delimiter not found 'EOF'",
			wantLine: 2,
		},
		{
			name:     "heredoc last line without newline",
			in:       "a<<EOF\nv",
			wantErr:  "EOF marker missing new line",
			wantLine: 1,
		},
		{name: "neither form", in: "a=1\njunk\nb=2\n", want: []p{{"a", "1"}}, wantErr: "Invalid format 'junk'", wantLine: 2},
		{name: "heredoc without name", in: "<<EOF\nv\nEOF\n", wantErr: "Name must not be empty", wantLine: 1},
		{name: "heredoc without delimiter", in: "a<<\nv\n\n", wantErr: "delimiter must not be empty", wantLine: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFileCommand([]byte(tc.in))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("pairs = %q, want %q", got, tc.want)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("error = %v", err)
				}
				return
			}
			var fce *FileCommandError
			if !errors.As(err, &fce) {
				t.Fatalf("error = %v, want a *FileCommandError", err)
			}
			if !strings.Contains(fce.Reason, tc.wantErr) || fce.Line != tc.wantLine {
				t.Errorf("error = line %d %q, want line %d containing %q", fce.Line, fce.Reason, tc.wantLine, tc.wantErr)
			}
		})
	}
}

func FuzzParseFileCommand(f *testing.F) {
	f.Add("a=1\nb<<EOF\nx\nEOF\n")
	f.Add("a<<EOF\r\nx\r\nEOF\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		pairs, err := ParseFileCommand([]byte(s))
		for _, kv := range pairs {
			if strings.Contains(kv.Name, "\n") {
				t.Fatalf("name %q contains a newline", kv.Name)
			}
		}
		if err == nil {
			// Writing each pair back in heredoc form with a delimiter not in
			// the value must read back the same pairs.
			var b strings.Builder
			for _, kv := range pairs {
				// Names a heredoc header cannot carry: a writer must reject them.
				if kv.Name == "" || strings.ContainsAny(kv.Name, "<=") || strings.HasPrefix(kv.Name, "\ufeff") {
					return
				}
				delim := "D"
				for strings.Contains(kv.Value, delim) || strings.Contains(kv.Name, delim) {
					delim += "D"
				}
				b.WriteString(kv.Name + "<<" + delim + "\n" + kv.Value + "\n" + delim + "\n")
			}
			back, err := ParseFileCommand([]byte(b.String()))
			if err != nil || !reflect.DeepEqual(back, pairs) {
				t.Fatalf("round trip of %q = %q, %v", pairs, back, err)
			}
		}
	})
}
