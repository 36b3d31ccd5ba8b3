package cfapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"
	"github.com/cloudflare/cloudflare-go/v6/zones"
)

// TestMain warms cloudflare-go's JSON encoders before tests run in
// parallel. In v6.10.0, apijson builds the encoder for an interface-typed
// field (a policy's resources) on first use and, while doing so, writes to
// an encoder value shared through its cache: two goroutines creating their
// first tokens at once are a data race the race detector reports. Once each
// concrete type has been encoded, later encodings only read the cache.
func TestMain(m *testing.M) {
	for _, res := range []shared.TokenPolicyResourcesUnionParam{
		shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam{"k": "*"},
		shared.TokenPolicyResourcesIAMResourcesTypeObjectNestedParam{"k": {"k": "*"}},
	} {
		p := []shared.TokenPolicyParam{{
			Effect:           cloudflare.F(shared.TokenPolicyEffectAllow),
			PermissionGroups: cloudflare.F([]shared.TokenPolicyPermissionGroupParam{{ID: cloudflare.F("x")}}),
			Resources:        cloudflare.F(res),
		}}
		_, err1 := user.TokenNewParams{Name: cloudflare.F("x"), Policies: cloudflare.F(p), ExpiresOn: cloudflare.F(testStart),
			Condition: cloudflare.F(user.TokenNewParamsCondition{RequestIP: cloudflare.F(user.TokenNewParamsConditionRequestIP{In: cloudflare.F([]string{"x"})})})}.MarshalJSON()
		_, err2 := accounts.TokenNewParams{Name: cloudflare.F("x"), Policies: cloudflare.F(p), ExpiresOn: cloudflare.F(testStart),
			Condition: cloudflare.F(accounts.TokenNewParamsCondition{RequestIP: cloudflare.F(accounts.TokenNewParamsConditionRequestIP{In: cloudflare.F([]string{"x"})})})}.MarshalJSON()
		if err := errors.Join(err1, err2); err != nil {
			fmt.Fprintln(os.Stderr, "failed to warm the SDK's encoders:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// testStart is where every test clock starts.
var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// world is a started, seeded server with a manual clock.
type world struct {
	*Server
	Fixture
	clock *Clock
}

func newWorld(t *testing.T, opts ...Option) *world {
	t.Helper()
	clock := NewClock(testStart)
	s := New(append([]Option{WithClock(clock.Now)}, opts...)...)
	if err := s.Start(); err != nil {
		t.Fatalf("failed to start: %v", err)
	}
	t.Cleanup(s.Close)
	return &world{Server: s, Fixture: s.Seed(), clock: clock}
}

// clientFrom returns an HTTP client whose connections leave from ip, another
// loopback address on Linux, where all of 127/8 reaches lo.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
}

var defaultClient = clientFrom("127.0.0.1")

// sdk returns the options the real cloudflare-go client needs to talk to the
// fake with secret, and nothing from the environment.
func (w *world) sdk(secret string, extra ...option.RequestOption) []option.RequestOption {
	return append([]option.RequestOption{
		option.WithBaseURL(w.URL() + "/"),
		option.WithAPIToken(secret),
		option.WithMaxRetries(0),
		option.WithHTTPClient(defaultClient),
	}, extra...)
}

func (w *world) userTokens(secret string, extra ...option.RequestOption) *user.TokenService {
	return user.NewTokenService(w.sdk(secret, extra...)...)
}

func (w *world) accountTokens(secret string, extra ...option.RequestOption) *accounts.TokenService {
	return accounts.NewTokenService(w.sdk(secret, extra...)...)
}

func (w *world) zoneService(secret string) *zones.ZoneService {
	return zones.NewZoneService(w.sdk(secret)...)
}

// wantAPIError checks that err is Cloudflare's answer with this status and
// first error code.
func wantAPIError(t *testing.T, err error, status, code int) {
	t.Helper()
	var apiErr *user.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want an API error %d/%d", err, status, code)
	}
	if apiErr.StatusCode != status || len(apiErr.Errors) == 0 || apiErr.Errors[0].Code != int64(code) {
		t.Fatalf("error = %d %+v, want %d with code %d", apiErr.StatusCode, apiErr.Errors, status, code)
	}
}

// answer is a decoded raw API answer.
type answer struct {
	Status  int
	Header  http.Header
	Body    []byte
	JSONErr error // set when a JSON answer does not decode
	Env     struct {
		Success    bool            `json:"success"`
		Errors     []apiError      `json:"errors"`
		Messages   []apiError      `json:"messages"`
		Result     json.RawMessage `json:"result"`
		ResultInfo *resultInfo     `json:"result_info"`
	}
}

// code is the first error code, 0 when none.
func (a answer) code() int {
	if len(a.Env.Errors) == 0 {
		return 0
	}
	return a.Env.Errors[0].Code
}

func (a answer) message() string {
	if len(a.Env.Errors) == 0 {
		return ""
	}
	return a.Env.Errors[0].Message
}

func (a answer) result(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Env.Result, v); err != nil {
		t.Fatalf("failed to decode result %s: %v", a.Env.Result, err)
	}
}

// do sends a raw request: path is below /client/v4 unless it starts with
// /cdn-cgi/. body is sent as is when it is a string, else as JSON.
func (w *world) do(t *testing.T, client *http.Client, method, path, secret string, body any) answer {
	t.Helper()
	return w.doHeader(t, client, method, path, body, http.Header{"Authorization": {"Bearer " + secret}})
}

func (w *world) doHeader(t *testing.T, client *http.Client, method, path string, body any, h http.Header) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("failed to encode body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	url := "http://" + w.Host() + path
	if !strings.HasPrefix(path, "/cdn-cgi/") {
		url = w.URL() + path
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		t.Fatalf("failed to build request: %v", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	a := answer{Status: res.StatusCode, Header: res.Header}
	if a.Body, err = io.ReadAll(res.Body); err != nil {
		t.Fatalf("failed to read answer: %v", err)
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		a.JSONErr = json.Unmarshal(a.Body, &a.Env)
	}
	return a
}

// wantError checks a raw answer's status and first error code.
func wantError(t *testing.T, a answer, status, code int) {
	t.Helper()
	if a.Status != status || a.code() != code || a.Env.Success {
		t.Fatalf("answer = %d %s, want %d with code %d", a.Status, a.Body, status, code)
	}
}

func wantOK(t *testing.T, a answer) {
	t.Helper()
	if a.Status != http.StatusOK || !a.Env.Success {
		t.Fatalf("answer = %d %s, want 200 success", a.Status, a.Body)
	}
}

// unknownSecret has the shape of a token but was never issued.
var unknownSecret = "cfut_" + strings.Repeat("Z", 43)

// createBody is a minimal create payload.
func createBody(name string, policies ...map[string]any) map[string]any {
	return map[string]any{"name": name, "policies": policies}
}

func allowPolicy(resources map[string]any, groupIDs ...string) map[string]any {
	var groups []map[string]any
	for _, id := range groupIDs {
		groups = append(groups, map[string]any{"id": id})
	}
	return map[string]any{"effect": "allow", "permission_groups": groups, "resources": resources}
}

// gid is the id of a seed group.
func gid(t *testing.T, name, scope string) string {
	t.Helper()
	g, ok := catalog().byNameScope[groupKey{name, scope}]
	if !ok {
		t.Fatalf("no seed group %q in %s", name, scope)
	}
	return g.ID
}

func acctKey(id string) string { return prefixAccount + id }
func zoneKey(id string) string { return prefixZone + id }
func userKey(id string) string { return prefixUser + id }

func allZonesOf(acct string) map[string]any {
	return map[string]any{acctKey(acct): map[string]any{"com.cloudflare.api.account.zone.*": "*"}}
}

// issue stores a token directly and fails the test on error.
func (w *world) issue(t *testing.T, spec TokenSpec) Bootstrap {
	t.Helper()
	id, secret, err := w.IssueToken(spec)
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	return Bootstrap{ID: id, Secret: secret}
}
