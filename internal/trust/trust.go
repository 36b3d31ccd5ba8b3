// Package trust owns the broker's trust policy: it parses and validates the policy file, matches
// an ID token's claims to its rules and decides what a request may mint. It does no I/O.
//
// A Policy is immutable once parsed; reloading means parsing again and swapping the pointer, so
// the package keeps no globals.
package trust

import (
	"net/netip"
	"regexp"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/config"
	"github.com/cfmint/cfmint/internal/policy"
)

// Bounds of a rule's max_ttl. The ceiling and floor are the ttl input's, so that a rule can never
// allow what the action itself would refuse.
const (
	DefaultMaxTTL = time.Hour
	MinMaxTTL     = config.MinTTL
	MaxMaxTTL     = config.MaxTTL
)

// MaxPolicySize bounds the policy file Parse reads: a trust policy is a page of YAML written by
// hand, and anything much larger is a mistake (or a file that is not the policy).
const MaxPolicySize = 1 << 20

// Policy is a parsed, validated trust policy. Its methods never change it, so one *Policy may be
// shared by every request while a reload builds the next.
type Policy struct {
	audience string
	rules    []*Rule
	issuers  []string
	warnings []string
}

// Audience is the value every ID token's aud claim must hold.
func (p *Policy) Audience() string { return p.audience }

// Issuers are the distinct issuers the rules name, in the order they first appear: the only
// issuers the broker should build verifiers for (never one discovered from a token's own iss).
func (p *Policy) Issuers() []string { return append([]string(nil), p.issuers...) }

// Rule is one rule of a policy: who may ask (issuer and claims) and what they may get (allow,
// max_ttl, ip_filter). Its fields are read through methods so that a rule cannot be changed after
// the policy was validated.
type Rule struct {
	name      string
	issuer    string
	match     []constraint // claims, then claim_patterns, each in file order
	owner     cftoken.Owner
	accountID string
	presets   []string
	perms     []string // permission lines as written; resolved against Cloudflare's list later
	zones     []string // lower-case names and ids
	allZones  bool     // zones: ["*"]
	buckets   []policy.Bucket
	maxTTL    time.Duration
	ip        ipRule
	// maxMints tokens per repository in any mintWindow; maxActive live tokens per repository.
	maxMints   int
	mintWindow time.Duration
	maxActive  int
	// namesEvent: the rule names event_name, so it may match privileged events.
	namesEvent bool
	// singleTenant: the rule says its issuer signs for one organisation only, so it need not pin
	// a tenant by id (never so for GitHub's or gitlab.com's issuers).
	singleTenant bool
	// partial: the rule has problems ParsePartial reported; it is kept only so that CheckWith
	// can report the rest in the same run.
	partial bool
}

// Name is the rule's unique name, of a-z, 0-9 and - only: it goes into logs, errors and the
// minted token's name.
func (r *Rule) Name() string { return r.name }

// Owner is who owns the tokens the rule mints: cftoken.OwnerAccount (the default) or
// cftoken.OwnerUser.
func (r *Rule) Owner() cftoken.Owner { return r.owner }

// AccountID is the account the rule grants in. Every rule has one, whichever its owner: account
// scoped grants, R2 buckets and zones: "*" apply to it, and the broker looks the request's zones up
// in it, so that a zone name can never pick a same-named zone of another account.
func (r *Rule) AccountID() string { return r.accountID }

// MaxTTL is the longest ttl the rule allows.
func (r *Rule) MaxTTL() time.Duration { return r.maxTTL }

// constraint is one claim a rule requires: equal to value, or, when re is set, matched whole by it.
type constraint struct {
	key   string
	value string         // the value, or the pattern as written
	re    *regexp.Regexp // nil: compare with value
}

func (c constraint) holds(claims Claims) bool {
	v, ok := claims[c.key]
	if !ok {
		return false // a missing claim never matches: fail closed
	}
	if _, typed := nonString(v); typed {
		return false // nor does a number, a boolean or an array: fail closed
	}
	if c.re != nil {
		return c.re.MatchString(v)
	}
	return v == c.value
}

type ipMode int

const (
	ipCaller ipMode = iota // pin to the caller's address; the request may not choose
	ipNone                 // the request may ask for no filter; otherwise as asked, the caller by default
	ipCIDRs                // the caller must lie in cidrs; a requested range must lie in them and hold the caller
)

type ipRule struct {
	mode  ipMode
	cidrs []netip.Prefix
}

// Rules are the policy's rules, in order.
func (p *Policy) Rules() []*Rule { return append([]*Rule(nil), p.rules...) }
