package mint

// Edges of the engine that mutation testing found unchecked: each test names the line whose
// change it notices.

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/policy"
)

// zoneTokens is fakeTokens that also reads zones by id.
type zoneTokens struct {
	*fakeTokens
	byID map[string]cftoken.Zone
}

func (z *zoneTokens) GetZone(_ context.Context, id string) (cftoken.Zone, error) {
	z.call("get zone " + id)
	if zone, ok := z.byID[id]; ok {
		return zone, nil
	}
	return cftoken.Zone{}, &cftoken.APIError{Op: "get zone", Status: 404, Details: []cftoken.Detail{{Code: 1001, Message: "Invalid zone identifier"}}}
}

var testGroups = []policy.Group{
	{ID: "g-scripts", Name: "Workers Scripts Write", Scopes: []string{policy.ScopeAccount}},
	{ID: "g-r2", Name: "Workers R2 Storage Write", Scopes: []string{policy.ScopeAccount}},
	{ID: "g-r2-item", Name: "Workers R2 Storage Bucket Item Write", Scopes: []string{policy.ScopeBucket}},
	{ID: "g-dns", Name: "DNS Write", Scopes: []string{policy.ScopeZone}},
}

// planEngine answers the lookups a plan makes: groups, the bootstrap token's verify (active),
// zones by name and by id.
func planEngine(t *testing.T, ui *quietUI) (*Engine, *zoneTokens) {
	f := &zoneTokens{fakeTokens: &fakeTokens{t: t,
		groups: func() ([]policy.Group, error) { return testGroups, nil },
		verify: func(string) (string, error) { return "active", nil },
		zone: func(name string) ([]cftoken.Zone, error) {
			return []cftoken.Zone{{ID: "z-" + name, Name: name, AccountID: acct, Status: "active"}}, nil
		},
	}, byID: map[string]cftoken.Zone{
		"0123456789abcdef0123456789abcdef": {ID: "0123456789abcdef0123456789abcdef", Name: "by-id.example", AccountID: acct, Status: "active"},
		"fedcba9876543210fedcba9876543210": {ID: "fedcba9876543210fedcba9876543210", Name: "second.example", AccountID: acct, Status: "active"},
		"00000000000000000000000000000bad": {ID: "00000000000000000000000000000bad", Name: "elsewhere.example", AccountID: "99999999999999999999999999999999", Status: "active"},
	}}
	return &Engine{Tokens: f, Once: f, UI: ui}, f
}

// TestPlanResolves: a plan that checks out is returned (plan.go:72, :77), with the zones asked
// by name and by id (:48, :125), and the preset's groups (mint.go:124).
func TestPlanResolves(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		names, ids []string
		zones      []string
	}{
		{"by name", []string{"example.com"}, nil, []string{"example.com"}},
		{"by id", nil, []string{"0123456789abcdef0123456789abcdef"}, []string{"by-id.example"}},
		{"both", []string{"example.com"}, []string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"}, []string{"example.com", "by-id.example", "second.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, _ := planEngine(t, &quietUI{})
			p, err := e.Plan(context.Background(), Request{Owner: cftoken.OwnerAccount, AccountID: acct, Preset: "workers-deploy",
				Permissions: []string{"DNS Write"}, ZoneNames: tc.names, ZoneIDs: tc.ids, TTL: time.Minute, CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}})
			if err != nil || p == nil {
				t.Fatalf("Plan: %v, %v", p, err)
			}
			var got []string
			for _, z := range p.Zones {
				got = append(got, z.Name)
			}
			if !slices.Equal(got, tc.zones) {
				t.Errorf("zones %v, want %v", got, tc.zones)
			}
			var groups []string
			for _, pol := range p.Request.Policies {
				for _, g := range pol.Groups {
					groups = append(groups, g.Name)
				}
			}
			slices.Sort(groups)
			if !slices.Equal(groups, []string{"DNS Write", "Workers Scripts Write"}) {
				t.Errorf("groups %v, want the preset's and the line's", groups)
			}
		})
	}
}

// TestZoneOfAnotherAccount: a zone id of another account than account-id is refused, naming
// both (plan.go:323); without account-id it is taken.
func TestZoneOfAnotherAccount(t *testing.T) {
	t.Parallel()
	e, _ := planEngine(t, &quietUI{})
	_, err := e.Zones(context.Background(), nil, []string{"00000000000000000000000000000bad"}, acct)
	if err == nil || !strings.Contains(err.Error(), "belongs to account 99999999999999999999999999999999, not to account-id "+acct) {
		t.Errorf("a zone of another account: %v", err)
	}
	if zs, err := e.Zones(context.Background(), nil, []string{"00000000000000000000000000000bad"}, ""); err != nil || len(zs) != 1 || zs[0].Name != "elsewhere.example" {
		t.Errorf("without account-id: %v, %v", zs, err)
	}
}

// TestPresetBuckets: r2-upload grants item writes on the buckets named, and account-wide
// storage writes, with a notice saying so, without them (mint.go:125, plan.go:85).
func TestPresetBuckets(t *testing.T) {
	t.Parallel()
	with := Request{Preset: "r2-upload", Buckets: []policy.Bucket{{Name: "assets"}}}
	if got := with.Lines(); !slices.Equal(got, []string{"Workers R2 Storage Bucket Item Write"}) {
		t.Errorf("r2-upload with buckets: %v", got)
	}
	without := Request{Preset: "r2-upload", Permissions: []string{"DNS Read"}}
	if got := without.Lines(); !slices.Equal(got, []string{"Workers R2 Storage Write", "DNS Read"}) {
		t.Errorf("r2-upload without buckets: %v", got)
	}
	if got := (&Request{Permissions: []string{"DNS Read"}}).Lines(); !slices.Equal(got, []string{"DNS Read"}) {
		t.Errorf("no preset: %v", got)
	}
	notices := func(r Request) int {
		t.Helper()
		ui := &countUI{}
		e, _ := planEngine(t, nil)
		e.UI = ui
		r.Owner, r.AccountID, r.TTL = cftoken.OwnerAccount, acct, time.Minute
		r.CIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}
		if _, err := e.Plan(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		return ui.n("without r2-buckets")
	}
	if n := notices(Request{Preset: "r2-upload"}); n != 1 {
		t.Errorf("r2-upload without buckets: %d notices, want 1", n)
	}
	if n := notices(Request{Preset: "r2-upload", Buckets: []policy.Bucket{{Name: "assets"}}}); n != 0 {
		t.Errorf("r2-upload with buckets: %d notices, want 0", n)
	}
	if n := notices(Request{Preset: "workers-deploy"}); n != 0 {
		t.Errorf("a preset without bucket groups: %d notices, want 0", n)
	}
}

type countUI struct {
	quietUI
	notices []string
}

func (u *countUI) Noticef(f string, a ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.notices = append(u.notices, f)
}

func (u *countUI) n(sub string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, s := range u.notices {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestCreateAnswered5xx: a create answered 500 (a gateway's error: Cloudflare may have stored the
// token) is looked for by name before it is reported (create.go:39).
func TestCreateAnswered5xx(t *testing.T) {
	t.Parallel()
	f := &fakeTokens{t: t,
		create: func(policy.Request) (*cftoken.Minted, error) {
			return nil, &cftoken.APIError{Op: "create", Status: 500, Details: []cftoken.Detail{{Code: 10000, Message: "internal"}}}
		},
		list: func() ([]cftoken.Listed, error) { return nil, nil },
	}
	_, err := (&Engine{Tokens: f, Once: f, UI: &quietUI{}}).Mint(context.Background(), plan(), Hooks{})
	var ue *UnseenError
	if !errors.As(err, &ue) || !slices.Contains(f.calls, "list") {
		t.Errorf("err %v after calls %v; want the name looked for, and an UnseenError", err, f.calls)
	}
}

// TestCreateSecretWithSpace: a token value with a space in it is not used (create.go:60): it
// would break the header it is sent in.
func TestCreateSecretWithSpace(t *testing.T) {
	t.Parallel()
	deleted := ""
	f := &fakeTokens{t: t,
		create: func(req policy.Request) (*cftoken.Minted, error) {
			m, _ := good(req)
			m.Secret = "cfat_a b"
			return m, nil
		},
		delete: func(id string) error { deleted = id; return nil },
	}
	_, err := (&Engine{Tokens: f, Once: f, UI: &quietUI{}}).Mint(context.Background(), plan(), Hooks{})
	if err == nil || !strings.Contains(err.Error(), "no usable token value") || deleted != newID {
		t.Errorf("err %v, deleted %q; want the token refused and deleted", err, deleted)
	}
}

// TestDeleteByNameCounts: the count is of the tokens deleted (create.go:128).
func TestDeleteByNameCounts(t *testing.T) {
	t.Parallel()
	f := &fakeTokens{t: t,
		list: func() ([]cftoken.Listed, error) {
			return []cftoken.Listed{{ID: "a1", Name: "n", ExpiresOn: expires}, {ID: "a2", Name: "n", ExpiresOn: expires}, {ID: "a3", Name: "other"}}, nil
		},
		delete: func(string) error { return nil },
	}
	n, err := (&Engine{Tokens: f, Once: f, UI: &quietUI{}}).DeleteByName(context.Background(), cftoken.OwnerAccount, acct, "n", expires)
	if err != nil || n != 2 {
		t.Errorf("DeleteByName: %d, %v; want 2", n, err)
	}
}

// TestAskedResources: a refused create names what was asked for, and only that (create.go:173,
// :176, :183, :192).
func TestAskedResources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    Plan
		want string
	}{
		{"nothing", Plan{}, "no resource named"},
		{"account", Plan{AccountID: acct}, "asked for: account " + acct},
		{"zones", Plan{Zones: []policy.Zone{{Name: "a.example"}, {Name: "b.example"}}}, "asked for: zones a.example, b.example"},
		{"buckets", Plan{AccountID: acct, Buckets: []policy.Bucket{{Name: "assets"}, {Jurisdiction: "eu", Name: "logs"}, {Jurisdiction: "default", Name: "x"}}},
			"asked for: account " + acct + "; r2-buckets assets, eu:logs, x in account " + acct},
		{"buckets without account", Plan{Buckets: []policy.Bucket{{Name: "assets"}}}, "asked for: r2-buckets assets"},
	} {
		if got := askedResources(&tc.p); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestEchoUnmasked: Cloudflare may echo a range with host bits set; it is the range asked for
// (create.go:224).
func TestEchoUnmasked(t *testing.T) {
	t.Parallel()
	p := plan()
	p.Request.CIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if err := checkEcho(p, &cftoken.Minted{IPIn: []string{"10.0.0.5/8"}, ExpiresOn: p.Request.ExpiresOn}); err != nil {
		t.Errorf("10.0.0.5/8 for 10.0.0.0/8: %v", err)
	}
	if err := checkEcho(p, &cftoken.Minted{IPIn: []string{"10.0.0.0/16"}, ExpiresOn: p.Request.ExpiresOn}); err == nil {
		t.Error("another range passed the echo check")
	}
}

// TestNameEdges: a name of exactly Cloudflare's limit is kept whole, one byte more is cut and
// hashed (names.go:80); a plain repository of exactly 64 bytes names itself (:105); a part is
// cut at 64 bytes (:165); case folds at A and Z on both sides (:138, :141); a broker name cut
// inside its rule still gives the rule (:208).
func TestNameEdges(t *testing.T) {
	t.Parallel()
	exact := strings.Repeat("a", MaxNameLen)
	if got := capName(exact); got != exact {
		t.Errorf("a name of %d bytes was cut: %q", MaxNameLen, got)
	}
	if got := capName(exact + "b"); len(got) != MaxNameLen || !strings.Contains(got, "~") {
		t.Errorf("a name of %d bytes: %q, want it cut to %d with a hash", MaxNameLen+1, got, MaxNameLen)
	}
	repo := "o/" + strings.Repeat("r", partMax-2)
	if got := repoPart(repo); got != repo {
		t.Errorf("a plain repository of %d bytes: %q, want itself", partMax, got)
	}
	if got := repoPart(repo + "r"); got == repo+"r" || !strings.Contains(got, "~") {
		t.Errorf("a repository of %d bytes: %q, want a hashed part", partMax+1, got)
	}
	if got := Sanitize(strings.Repeat("x", 100), false); len(got) != partMax {
		t.Errorf("Sanitize kept %d bytes, want %d", len(got), partMax)
	}
	for _, c := range [][2]string{{"AZ", "az"}, {"az", "AZ"}, {"Az", "aZ"}} {
		if !asciiEqualFold(c[0], c[1]) {
			t.Errorf("asciiEqualFold(%q, %q) = false", c[0], c[1])
		}
	}
	if asciiEqualFold("@[", "`{") {
		t.Error("asciiEqualFold folds the bytes beside A and Z")
	}
	if got := BrokerRule(BrokerNamePrefix + "1a2b3c:892345611:9876543210.1:n0nce:site-dep~0123456789"); got != "site-dep~0123456789" {
		t.Errorf("the rule of a name cut inside it: %q", got)
	}
	if got := BrokerRule(BrokerNamePrefix + "1a2b3c:892345611:9876543210.1:n0nce"); got != "" {
		t.Errorf("a name without a rule: %q", got)
	}
}

// TestSweepGoneToken: a token that is gone by the time the sweep deletes it is not a failure;
// another failure is (revoke.go:80).
func TestSweepGoneToken(t *testing.T) {
	t.Parallel()
	name := RepoNamePrefix("o/r") + "x"
	f := &fakeTokens{t: t,
		list: func() ([]cftoken.Listed, error) {
			return []cftoken.Listed{{ID: "gone", Name: name, Status: "expired"}, {ID: "stuck", Name: name, Status: "expired"}}, nil
		},
		delete: func(id string) error {
			if id == "gone" {
				return cftoken.ErrNotFound
			}
			return errors.New("connection reset")
		},
	}
	swept, err := (&Engine{Tokens: f, Once: f, UI: &quietUI{}}).Sweep(context.Background(), SweepOptions{Owner: cftoken.OwnerAccount, AccountID: acct, Repo: "o/r"})
	if len(swept) != 2 || swept[0].Err != nil || swept[1].Err == nil || err == nil || strings.Contains(err.Error(), "not found") {
		t.Errorf("swept %+v, err %v; want the gone token swept and the stuck one failed", swept, err)
	}
}
