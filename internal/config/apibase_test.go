package config

import (
	"net/url"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/runner"
)

func TestParseAPIBase(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string // want is the base, or a phrase of the error
		ok       bool
	}{
		{"", DefaultAPIBase, true},
		{"  https://api.cloudflare.com/client/v4/  ", DefaultAPIBase, true},
		{"https://cf-proxy.corp.example/client/v4", "https://cf-proxy.corp.example/client/v4", true},
		{"HTTPS://api.cloudflare.com:443/client/v4", "https://api.cloudflare.com:443/client/v4", true},
		{"http://127.0.0.1:8787/client/v4", "http://127.0.0.1:8787/client/v4", true},
		{"http://127.9.8.7/client/v4/", "http://127.9.8.7/client/v4", true},
		{"http://[::1]:8787/client/v4", "http://[::1]:8787/client/v4", true},
		{"http://LocalHost:8787", "http://LocalHost:8787", true},
		{"http://[::ffff:127.0.0.1]:80/x", "http://[::ffff:127.0.0.1]:80/x", true},

		{"http://evil.example/client/v4", `"http://evil.example/client/v4" is http to "evil.example", which is not a loopback address`, false},
		{"http://10.0.0.1/client/v4", "not a loopback address", false},
		{"http://localhost.evil.example/", "not a loopback address", false},
		{"http://127.0.0.1.nip.io/", "not a loopback address", false},
		{"http://[fe80::1%25lo]/", "not a loopback address", false},
		{"ftp://api.cloudflare.com/client/v4", `has scheme ftp; use https`, false},
		{"api.cloudflare.com/client/v4", "is not an absolute URL; write one such as https://api.cloudflare.com/client/v4", false},
		{"/client/v4", "is not an absolute URL", false},
		{"https:api.cloudflare.com", "is not an absolute URL", false},
		{"https:///client/v4", "names no host", false},
		{"https://:8443/client/v4", "names no host", false},
		{"https://user:hunter2@api.cloudflare.com/client/v4", `"https://user:xxxxx@api.cloudflare.com/client/v4" holds user information`, false},
		{"https://api.cloudflare.com/client/v4?x=1", "has a query", false},
		{"https://api.cloudflare.com/client/v4?", "has a query", false},
		{"https://api.cloudflare.com/client/v4#frag", "has a fragment", false},
		{"https://api.cloudflare.com/client/v4#", "has a fragment", false},
		{"https://api.cloudflare.com/\x00", "is not an absolute URL", false},
		{"https://evil.example/##[set-output name=x]y", `"https://evil.example/##\[set-output name=x]y" has a fragment`, false},
		{"https://evil.example/::add-mask::x", "https://evil.example/::add-mask::x", true},
	}
	for _, tc := range cases {
		got, err := ParseAPIBase(tc.in)
		switch {
		case tc.ok && err != nil:
			t.Errorf("ParseAPIBase(%q): %v", tc.in, err)
		case tc.ok && tc.want != "" && got != tc.want:
			t.Errorf("ParseAPIBase(%q) = %q, want %q", tc.in, got, tc.want)
		case !tc.ok && err == nil:
			t.Errorf("ParseAPIBase(%q) = %q, want an error with %q", tc.in, got, tc.want)
		case !tc.ok && !strings.Contains(err.Error(), tc.want):
			t.Errorf("ParseAPIBase(%q) error %q does not say %q", tc.in, err, tc.want)
		}
		// Bare as well as prefixed: a "::" command counts only at a line's start.
		for _, text := range []string{errString(err), "Error: " + errString(err)} {
			if name, ok := runner.FindCommand(text); ok {
				t.Errorf("ParseAPIBase(%q) error reads as ::%s::", tc.in, name)
			}
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseAPIBase(%q) error shows the password: %q", tc.in, err)
		}
	}
}

func TestAPIBaseInput(t *testing.T) {
	t.Parallel()
	c, err := ValidateAccess(valid())
	if err != nil || c.APIBase != DefaultAPIBase {
		t.Fatalf("default: %+v, %v", c, err)
	}
	in := valid()
	in.APIBaseURL = "http://127.0.0.1:9/client/v4/"
	if c, err := Validate(in, Context{}); err != nil || c.APIBase != "http://127.0.0.1:9/client/v4" {
		t.Errorf("loopback: %+v, %v", c, err)
	}
	in.APIBaseURL = "http://evil.example/client/v4"
	_, err = ValidateAccess(in)
	if err == nil || !strings.HasPrefix(err.Error(), `input "api-base-url": "http://evil.example/client/v4" is http`) {
		t.Errorf("error %v does not name the input and the value", err)
	}
}

func TestIsCloudflareHost(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		DefaultAPIBase:                              true,
		"https://API.Cloudflare.com/client/v4":      true,
		"https://api.cloudflare.com.:443/client/v4": true,
		"http://api.cloudflare.com/client/v4":       false,
		"https://api.cloudflare.com:8443/client/v4": false,
		"https://api.cloudflare.com.evil.example/":  false,
		"https://evil.example/api.cloudflare.com":   false,
		"https://x@api.cloudflare.com/client/v4":    false,
		"http://127.0.0.1:8787/client/v4":           false,
		"":                                          false,
	}
	for base, want := range cases {
		if got := IsCloudflareHost(base); got != want {
			t.Errorf("IsCloudflareHost(%q) = %v, want %v", base, got, want)
		}
	}
}

func FuzzParseAPIBase(f *testing.F) {
	for _, s := range []string{DefaultAPIBase, "http://127.0.0.1:1/x", "http://evil.example", "https://u:p@h/", "ftp://h", "h/x", "https://h/?q#f", "http://[::1]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		base, err := ParseAPIBase(s)
		if err != nil {
			if name, ok := runner.FindCommand(err.Error()); ok {
				t.Fatalf("error %q reads as ::%s::", err, name)
			}
			return
		}
		again, err := ParseAPIBase(base)
		if err != nil || again != base {
			t.Fatalf("%q gave %q, which gives %q, %v", s, base, again, err)
		}
		if u, err := url.Parse(base); err != nil || u.User != nil || strings.HasSuffix(base, "/") || strings.ContainsAny(base, "?#") {
			t.Fatalf("%q gave %q", s, base)
		}
		if strings.HasPrefix(base, "http://") && !IsCloudflareHost(base) {
			host := strings.TrimPrefix(base, "http://")
			if !strings.HasPrefix(strings.ToLower(host), "localhost") && !strings.HasPrefix(host, "127.") && !strings.HasPrefix(host, "[::1]") && !strings.HasPrefix(host, "[::ffff:127.") && !strings.HasPrefix(host, "[0:0:0:0:0:0:0:1]") {
				t.Fatalf("%q: http to a host that is not loopback: %q", s, base)
			}
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
