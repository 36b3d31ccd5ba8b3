package cfapitest

import (
	"fmt"
	"slices"
	"time"
)

// Account is a Cloudflare account known to the fake.
type Account struct{ ID, Name string }

// User is a Cloudflare user; ID is the user tag (32 hex characters).
type User struct{ ID, Email string }

// Zone is a zone (domain) in an account.
type Zone struct{ ID, Name, AccountID string }

// Bucket is an R2 bucket; Jurisdiction is "default", "eu" or "fedramp".
type Bucket struct{ AccountID, Jurisdiction, Name string }

// resourceName is the bucket's part of its resource key,
// com.cloudflare.edge.r2.bucket.<ACCOUNT>_<JURISDICTION>_<NAME>.
func (b Bucket) resourceName() string {
	return b.AccountID + "_" + b.Jurisdiction + "_" + b.Name
}

type account struct {
	Account
	createdOn time.Time
	scripts   map[string]*script
	kv        map[string]*kvNamespace // by id; see storage_api.go
	d1        map[string]*d1Database  // by uuid
}

type userRec struct {
	User
	memberOf []string
	roles    map[string]*memberRole // by account; none: Administrator (roles.go)
}

type zone struct {
	Zone
	status    string // "" is active
	createdOn time.Time
	records   []*dnsRecord
}

// zoneStatuses are the statuses Cloudflare gives a zone.
var zoneStatuses = []string{"initializing", "pending", "active", "moved"}

type bucket struct {
	Bucket
	createdOn time.Time
	objects   map[string]*r2Object // by key; see r2s3.go
}

type script struct {
	name       string
	etag       string
	size       int
	createdOn  time.Time
	modifiedOn time.Time
}

type dnsRecord struct {
	id, typ, name, content string
	ttl                    int
	proxied                bool
	createdOn, modifiedOn  time.Time
}

// jurisdictions are the values R2 accepts in a bucket's resource key.
var jurisdictions = []string{"default", "eu", "fedramp"}

// AddAccount creates an account with a fresh id. It starts with one Worker
// script, "hello", so that listing scripts has something to show.
func (s *Server) AddAccount(name string) Account { return s.addAccount(newID(), name) }

func (s *Server) addAccount(id, name string) Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	a := &account{
		Account:   Account{ID: id, Name: name},
		createdOn: now,
		scripts:   map[string]*script{},
	}
	a.scripts["hello"] = &script{name: "hello", etag: newID(), size: 120, createdOn: now, modifiedOn: now}
	s.accounts[a.ID] = a
	s.accountOrder = append(s.accountOrder, a.ID)
	return a.Account
}

// AddUser creates a user who is a member of the given accounts. It panics
// when an account does not exist: that is a mistake in the test's setup.
func (s *Server) AddUser(email string, memberOf ...string) User {
	return s.addUser(newID(), email, memberOf...)
}

func (s *Server) addUser(id, email string, memberOf ...string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range memberOf {
		s.mustAccount(id, "AddUser")
	}
	u := &userRec{User: User{ID: id, Email: email}, memberOf: slices.Clone(memberOf)}
	s.users[u.ID] = u
	return u.User
}

// AddZone creates an active zone in an account. It panics when the account
// does not exist.
func (s *Server) AddZone(accountID, name string) Zone { return s.addZone(newID(), accountID, name) }

func (s *Server) addZone(id, accountID, name string) Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID, "AddZone")
	z := &zone{Zone: Zone{ID: id, Name: name, AccountID: accountID}, createdOn: s.now().UTC()}
	s.zones[z.ID] = z
	s.zoneOrder = append(s.zoneOrder, z.ID)
	return z.Zone
}

// SetZoneStatus sets a zone's status: "pending" for one whose name servers were never changed
// (anyone can add a zone of any name to their account, and it stays pending), "moved", and so
// on. It panics when the zone does not exist or the status is not one of Cloudflare's.
func (s *Server) SetZoneStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zones[id]
	if z == nil {
		panic(fmt.Sprintf("cfapitest: SetZoneStatus: zone %q does not exist", id))
	}
	if !slices.Contains(zoneStatuses, status) {
		panic(fmt.Sprintf("cfapitest: SetZoneStatus: status %q is not one of %v", status, zoneStatuses))
	}
	z.status = status
}

func (z *zone) statusText() string {
	if z.status == "" {
		return "active"
	}
	return z.status
}

// AddBucket creates an R2 bucket. An empty jurisdiction means "default". It
// panics when the account does not exist or the jurisdiction is unknown.
func (s *Server) AddBucket(accountID, jurisdiction, name string) Bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustAccount(accountID, "AddBucket")
	if jurisdiction == "" {
		jurisdiction = "default"
	}
	if !slices.Contains(jurisdictions, jurisdiction) {
		panic(fmt.Sprintf("cfapitest: AddBucket: jurisdiction %q is not one of %v", jurisdiction, jurisdictions))
	}
	b := &bucket{Bucket: Bucket{AccountID: accountID, Jurisdiction: jurisdiction, Name: name}, createdOn: s.now().UTC()}
	s.buckets = append(s.buckets, b)
	return b.Bucket
}

func (s *Server) mustAccount(id, caller string) {
	if _, ok := s.accounts[id]; !ok {
		panic(fmt.Sprintf("cfapitest: %s: account %q does not exist", caller, id))
	}
}

func (s *Server) findBucket(resourceName string) *bucket {
	for _, b := range s.buckets {
		if b.resourceName() == resourceName {
			return b
		}
	}
	return nil
}

// Fixture is a ready world: two accounts, a user, zones, a bucket and two
// bootstrap tokens. The demo and most tests start from it.
type Fixture struct {
	Account, OtherAccount Account
	User                  User // member of Account only
	Zone, Zone2           Zone // "example.com" and "example.net" in Account
	OtherZone             Zone // "other.example" in OtherAccount
	Bucket                Bucket
	// AccountBootstrap is owned by Account: "Account API Tokens Write" on
	// Account and "Zone Read" on all zones of Account.
	AccountBootstrap Bootstrap
	// UserBootstrap is owned by User: "API Tokens Write" on User and "Zone
	// Read" on all zones of Account.
	UserBootstrap Bootstrap
}

// Bootstrap is a token a test hands to cfmint as its bootstrap token.
type Bootstrap struct{ ID, Secret string }

// The ids of Seed's accounts, user and zones: fixed, so that a test can write what it expects
// as literals. Token ids and secrets stay fresh in every Seed.
const (
	SeedAccountID      = "5eed0000000000000000000000000a01"
	SeedOtherAccountID = "5eed0000000000000000000000000a02"
	SeedUserID         = "5eed0000000000000000000000000b01"
	SeedZoneID         = "5eed0000000000000000000000000c01" // example.com
	SeedZone2ID        = "5eed0000000000000000000000000c02" // example.net
	SeedOtherZoneID    = "5eed0000000000000000000000000c03" // other.example
)

// Seed builds the Fixture world, with the Seed* ids. Neither bootstrap token has an IP filter
// or an expiry, so they work from any loopback address for the whole test. Call it once per
// Server.
func (s *Server) Seed() Fixture {
	var f Fixture
	f.Account = s.addAccount(SeedAccountID, "Example Account")
	f.OtherAccount = s.addAccount(SeedOtherAccountID, "Other Account")
	f.User = s.addUser(SeedUserID, "ci@example.com", f.Account.ID)
	f.Zone = s.addZone(SeedZoneID, f.Account.ID, "example.com")
	f.Zone2 = s.addZone(SeedZone2ID, f.Account.ID, "example.net")
	f.OtherZone = s.addZone(SeedOtherZoneID, f.OtherAccount.ID, "other.example")
	f.Bucket = s.AddBucket(f.Account.ID, "default", "assets")

	allZones := map[string]any{
		"com.cloudflare.api.account." + f.Account.ID: map[string]any{"com.cloudflare.api.account.zone.*": "*"},
	}
	f.AccountBootstrap = s.mustIssue(TokenSpec{
		Name:         "cfmint bootstrap (account)",
		OwnerAccount: f.Account.ID,
		Policies: []Policy{
			{Groups: []string{"Account API Tokens Write"}, Resources: map[string]any{"com.cloudflare.api.account." + f.Account.ID: "*"}},
			{Groups: []string{"Zone Read"}, Resources: allZones},
		},
	})
	f.UserBootstrap = s.mustIssue(TokenSpec{
		Name:        "cfmint bootstrap (user)",
		OwnerUserID: f.User.ID,
		Policies: []Policy{
			{Groups: []string{"API Tokens Write"}, Resources: map[string]any{"com.cloudflare.api.user." + f.User.ID: "*"}},
			{Groups: []string{"Zone Read"}, Resources: allZones},
		},
	})
	return f
}

func (s *Server) mustIssue(spec TokenSpec) Bootstrap {
	id, secret, err := s.IssueToken(spec)
	if err != nil {
		panic(fmt.Sprintf("cfapitest: Seed: %v", err))
	}
	return Bootstrap{ID: id, Secret: secret}
}
