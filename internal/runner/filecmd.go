package runner

import (
	"fmt"
	"strings"
)

// FileCommandPair is one name/value pair read from a GITHUB_OUTPUT,
// GITHUB_ENV or GITHUB_STATE file.
type FileCommandPair struct {
	Name, Value string
}

// FileCommandError is a file-command file the runner rejects: it logs the
// reason and fails the step, keeping the pairs read before the bad line.
type FileCommandError struct {
	Line   int    // 1-based line where the rejected entry starts
	Reason string // the runner's own message
}

func (e *FileCommandError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// ParseFileCommand parses a file-command file exactly as the Linux runner's
// EnvFileKeyValuePairs does, returning the pairs in file order and, on a bad
// entry, the pairs before it together with a *FileCommandError.
//
//   - A line is ended by "\n" only: on Linux a "\r" before it stays part of
//     the value, and a delimiter line "EOF\r" does not close "name<<EOF". (A
//     file written with CRLF throughout still closes its heredocs, since the
//     header's delimiter is "EOF\r" too, but every value keeps its "\r".)
//   - Empty lines are skipped.
//   - A line whose first "=" comes before any "<<" is NAME=VALUE; the value is
//     the rest of the line, "=" and "<<" included. The runner does not reject
//     an empty name here (its check tests the line, not the name).
//   - A line whose first "<<" comes first is NAME<<DELIMITER: the value is
//     every following line up to the first line equal to DELIMITER, joined by
//     "\n" and without the final newline. A value line equal to the delimiter
//     therefore ends the value early, and what follows is parsed as further
//     entries: that is the injection a writer must prevent by choosing a
//     delimiter the value does not contain. A name containing "=", "<" or a
//     newline cannot be written safely in either form.
//   - Any other non-empty line, an empty name or delimiter in heredoc form, a
//     delimiter that never comes, or a last value line without a newline is
//     an error.
func ParseFileCommand(data []byte) ([]FileCommandPair, error) {
	// File.ReadAllText drops a UTF-8 byte order mark.
	text := strings.TrimPrefix(string(data), "\ufeff")
	var pairs []FileCommandPair
	idx, lineNo := 0, 0
	readLine := func() (line string, hasNewline, ok bool) {
		if idx >= len(text) {
			return "", false, false
		}
		lineNo++
		i := strings.IndexByte(text[idx:], '\n')
		if i < 0 {
			line, idx = text[idx:], len(text)
			return line, false, true
		}
		line = text[idx : idx+i]
		idx += i + 1
		return line, true, true
	}
	for {
		line, _, ok := readLine()
		if !ok {
			return pairs, nil
		}
		if line == "" {
			continue
		}
		start := lineNo
		eq := strings.Index(line, "=")
		heredoc := strings.Index(line, "<<")
		switch {
		case eq >= 0 && (heredoc < 0 || eq < heredoc):
			pairs = append(pairs, FileCommandPair{Name: line[:eq], Value: line[eq+1:]})
		case heredoc >= 0 && (eq < 0 || heredoc < eq):
			name, delim := line[:heredoc], line[heredoc+2:]
			if name == "" || delim == "" {
				return pairs, &FileCommandError{Line: start, Reason: fmt.Sprintf("Invalid format '%s'. Name must not be empty and delimiter must not be empty", line)}
			}
			valueStart, valueEnd := idx, idx
			for {
				l, hasNewline, ok := readLine()
				if !ok {
					return pairs, &FileCommandError{Line: start, Reason: fmt.Sprintf("Invalid value. Matching delimiter not found '%s'", delim)}
				}
				if l == delim {
					break
				}
				if !hasNewline {
					return pairs, &FileCommandError{Line: start, Reason: "Invalid value. EOF marker missing new line."}
				}
				valueEnd = idx - 1
			}
			value := ""
			if valueEnd > valueStart {
				value = text[valueStart:valueEnd]
			}
			pairs = append(pairs, FileCommandPair{Name: name, Value: value})
		default:
			return pairs, &FileCommandError{Line: start, Reason: fmt.Sprintf("Invalid format '%s'", line)}
		}
	}
}
