package cfapitest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"slices"
	"time"
)

// token is a stored API token.
type token struct {
	id, name  string
	secret    string // kept to recognise the bearer; never logged
	ownerKind ownerKind
	owner     string
	policies  []*policy
	ipIn      []string // as given, echoed by the API
	ipNotIn   []string
	in, notIn []netip.Prefix
	issuedOn  time.Time // whole seconds, as the API shows it
	created   time.Time // exact, for the activation delay
	modified  time.Time
	expiresOn time.Time
	notBefore time.Time
	lastUsed  time.Time
	validFrom time.Time // zero, or when the activation delay ends
	disabled  bool
	revoked   bool // by Cloudflare (RevokeToken), not by its owner
	createdBy string
}

// statusExposed is the status of a token Cloudflare revoked itself, as GET
// and the list show it since 2026-04 (Cloudflare's changelog; its Terraform
// provider matches the string). The OpenAPI enum still lists only active,
// disabled and expired.
const statusExposed = "revoked (exposed)"

// status is the token's status as the API reports it at now.
func (t *token) status(now time.Time) string {
	switch {
	case t.revoked:
		return statusExposed
	case t.disabled:
		return "disabled"
	case !t.expiresOn.IsZero() && !now.Before(t.expiresOn):
		return "expired"
	default:
		return "active"
	}
}

// usable reports whether the token authenticates a request at now. Tokens
// that are not yet valid (not_before, activation delay) answer like unknown
// ones, as Cloudflare does.
func (t *token) usable(now time.Time) bool {
	if t.status(now) != "active" {
		return false
	}
	if !t.notBefore.IsZero() && now.Before(t.notBefore) {
		return false
	}
	return t.validFrom.IsZero() || !now.Before(t.validFrom)
}

// ipAllowed applies condition.request_ip to a client address.
func (t *token) ipAllowed(ip netip.Addr) bool {
	for _, p := range t.notIn {
		if p.Contains(ip) {
			return false
		}
	}
	if len(t.in) == 0 {
		return true
	}
	for _, p := range t.in {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Policy is a policy of a seeded token. Groups are permission group names,
// resolved against the seed with the scope the resource keys imply.
type Policy struct {
	Effect    string         // "allow" (the default when empty) or "deny"
	Groups    []string       // e.g. "Account API Tokens Write"
	Resources map[string]any // as the API writes them, flat or nested
}

// TokenSpec describes a token to store with IssueToken. Set exactly one of
// OwnerUserID and OwnerAccount.
type TokenSpec struct {
	Name         string
	OwnerUserID  string
	OwnerAccount string
	Policies     []Policy
	IPIn         []string // CIDRs
	IPNotIn      []string
	ExpiresOn    time.Time // zero: never
	NotBefore    time.Time // zero: at once
}

// IssueToken stores a token directly, the way tests create bootstrap tokens,
// and returns its id and secret. It applies the API's validation except the
// owner quota (a test may want to start at the quota) and a future expiry
// (a test may want an expired token).
func (s *Server) IssueToken(spec TokenSpec) (id, secret string, err error) {
	if (spec.OwnerUserID == "") == (spec.OwnerAccount == "") {
		return "", "", errors.New("failed to issue token: set exactly one of OwnerUserID and OwnerAccount")
	}
	kind, owner := ownerUser, spec.OwnerUserID
	if spec.OwnerAccount != "" {
		kind, owner = ownerAccount, spec.OwnerAccount
	}
	inputs := make([]policyInput, 0, len(spec.Policies))
	for i, p := range spec.Policies {
		ids, err := resolveGroups(p)
		if err != nil {
			return "", "", fmt.Errorf("failed to issue token %q: policies[%d]: %w", spec.Name, i, err)
		}
		effect := p.Effect
		if effect == "" {
			effect = "allow"
		}
		inputs = append(inputs, policyInput{effect: effect, groupIDs: ids, resources: p.Resources})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ownerExists(kind, owner); err != nil {
		return "", "", fmt.Errorf("failed to issue token %q: %w", spec.Name, err)
	}
	if err := validateName(spec.Name); err != nil {
		return "", "", fmt.Errorf("failed to issue token: %w", err)
	}
	policies, err := s.buildPolicies(kind, owner, inputs)
	if err != nil {
		return "", "", fmt.Errorf("failed to issue token %q: %w", spec.Name, err)
	}
	in, err := parseCIDRs("IPIn", spec.IPIn)
	if err != nil {
		return "", "", fmt.Errorf("failed to issue token %q: %w", spec.Name, err)
	}
	notIn, err := parseCIDRs("IPNotIn", spec.IPNotIn)
	if err != nil {
		return "", "", fmt.Errorf("failed to issue token %q: %w", spec.Name, err)
	}
	if !spec.ExpiresOn.IsZero() && !spec.NotBefore.IsZero() && !spec.NotBefore.Before(spec.ExpiresOn) {
		return "", "", fmt.Errorf("failed to issue token %q: NotBefore is not before ExpiresOn", spec.Name)
	}
	t := s.newToken(kind, owner, spec.Name)
	t.policies = policies
	t.ipIn, t.in = slices.Clone(spec.IPIn), in
	t.ipNotIn, t.notIn = slices.Clone(spec.IPNotIn), notIn
	t.expiresOn = spec.ExpiresOn.UTC().Truncate(time.Second)
	t.notBefore = spec.NotBefore.UTC().Truncate(time.Second)
	s.storeToken(t)
	return t.id, t.secret, nil
}

func (s *Server) ownerExists(kind ownerKind, owner string) error {
	if kind == ownerUser {
		if _, ok := s.users[owner]; !ok {
			return fmt.Errorf("user %q does not exist", owner)
		}
		return nil
	}
	if _, ok := s.accounts[owner]; !ok {
		return fmt.Errorf("account %q does not exist", owner)
	}
	return nil
}

// newToken makes a token with fresh id and secret, issued now.
func (s *Server) newToken(kind ownerKind, owner, name string) *token {
	now := s.now().UTC()
	prefix := "cfut_"
	if kind == ownerAccount {
		prefix = "cfat_"
	}
	return &token{
		id:        newID(),
		name:      name,
		secret:    prefix + randomBase62(40+randomInt(9)),
		ownerKind: kind,
		owner:     owner,
		created:   now,
		issuedOn:  now.Truncate(time.Second),
		modified:  now.Truncate(time.Second),
	}
}

func (s *Server) storeToken(t *token) {
	s.tokens[t.id] = t
	s.tokenOrder = append(s.tokenOrder, t.id)
	s.secrets[t.secret] = t.id
}

// liveTokens lists the tokens of one owner in creation order.
func (s *Server) liveTokens(kind ownerKind, owner string) []*token {
	var out []*token
	for _, id := range s.tokenOrder {
		if t := s.tokens[id]; t.ownerKind == kind && t.owner == owner {
			out = append(out, t)
		}
	}
	return out
}

// TokenInfo is a deep copy of a stored token, safe to inspect.
type TokenInfo struct {
	ID, Name  string
	OwnerKind string // "user" or "account"
	Owner     string // user id or account id
	Status    string // "active", "disabled", "expired" or "revoked (exposed)", computed from the clock
	Policies  []StoredPolicy
	IPIn      []string
	IPNotIn   []string
	IssuedOn  time.Time
	ExpiresOn time.Time
	NotBefore time.Time
	// ModifiedOn is when the token last changed; LastUsedOn when it last
	// authenticated a request (zero: never).
	ModifiedOn time.Time
	LastUsedOn time.Time
	CreatedBy  string // id of the token that created it through the API; "" when seeded
}

// StoredPolicy is a policy as stored in a token.
type StoredPolicy struct {
	ID        string
	Effect    string
	Groups    []GroupRef
	Resources map[string]any
}

// GroupRef names a permission group in a stored policy.
type GroupRef struct{ ID, Name string }

func (s *Server) info(t *token) TokenInfo {
	ti := TokenInfo{
		ID:         t.id,
		Name:       t.name,
		OwnerKind:  string(t.ownerKind),
		Owner:      t.owner,
		Status:     t.status(s.now()),
		IPIn:       slices.Clone(t.ipIn),
		IPNotIn:    slices.Clone(t.ipNotIn),
		IssuedOn:   t.issuedOn,
		ExpiresOn:  t.expiresOn,
		NotBefore:  t.notBefore,
		ModifiedOn: t.modified,
		LastUsedOn: t.lastUsed,
		CreatedBy:  t.createdBy,
	}
	for _, p := range t.policies {
		sp := StoredPolicy{ID: p.id, Effect: p.effect, Resources: copyResources(p.resources)}
		for _, g := range p.groups {
			sp.Groups = append(sp.Groups, GroupRef{ID: g.ID, Name: g.Name})
		}
		ti.Policies = append(ti.Policies, sp)
	}
	return ti
}

func copyResources(res map[string]any) map[string]any {
	out := make(map[string]any, len(res))
	for k, v := range res {
		if m, ok := v.(map[string]any); ok {
			v = maps.Clone(m)
		}
		out[k] = v
	}
	return out
}

// Token returns a copy of a live (not deleted) token.
func (s *Server) Token(id string) (TokenInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if !ok {
		return TokenInfo{}, false
	}
	return s.info(t), true
}

// Tokens returns every live (not deleted) token, any status, in creation
// order.
func (s *Server) Tokens() []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenInfo, 0, len(s.tokenOrder))
	for _, id := range s.tokenOrder {
		out = append(out, s.info(s.tokens[id]))
	}
	return out
}

// Deleted returns the tokens deleted through the API, in order of deletion.
func (s *Server) Deleted() []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenInfo, 0, len(s.deleted))
	for _, t := range s.deleted {
		out = append(out, s.info(t))
	}
	return out
}

// DisableToken marks a live token disabled, as a user can in the dashboard:
// it stays listed but no longer authenticates. It reports whether the token
// exists.
func (s *Server) DisableToken(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if ok {
		t.disabled = true
		t.modified = s.now().UTC().Truncate(time.Second)
	}
	return ok
}

// RevokeToken revokes a live token the way Cloudflare does on its own, for
// instance when the secret turned up in a public repository: GET still
// answers it, with status "revoked (exposed)", and so does the list, with or
// without include_expired=true; it is refused like a deleted
// token on every endpoint, and counts toward the quota until its owner
// deletes it. It reports whether the token exists.
func (s *Server) RevokeToken(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if ok {
		t.revoked = true
		t.modified = s.now().UTC().Truncate(time.Second)
	}
	return ok
}

// newID returns 32 lowercase hex characters, the shape of every Cloudflare id.
func newID() string {
	var b [16]byte
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomBase62(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[randomInt(len(base62))]
	}
	return string(b)
}

func randomInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(fmt.Sprintf("cfapitest: failed to read random bytes: %v", err))
	}
	return int(v.Int64())
}
