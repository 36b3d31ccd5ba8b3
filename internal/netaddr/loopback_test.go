package netaddr

import (
	"net/url"
	"testing"
)

func TestIsLoopbackHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST", true},
		{"LocalHost", true},
		{"127.0.0.1", true},
		{"127.0.0.2", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"0:0:0:0:0:0:0:1", true},
		{"::ffff:127.0.0.1", true},

		{"", false},
		{"localhost.", false},
		{"api.localhost", false},
		{"localhost.example.com", false},
		{"127.0.0.1.nip.io", false},
		{"ʟocalhost", false},
		{"127.1", false},
		{"127.000.000.001", false},
		{"0x7f.0.0.1", false},
		{"2130706433", false},
		{"128.0.0.1", false},
		{"126.255.255.255", false},
		{"0.0.0.0", false},
		{"::", false},
		{"::2", false},
		{"::ffff:10.0.0.1", false},
		{"::1%lo", false},
		{"::1%25lo", false},
		{"127.0.0.1%lo", false},
		{"fe80::1%eth0", false},
		{"[::1]", false},
		{"127.0.0.1:80", false},
		{"10.0.0.1", false},
		{"example.com", false},
	} {
		if got := IsLoopbackHost(tc.host); got != tc.want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

// The hosts of URLs as callers pass them: url.Parse's Hostname().
func TestIsLoopbackHostOfURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080/x", true},
		{"http://[::1]:8080/x", true},
		{"http://LOCALHOST/x", true},
		{"http://[::1%25lo]:8080/x", false},
		{"http://[fe80::1%25eth0]/x", false},
		{"http://localhost.:8080/x", false},
		{"http://user@127.0.0.1.example.com/x", false},
		{"http://127.0.0.1@example.com/x", false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", tc.url, err)
		}
		if got := IsLoopbackHost(u.Hostname()); got != tc.want {
			t.Errorf("IsLoopbackHost(Hostname of %q = %q) = %v, want %v", tc.url, u.Hostname(), got, tc.want)
		}
	}
}
