package netaddr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cfmint/cfmint/internal/field"
)

// notes records Pin's notices.
type notes struct{ warnings, debugs []string }

func (n *notes) Warningf(f string, a ...any) { n.warnings = append(n.warnings, fmt.Sprintf(f, a...)) }
func (n *notes) Debugf(f string, a ...any)   { n.debugs = append(n.debugs, fmt.Sprintf(f, a...)) }

func newClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

func TestPin(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(traceHandler(&n))
	t.Cleanup(srv.Close)
	var ui notes
	got, err := Pin(context.Background(), newClient(), srv.URL+"/client/v4", "", &ui)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}) {
		t.Errorf("Pin = %v, want 127.0.0.1/32", got)
	}
	if len(ui.warnings) != 0 {
		t.Errorf("warnings %q, want none: the API host's own trace answered", ui.warnings)
	}
}

// TestPinFallback: an address from the fallback is pinned, with a warning that names the
// fallback and why the API host's trace gave none.
func TestPinFallback(t *testing.T) {
	t.Parallel()
	fb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "h=www.cloudflare.com\nip=2001:db8::7\n")
	}))
	t.Cleanup(fb.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	var ui notes
	got, err := Pin(context.Background(), newClient(), broken.URL+"/client/v4", fb.URL+"/cdn-cgi/trace", &ui)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("2001:db8::7/128")}) {
		t.Errorf("Pin = %v, want 2001:db8::7/128", got)
	}
	if len(ui.warnings) != 1 || !strings.Contains(ui.warnings[0], "the fallback "+fb.URL+"/cdn-cgi/trace") || !strings.Contains(ui.warnings[0], "503") {
		t.Errorf("warnings %q, want one naming the fallback and the API host's 503", ui.warnings)
	}
}

// TestPinFails: no address is an error about ip-filter, never an empty pin.
func TestPinFails(t *testing.T) {
	t.Parallel()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "h=x\nts=1\n")
	}))
	t.Cleanup(broken.Close)
	got, err := Pin(context.Background(), newClient(), broken.URL+"/client/v4", broken.URL+"/cdn-cgi/trace?fallback", &notes{})
	var fe *field.Error
	if !errors.As(err, &fe) || fe.Name != "ip-filter" || len(got) != 0 {
		t.Fatalf("Pin = %v, %v; want an ip-filter error", got, err)
	}
	if !strings.Contains(err.Error(), "never falls back to an unfiltered token") {
		t.Errorf("error %q does not say no token was minted unfiltered", err)
	}
}
