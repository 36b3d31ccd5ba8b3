package mint

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/policy"
)

// Issued is a minted token as a front end hands it out, whoever minted it: the engine here, or
// a broker's engine at the other end of an exchange.
type Issued struct {
	Secret    string         `json:"token"` // never to be printed
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Owner     cftoken.Owner  `json:"owner"`
	AccountID string         `json:"account_id,omitempty"`
	ExpiresOn time.Time      `json:"expires_on"`
	CIDRs     []netip.Prefix `json:"ip_filter"`
	Grants    []Grant        `json:"grants"`
	// R2Endpoint is the S3 endpoint of the token's R2 credentials; empty without an R2 grant.
	R2Endpoint string `json:"r2_endpoint,omitempty"`
	// Rule is the broker's trust-policy rule that allowed the mint; empty when minted directly.
	Rule string `json:"rule,omitempty"`
	// RevokeTicket is the broker's proof that the token was minted for the run, which lets the
	// run revoke it with one call; empty when minted directly. It only lets its holder revoke
	// this one token early.
	RevokeTicket string `json:"revoke_ticket,omitempty"`
}

// Grant is one permission group of a token and where it applies.
type Grant struct {
	Permission string     `json:"permission"`
	Resources  []Resource `json:"resources"`
	// Lasting says what the group can create that outlives the token (policy.LastingGroups),
	// as a clause ("can invite members ..."); empty for the other groups.
	Lasting string `json:"lasting,omitempty"`
}

// Resource is where a grant applies, in the user's terms.
type Resource struct {
	Kind         string `json:"kind"` // account, zone, all-zones, bucket, or other
	ID           string `json:"id,omitempty"`
	Name         string `json:"name,omitempty"`
	Jurisdiction string `json:"jurisdiction,omitempty"`
}

// Issued describes the plan's token as minted by m (nil for a dry run: no id, no secret).
func (p *Plan) Issued(m *cftoken.Minted) *Issued {
	out := &Issued{
		Name:      p.Request.Name,
		Owner:     p.Owner,
		AccountID: p.AccountID,
		ExpiresOn: p.Request.ExpiresOn,
		CIDRs:     p.Request.CIDRs,
		Grants:    p.Grants(),
	}
	if m != nil {
		out.ID, out.Secret = m.ID, m.Secret
	}
	if p.HasR2() {
		out.R2Endpoint = R2Endpoint(p.AccountID, p.Buckets)
	}
	return out
}

// S3Secret is the token's R2 S3 secret access key; empty without an R2 grant.
func (t *Issued) S3Secret() string {
	if t.R2Endpoint == "" || t.Secret == "" {
		return ""
	}
	return S3Secret(t.Secret)
}

// Grants lists the plan's permission groups with the resources each applies to.
func (p *Plan) Grants() []Grant {
	zoneNames := map[string]string{}
	for _, z := range p.Zones {
		zoneNames[policy.ZoneKey(z.ID)] = z.Name
	}
	var out []Grant
	for _, pol := range p.Request.Policies {
		res := resources(pol.Resources, zoneNames)
		for _, g := range pol.Groups {
			gr := Grant{Permission: g.Name, Resources: res}
			if l, ok := policy.LastingFor(g); ok {
				gr.Lasting = l.Reason
			}
			out = append(out, gr)
		}
	}
	return out
}

func resources(res map[string]any, zoneNames map[string]string) []Resource {
	var out []Resource
	for k, v := range res {
		switch {
		case strings.HasPrefix(k, policy.ScopeZone+"."):
			out = append(out, Resource{Kind: "zone", ID: strings.TrimPrefix(k, policy.ScopeZone+"."), Name: zoneNames[k]})
		case strings.HasPrefix(k, policy.ScopeAccount+"."):
			id := strings.TrimPrefix(k, policy.ScopeAccount+".")
			if _, nested := v.(map[string]any); nested {
				out = append(out, Resource{Kind: "all-zones", ID: id})
			} else {
				out = append(out, Resource{Kind: "account", ID: id})
			}
		case strings.HasPrefix(k, policy.ScopeBucket+"."):
			rest := strings.TrimPrefix(k, policy.ScopeBucket+".")
			// <account>_<jurisdiction>_<bucket>; bucket names hold no '_'.
			if parts := strings.SplitN(rest, "_", 3); len(parts) == 3 {
				out = append(out, Resource{Kind: "bucket", ID: parts[0], Name: parts[2], Jurisdiction: parts[1]})
			} else {
				out = append(out, Resource{Kind: "other", Name: k})
			}
		default:
			out = append(out, Resource{Kind: "other", Name: k})
		}
	}
	slices.SortFunc(out, func(a, b Resource) int {
		return strings.Compare(a.Kind+a.Name+a.ID, b.Kind+b.Name+b.ID)
	})
	return out
}
