package action

import "testing"

func TestMdEscape(t *testing.T) {
	t.Parallel()
	if got := mdEscape("a|b`c<d>"); got != `a\|b'c&lt;d&gt;` {
		t.Errorf("mdEscape = %q", got)
	}
}
