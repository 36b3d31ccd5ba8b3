package policy

import "strings"

// Lasting is a permission group whose holder can create a credential or an identity that
// outlives the token: an account member, a login method, a key or a connector secret that
// keeps working after the minted token has expired or been revoked. cfmint grants one only when
// the workflow asks with allow-lasting-access: true, and then says so in a warning and in the
// summary.
type Lasting struct {
	Name   string // the group's name, as Cloudflare's permission-groups list writes it
	Scope  string // the scope at which the name means this group
	Reason string // what it can create that lasts, as a clause: "can invite ..."
}

// LastingGroups are the groups that can create lasting access, each checked against
// Cloudflare's API reference (the operations that accept it) where noted. Token-creating groups
// are not here: those are refused outright. Nor are user-scope groups (Memberships Write can
// accept invitations to accounts), since cfmint grants no user-scope group at all. Left out on
// purpose: groups whose writes persist without creating a credential, an identity or a standing
// flow of the account's data (Workers Scripts Write deploys code, DNS Write can point a name
// anywhere); the line drawn is "creates something that authenticates someone, or that keeps
// handing someone the account's logs or mail".
var LastingGroups = []Lasting{
	// POST /accounts/{id}/members accepts Account Settings Write or SCIM Provisioning.
	{"Account Settings Write", ScopeAccount, "can invite members to the account with any role, who keep their access after the token expires"},
	{"SCIM Provisioning", ScopeAccount, "can add account members and give them roles, as an identity provider does, and they stay after the token expires"},
	// POST /accounts/{id}/sso_connectors accepts SSO Connector Write.
	{"SSO Connector Write", ScopeAccount, "can set up dashboard single sign-on for an e-mail domain, handing the logins of its members to an identity provider"},
	{"Access: Identity Providers Write", ScopeAccount, "can add a login method to Access (an identity provider someone else controls) whose users then pass Access policies"},
	{"Access: Organizations, Identity Providers, and Groups Write", ScopeAccount, "can add identity providers and change Access groups, letting new identities into Access applications"},
	{"Access: Groups Write", ScopeAccount, "can add any identity (an outside e-mail address, a whole domain) to the Access groups that policies let in"},
	{"Access: Policies Write", ScopeAccount, "can write Access policies that let in any identity, or everyone"},
	{"Access: Apps and Policies Write", ScopeAccount, "can create Access applications and policies that let in any identity, or everyone"},
	{"Access: Apps and Policies Write", ScopeZone, "can create Access applications and policies of the zone that let in any identity, or everyone"},
	{"Access: Service Tokens Write", ScopeAccount, "can create Access service tokens, a client id and secret valid for up to years, that pass Access policies"},
	{"Access: Mutual TLS Certificates Write", ScopeAccount, "can add a certificate authority to Access, so that every client certificate it signs passes mTLS rules"},
	// GET /accounts/{id}/cfd_tunnel/{tunnel}/token accepts these three.
	{"Cloudflare Tunnel Write", ScopeAccount, "can create tunnels and read any tunnel's token, with which anyone can run a connector for that tunnel, and take its traffic, until the token is rotated"},
	{"Cloudflare One Connector: cloudflared Write", ScopeAccount, "can create tunnels and read any tunnel's token, with which anyone can run a connector for that tunnel, and take its traffic, until the token is rotated"},
	{"Cloudflare One Connectors Write", ScopeAccount, "can create tunnels and WARP connectors and read their tokens, with which anyone can run a connector into the account's networks until the token is rotated"},
	{"Cloudflare One Connector: WARP Write", ScopeAccount, "can create WARP connectors and read their tokens, with which anyone can join a machine to the account's private network until the token is rotated"},
	// POST .../magic/ipsec_tunnels/{id}/psk_generate accepts Magic WAN Write or Magic Transit Write.
	{"Magic WAN Write", ScopeAccount, "can set the pre-shared keys of IPsec tunnels, with which a device joins the account's Magic WAN network"},
	{"Magic Transit Write", ScopeAccount, "can set the pre-shared keys of IPsec tunnels, with which a device joins the account's Magic Transit network"},
	// POST /zones/{id}/client_certificates accepts SSL and Certificates Write.
	{"SSL and Certificates Write", ScopeZone, "can issue client certificates for the zone's mTLS rules and Origin CA certificates, valid for years"},
	// POST /accounts/{id}/mtls_certificates accepts the account-level group.
	{"Account: SSL and Certificates Write", ScopeAccount, "can upload the account's mTLS certificates and certificate authorities, so that every client certificate such a CA signs passes the mTLS checks that use it, for years"},
	// POST /accounts|zones/{id}/logpush/jobs accepts Logs Write at either scope.
	{"Logs Write", ScopeAccount, "can create Logpush jobs, which keep sending the account's logs (requests, Access logins, Gateway queries) to a destination of its choosing after the token expires"},
	{"Logs Write", ScopeZone, "can create Logpush jobs, which keep sending the zone's request logs (headers, client addresses) to a destination of its choosing after the token expires"},
	// POST /accounts/{id}/email/routing/addresses and /zones/{id}/email/routing/rules.
	{"Email Routing Addresses Write", ScopeAccount, "can add destination addresses for Email Routing, which rules then forward the domain's mail to, password-reset mail included"},
	{"Email Routing Rules Write", ScopeZone, "can forward any address of the zone to a mailbox of its choosing, so that password-reset mail for the domain's accounts keeps arriving there after the token expires"},
	// POST /accounts/{id}/calls/turn_keys accepts Calls Write.
	{"Calls Write", ScopeAccount, "can create Calls TURN keys and app secrets, bearer credentials that keep working after the token expires"},
	// The only write groups of Stream and Images, which own their signing keys.
	{"Stream Write", ScopeAccount, "can create Stream signing keys, which sign URLs for every private video, and live-input stream keys"},
	{"Images Write", ScopeAccount, "can create Images signing keys, which sign URLs for every private image"},
}

// LastingFor returns the entry of g in LastingGroups, if g can create lasting access at one of
// its scopes.
func LastingFor(g Group) (Lasting, bool) {
	for _, l := range LastingGroups {
		if strings.EqualFold(l.Name, g.Name) && g.Has(l.Scope) {
			return l, true
		}
	}
	return Lasting{}, false
}

// LastingAccess lists the groups of built policies that can create lasting access, in policy
// order, for the warning and the summary that must name them.
func LastingAccess(ps []Policy) []Lasting {
	var out []Lasting
	for _, p := range ps {
		for _, g := range p.Groups {
			if l, ok := LastingFor(g); ok {
				out = append(out, l)
			}
		}
	}
	return out
}
