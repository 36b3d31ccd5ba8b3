package trust

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFairShares(t *testing.T) {
	t.Parallel()
	r := mustParse(t, ruleYAML()).rules[0]
	if n, w := r.MaxMints(); n != 60 || w != time.Hour || r.MaxActive() != 10 {
		t.Errorf("defaults: max_mints %d/%s, max_active %d; want 60/1h and 10", n, w, r.MaxActive())
	}
	r = mustParse(t, ruleYAML("max_mints: 5/10m", "max_active: 2")).rules[0]
	if n, w := r.MaxMints(); n != 5 || w != 10*time.Minute || r.MaxActive() != 2 {
		t.Errorf("max_mints %d/%s, max_active %d; want 5/10m and 2", n, w, r.MaxActive())
	}
	// The bounds themselves are allowed.
	r = mustParse(t, ruleYAML("max_mints: 10000/1m", "max_active: 500")).rules[0]
	if n, w := r.MaxMints(); n != MaxMaxMints || w != MinMintWindow || r.MaxActive() != MaxMaxActive {
		t.Errorf("max_mints %d/%s, max_active %d; want 10000/1m and 500", n, w, r.MaxActive())
	}
	r = mustParse(t, ruleYAML("max_mints: 1/24h", "max_active: 1")).rules[0]
	if n, w := r.MaxMints(); n != 1 || w != MaxMintWindow || r.MaxActive() != 1 {
		t.Errorf("max_mints %d/%s, max_active %d; want 1/24h and 1", n, w, r.MaxActive())
	}
}

func TestParseFairSharesErrors(t *testing.T) {
	t.Parallel()
	const mints = "write N/<duration> such as 60/1h: 1 to 10000 tokens per repository in a window of 1m to 24h (default 60/1h)"
	const active = "write a whole number from 1 to 500, unquoted (default 10)"
	cases := []struct {
		name string
		yml  string
		want []string
	}{
		{"no window", ruleYAML("max_mints: 60"),
			[]string{`rule "shop-deploy": key "max_mints": "60" has no window; ` + mints}},
		{"zero", ruleYAML("max_mints: 0/1h"),
			[]string{`rule "shop-deploy": key "max_mints": "0/1h": "0" is not a count from 1 to 10000; ` + mints}},
		{"not a duration", ruleYAML("max_mints: 60/hour"),
			[]string{`rule "shop-deploy": key "max_mints": "60/hour": "hour" is not a duration; ` + mints}},
		{"window too long", ruleYAML("max_mints: 60/48h"),
			[]string{`rule "shop-deploy": key "max_mints": "60/48h": the window 48h is outside 1m to 24h; ` + mints}},
		{"a list", ruleYAML("max_mints: [60, 1h]"),
			[]string{`rule "shop-deploy": key "max_mints": must be N/<duration>; ` + mints}},
		{"active quoted", ruleYAML(`max_active: "10"`),
			[]string{`rule "shop-deploy": key "max_active": "10" is not a number of tokens; ` + active}},
		{"active too many", ruleYAML("max_active: 501"),
			[]string{`rule "shop-deploy": key "max_active": "501" is outside 1 to 500 (the account holds at most 500 tokens); ` + active}},
		{"both at once", ruleYAML("max_mints: 1/1s", "max_active: 0"),
			[]string{
				`rule "shop-deploy": key "max_mints": "1/1s": the window 1s is outside 1m to 24h; ` + mints,
				`rule "shop-deploy": key "max_active": "0" is outside 1 to 500 (the account holds at most 500 tokens); ` + active,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yml))
			if got := lines(err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
