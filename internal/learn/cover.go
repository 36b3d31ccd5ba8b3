package learn

import (
	"slices"
	"sort"
	"strings"
)

// Cover finds the smallest set of permission groups such that every operation has at least one
// of its accepted groups in the set. Among sets of that size it prefers fewer Write groups (Read
// where an operation accepts it), then groups that are the operation's own product (Queues Read
// for a queue, not Workers Scripts Read), then names in alphabetical order. Operations without
// groups are skipped: they are the caller's to report, never guessed at.
func Cover(ops []Operation) []string {
	var needs [][]string
	var owners []Operation
	seen := map[string]bool{}
	for _, op := range ops {
		if len(op.Groups) == 0 {
			continue
		}
		k := strings.Join(op.Groups, "|") + " " + op.Path
		if seen[k] {
			continue
		}
		seen[k] = true
		needs = append(needs, op.Groups)
		owners = append(owners, op)
	}
	if len(needs) == 0 {
		return nil
	}
	s := &search{needs: needs, ops: owners}
	s.walk(nil)
	out := append([]string(nil), s.best...)
	sort.Strings(out)
	return out
}

type search struct {
	needs [][]string
	ops   []Operation
	best  []string
	cost  cost
	found bool
}

// cost orders covers: smaller is better, compared field by field.
type cost struct {
	size, writes, foreign int
	names                 string
}

func (a cost) less(b cost) bool {
	switch {
	case a.size != b.size:
		return a.size < b.size
	case a.writes != b.writes:
		return a.writes < b.writes
	case a.foreign != b.foreign:
		return a.foreign < b.foreign
	}
	return a.names < b.names
}

// walk branches on the uncovered need with the fewest choices: every cover holds one of its
// groups, so this visits every irredundant cover of the least size.
func (s *search) walk(chosen []string) {
	if s.found && len(chosen) > s.cost.size {
		return
	}
	pick := -1
	for i, n := range s.needs {
		if covered(n, chosen) {
			continue
		}
		if pick < 0 || len(n) < len(s.needs[pick]) {
			pick = i
		}
	}
	if pick < 0 {
		c := s.costOf(chosen)
		if !s.found || c.less(s.cost) {
			s.found, s.cost, s.best = true, c, append([]string(nil), chosen...)
		}
		return
	}
	if s.found && len(chosen)+1 > s.cost.size {
		return
	}
	for _, g := range s.needs[pick] {
		s.walk(append(chosen[:len(chosen):len(chosen)], g))
	}
}

func covered(need, chosen []string) bool {
	for _, g := range need {
		if slices.Contains(chosen, g) {
			return true
		}
	}
	return false
}

func (s *search) costOf(chosen []string) cost {
	c := cost{size: len(chosen)}
	for _, g := range chosen {
		if !isRead(g) {
			c.writes++
		}
	}
	// foreign: for each operation, how far the best chosen group that allows it is from being
	// the operation's own.
	for i, n := range s.needs {
		bestAff := -1
		for _, g := range n {
			if slices.Contains(chosen, g) {
				bestAff = max(bestAff, affinity(g, s.ops[i]))
			}
		}
		c.foreign += 100 - bestAff
	}
	sorted := append([]string(nil), chosen...)
	sort.Strings(sorted)
	c.names = strings.Join(sorted, "|")
	return c
}

func isRead(group string) bool {
	return strings.HasSuffix(group, " Read")
}

// affinity scores, 0 to 100, how much a group's name speaks of an operation: the share of the
// name's words (without the level) found in the operation's path or id. "Workers Scripts Read"
// scores 100 on /accounts/{account_id}/workers/scripts, "Workers Tail Read" 50; "Zone Read"
// scores 100 on /zones/{zone_id}, "DNS Read" 0.
func affinity(group string, op Operation) int {
	var words []string
	for _, w := range strings.FieldsFunc(strings.ToLower(group), func(r rune) bool { return r == ' ' || r == ':' || r == '-' }) {
		if w != "read" && w != "write" && w != "edit" {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return 0
	}
	var lits []string
	for _, s := range split(op.Path) {
		if !isParam(s) {
			lits = append(lits, strings.ToLower(s))
		}
	}
	hay := strings.Join(lits, "/") + " " + strings.ToLower(op.OperationID)
	n := 0
	for _, w := range words {
		if strings.Contains(hay, strings.TrimSuffix(w, "s")) {
			n++
		}
	}
	return n * 100 / len(words)
}
