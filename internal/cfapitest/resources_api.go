package cfapitest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// deny answers a token that lacks the permission for a resource endpoint.
// Unknown zones and accounts answer the same, so ids cannot be probed.
func (c *call) deny() {
	writeErr(c.w, http.StatusForbidden, codeAuthError, msgAuthError)
}

// accountOut is an account as GET /accounts lists it: the fields of
// Cloudflare's API reference that wrangler and cloudflare-go read (a
// subset; unverified beyond those).
type accountOut struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	Settings  map[string]any `json:"settings"`
	CreatedOn string         `json:"created_on"`
}

// listAccounts is GET /accounts: the accounts the token holds any
// permission in, in the order they were added. wrangler asks it (whoami)
// after a Workers call failed with 10000.
func (c *call) listAccounts() {
	q := c.r.URL.Query()
	page, perPage, ok := c.paging(q, 20, 50)
	if !ok {
		return
	}
	name := q.Get("name")
	var as []*account
	for _, id := range c.s.accountOrder {
		a := c.s.accounts[id]
		if (name == "" || a.Name == name) && c.s.touches(c.tok, id) {
			as = append(as, a)
		}
	}
	lo, hi, info := paginate(len(as), page, perPage)
	out := make([]accountOut, 0, hi-lo)
	for _, a := range as[lo:hi] {
		out = append(out, accountOut{
			ID: a.ID, Name: a.Name, Type: "standard", CreatedOn: a.createdOn.Format(time.RFC3339Nano),
			Settings: map[string]any{"enforce_twofactor": false, "abuse_contact_email": nil},
		})
	}
	writeList(c.w, out, info)
}

// userOut is the user as GET /user answers it, a subset of the fields of
// Cloudflare's API reference (unverified beyond id and email, which wrangler
// reads).
type userOut struct {
	ID                             string   `json:"id"`
	Email                          string   `json:"email"`
	FirstName                      *string  `json:"first_name"`
	LastName                       *string  `json:"last_name"`
	Telephone                      *string  `json:"telephone"`
	Country                        *string  `json:"country"`
	Zipcode                        *string  `json:"zipcode"`
	TwoFactorAuthenticationEnabled bool     `json:"two_factor_authentication_enabled"`
	TwoFactorAuthenticationLocked  bool     `json:"two_factor_authentication_locked"`
	HasProZones                    bool     `json:"has_pro_zones"`
	HasBusinessZones               bool     `json:"has_business_zones"`
	HasEnterpriseZones             bool     `json:"has_enterprise_zones"`
	Suspended                      bool     `json:"suspended"`
	Betas                          []string `json:"betas"`
}

// getUser is GET /user: the token's own user, for a user-owned token with
// User Details Read on it. Without the group the answer is 9109 (unverified:
// the code is what wrangler's whoami takes to mean "may not read the email").
func (c *call) getUser() {
	if c.tok.ownerKind != ownerUser {
		writeErr(c.w, http.StatusForbidden, codeForbidden, msgNoUserAuth)
		return
	}
	if !c.s.allows(c.tok, c.need, userTarget(c.tok.owner)) {
		writeErr(c.w, http.StatusForbidden, codeForbidden, msgUnauthorized)
		return
	}
	u := c.s.users[c.tok.owner]
	writeResult(c.w, userOut{ID: u.ID, Email: u.Email, Betas: []string{}})
}

// zoneOut is zones_zone.
type zoneOut struct {
	ID                  string         `json:"id"`
	Name                string         `json:"name"`
	Status              string         `json:"status"`
	Paused              bool           `json:"paused"`
	Type                string         `json:"type"`
	DevelopmentMode     int            `json:"development_mode"`
	NameServers         []string       `json:"name_servers"`
	OriginalNameServers []string       `json:"original_name_servers"`
	OriginalRegistrar   *string        `json:"original_registrar"`
	OriginalDNSHost     *string        `json:"original_dnshost"`
	CreatedOn           string         `json:"created_on"`
	ModifiedOn          string         `json:"modified_on"`
	ActivatedOn         string         `json:"activated_on"`
	Meta                map[string]any `json:"meta"`
	Owner               ownerOut       `json:"owner"`
	Account             accountRefOut  `json:"account"`
	Plan                map[string]any `json:"plan"`
}

type ownerOut struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type accountRefOut struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) zoneJSON(z *zone) zoneOut {
	a := s.accounts[z.AccountID]
	ts := z.createdOn.UTC().Format(time.RFC3339Nano)
	return zoneOut{
		ID:                  z.ID,
		Name:                z.Name,
		Status:              z.statusText(),
		Type:                "full",
		NameServers:         []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"},
		OriginalNameServers: nil,
		CreatedOn:           ts,
		ModifiedOn:          ts,
		ActivatedOn:         ts,
		Meta: map[string]any{
			"step": 2, "custom_certificate_quota": 0, "page_rule_quota": 3,
			"phishing_detected": false, "cdn_only": false, "dns_only": false, "foundation_dns": false,
		},
		Owner:   ownerOut{ID: a.ID, Name: a.Name, Type: "organization"},
		Account: accountRefOut{ID: a.ID, Name: a.Name},
		Plan: map[string]any{
			"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD",
			"frequency": "", "is_subscribed": false, "can_subscribe": false, "legacy_id": "free",
			"legacy_discount": false, "externally_managed": false,
		},
	}
}

// listZones lists the zones the token may read. Zones it may not read are
// simply absent, as on Cloudflare: an empty list is not an error.
func (c *call) listZones() {
	q := c.r.URL.Query()
	page, perPage, ok := c.paging(q, 20, 50)
	if !ok {
		return
	}
	name, acctID, acctName, status := q.Get("name"), q.Get("account.id"), q.Get("account.name"), q.Get("status")
	var zs []*zone
	for _, id := range c.s.zoneOrder {
		z := c.s.zones[id]
		switch {
		case name != "" && !strings.EqualFold(z.Name, name),
			acctID != "" && z.AccountID != acctID,
			acctName != "" && c.s.accounts[z.AccountID].Name != acctName,
			status != "" && status != z.statusText(),
			!c.s.allows(c.tok, c.need, zoneTarget(z)):
			continue
		}
		zs = append(zs, z)
	}
	lo, hi, info := paginate(len(zs), page, perPage)
	out := make([]zoneOut, 0, hi-lo)
	for _, z := range zs[lo:hi] {
		out = append(out, c.s.zoneJSON(z))
	}
	writeList(c.w, out, info)
}

// getZone answers a zone the token cannot read (or that does not exist) with
// 403 / 9109. Cloudflare answers either that or 404 / 7003 depending on the
// case (unverified); 9109 keeps "exists but hidden" and "missing" alike.
func (c *call) getZone() {
	z := c.s.zones[c.r.PathValue("zone_id")]
	if z == nil || !c.s.allows(c.tok, c.need, zoneTarget(z)) {
		writeErr(c.w, http.StatusForbidden, codeForbidden, msgUnauthorized)
		return
	}
	writeResult(c.w, c.s.zoneJSON(z))
}

// zone returns the path's zone when the token holds the endpoint's group
// on it, and answers 10000 otherwise.
func (c *call) zone() *zone {
	z := c.s.zones[c.r.PathValue("zone_id")]
	if z == nil || !c.s.allows(c.tok, c.need, zoneTarget(z)) {
		c.deny()
		return nil
	}
	return z
}

// account returns the path's account when the token holds the endpoint's
// group on it, and answers 10000 otherwise.
func (c *call) account() *account {
	a := c.s.accounts[c.r.PathValue("account_id")]
	if a == nil || !c.s.allows(c.tok, c.need, accountTarget(a.ID)) {
		c.deny()
		return nil
	}
	return a
}

type dnsRecordOut struct {
	ID         string         `json:"id"`
	ZoneID     string         `json:"zone_id"`
	ZoneName   string         `json:"zone_name"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Content    string         `json:"content"`
	TTL        int            `json:"ttl"`
	Proxied    bool           `json:"proxied"`
	Proxiable  bool           `json:"proxiable"`
	Comment    *string        `json:"comment"`
	Tags       []string       `json:"tags"`
	Meta       map[string]any `json:"meta"`
	CreatedOn  string         `json:"created_on"`
	ModifiedOn string         `json:"modified_on"`
}

func dnsJSON(z *zone, r *dnsRecord) dnsRecordOut {
	return dnsRecordOut{
		ID: r.id, ZoneID: z.ID, ZoneName: z.Name, Name: r.name, Type: r.typ, Content: r.content,
		TTL: r.ttl, Proxied: r.proxied, Proxiable: true, Tags: []string{}, Meta: map[string]any{},
		CreatedOn: r.createdOn.Format(time.RFC3339Nano), ModifiedOn: r.modifiedOn.Format(time.RFC3339Nano),
	}
}

func (c *call) listDNSRecords() {
	z := c.zone()
	if z == nil {
		return
	}
	q := c.r.URL.Query()
	page, perPage, ok := c.paging(q, 100, 5_000_000)
	if !ok {
		return
	}
	var recs []*dnsRecord
	for _, r := range z.records {
		if (q.Get("name") == "" || strings.EqualFold(q.Get("name"), r.name)) && (q.Get("type") == "" || q.Get("type") == r.typ) {
			recs = append(recs, r)
		}
	}
	lo, hi, info := paginate(len(recs), page, perPage)
	out := make([]dnsRecordOut, 0, hi-lo)
	for _, r := range recs[lo:hi] {
		out = append(out, dnsJSON(z, r))
	}
	writeList(c.w, out, info)
}

func (c *call) createDNSRecord() {
	z := c.zone()
	if z == nil {
		return
	}
	var in struct {
		Type    string `json:"type"`
		Name    string `json:"name"`
		Content string `json:"content"`
		TTL     *int   `json:"ttl"`
		Proxied bool   `json:"proxied"`
	}
	body, _ := io.ReadAll(c.r.Body)
	if err := json.Unmarshal(body, &in); err != nil {
		writeErr(c.w, http.StatusBadRequest, codeMalformedJSON, msgMalformedJSON)
		return
	}
	var problems []apiError
	if in.Type == "" {
		problems = append(problems, apiError{Code: 9004, Message: "DNS record type is required"})
	}
	if in.Name == "" {
		problems = append(problems, apiError{Code: 9006, Message: "DNS record name is required"})
	}
	if in.Content == "" {
		problems = append(problems, apiError{Code: 9005, Message: "DNS record content is required"})
	}
	if len(problems) > 0 {
		writeError(c.w, http.StatusBadRequest, apiError{Code: codeDNSValidation, Message: "DNS Validation Error", ErrorChain: problems})
		return
	}
	// Relative names are completed with the zone, as the dashboard does.
	name := strings.ToLower(strings.TrimSuffix(in.Name, "."))
	switch {
	case name == "@":
		name = z.Name
	case name != z.Name && !strings.HasSuffix(name, "."+z.Name):
		name += "." + z.Name
	}
	ttl := 1 // "automatic"
	if in.TTL != nil {
		ttl = *in.TTL
	}
	now := c.now.UTC()
	r := &dnsRecord{id: newID(), typ: strings.ToUpper(in.Type), name: name, content: in.Content, ttl: ttl, proxied: in.Proxied, createdOn: now, modifiedOn: now}
	z.records = append(z.records, r)
	writeResult(c.w, dnsJSON(z, r))
}

func (c *call) purgeCache() {
	z := c.zone()
	if z == nil {
		return
	}
	body, _ := io.ReadAll(c.r.Body)
	if len(strings.TrimSpace(string(body))) > 0 && !json.Valid(body) {
		writeErr(c.w, http.StatusBadRequest, codeMalformedJSON, msgMalformedJSON)
		return
	}
	writeResult(c.w, map[string]string{"id": z.ID})
}

type scriptOut struct {
	ID         string   `json:"id"`
	Etag       string   `json:"etag"`
	Handlers   []string `json:"handlers"`
	UsageModel string   `json:"usage_model"`
	Size       int      `json:"size,omitempty"`
	CreatedOn  string   `json:"created_on"`
	ModifiedOn string   `json:"modified_on"`
}

func scriptJSON(sc *script) scriptOut {
	return scriptOut{
		ID: sc.name, Etag: sc.etag, Handlers: []string{"fetch"}, UsageModel: "standard", Size: sc.size,
		CreatedOn: sc.createdOn.Format(time.RFC3339Nano), ModifiedOn: sc.modifiedOn.Format(time.RFC3339Nano),
	}
}

func (c *call) listScripts() {
	a := c.account()
	if a == nil {
		return
	}
	out := []scriptOut{}
	for _, name := range slices.Sorted(maps.Keys(a.scripts)) {
		out = append(out, scriptJSON(a.scripts[name]))
	}
	writeResult(c.w, out)
}

// putScript stores whatever body it gets: cfmint only needs to see that a
// minted token can deploy, not a Workers runtime.
func (c *call) putScript() {
	a := c.account()
	if a == nil {
		return
	}
	name := c.r.PathValue("script_name")
	body, _ := io.ReadAll(c.r.Body)
	now := c.now.UTC()
	sc, ok := a.scripts[name]
	if !ok {
		sc = &script{name: name, createdOn: now}
		a.scripts[name] = sc
	}
	sc.etag, sc.size, sc.modifiedOn = newID(), len(body), now
	writeResult(c.w, scriptJSON(sc))
}

type bucketOut struct {
	Name         string `json:"name"`
	CreationDate string `json:"creation_date"`
	Location     string `json:"location"`
	Jurisdiction string `json:"jurisdiction"`
	StorageClass string `json:"storage_class"`
}

// listBuckets lists one jurisdiction's buckets, chosen by the
// cf-r2-jurisdiction header as on R2 ("default" without it).
func (c *call) listBuckets() {
	a := c.account()
	if a == nil {
		return
	}
	juris := c.r.Header.Get("cf-r2-jurisdiction")
	if juris == "" {
		juris = "default"
	}
	if !slices.Contains(jurisdictions, juris) {
		// Unverified: R2's answer to an unknown jurisdiction is not known.
		writeErr(c.w, http.StatusBadRequest, codeInvalidRequest, fmt.Sprintf("jurisdiction %q is not one of %v", juris, jurisdictions))
		return
	}
	out := []bucketOut{}
	for _, b := range c.s.buckets {
		if b.AccountID == a.ID && b.Jurisdiction == juris {
			out = append(out, bucketOut{
				Name: b.Name, CreationDate: b.createdOn.Format(time.RFC3339Nano),
				Location: "WEUR", Jurisdiction: b.Jurisdiction, StorageClass: "Standard",
			})
		}
	}
	writeResult(c.w, map[string]any{"buckets": out})
}

// trace imitates https://api.cloudflare.com/cdn-cgi/trace: key=value lines
// whose ip= is the address the connection came from.
func (c *call) trace() {
	ts := fmt.Sprintf("%d.%03d", c.now.Unix(), c.now.Nanosecond()/int(time.Millisecond))
	proto := strings.ToLower(c.r.Proto)
	if proto == "" {
		proto = "http/1.1"
	}
	lines := []string{
		"fl=29f1",
		"h=" + c.r.Host,
		"ip=" + c.ip.String(),
		"ts=" + ts,
		"visit_scheme=http",
		"uag=" + c.r.UserAgent(),
		"colo=LHR",
		"sliver=none",
		"http=" + proto,
		"loc=GB",
		"tls=off",
		"sni=off",
		"warp=off",
		"gateway=off",
		"rbi=off",
		"kex=none",
	}
	c.w.Header().Set("Content-Type", "text/plain")
	c.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(c.w, strings.Join(lines, "\n")+"\n")
}
