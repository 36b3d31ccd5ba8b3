package netaddr

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseTrace(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want, err string
	}{
		{"fl=1\nh=api.cloudflare.com\nip=203.0.113.7\nts=1.2\n", "203.0.113.7", ""},
		{"ip=2001:db8::7\n", "2001:db8::7", ""},
		{"ip=::ffff:203.0.113.7\n", "203.0.113.7", ""},
		{"visit_scheme=https\r\nip=198.51.100.1\r\n", "198.51.100.1", ""},
		{"sip=1.1.1.1\nh=x\n", "", "no ip= line"},
		{"ip=not-an-ip\n", "", "not an IP address"},
		{"ip=fe80::1%eth0\n", "", "not an IP address"},
		{"", "", "no ip= line"},
	}
	for _, tc := range cases {
		a, err := ParseTrace(strings.NewReader(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTrace(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || a.String() != tc.want {
			t.Errorf("ParseTrace(%q) = %v, %v; want %s", tc.in, a, err, tc.want)
		}
	}
}

func TestTraceURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://api.cloudflare.com/client/v4": "https://api.cloudflare.com/cdn-cgi/trace",
		"http://127.0.0.1:8080/client/v4/":     "http://127.0.0.1:8080/cdn-cgi/trace",
	} {
		if got, err := TraceURL(in); err != nil || got != want {
			t.Errorf("TraceURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "api.cloudflare.com", "ftp://x/y", "://"} {
		if _, err := TraceURL(bad); err == nil {
			t.Errorf("TraceURL(%q) accepted", bad)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cdn-cgi/trace" {
			http.NotFound(w, r)
			return
		}
		host, _, _ := strings.Cut(r.RemoteAddr, ":")
		fmt.Fprintf(w, "h=%s\nip=%s\n", r.Host, host)
	}))
	defer srv.Close()
	a, err := Lookup(context.Background(), srv.Client(), srv.URL+"/cdn-cgi/trace")
	if err != nil || a.String() != "127.0.0.1" {
		t.Errorf("Lookup = %v, %v; want 127.0.0.1", a, err)
	}
	if _, err := Lookup(context.Background(), srv.Client(), srv.URL+"/elsewhere"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Lookup of a 404 = %v, want an error naming 404", err)
	}
}

func FuzzParseTrace(f *testing.F) {
	f.Add("ip=203.0.113.7\n")
	f.Add("h=x\nip=2001:db8::1\nts=1\n")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseTrace(strings.NewReader(s))
		if err == nil && (!a.IsValid() || a.Zone() != "" || a.Is4In6()) {
			t.Fatalf("%q gave %v", s, a)
		}
	})
}
