// Package cftoken is the only package that talks to Cloudflare's API (through cloudflare-go): permission groups, zones, and creating, verifying, listing and deleting tokens.
package cftoken

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/accounts"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/user"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/cfmint/cfmint/internal/policy"
)

// Owner says who owns a token: "account" or "user".
type Owner string

// The two owners.
const (
	OwnerAccount Owner = "account"
	OwnerUser    Owner = "user"
)

// ParseOwner reads an owner as a user writes it (the action's token-owner input, a trust
// policy's token_owner): account or user, in any case; empty is account. ok is false for
// anything else.
func ParseOwner(s string) (o Owner, ok bool) {
	switch strings.ToLower(s) {
	case "", string(OwnerAccount):
		return OwnerAccount, true
	case string(OwnerUser):
		return OwnerUser, true
	}
	return "", false
}

// DefaultBaseURL is Cloudflare's API.
const DefaultBaseURL = "https://api.cloudflare.com/client/v4"

// Options configure a Client.
type Options struct {
	BaseURL    string       // API base, e.g. https://api.cloudflare.com/client/v4
	HTTPClient *http.Client // required
	// Attempts bounds tries of an idempotent call (lookups, list, delete); default 4. Negative:
	// no bound but the context's deadline (for a revoke, where giving up leaves a live token).
	Attempts int
	// Backoff is the first retry's delay, doubled each time and jittered; default 500ms.
	Backoff time.Duration
	// RequestTimeout bounds one HTTP attempt; default 20s.
	RequestTimeout time.Duration
	// OnRateLimit, when set, is called with Cloudflare's own count after every answer that
	// states it (Ratelimit headers, see RateLimit), errors and 429s included, so a caller can
	// budget from Cloudflare's count rather than its own. It runs on the calling goroutine,
	// before the call returns; it must not block.
	OnRateLimit func(RateLimit)
	// Sleep, when set, is how a retry waits (the backoff and a 429's Retry-After alike): it
	// returns when d has passed, or with an error when ctx ends first. Tests pass one that moves
	// a fake clock instead of waiting. Nil: a real timer (Sleep, below).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Sleep waits d on a real timer, or until ctx ends (then it returns ctx's error). It is the
// default of Options.Sleep.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Client calls Cloudflare with one token.
type Client struct {
	o     Options
	base  []option.RequestOption
	token []option.RequestOption

	mu       sync.Mutex
	lastRate RateLimit
	rateSeen bool
}

// New returns a client that authenticates with token. Every SDK option is explicit: the SDK's
// NewClient would also pick up CLOUDFLARE_API_TOKEN, CLOUDFLARE_API_KEY and friends from the
// environment, and a job's environment may hold other credentials.
func New(token string, o Options) *Client {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.Attempts == 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 20 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	base := []option.RequestOption{
		option.WithBaseURL(strings.TrimRight(o.BaseURL, "/") + "/"),
		option.WithHTTPClient(o.HTTPClient),
		// The SDK retries ten times by default, POST included: a retried create can mint a second
		// token. cfmint retries idempotent calls itself and never retries a create.
		option.WithMaxRetries(0),
		option.WithRequestTimeout(o.RequestTimeout),
	}
	c := &Client{o: o, token: []option.RequestOption{option.WithAPIToken(token)}}
	c.base = append(base, option.WithMiddleware(c.readRateLimit))
	return c
}

// readRateLimit notes the Ratelimit headers of every answer.
func (c *Client) readRateLimit(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	if res == nil {
		return res, err
	}
	if rl, ok := ParseRateLimit(res.Header); ok {
		c.mu.Lock()
		c.lastRate, c.rateSeen = rl, true
		c.mu.Unlock()
		if c.o.OnRateLimit != nil {
			c.o.OnRateLimit(rl)
		}
	}
	return res, err
}

// LastRateLimit is Cloudflare's count as the latest answer that stated it had it; ok is false
// until one did.
func (c *Client) LastRateLimit() (rl RateLimit, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastRate, c.rateSeen
}

func (c *Client) opts(extra ...option.RequestOption) []option.RequestOption {
	out := append([]option.RequestOption{}, c.base...)
	out = append(out, c.token...)
	return append(out, extra...)
}

// retry runs an idempotent call until it succeeds, fails for good, runs out of attempts or the
// context ends. Only 429, 5xx and transport errors are tried again; a 429's Retry-After is honoured.
func (c *Client) retry(ctx context.Context, call func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = call()
		if err == nil || (c.o.Attempts > 0 && attempt >= c.o.Attempts) || ctx.Err() != nil {
			return err
		}
		wait := c.o.Backoff << min(attempt-1, 5) // at most 32 times the first delay
		wait = wait/2 + rand.N(wait/2+1)         // jitter, so concurrent jobs do not retry in step
		switch e := err.(type) {
		case *APIError:
			if !e.Retryable() {
				return err
			}
			if e.RetryAfter > wait {
				wait = e.RetryAfter
			}
		case *TransportError:
			var ce *tls.CertificateVerificationError
			if errors.As(e.Err, &ce) {
				// A certificate that failed verification fails the same way next time.
				return err
			}
		default:
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		if c.o.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// PermissionGroups lists the groups the owner's tokens may be granted. It also returns the time
// on Cloudflare's clock when the answer was sent (its Date header), measured against the local
// monotonic clock, so that an expiry can be set on Cloudflare's clock.
//
// The list may page (2026 reports; the spec shows one page, and the SDK reads only one): it asks
// for groupsPerPage a page and follows result_info's total_pages. An answer without result_info
// is the whole list. A list shorter than its own total_count fails rather than leave a group
// unknown.
func (c *Client) PermissionGroups(ctx context.Context, owner Owner, accountID string) ([]policy.Group, ServerClock, error) {
	var info pageInfo
	read := 0
	out, clock, err := pages(ctx, c, maxGroupPages, func(page int, raw **http.Response) ([]policy.Group, bool, error) {
		got, i, err := c.groupPage(ctx, owner, accountID, page, raw)
		info, read = i, page
		return got, info.TotalPages > page && len(got) > 0, err
	})
	if err != nil {
		return nil, ServerClock{}, err
	}
	if info.TotalCount > len(out) {
		return nil, ServerClock{}, &TransportError{Op: "list permission groups", Err: fmt.Errorf("Cloudflare counted %d groups but %d pages held only %d", info.TotalCount, read, len(out))}
	}
	return out, clock, nil
}

// pages reads a list page after page, each page with its retries, until fetch says there is no
// more or maxPages were read (against an answer that never says it is the last), and returns
// Cloudflare's clock as of the first page's answer.
func pages[T any](ctx context.Context, c *Client, maxPages int, fetch func(page int, raw **http.Response) (got []T, more bool, err error)) ([]T, ServerClock, error) {
	var out []T
	var clock ServerClock
	for page := 1; ; page++ {
		var got []T
		var more bool
		var raw *http.Response
		err := c.retry(ctx, func() error {
			var err error
			got, more, err = fetch(page, &raw)
			return err
		})
		if err != nil {
			return nil, ServerClock{}, err
		}
		if page == 1 {
			clock = newServerClock(raw)
		}
		out = append(out, got...)
		if !more || page >= maxPages {
			return out, clock, nil
		}
	}
}

// groupsPerPage is the page size asked for: above the 392 groups reported in 2026, so that one
// page is the usual answer (unverified which sizes Cloudflare takes: a smaller page is followed).
const groupsPerPage = 500

// maxGroupPages bounds the pages followed, against an answer that never says it is the last.
const maxGroupPages = 100

// pageInfo is the part of result_info that paging reads.
type pageInfo struct {
	Page       int `json:"page"`
	TotalPages int `json:"total_pages"`
	TotalCount int `json:"total_count"`
}

// groupPage reads one page of permission groups.
func (c *Client) groupPage(ctx context.Context, owner Owner, accountID string, page int, raw **http.Response) ([]policy.Group, pageInfo, error) {
	const op = "list permission groups"
	opts := c.opts(option.WithResponseInto(raw),
		option.WithQuery("page", strconv.Itoa(page)), option.WithQuery("per_page", strconv.Itoa(groupsPerPage)))
	var out []policy.Group
	var envelope string
	if owner == OwnerUser {
		res, err := user.NewTokenPermissionGroupService().List(ctx, user.TokenPermissionGroupListParams{}, opts...)
		if err != nil {
			return nil, pageInfo{}, reduce(op, err)
		}
		for _, g := range res.Result {
			out = append(out, policy.Group{ID: g.ID, Name: g.Name, Scopes: scopes(g.Scopes)})
		}
		envelope = res.JSON.RawJSON()
	} else {
		res, err := accounts.NewTokenPermissionGroupService().List(ctx, acctGroups(accountID), opts...)
		if err != nil {
			return nil, pageInfo{}, reduce(op, err)
		}
		for _, g := range res.Result {
			out = append(out, policy.Group{ID: g.ID, Name: g.Name, Scopes: scopes(g.Scopes)})
		}
		envelope = res.JSON.RawJSON()
	}
	var env struct {
		ResultInfo *pageInfo `json:"result_info"`
	}
	if err := json.Unmarshal([]byte(envelope), &env); err != nil {
		return nil, pageInfo{}, &TransportError{Op: op, Err: errors.New("its answer could not be read")}
	}
	if env.ResultInfo == nil {
		return out, pageInfo{Page: page, TotalPages: page}, nil
	}
	return out, *env.ResultInfo, nil
}

func scopes[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// ServerClock reads Cloudflare's clock: the Date of an answer plus the time elapsed since.
type ServerClock struct {
	date time.Time // zero when the answer had no Date
	at   time.Time // local time (with monotonic reading) when the answer arrived
}

func newServerClock(res *http.Response) ServerClock {
	sc := ServerClock{at: time.Now()}
	if res != nil {
		if d, err := http.ParseTime(res.Header.Get("Date")); err == nil {
			sc.date = d
		}
	}
	return sc
}

// ClockAt is a ServerClock that read date just now: for fakes of the token API.
func ClockAt(date time.Time) ServerClock {
	return ServerClock{date: date, at: time.Now()}
}

// Now is Cloudflare's time now, or ok=false when no Date header was seen.
func (s ServerClock) Now() (t time.Time, ok bool) {
	if s.date.IsZero() {
		return time.Time{}, false
	}
	return s.date.Add(time.Since(s.at)).UTC(), true
}

// Zone is a zone with its account and status ("active", "pending", "moved", ...).
type Zone struct {
	ID, Name, AccountID, Status string
}

// FindZone looks a zone up by name among those the token can read.
func (c *Client) FindZone(ctx context.Context, name string) ([]Zone, error) {
	var out []Zone
	err := c.retry(ctx, func() error {
		out = out[:0]
		page, err := zones.NewZoneService().List(ctx, zoneList(name), c.opts()...)
		if err != nil {
			return reduce(fmt.Sprintf("look up zone %q", name), err)
		}
		for _, z := range page.Result {
			if strings.EqualFold(z.Name, name) {
				out = append(out, Zone{ID: z.ID, Name: z.Name, AccountID: z.Account.ID, Status: string(z.Status)})
			}
		}
		return nil
	})
	return out, err
}

// GetZone reads one zone by id.
func (c *Client) GetZone(ctx context.Context, id string) (Zone, error) {
	var out Zone
	err := c.retry(ctx, func() error {
		z, err := zones.NewZoneService().Get(ctx, zoneGet(id), c.opts()...)
		if err != nil {
			return reduce(fmt.Sprintf("look up zone %s", id), err)
		}
		out = Zone{ID: z.ID, Name: z.Name, AccountID: z.Account.ID, Status: string(z.Status)}
		return nil
	})
	return out, err
}

// Minted is a token as the create call answered it.
type Minted struct {
	ID        string
	Secret    string // the value: shown once, never to be printed
	Name      string
	Status    string
	ExpiresOn time.Time
	IPIn      []string
	IPNotIn   []string
}

// Create creates a token. It is never retried: if the answer is lost, the token may exist, and a
// second POST would mint a second one. The caller cleans up by name instead.
func (c *Client) Create(ctx context.Context, owner Owner, accountID string, req policy.Request) (*Minted, error) {
	const op = "create the token"
	warmEncoders.Do(warmCreateEncoders)
	if owner == OwnerUser {
		res, err := user.NewTokenService().New(ctx, userCreate(req), c.opts()...)
		if err != nil {
			return nil, reduce(op, err)
		}
		if !ValidID(res.ID) {
			return nil, &TransportError{Op: op, Err: errors.New("its answer carried no valid token id")}
		}
		return &Minted{ID: res.ID, Secret: res.Value, Name: res.Name, Status: string(res.Status), ExpiresOn: res.ExpiresOn, IPIn: res.Condition.RequestIP.In, IPNotIn: res.Condition.RequestIP.NotIn}, nil
	}
	res, err := accounts.NewTokenService().New(ctx, accountCreate(accountID, req), c.opts()...)
	if err != nil {
		return nil, reduce(op, err)
	}
	if !ValidID(res.ID) {
		return nil, &TransportError{Op: op, Err: errors.New("its answer carried no valid token id")}
	}
	return &Minted{ID: res.ID, Secret: res.Value, Name: res.Name, Status: string(res.Status), ExpiresOn: res.ExpiresOn, IPIn: res.Condition.RequestIP.In, IPNotIn: res.Condition.RequestIP.NotIn}, nil
}

// warmEncoders makes the first Create of the process build cloudflare-go's JSON encoders for
// every shape of create body before any other goroutine can. The SDK's encoder
// (internal/apijson, v6.10.0) caches closures that share one encoder value and write to it while
// they build the encoder of a type not cached yet, so two creates of a new shape at once race
// (the race detector shows it when the broker mints concurrently). Marshalling the shapes once,
// here, sends nothing.
var warmEncoders sync.Once

func warmCreateEncoders() {
	exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	group := []policy.Group{{ID: "00000000000000000000000000000000"}}
	for _, res := range []map[string]any{
		{"com.cloudflare.api.account.zone.0": "*"},
		{"com.cloudflare.api.account.0": map[string]any{"com.cloudflare.api.account.zone.*": "*"}},
	} {
		for _, cidrs := range [][]netip.Prefix{nil, {netip.MustParsePrefix("192.0.2.1/32")}} {
			req := policy.Request{Name: "warm-up", Policies: []policy.Policy{{Groups: group, Resources: res}}, CIDRs: cidrs, ExpiresOn: exp}
			_, _ = json.Marshal(userCreate(req))
			_, _ = json.Marshal(accountCreate("0", req))
		}
	}
}

// CreateRequest is the path (below the API base) and JSON body that Create sends, for a dry run:
// the same SDK types marshal it, so what is shown is what would be sent.
func CreateRequest(owner Owner, accountID string, req policy.Request) (string, []byte, error) {
	if owner == OwnerUser {
		b, err := json.Marshal(userCreate(req))
		return "user/tokens", b, err
	}
	b, err := json.Marshal(accountCreate(accountID, req))
	return "accounts/" + accountID + "/tokens", b, err
}

func policyParams(req policy.Request) []shared.TokenPolicyParam {
	pols := make([]shared.TokenPolicyParam, 0, len(req.Policies))
	for _, p := range req.Policies {
		groups := make([]shared.TokenPolicyPermissionGroupParam, len(p.Groups))
		for i, g := range p.Groups {
			groups[i].ID.Value, groups[i].ID.Present = g.ID, true
		}
		var tp shared.TokenPolicyParam
		tp.Effect.Value, tp.Effect.Present = shared.TokenPolicyEffectAllow, true
		tp.PermissionGroups.Value, tp.PermissionGroups.Present = groups, true
		tp.Resources.Value, tp.Resources.Present = resources(p.Resources), true
		pols = append(pols, tp)
	}
	return pols
}

func cidrStrings(req policy.Request) []string {
	var cidrs []string
	for _, p := range req.CIDRs {
		cidrs = append(cidrs, p.String())
	}
	return cidrs
}

// userCreate and accountCreate fill the SDK's create params. The condition is left out when there
// are no CIDRs (ip-filter: none), and not_before always: a runner clock ahead of Cloudflare's
// would make the token not yet valid.
func userCreate(req policy.Request) user.TokenNewParams {
	var body user.TokenNewParams
	body.Name.Value, body.Name.Present = req.Name, true
	body.Policies.Value, body.Policies.Present = policyParams(req), true
	body.ExpiresOn.Value, body.ExpiresOn.Present = req.ExpiresOn.UTC(), true
	if cidrs := cidrStrings(req); len(cidrs) > 0 {
		body.Condition.Present = true
		body.Condition.Value.RequestIP.Present = true
		body.Condition.Value.RequestIP.Value.In.Value, body.Condition.Value.RequestIP.Value.In.Present = cidrs, true
	}
	return body
}

func accountCreate(accountID string, req policy.Request) accounts.TokenNewParams {
	var body accounts.TokenNewParams
	body.AccountID.Value, body.AccountID.Present = accountID, true
	body.Name.Value, body.Name.Present = req.Name, true
	body.Policies.Value, body.Policies.Present = policyParams(req), true
	body.ExpiresOn.Value, body.ExpiresOn.Present = req.ExpiresOn.UTC(), true
	if cidrs := cidrStrings(req); len(cidrs) > 0 {
		body.Condition.Present = true
		body.Condition.Value.RequestIP.Present = true
		body.Condition.Value.RequestIP.Value.In.Value, body.Condition.Value.RequestIP.Value.In.Present = cidrs, true
	}
	return body
}

// resources converts a policy's resource map to the SDK's union; policy.Build never mixes flat
// and nested forms in one map.
func resources(m map[string]any) shared.TokenPolicyResourcesUnionParam {
	flat := shared.TokenPolicyResourcesIAMResourcesTypeObjectStringParam{}
	nested := shared.TokenPolicyResourcesIAMResourcesTypeObjectNestedParam{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			flat[k] = v
		case map[string]any:
			inner := map[string]string{}
			for ik, iv := range v {
				inner[ik] = fmt.Sprint(iv)
			}
			nested[k] = inner
		}
	}
	if len(nested) > 0 {
		return nested
	}
	return flat
}

// Verify checks a token with the token itself, so it needs no permission: secret, or the
// client's own token when secret is empty. It answers "active" (or another status) for a token
// Cloudflare knows. It is idempotent, so retried like a lookup.
func (c *Client) Verify(ctx context.Context, owner Owner, accountID, secret string) (string, error) {
	opts := c.opts()
	if secret != "" {
		opts = c.opts(option.WithAPIToken(secret))
	}
	const op = "verify the token"
	var status string
	err := c.retry(ctx, func() error {
		if owner == OwnerUser {
			res, err := user.NewTokenService().Verify(ctx, opts...)
			if err != nil {
				return reduce(op, err)
			}
			status = string(res.Status)
			return nil
		}
		res, err := accounts.NewTokenService().Verify(ctx, acctVerify(accountID), opts...)
		if err != nil {
			return reduce(op, err)
		}
		status = string(res.Status)
		return nil
	})
	return status, err
}

// Delete deletes a token, retrying what can succeed. A token that does not exist gives
// ErrNotFound: for a revoke that means it is already gone.
func (c *Client) Delete(ctx context.Context, owner Owner, accountID, id string) error {
	op := "delete token " + id
	return c.retry(ctx, func() error {
		var err error
		if owner == OwnerUser {
			_, err = user.NewTokenService().Delete(ctx, id, c.opts()...)
		} else {
			_, err = accounts.NewTokenService().Delete(ctx, id, acctDelete(accountID), c.opts()...)
		}
		err = reduce(op, err)
		if ae, ok := err.(*APIError); ok && ae.Status == http.StatusNotFound {
			return ErrNotFound
		}
		return err
	})
}

// Get reads one token's record (no secret). A token that does not exist gives ErrNotFound.
func (c *Client) Get(ctx context.Context, owner Owner, accountID, id string) (Listed, error) {
	op := "read token " + id
	var out Listed
	err := c.retry(ctx, func() error {
		var t *shared.Token
		var err error
		if owner == OwnerUser {
			t, err = user.NewTokenService().Get(ctx, id, c.opts()...)
		} else {
			t, err = accounts.NewTokenService().Get(ctx, id, acctGet(accountID), c.opts()...)
		}
		err = reduce(op, err)
		if ae, ok := err.(*APIError); ok && ae.Status == http.StatusNotFound {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !ValidID(t.ID) {
			return &TransportError{Op: op, Err: errors.New("its answer carried no valid token id")}
		}
		out = Listed{ID: t.ID, Name: t.Name, Status: string(t.Status), IssuedOn: t.IssuedOn, ExpiresOn: t.ExpiresOn}
		return nil
	})
	return out, err
}

// Listed is a token as the list call shows it (no secret).
type Listed struct {
	ID, Name, Status    string
	IssuedOn, ExpiresOn time.Time
}

// List lists every token of the owner, page by page. It also returns Cloudflare's clock as of
// the first page's answer (its Date header), so that a sweep can tell expired and old tokens on
// Cloudflare's clock rather than the runner's.
func (c *Client) List(ctx context.Context, owner Owner, accountID string) ([]Listed, ServerClock, error) {
	ts, clock, err := pages(ctx, c, 1000, func(page int, raw **http.Response) ([]shared.Token, bool, error) {
		return c.listPage(ctx, owner, accountID, page, raw)
	})
	if err != nil {
		return nil, ServerClock{}, err
	}
	var out []Listed
	for _, t := range ts {
		if !ValidID(t.ID) {
			continue // never put an id Cloudflare did not form into a path or a file command
		}
		out = append(out, Listed{ID: t.ID, Name: t.Name, Status: string(t.Status), IssuedOn: t.IssuedOn, ExpiresOn: t.ExpiresOn})
	}
	return out, clock, nil
}

// includeExpired asks the list for expired tokens too (the API's default leaves them out, and
// the SDK's params have no field for it): they still exist, and count against the quota, until
// deleted, and a sweep or a clean-up by name must see them.
var includeExpired = option.WithQuery("include_expired", "true")

// listPage reads one page; the SDK does not parse total_pages, so a full page means "look again".
func (c *Client) listPage(ctx context.Context, owner Owner, accountID string, page int, raw **http.Response) ([]shared.Token, bool, error) {
	const perPage = 50
	const op = "list tokens"
	if owner == OwnerUser {
		res, err := user.NewTokenService().List(ctx, userList(page, perPage), c.opts(includeExpired, option.WithResponseInto(raw))...)
		if err != nil {
			return nil, false, reduce(op, err)
		}
		return res.Result, len(res.Result) == perPage, nil
	}
	res, err := accounts.NewTokenService().List(ctx, acctList(accountID, page, perPage), c.opts(includeExpired, option.WithResponseInto(raw))...)
	if err != nil {
		return nil, false, reduce(op, err)
	}
	return res.Result, len(res.Result) == perPage, nil
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ValidID reports whether id has the form of Cloudflare's ids (a token's, an account's, a
// zone's): 32 lower-case hex characters. Callers lower-case what users may write in either case.
func ValidID(id string) bool { return hexID.MatchString(id) }

// PrefixFor returns the CIDR of one address: /32 or /128.
func PrefixFor(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// The SDK's param.Field lives in an internal package, and its F helper in the root package, which
// would link every Cloudflare product into the binary (twice its size); so fields are set by hand.

func acctGroups(accountID string) accounts.TokenPermissionGroupListParams {
	var p accounts.TokenPermissionGroupListParams
	p.AccountID.Value, p.AccountID.Present = accountID, true
	return p
}

func acctVerify(accountID string) accounts.TokenVerifyParams {
	var p accounts.TokenVerifyParams
	p.AccountID.Value, p.AccountID.Present = accountID, true
	return p
}

func acctGet(accountID string) accounts.TokenGetParams {
	var p accounts.TokenGetParams
	p.AccountID.Value, p.AccountID.Present = accountID, true
	return p
}

func acctDelete(accountID string) accounts.TokenDeleteParams {
	var p accounts.TokenDeleteParams
	p.AccountID.Value, p.AccountID.Present = accountID, true
	return p
}

func zoneList(name string) zones.ZoneListParams {
	var p zones.ZoneListParams
	p.Name.Value, p.Name.Present = name, true
	p.PerPage.Value, p.PerPage.Present = 50, true
	return p
}

func zoneGet(id string) zones.ZoneGetParams {
	var p zones.ZoneGetParams
	p.ZoneID.Value, p.ZoneID.Present = id, true
	return p
}

func userList(page, perPage int) user.TokenListParams {
	var p user.TokenListParams
	p.Page.Value, p.Page.Present = float64(page), true
	p.PerPage.Value, p.PerPage.Present = float64(perPage), true
	return p
}

func acctList(accountID string, page, perPage int) accounts.TokenListParams {
	var p accounts.TokenListParams
	p.AccountID.Value, p.AccountID.Present = accountID, true
	p.Page.Value, p.Page.Present = float64(page), true
	p.PerPage.Value, p.PerPage.Present = float64(perPage), true
	return p
}
