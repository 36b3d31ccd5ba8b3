package cfapitest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxNameLength is the API's limit on token names.
const maxNameLength = 120

// userTokens admits a call to a /user/tokens endpoint: a user-owned token
// holding the endpoint's group on its own user.
func (c *call) userTokens(h func(ownerKind, string)) {
	if c.tok.ownerKind != ownerUser {
		writeErr(c.w, http.StatusForbidden, codeForbidden, msgNoUserAuth)
		return
	}
	if !c.s.allows(c.tok, c.need, userTarget(c.tok.owner)) {
		writeErr(c.w, http.StatusForbidden, codeForbidden, msgUnauthorized)
		return
	}
	h(ownerUser, c.tok.owner)
}

// accountTokens admits a call to an /accounts/{id}/tokens endpoint: any
// token holding the endpoint's group on that account. A user-owned token
// qualifies too; what it creates there is owned by the account.
func (c *call) accountTokens(h func(ownerKind, string)) {
	acct := c.r.PathValue("account_id")
	if !c.s.allows(c.tok, c.need, accountTarget(acct)) {
		writeErr(c.w, http.StatusForbidden, codeForbidden, msgUnauthorized)
		return
	}
	h(ownerAccount, acct)
}

// errMalformedJSON marks a body that is not JSON at all (6007), as opposed
// to JSON that breaks the schema (1001).
var errMalformedJSON = errors.New("malformed JSON")

// createRequest is a validated iam_create_payload.
type createRequest struct {
	name                 string
	policies             []policyInput
	in, notIn            []string
	expiresOn, notBefore time.Time
}

func (c *call) createToken(kind ownerKind, owner string) {
	s := c.s
	body, _ := io.ReadAll(c.r.Body)
	req, err := parseCreate(body)
	if errors.Is(err, errMalformedJSON) {
		writeErr(c.w, http.StatusBadRequest, codeMalformedJSON, msgMalformedJSON)
		return
	}
	var policies []*policy
	var in, notIn []netip.Prefix
	if err == nil {
		in, err = parseCIDRs("in", req.in)
	}
	if err == nil {
		notIn, err = parseCIDRs("not_in", req.notIn)
	}
	if err == nil {
		err = checkTimes(req.expiresOn, req.notBefore, c.now)
	}
	if err == nil {
		policies, err = s.buildPolicies(kind, owner, req.policies)
	}
	if err == nil {
		err = s.checkRole(c.tok, policies)
	}
	if err == nil {
		err = s.checkQuota(kind, owner)
	}
	var undelegable undelegableError
	var aboveRole aboveRoleError
	switch {
	case errors.As(err, &undelegable):
		writeErr(c.w, http.StatusForbidden, codeForbidden, msgUnauthorized)
		return
	case errors.As(err, &aboveRole):
		writeErr(c.w, http.StatusForbidden, codeForbidden, aboveRole.Error())
		return
	case err != nil:
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, err.Error())
		return
	}

	t := s.newToken(kind, owner, req.name)
	t.policies = policies
	t.ipIn, t.in, t.ipNotIn, t.notIn = req.in, in, req.notIn, notIn
	t.expiresOn, t.notBefore = req.expiresOn, req.notBefore
	t.createdBy = c.tok.id
	if s.activationDelay > 0 {
		t.validFrom = t.created.Add(s.activationDelay)
	}
	s.storeToken(t)
	out := s.tokenJSON(t)
	out.Value = t.secret
	writeResult(c.w, out)
}

// checkQuota counts every token the owner still has, expired ones included:
// they occupy a slot until deleted.
func (s *Server) checkQuota(kind ownerKind, owner string) error {
	quota := s.userQuota
	if kind == ownerAccount {
		quota = s.accountQuota
	}
	if len(s.liveTokens(kind, owner)) >= quota {
		// Cloudflare's code and words (the issue that reported them); the
		// status is unverified.
		return validationError(msgQuotaFull)
	}
	return nil
}

// msgQuotaFull is Cloudflare's answer (1001) to a create past the owner's
// token quota.
const msgQuotaFull = "Exceeded the maximum number of API tokens"

func parseCreate(body []byte) (createRequest, error) {
	var req createRequest
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return req, errMalformedJSON
	}
	if raw, ok := top["name"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.name); err != nil {
			return req, invalidf("name must be a string")
		}
	}
	if err := validateName(req.name); err != nil {
		return req, err
	}

	var pols []map[string]json.RawMessage
	if raw, ok := top["policies"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &pols); err != nil {
			return req, invalidf("policies must be a list of objects")
		}
	}
	if len(pols) == 0 {
		return req, invalidf("a token needs at least one policy")
	}
	for i, pm := range pols {
		p, err := parsePolicy(i, pm)
		if err != nil {
			return req, err
		}
		req.policies = append(req.policies, p)
	}

	if raw, ok := top["condition"]; ok && !isNull(raw) {
		if err := parseCondition(raw, &req); err != nil {
			return req, err
		}
	}
	var err error
	if req.expiresOn, err = parseTime(top, "expires_on"); err != nil {
		return req, err
	}
	if req.notBefore, err = parseTime(top, "not_before"); err != nil {
		return req, err
	}
	return req, nil
}

func parsePolicy(i int, pm map[string]json.RawMessage) (policyInput, error) {
	var p policyInput
	if _, ok := pm["id"]; ok {
		// Cloudflare's own wording for this case (code 1001).
		return p, invalidf("Reusing existing policies is not supported by token creation")
	}
	if raw, ok := pm["effect"]; ok {
		if err := json.Unmarshal(raw, &p.effect); err != nil {
			return p, invalidf("policies[%d].effect must be a string", i)
		}
	}
	var groups []struct {
		ID string `json:"id"`
	}
	if raw, ok := pm["permission_groups"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &groups); err != nil {
			return p, invalidf("policies[%d].permission_groups must be a list of objects with an id", i)
		}
	}
	for j, g := range groups {
		if g.ID == "" {
			return p, invalidf("policies[%d].permission_groups[%d] has no id", i, j)
		}
		p.groupIDs = append(p.groupIDs, g.ID)
	}
	if raw, ok := pm["resources"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &p.resources); err != nil {
			return p, invalidf("policies[%d].resources must be an object", i)
		}
	}
	return p, nil
}

// parseCondition reads condition.request_ip. Any other key is refused, the
// old "request.ip" included: unverified whether Cloudflare still accepts it,
// and a filter silently dropped would leave a token usable from anywhere.
func parseCondition(raw json.RawMessage, req *createRequest) error {
	var cond map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cond); err != nil {
		return invalidf("condition must be an object")
	}
	for _, k := range slices.Sorted(maps.Keys(cond)) {
		switch k {
		case "request_ip":
		case "request.ip":
			return invalidf(`condition key "request.ip" is not supported; use "request_ip"`)
		default:
			return invalidf("condition key %q is not supported; only \"request_ip\" is", k)
		}
	}
	raw, ok := cond["request_ip"]
	if !ok || isNull(raw) {
		return nil
	}
	var rip map[string]json.RawMessage
	if err := json.Unmarshal(raw, &rip); err != nil {
		return invalidf("condition.request_ip must be an object")
	}
	for _, k := range slices.Sorted(maps.Keys(rip)) {
		v := rip[k]
		var list []string
		if k != "in" && k != "not_in" {
			return invalidf("condition.request_ip.%s is not supported; use \"in\" and \"not_in\"", k)
		}
		if !isNull(v) {
			if err := json.Unmarshal(v, &list); err != nil {
				return invalidf("condition.request_ip.%s must be a list of CIDRs", k)
			}
		}
		if k == "in" {
			req.in = list
		} else {
			req.notIn = list
		}
	}
	return nil
}

func parseTime(top map[string]json.RawMessage, field string) (time.Time, error) {
	raw, ok := top[field]
	if !ok || isNull(raw) {
		return time.Time{}, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return time.Time{}, invalidf("%s must be an RFC 3339 time string", field)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, invalidf("%s %q is not an RFC 3339 time such as 2026-08-01T12:30:00Z", field, v)
	}
	return t.UTC().Truncate(time.Second), nil
}

func checkTimes(expiresOn, notBefore, now time.Time) error {
	if !expiresOn.IsZero() && !expiresOn.After(now) {
		return invalidf("expires_on %s is not in the future", expiresOn.Format(time.RFC3339))
	}
	if !expiresOn.IsZero() && !notBefore.IsZero() && !notBefore.Before(expiresOn) {
		return invalidf("not_before %s is not before expires_on %s", notBefore.Format(time.RFC3339), expiresOn.Format(time.RFC3339))
	}
	return nil
}

func validateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalidf("name is required")
	}
	if n := utf8.RuneCountInString(name); n > maxNameLength {
		return invalidf("name is %d characters long; the limit is %d", n, maxNameLength)
	}
	return nil
}

// parseCIDRs accepts canonical CIDRs only: an address with its prefix
// length and no host bits set (203.0.113.7/32, 2001:db8::/32). A bare
// address or 10.0.0.1/24 is refused rather than guessed at.
func parseCIDRs(field string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, v := range list {
		p, err := netip.ParsePrefix(v)
		if err != nil || p != p.Masked() || p.Addr().Is4In6() {
			return nil, invalidf("condition.request_ip.%s: %q is not a CIDR; write an address with its prefix length and no host bits, such as 203.0.113.7/32", field, v)
		}
		out = append(out, p)
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func (c *call) listTokens(kind ownerKind, owner string) {
	q := c.r.URL.Query()
	page, perPage, ok := c.paging(q, 20, 50)
	if !ok {
		return
	}
	dir := q.Get("direction")
	if dir != "" && dir != "asc" && dir != "desc" {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, fmt.Sprintf("direction %q is not allowed; use \"asc\" or \"desc\"", dir))
		return
	}
	// Expired tokens are listed only with include_expired=true, as the spec
	// documents (default false); they still exist and count toward the quota
	// until deleted, so cleanup code must ask for them. Tokens Cloudflare
	// revoked ("revoked (exposed)") are not expired: they are listed either
	// way (unverified whether the plain list shows them; with
	// include_expired it does).
	toks := c.s.liveTokens(kind, owner)
	if q.Get("include_expired") != "true" {
		now := c.s.now()
		toks = slices.DeleteFunc(toks, func(t *token) bool { return t.status(now) == "expired" })
	}
	if dir == "desc" {
		slices.Reverse(toks)
	}
	lo, hi, info := paginate(len(toks), page, perPage)
	out := make([]tokenOut, 0, hi-lo)
	for _, t := range toks[lo:hi] {
		out = append(out, c.s.tokenJSON(t))
	}
	writeList(c.w, out, info)
}

// paging reads page and per_page. Out-of-range values are refused rather
// than clamped (unverified; refusing makes a wrong guess in cfmint loud).
func (c *call) paging(q url.Values, defPerPage, maxPerPage int) (page, perPage int, ok bool) {
	page, err := intParam(q, "page", 1, 1, math.MaxInt32)
	if err == nil {
		perPage, err = intParam(q, "per_page", defPerPage, 5, maxPerPage)
	}
	if err != nil {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, err.Error())
		return 0, 0, false
	}
	return page, perPage, true
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	// The SDK sends numbers as floats ("2"), so accept any integral number.
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, fmt.Errorf("%s %q must be a whole number from %d to %d", name, v, lo, hi)
	}
	return int(f), nil
}

// ownToken finds a live token of the owner. Tokens of other owners answer
// exactly like missing ones, so ids cannot be probed.
func (c *call) ownToken(kind ownerKind, owner string) *token {
	t := c.s.tokens[c.r.PathValue("token_id")]
	if t == nil || t.ownerKind != kind || t.owner != owner {
		// Unverified: 404 / 7003 is Cloudflare's usual answer for an id that
		// does not resolve; the exact answer for tokens is not documented.
		c.notFound()
		return nil
	}
	return t
}

func (c *call) getToken(kind ownerKind, owner string) {
	if t := c.ownToken(kind, owner); t != nil {
		writeResult(c.w, c.s.tokenJSON(t))
	}
}

func (c *call) deleteToken(kind ownerKind, owner string) {
	t := c.ownToken(kind, owner)
	if t == nil {
		return
	}
	s := c.s
	delete(s.tokens, t.id)
	s.tokenOrder = slices.DeleteFunc(s.tokenOrder, func(id string) bool { return id == t.id })
	s.deleted = append(s.deleted, t)
	writeResult(c.w, map[string]string{"id": t.id})
}

// verifyUserToken answers only for user-owned tokens; an account-owned one
// is "Invalid API Token" here, as on Cloudflare.
func (c *call) verifyUserToken() {
	if c.tok.ownerKind != ownerUser {
		writeErr(c.w, http.StatusUnauthorized, codeInvalidToken, msgInvalidToken)
		return
	}
	c.writeVerified()
}

// verifyAccountToken answers only for account-owned tokens of that account.
func (c *call) verifyAccountToken() {
	if c.tok.ownerKind != ownerAccount || c.tok.owner != c.r.PathValue("account_id") {
		writeErr(c.w, http.StatusUnauthorized, codeInvalidToken, msgInvalidToken)
		return
	}
	c.writeVerified()
}

// writeVerified answers a successful verify, with the message Cloudflare
// sends beside the result.
func (c *call) writeVerified() {
	writeResult(c.w, c.verifyJSON(), apiError{Code: codeTokenValid, Message: msgTokenValid})
}

type verifyOut struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	ExpiresOn string `json:"expires_on,omitempty"`
	NotBefore string `json:"not_before,omitempty"`
}

func (c *call) verifyJSON() verifyOut {
	return verifyOut{
		ID:        c.tok.id,
		Status:    c.tok.status(c.now),
		ExpiresOn: formatTime(c.tok.expiresOn),
		NotBefore: formatTime(c.tok.notBefore),
	}
}

type groupOut struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// listGroups lists the seed; the account endpoint leaves out groups that can
// only be granted on a user, which an account-owned token cannot hold. It
// pages (see WithGroupPages): a per_page above the maximum is cut to it
// rather than refused (unverified; reports have callers asking for 100 and
// more), and result_info tells the caller how many pages there are.
func (c *call) listGroups(kind ownerKind, _ string) {
	q := c.r.URL.Query()
	page, err := intParam(q, "page", 1, 1, math.MaxInt32)
	var perPage int
	if err == nil {
		perPage, err = intParam(q, "per_page", c.s.groupPerPage, 5, math.MaxInt32)
	}
	if err != nil {
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, err.Error())
		return
	}
	perPage = min(perPage, c.s.groupMaxPerPage)
	names := filterValues(q.Get("name"))
	scopes := filterValues(q.Get("scope"))
	out := []groupOut{}
	for _, g := range catalog().list {
		if kind == ownerAccount && g.userOnly() {
			continue
		}
		if names != nil && !slices.Contains(names, g.Name) {
			continue
		}
		if scopes != nil && !slices.ContainsFunc(g.Scopes, func(sc string) bool { return slices.Contains(scopes, sc) }) {
			continue
		}
		out = append(out, groupOut{ID: g.ID, Name: g.Name, Scopes: slices.Clone(g.Scopes)})
	}
	lo, hi, info := paginate(len(out), page, perPage)
	writeList(c.w, out[lo:hi], info)
}

// filterValues returns the values a filter may mean: the API documents its
// filters as "URL-encoded", so a caller may have encoded twice.
func filterValues(v string) []string {
	if v == "" {
		return nil
	}
	out := []string{v}
	if u, err := url.QueryUnescape(v); err == nil && u != v {
		out = append(out, u)
	}
	return out
}

// tokenOut is iam_token_base (+ value on create).
type tokenOut struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Status     string       `json:"status"`
	IssuedOn   string       `json:"issued_on"`
	ModifiedOn string       `json:"modified_on"`
	LastUsedOn string       `json:"last_used_on,omitempty"`
	ExpiresOn  string       `json:"expires_on,omitempty"`
	NotBefore  string       `json:"not_before,omitempty"`
	Policies   []policyOut  `json:"policies"`
	Condition  conditionOut `json:"condition"`
	Value      string       `json:"value,omitempty"`
}

type policyOut struct {
	ID               string         `json:"id"`
	Effect           string         `json:"effect"`
	PermissionGroups []groupRefOut  `json:"permission_groups"`
	Resources        map[string]any `json:"resources"`
}

type groupRefOut struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type conditionOut struct {
	RequestIP *requestIPOut `json:"request_ip,omitempty"`
}

type requestIPOut struct {
	In    []string `json:"in,omitempty"`
	NotIn []string `json:"not_in,omitempty"`
}

func (s *Server) tokenJSON(t *token) tokenOut {
	out := tokenOut{
		ID:         t.id,
		Name:       t.name,
		Status:     t.status(s.now()),
		IssuedOn:   formatTime(t.issuedOn),
		ModifiedOn: formatTime(t.modified),
		LastUsedOn: formatTime(t.lastUsed),
		ExpiresOn:  formatTime(t.expiresOn),
		NotBefore:  formatTime(t.notBefore),
		Policies:   []policyOut{},
	}
	for _, p := range t.policies {
		po := policyOut{ID: p.id, Effect: p.effect, Resources: copyResources(p.resources)}
		for _, g := range p.groups {
			po.PermissionGroups = append(po.PermissionGroups, groupRefOut{ID: g.ID, Name: g.Name})
		}
		out.Policies = append(out.Policies, po)
	}
	// The condition is echoed as given, so cfmint can check that the filter
	// it asked for is the filter it got.
	if len(t.ipIn) > 0 || len(t.ipNotIn) > 0 {
		out.Condition.RequestIP = &requestIPOut{In: t.ipIn, NotIn: t.ipNotIn}
	}
	return out
}

// formatTime writes API times: RFC 3339, UTC, whole seconds; "" for none.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
