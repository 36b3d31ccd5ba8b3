// Package mint is cfmint's engine: it plans a token (lookups), mints it (create, echo check,
// verify, undo), revokes and sweeps. It knows no runner, flag or HTTP request: the action, the
// CLI and the broker are its front ends, and each phrases its typed errors for its own user.
package mint

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/policy"
)

// Tokens is what the engine needs from Cloudflare's token API; *cftoken.Client has it.
type Tokens interface {
	PermissionGroups(ctx context.Context, owner cftoken.Owner, accountID string) ([]policy.Group, cftoken.ServerClock, error)
	Verify(ctx context.Context, owner cftoken.Owner, accountID, secret string) (string, error)
	FindZone(ctx context.Context, name string) ([]cftoken.Zone, error)
	GetZone(ctx context.Context, id string) (cftoken.Zone, error)
	Create(ctx context.Context, owner cftoken.Owner, accountID string, req policy.Request) (*cftoken.Minted, error)
	Delete(ctx context.Context, owner cftoken.Owner, accountID, id string) error
	List(ctx context.Context, owner cftoken.Owner, accountID string) ([]cftoken.Listed, cftoken.ServerClock, error)
	Get(ctx context.Context, owner cftoken.Owner, accountID, id string) (cftoken.Listed, error)
}

// UI is where the engine's notices go: the runner's log commands, stderr, or the broker's log.
type UI interface {
	Noticef(format string, args ...any)
	Warningf(format string, args ...any)
	Debugf(format string, args ...any)
}

// Engine mints and revokes with one bootstrap token.
type Engine struct {
	// Tokens calls Cloudflare with the bootstrap token, retrying what can succeed.
	Tokens Tokens
	// Once is the same with one attempt per call: the new token's verify has a retry loop of
	// its own, and a loop inside a loop would multiply the waits.
	Once Tokens
	UI   UI
	// Now is the local clock, used only when Cloudflare's answer to the permission-groups call
	// carries no Date (a sweep then goes by Cloudflare's status alone).
	Now func() time.Time
	// VerifyWindow is how long a new token has to become active; 0 means DefaultVerifyWindow.
	VerifyWindow time.Duration
	// Sleep is how the verify loop waits between tries (cftoken.Options.Sleep); nil: a real
	// timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Options are how New reaches Cloudflare.
type Options struct {
	// BaseURL is the API base; empty: Cloudflare's.
	BaseURL    string
	HTTPClient *http.Client
	// Backoff is the first retry delay of idempotent calls (tests shorten it); 0: cftoken's default.
	Backoff time.Duration
	// Attempts bounds the tries of Tokens' idempotent calls (cftoken.Options.Attempts): 0 is
	// cftoken's default, negative retries until the context ends (a revoke that must not give up).
	Attempts int
	// RequestTimeout bounds one HTTP attempt (tests shorten it); 0: cftoken's default.
	RequestTimeout time.Duration
	// VerifyWindow is how long a new token has to become active; 0: DefaultVerifyWindow.
	VerifyWindow time.Duration
	// Sleep is how every retry waits, cftoken's and the verify loop's: tests pass one that
	// moves a fake clock. Nil: a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	UI    UI
}

// New is an engine that calls Cloudflare with the bootstrap token.
func New(token string, o Options) *Engine {
	co := cftoken.Options{BaseURL: o.BaseURL, HTTPClient: o.HTTPClient, Backoff: o.Backoff, Attempts: o.Attempts, RequestTimeout: o.RequestTimeout, Sleep: o.Sleep}
	once := co
	once.Attempts = 1
	return &Engine{Tokens: cftoken.New(token, co), Once: cftoken.New(token, once), UI: o.UI, VerifyWindow: o.VerifyWindow, Sleep: o.Sleep}
}

// DefaultVerifyWindow is how long a new token has, by default, to become active.
const DefaultVerifyWindow = 15 * time.Second

func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	if e.Sleep != nil {
		return e.Sleep(ctx, d)
	}
	return cftoken.Sleep(ctx, d)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Request is what a front end asks the engine to mint, every field already validated.
type Request struct {
	Owner       cftoken.Owner
	AccountID   string
	Preset      string
	Permissions []string // permission lines as the user wrote them
	ZoneNames   []string
	ZoneIDs     []string
	AllZones    bool
	Buckets     []policy.Bucket
	TTL         time.Duration
	Name        string
	// CIDRs are fixed ranges the token is pinned to.
	CIDRs []netip.Prefix
	// Pin, when set, finds more ranges (the runner's own address) while the lookups run; it
	// returns a *field.Error the front end can phrase when it cannot.
	Pin func(ctx context.Context) ([]netip.Prefix, error)
	// AllowLastingAccess lets the request grant groups that create credentials or identities
	// which outlive the token.
	AllowLastingAccess bool
}

// Lines are the permission lines a request asks for: its preset's groups, then its own lines.
func (r *Request) Lines() []string {
	var lines []string
	if r.Preset != "" {
		lines = append(lines, policy.ExpandPreset(r.Preset, len(r.Buckets) > 0)...)
	}
	return append(lines, r.Permissions...)
}

// Plan is a resolved request: what would be sent, and what it means.
type Plan struct {
	Owner     cftoken.Owner
	AccountID string
	Request   policy.Request
	Zones     []policy.Zone
	Buckets   []policy.Bucket
	TTL       time.Duration
}

// HasR2 reports whether the token carries an R2 permission, and so has S3 credentials.
func (p *Plan) HasR2() bool {
	for _, pol := range p.Request.Policies {
		for _, g := range pol.Groups {
			if strings.HasPrefix(g.Name, "Workers R2 Storage") {
				return true
			}
		}
	}
	return false
}

// Hooks let the front end act at the moments that matter for safety. Any may be nil.
type Hooks struct {
	// Creating is called just before the create is sent: if the process dies with the create in
	// flight, what it records lets a later look find the token by its name.
	Creating func(p *Plan)
	// Created is called with the new token's id as soon as it is known, before anything else.
	Created func(id string)
	// Settled is called when a failed create has a clear outcome: nothing is left to look for.
	Settled func()
	// Undone is called when the engine deleted the token it had created.
	Undone func(id string)
	// Mask is called with each new secret before it is used anywhere.
	Mask func(secret string)
}

func call(f func()) {
	if f != nil {
		f()
	}
}
