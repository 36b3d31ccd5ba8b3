// Package learn records the Cloudflare API calls a command makes and works out the least
// permission groups that allow them all.
package learn

import (
	_ "embed"
	"fmt"
	"strings"
)

// operationsTSV is the table of operations and the groups that allow them; the file names its
// source and date in its header.
//
//go:embed operations.tsv
var operationsTSV string

// Operation is one operation of Cloudflare's API.
type Operation struct {
	Method string
	// Path is the path template below /client/v4, e.g. /accounts/{account_id}/d1/database.
	Path        string
	OperationID string
	// Groups are the permission groups any one of which allows the call, in the spec's order;
	// empty when Cloudflare's spec annotates none (the table then knows the operation, not what
	// allows it).
	Groups []string
	Note   string
}

// Table holds the known operations and matches requests to them.
type Table struct {
	ops []Operation
	// byMethod holds, per method, the operations' split templates.
	byMethod map[string][]template
	// paramAfter names the parameter that follows a literal segment in some template
	// ("services" -> "service_name"); pairs holds the literal segments that follow one another.
	paramAfter map[string]string
	pairs      map[string]bool
}

type template struct {
	segs []string
	op   int
}

// DefaultTable is the embedded table.
func DefaultTable() *Table {
	t, err := ParseTable(operationsTSV)
	if err != nil {
		panic("learn: the embedded operations.tsv is broken: " + err.Error())
	}
	return t
}

// ParseTable reads a table: '#' lines are comments, the first other line is the header
// (method, path, operation_id, accepted_groups, note, source), then one operation a line.
func ParseTable(data string) (*Table, error) {
	t := &Table{byMethod: map[string][]template{}, paramAfter: map[string]string{}, pairs: map[string]bool{}}
	header := true
	seen := map[string]int{}
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if header {
			header = false
			if len(f) < 4 || f[0] != "method" || f[1] != "path" || f[3] != "accepted_groups" {
				return nil, fmt.Errorf("line %d: header %q, want method, path, operation_id, accepted_groups, ...", i+1, line)
			}
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 4", i+1, len(f))
		}
		op := Operation{Method: f[0], Path: f[1], OperationID: f[2]}
		if len(f) > 4 {
			op.Note = f[4]
		}
		if f[3] != "" {
			op.Groups = strings.Split(f[3], "|")
		}
		if !strings.HasPrefix(op.Path, "/") || strings.ToUpper(op.Method) != op.Method || op.Method == "" {
			return nil, fmt.Errorf("line %d: %q %q is not a method and a path template", i+1, op.Method, op.Path)
		}
		key := op.Method + " " + op.Path
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d: %s is already on line %d", i+1, key, j)
		}
		seen[key] = i + 1
		segs := split(op.Path)
		for j := 1; j < len(segs); j++ {
			prev, cur := segs[j-1], segs[j]
			switch {
			case isParam(prev):
			case isParam(cur):
				if t.paramAfter[prev] == "" {
					t.paramAfter[prev] = cur[1 : len(cur)-1]
				}
			default:
				t.pairs[prev+"/"+cur] = true
			}
		}
		t.byMethod[op.Method] = append(t.byMethod[op.Method], template{segs: segs, op: len(t.ops)})
		t.ops = append(t.ops, op)
	}
	if header {
		return nil, fmt.Errorf("no header line")
	}
	return t, nil
}

// Operations lists the table's operations in file order.
func (t *Table) Operations() []Operation { return append([]Operation(nil), t.ops...) }

func split(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

func isParam(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}

// Match finds the operation a request is, by method and path (below /client/v4, without the
// query). A literal segment beats a parameter at the first place two templates differ, so
// /zones/{zone_id}/dns_records/export is not taken for a record id. It returns the operation and
// the path's parameters by name.
func (t *Table) Match(method, path string) (Operation, map[string]string, bool) {
	segs := split(path)
	best := -1
	var bestSegs []string
	for _, tp := range t.byMethod[method] {
		if !fits(tp.segs, segs) {
			continue
		}
		if best < 0 || moreLiteral(tp.segs, bestSegs) {
			best, bestSegs = tp.op, tp.segs
		}
	}
	if best < 0 {
		return Operation{}, nil, false
	}
	params := map[string]string{}
	for i, s := range bestSegs {
		if isParam(s) {
			v := segs[i]
			if i == len(bestSegs)-1 && restParams[s] {
				v = strings.Join(segs[i:], "/")
			}
			params[s[1:len(s)-1]] = v
		}
	}
	return t.ops[best], params, true
}

// restParams are parameters that take the rest of the path, slashes included: the spec marks
// R2's object_key allowReserved, and object keys hold '/'.
var restParams = map[string]bool{"{object_key}": true}

func fits(tmpl, segs []string) bool {
	if n := len(tmpl); n > 0 && restParams[tmpl[n-1]] && len(segs) > n {
		segs = append(segs[:n-1:n-1], strings.Join(segs[n-1:], "/"))
	}
	if len(tmpl) != len(segs) {
		return false
	}
	for i, s := range tmpl {
		if isParam(s) {
			if segs[i] == "" {
				return false
			}
		} else if s != segs[i] {
			return false
		}
	}
	return true
}

// moreLiteral reports whether a has a literal segment where b has its first parameter that a
// lacks.
func moreLiteral(a, b []string) bool {
	for i := range a {
		if pa, pb := isParam(a[i]), isParam(b[i]); pa != pb {
			return pb
		}
	}
	return false
}
