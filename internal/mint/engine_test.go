package mint

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/policy"
)

// fakeTokens answers only the calls a test planned; any other call fails the test, so a test
// also says which calls the engine makes.
type fakeTokens struct {
	t      *testing.T
	mu     sync.Mutex // Plan makes its lookups concurrently
	calls  []string
	groups func() ([]policy.Group, error)
	verify func(secret string) (string, error)
	create func(req policy.Request) (*cftoken.Minted, error)
	delete func(id string) error
	list   func() ([]cftoken.Listed, error)
	zone   func(name string) ([]cftoken.Zone, error)
	// date is Cloudflare's clock in the answers of groups and list; zero sends no Date.
	date time.Time
}

func (f *fakeTokens) call(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, what)
}

func (f *fakeTokens) clock() cftoken.ServerClock {
	if f.date.IsZero() {
		return cftoken.ServerClock{}
	}
	return cftoken.ClockAt(f.date)
}

func (f *fakeTokens) unplanned(what string) {
	f.t.Helper()
	f.t.Errorf("unplanned call: %s", what)
}

func (f *fakeTokens) PermissionGroups(context.Context, cftoken.Owner, string) ([]policy.Group, cftoken.ServerClock, error) {
	f.call("groups")
	if f.groups == nil {
		f.unplanned("groups")
		return nil, cftoken.ServerClock{}, errors.New("unplanned")
	}
	g, err := f.groups()
	return g, f.clock(), err
}

func (f *fakeTokens) Verify(_ context.Context, _ cftoken.Owner, _ string, secret string) (string, error) {
	f.call("verify")
	if f.verify == nil {
		f.unplanned("verify")
		return "", errors.New("unplanned")
	}
	return f.verify(secret)
}

func (f *fakeTokens) FindZone(_ context.Context, name string) ([]cftoken.Zone, error) {
	f.call("zone")
	if f.zone == nil {
		f.unplanned("zone " + name)
		return nil, errors.New("unplanned")
	}
	return f.zone(name)
}

func (f *fakeTokens) GetZone(_ context.Context, id string) (cftoken.Zone, error) {
	f.unplanned("get zone " + id)
	return cftoken.Zone{}, errors.New("unplanned")
}

func (f *fakeTokens) Create(_ context.Context, _ cftoken.Owner, _ string, req policy.Request) (*cftoken.Minted, error) {
	f.call("create")
	if f.create == nil {
		f.unplanned("create")
		return nil, errors.New("unplanned")
	}
	return f.create(req)
}

func (f *fakeTokens) Delete(_ context.Context, _ cftoken.Owner, _ string, id string) error {
	f.call("delete " + id)
	if f.delete == nil {
		f.unplanned("delete " + id)
		return errors.New("unplanned")
	}
	return f.delete(id)
}

func (f *fakeTokens) List(context.Context, cftoken.Owner, string) ([]cftoken.Listed, cftoken.ServerClock, error) {
	f.call("list")
	if f.list == nil {
		f.unplanned("list")
		return nil, cftoken.ServerClock{}, errors.New("unplanned")
	}
	ts, err := f.list()
	return ts, f.clock(), err
}

func (f *fakeTokens) Get(_ context.Context, _ cftoken.Owner, _ string, id string) (cftoken.Listed, error) {
	f.unplanned("get " + id)
	return cftoken.Listed{}, errors.New("unplanned")
}

// quietUI keeps the warnings; Plan may warn from its goroutines.
type quietUI struct {
	mu       sync.Mutex
	warnings []string
}

func (u *quietUI) Noticef(string, ...any) {}
func (u *quietUI) Warningf(f string, a ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.warnings = append(u.warnings, fmt.Sprintf(f, a...))
}
func (u *quietUI) Debugf(string, ...any) {}

const (
	acct   = "023e105f4ecef8ad9ca31a8372d0c353"
	newID  = "0123456789abcdef0123456789abcdef"
	secret = "cfat_new-secret-value"
)

var expires = time.Date(2026, 12, 1, 12, 15, 0, 0, time.UTC)

func plan() *Plan {
	return &Plan{
		Owner:     cftoken.OwnerAccount,
		AccountID: acct,
		Request: policy.Request{
			Name:      "cfmint:o/r:workers-deploy:1.1:deploy:cf",
			CIDRs:     []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")},
			ExpiresOn: expires,
			Policies:  []policy.Policy{{Groups: []policy.Group{{ID: "g", Name: "Workers Scripts Write"}}, Resources: map[string]any{policy.AccountKey(acct): "*"}}},
		},
		TTL: 15 * time.Minute,
	}
}

func good(req policy.Request) (*cftoken.Minted, error) {
	var in []string
	for _, c := range req.CIDRs {
		in = append(in, c.String())
	}
	return &cftoken.Minted{ID: newID, Secret: secret, Name: req.Name, Status: "active", ExpiresOn: req.ExpiresOn, IPIn: in}, nil
}

// record notes which hooks ran, in order.
func record(got *[]string) Hooks {
	return Hooks{
		Creating: func(*Plan) { *got = append(*got, "creating") },
		Created:  func(id string) { *got = append(*got, "created "+id) },
		Settled:  func() { *got = append(*got, "settled") },
		Undone:   func(id string) { *got = append(*got, "undone "+id) },
		Mask:     func(s string) { *got = append(*got, "mask "+s) },
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	lost := &cftoken.TransportError{Op: "create the token", Err: errors.New("connection reset")}
	cases := []struct {
		name      string
		create    func(policy.Request) (*cftoken.Minted, error)
		verify    func(string) (string, error)
		list      func() ([]cftoken.Listed, error)
		delete    func(string) error
		calls     []string
		hooks     []string
		wantErr   string
		wantKind  any
		wantToken bool
	}{
		{
			name: "minted", create: good, verify: func(s string) (string, error) {
				if s != secret {
					t.Errorf("verify asked about %q, not the new token", s)
				}
				return "active", nil
			},
			calls: []string{"create", "verify"}, hooks: []string{"creating", "created " + newID, "mask " + secret}, wantToken: true,
		},
		{
			name: "answer lost, token found and deleted", create: func(policy.Request) (*cftoken.Minted, error) { return nil, lost },
			list: func() ([]cftoken.Listed, error) {
				return []cftoken.Listed{
					{ID: newID, Name: plan().Request.Name, ExpiresOn: expires},
					{ID: "ffffffffffffffffffffffffffffffff", Name: plan().Request.Name, ExpiresOn: expires.Add(time.Hour)}, // another run's expiry: not ours
					{ID: "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", Name: "someone else's", ExpiresOn: expires},
				}, nil
			},
			delete: func(string) error { return nil },
			calls:  []string{"create", "list", "delete " + newID}, hooks: []string{"creating", "settled"},
			wantErr: "the token had been created anyway, and was deleted",
		},
		{
			name: "answer lost, nothing found yet", create: func(policy.Request) (*cftoken.Minted, error) { return nil, lost },
			list:  func() ([]cftoken.Listed, error) { return nil, nil },
			calls: []string{"create", "list"}, hooks: []string{"creating"},
			wantErr: "no token with its name was found yet", wantKind: &UnseenError{},
		},
		{
			name: "refused create is not looked for", create: func(policy.Request) (*cftoken.Minted, error) {
				return nil, &cftoken.APIError{Op: "create the token", Status: 403, Details: []cftoken.Detail{{Code: 9109, Message: "Unauthorized to access requested resource"}}}
			},
			calls: []string{"create"}, hooks: []string{"creating", "settled"}, wantErr: "lacks Account API Tokens Write",
		},
		{
			name: "filter not echoed", create: func(req policy.Request) (*cftoken.Minted, error) {
				m, _ := good(req)
				m.IPIn = nil
				return m, nil
			},
			delete: func(string) error { return nil },
			calls:  []string{"create", "delete " + newID}, hooks: []string{"creating", "created " + newID, "mask " + secret, "undone " + newID},
			wantErr: "does not echo the IP filter",
		},
		{
			// Cloudflare's not_in excludes addresses from the allowed ones; a token that came
			// back with one is not the token asked for.
			name: "a not_in that was not asked for", create: func(req policy.Request) (*cftoken.Minted, error) {
				m, _ := good(req)
				m.IPNotIn = []string{"192.0.2.1/32"}
				return m, nil
			},
			delete: func(string) error { return nil },
			calls:  []string{"create", "delete " + newID}, hooks: []string{"creating", "created " + newID, "mask " + secret, "undone " + newID},
			wantErr: "does not echo the IP filter",
		},
		{
			name: "expiry not echoed", create: func(req policy.Request) (*cftoken.Minted, error) {
				m, _ := good(req)
				m.ExpiresOn = m.ExpiresOn.Add(time.Hour)
				return m, nil
			},
			delete: func(string) error { return nil },
			calls:  []string{"create", "delete " + newID}, hooks: []string{"creating", "created " + newID, "mask " + secret, "undone " + newID},
			wantErr: "does not echo the expiry",
		},
		{
			name: "an empty secret", create: func(req policy.Request) (*cftoken.Minted, error) {
				m, _ := good(req)
				m.Secret = ""
				return m, nil
			},
			delete: func(string) error { return nil },
			calls:  []string{"create", "delete " + newID}, hooks: []string{"creating", "created " + newID, "undone " + newID},
			wantErr: "carried no usable token value",
		},
		{
			name: "a secret with a line break", create: func(req policy.Request) (*cftoken.Minted, error) {
				m, _ := good(req)
				m.Secret = "abc\ndef"
				return m, nil
			},
			delete: func(string) error { return nil },
			calls:  []string{"create", "delete " + newID}, hooks: []string{"creating", "created " + newID, "undone " + newID},
			wantErr: "carried no usable token value",
		},
		{
			name: "disabled new token, delete fails too", create: good,
			verify: func(string) (string, error) { return "disabled", nil },
			delete: func(string) error { return &cftoken.APIError{Op: "delete", Status: 403} },
			calls:  []string{"create", "verify", "delete " + newID}, hooks: []string{"creating", "created " + newID, "mask " + secret},
			wantErr: `"disabled"`, wantKind: &UndoError{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeTokens{t: t, create: tc.create, verify: tc.verify, list: tc.list, delete: tc.delete}
			e := &Engine{Tokens: f, Once: f, UI: &quietUI{}}
			var hooks []string
			m, err := e.Mint(context.Background(), plan(), record(&hooks))
			if !slices.Equal(f.calls, tc.calls) {
				t.Errorf("calls = %q, want %q", f.calls, tc.calls)
			}
			if !slices.Equal(hooks, tc.hooks) {
				t.Errorf("hooks = %q, want %q", hooks, tc.hooks)
			}
			if tc.wantToken != (m != nil && m.Secret == secret && m.ID == newID) {
				t.Errorf("token = %+v", m)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to say %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds the new secret: %v", err)
			}
			switch tc.wantKind.(type) {
			case *UnseenError:
				var ue *UnseenError
				if !errors.As(err, &ue) || ue.Name != plan().Request.Name {
					t.Errorf("err is not an UnseenError for the plan's name: %#v", err)
				}
			case *UndoError:
				var de *UndoError
				if !errors.As(err, &de) || de.ID != newID {
					t.Errorf("err is not an UndoError for %s: %#v", newID, err)
				}
			}
		})
	}
}

func TestPlanExplainsTheBootstrapToken(t *testing.T) {
	t.Parallel()
	invalid := &cftoken.APIError{Status: 401, Details: []cftoken.Detail{{Code: 1000, Message: "Invalid API Token"}}}
	f := &fakeTokens{t: t,
		groups: func() ([]policy.Group, error) { return nil, invalid },
		verify: func(s string) (string, error) {
			if s != "" {
				t.Errorf("the bootstrap check verified %q instead of the client's own token", s)
			}
			return "", invalid
		},
	}
	e := &Engine{Tokens: f, Once: f, UI: &quietUI{}}
	_, err := e.Plan(context.Background(), Request{Owner: cftoken.OwnerAccount, AccountID: acct, Preset: "workers-deploy", TTL: time.Minute})
	var fe *field.Error
	if !errors.As(err, &fe) || fe.Name != "bootstrap-token" {
		t.Fatalf("err = %v, want a bootstrap-token field error", err)
	}
}

func TestPhrase(t *testing.T) {
	t.Parallel()
	ph := Phrase{
		Field:  func(n string) string { return "--" + n },
		Unseen: func(n string) string { return "look for " + n },
		Undo:   func(id string) string { return "revoke " + id },
	}
	err := errors.Join(
		field.Errorf("zones", "%q was not found", "example.org"),
		&UnseenError{Name: "n1", Err: errors.New("create lost")},
		&UndoError{ID: newID, ExpiresOn: expires, Cause: errors.New("bad echo"), DeleteErr: errors.New("403")},
		errors.New("plain"),
	)
	got := ph.Lines(err)
	want := []string{
		`--zones: "example.org" was not found`,
		"create lost; look for n1",
		"bad echo; deleting token " + newID + " also failed (403); it expires at 2026-12-01T12:15:00Z: revoke " + newID,
		"plain",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Lines =\n%q\nwant\n%q", got, want)
	}
}
