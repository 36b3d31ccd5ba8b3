package cftoken

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{strings.Repeat("f", 32), true},
		{"", false},
		{"0123456789ABCDEF0123456789ABCDEF", false},
		{"0123456789abcdef0123456789abcde", false},
		{"0123456789abcdef0123456789abcdef0", false},
		{"0123456789abcdef0123456789abcdeg", false},
		{"0123456789abcdef0123456789abcde\n", false},
		{"0123456789abcdef0123456789abcdef\n", false},
		{" 0123456789abcdef0123456789abcdef", false},
		{"0123456789abcdef/123456789abcdef", false},
		{"０123456789abcdef0123456789abcde", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestParseOwner(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Owner
		ok   bool
	}{
		{"", OwnerAccount, true},
		{"account", OwnerAccount, true},
		{"Account", OwnerAccount, true},
		{"user", OwnerUser, true},
		{"USER", OwnerUser, true},
		{" user", "", false},
		{"users", "", false},
		{"uſer", "", false}, // long s: folds to s under Unicode rules, not here
		{"org", "", false},
	} {
		if got, ok := ParseOwner(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("ParseOwner(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
