package mint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/field"
	"github.com/cfmint/cfmint/internal/logsafe"
	"github.com/cfmint/cfmint/internal/policy"
)

// CleanupBudget bounds the deletes done after a failure or a signal: the runner kills the
// container 10 s after its first signal.
const CleanupBudget = 6 * time.Second

// Mint creates the token and makes sure it is the token that was asked for and that it works.
// From the create on, every failure deletes the token again.
func (e *Engine) Mint(ctx context.Context, p *Plan, h Hooks) (*Issued, error) {
	e.UI.Debugf("creating token %s: %s", logsafe.Quote(p.Request.Name), logsafe.String(Describe(p)))
	if h.Creating != nil {
		h.Creating(p)
	}
	m, err := e.Tokens.Create(ctx, p.Owner, p.AccountID, p.Request)
	if err != nil {
		err = explainCreate(err, p)
		var te *cftoken.TransportError
		var ae *cftoken.APIError
		// A lost answer, a cancelled wait, or a gateway's 5xx: Cloudflare may have stored the
		// token all the same.
		if errors.As(err, &te) || ctx.Err() != nil || (errors.As(err, &ae) && ae.Status >= 500) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupBudget)
			defer cancel()
			n, cerr := e.DeleteByName(cctx, p.Owner, p.AccountID, p.Request.Name, p.Request.ExpiresOn)
			if cerr != nil {
				return nil, &UnseenError{Name: p.Request.Name, Err: fmt.Errorf("%w; looking for a token it may have created anyway also failed: %v", err, cerr)}
			}
			if n == 0 {
				// A create still in flight at Cloudflare can land after this look: whoever
				// recorded the name must look once more.
				return nil, &UnseenError{Name: p.Request.Name, Err: fmt.Errorf("%w; no token with its name was found yet", err)}
			}
			err = fmt.Errorf("%w; the token had been created anyway, and was deleted", err)
		}
		call(h.Settled)
		return nil, err
	}
	if h.Created != nil {
		h.Created(m.ID)
	}
	t := p.Issued(m)
	if m.Secret == "" || strings.IndexFunc(m.Secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil, e.Undo(ctx, t, h, errors.New("Cloudflare's answer to the create carried no usable token value"))
	}
	if h.Mask != nil {
		h.Mask(m.Secret)
		if p.HasR2() {
			h.Mask(S3Secret(m.Secret))
		}
	}
	if err := checkEcho(p, m); err != nil {
		return nil, e.Undo(ctx, t, h, err)
	}
	if err := e.verify(ctx, p, m); err != nil {
		return nil, e.Undo(ctx, t, h, err)
	}
	return t, nil
}

// S3Secret is the R2 S3 secret access key of a token: the lowercase hex SHA-256 of its value.
func S3Secret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// R2Endpoint is the S3 endpoint of the account's R2, in the jurisdiction of the named buckets
// (default when none are named).
func R2Endpoint(accountID string, buckets []policy.Bucket) string {
	j := "default"
	if len(buckets) > 0 {
		j = buckets[0].Jurisdiction
	}
	if j == "default" || j == "" {
		return "https://" + accountID + ".r2.cloudflarestorage.com"
	}
	return "https://" + accountID + "." + j + ".r2.cloudflarestorage.com"
}

// Undo deletes a token that must not be handed out, and says what happened: an *UndoError when
// the delete failed too.
func (e *Engine) Undo(ctx context.Context, t *Issued, h Hooks, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupBudget)
	defer cancel()
	err := e.Tokens.Delete(cctx, t.Owner, t.AccountID, t.ID)
	if err != nil && !errors.Is(err, cftoken.ErrNotFound) {
		return &UndoError{ID: t.ID, ExpiresOn: t.ExpiresOn, Cause: cause, DeleteErr: err}
	}
	if h.Undone != nil {
		h.Undone(t.ID)
	}
	return fmt.Errorf("%w; token %s was deleted", cause, t.ID)
}

// DeleteByName deletes every token of the owner that carries name and, when expires is set,
// that expiry (a second guard against a name that is not unique, such as a user's own), and
// returns how many.
func (e *Engine) DeleteByName(ctx context.Context, owner cftoken.Owner, accountID, name string, expires time.Time) (int, error) {
	ts, _, err := e.Tokens.List(ctx, owner, accountID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range ts {
		if t.Name != name || (!expires.IsZero() && !t.ExpiresOn.Equal(expires)) {
			continue
		}
		if err := e.Tokens.Delete(ctx, owner, accountID, t.ID); err != nil && !errors.Is(err, cftoken.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// explainCreate says what a refused create means. A 9109 there is as likely a resource the
// owner cannot delegate (a bucket that does not exist, a zone or account it has no access to)
// as a missing permission, and Cloudflare's answer does not say which: name both, and the
// resources that were asked for.
func explainCreate(err error, p *Plan) error {
	var ae *cftoken.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case errors.Is(err, cftoken.ErrQuotaFull):
		return explainQuotaFull(err, p)
	case errors.Is(err, cftoken.ErrAboveRole):
		return explainAboveRole(err, p)
	case ae.Has(9109):
		perm := "API Tokens Write (a user token made from the \"Create additional tokens\" template)"
		if p.Owner == cftoken.OwnerAccount {
			perm = "Account API Tokens Write for account " + p.AccountID
		}
		e := fmt.Errorf("%w: either the bootstrap token lacks %s, or a resource asked for does not exist or is not one its owner may delegate (%s); check each, and the bootstrap token's permissions", err, perm, askedResources(p))
		// Name the most specific input asked for: a bucket is the likeliest to be missing.
		switch {
		case len(p.Buckets) > 0:
			return field.Wrap("r2-buckets", e)
		case len(p.Zones) > 0:
			return field.Wrap("zones", e)
		}
		return e
	case ae.Retryable():
		return fmt.Errorf("%w; cfmint never retries a create, since a second try could mint a second token: re-run the job", err)
	case ae.Status == 400 && len(p.Buckets) > 0 && strings.Contains(strings.ToLower(fmt.Sprint(ae.Details)), "bucket"):
		return field.Wrap("r2-buckets", fmt.Errorf("%w; check that each bucket exists in account %s (and its jurisdiction)", err, p.AccountID))
	}
	return err
}

// askedResources lists what a plan grants on, in the user's words: the account, its zones and
// buckets.
func askedResources(p *Plan) string {
	var parts []string
	if p.AccountID != "" {
		parts = append(parts, "account "+p.AccountID)
	}
	if len(p.Zones) > 0 {
		names := make([]string, len(p.Zones))
		for i, z := range p.Zones {
			names[i] = z.Name
		}
		parts = append(parts, "zones "+strings.Join(names, ", "))
	}
	if len(p.Buckets) > 0 {
		names := make([]string, len(p.Buckets))
		for i, b := range p.Buckets {
			names[i] = b.Name
			if b.Jurisdiction != "" && b.Jurisdiction != "default" {
				names[i] = b.Jurisdiction + ":" + b.Name
			}
		}
		acct := ""
		if p.AccountID != "" {
			acct = " in account " + p.AccountID
		}
		parts = append(parts, "r2-buckets "+strings.Join(names, ", ")+acct)
	}
	if len(parts) == 0 {
		return "no resource named"
	}
	return "asked for: " + strings.Join(parts, "; ")
}

// checkEcho confirms Cloudflare stored the IP condition and expiry that were asked for: a token
// that silently lost its filter or expiry is worse than no token.
func checkEcho(p *Plan, m *cftoken.Minted) error {
	want := make([]string, len(p.Request.CIDRs))
	for i, c := range p.Request.CIDRs {
		want[i] = c.String()
	}
	got := canonical(m.IPIn)
	slices.Sort(want)
	if !slices.Equal(want, got) || len(m.IPNotIn) > 0 {
		return fmt.Errorf("Cloudflare's answer does not echo the IP filter asked for (asked %v, got in=%s not_in=%s)", want, logsafe.String(fmt.Sprint(m.IPIn)), logsafe.String(fmt.Sprint(m.IPNotIn)))
	}
	if !m.ExpiresOn.Equal(p.Request.ExpiresOn) {
		return fmt.Errorf("Cloudflare's answer does not echo the expiry asked for (asked %s, got %s)", p.Request.ExpiresOn.Format(time.RFC3339), m.ExpiresOn.Format(time.RFC3339))
	}
	return nil
}

func canonical(cidrs []string) []string {
	out := make([]string, 0, len(cidrs))
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked().String())
		} else {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// verify asks Cloudflare whether the new token is active, retrying briefly: a new token may take
// a moment to be known everywhere.
func (e *Engine) verify(ctx context.Context, p *Plan, m *cftoken.Minted) error {
	window := e.VerifyWindow
	if window <= 0 {
		window = DefaultVerifyWindow
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var last error
	var waited time.Duration
	for wait := 200 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		status, err := e.Once.Verify(ctx, p.Owner, p.AccountID, m.Secret)
		if err == nil && status == "active" {
			return nil
		}
		if err == nil {
			// Cloudflare knows the token and says it is disabled or expired: waiting will not
			// change that.
			return fmt.Errorf("Cloudflare says the new token is %s, not active", logsafe.Quote(status))
		}
		last = err
		var ae *cftoken.APIError
		if errors.As(err, &ae) && !ae.Retryable() && !ae.Has(1000) {
			return fmt.Errorf("the new token: %w", err)
		}
		// The window is counted in waits too, so that a Sleep that does not wait (tests) ends
		// it as a real timer would: a wait that would run past it fails now, as the context's
		// deadline would cut it.
		if waited+wait > window || e.sleep(ctx, wait) != nil {
			return fmt.Errorf("the new token did not become active in time: %w", last)
		}
		waited += wait
	}
}

// CIDRList is the plan's ranges, comma-separated, as outputs and logs show them.
func CIDRList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Describe is a one-line account of a plan, for debug logs. It holds no secret.
func Describe(p *Plan) string {
	var parts []string
	for _, pol := range p.Request.Policies {
		var names []string
		for _, g := range pol.Groups {
			names = append(names, g.Name)
		}
		keys := make([]string, 0, len(pol.Resources))
		for k := range pol.Resources {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts = append(parts, fmt.Sprintf("[%s on %s]", strings.Join(names, ", "), strings.Join(keys, ", ")))
	}
	return fmt.Sprintf("owner=%s policies=%s ip=%s expires=%s", p.Owner, strings.Join(parts, " "), CIDRList(p.Request.CIDRs), p.Request.ExpiresOn.Format(time.RFC3339))
}

// RequestPreview is what a dry run prints: the call cfmint would make.
type RequestPreview struct {
	Method string          `json:"method"`
	URL    string          `json:"url"`
	Body   json.RawMessage `json:"body"`
}

// Preview renders the exact create request of a plan, as sent to apiBase.
func Preview(apiBase string, p *Plan) (RequestPreview, error) {
	path, body, err := cftoken.CreateRequest(p.Owner, p.AccountID, p.Request)
	if err != nil {
		return RequestPreview{}, err
	}
	return RequestPreview{Method: "POST", URL: strings.TrimRight(apiBase, "/") + "/" + path, Body: body}, nil
}

// Assemble is the plan of a request whose policies were decided elsewhere: the broker's trust
// policy builds them from its rule. now is Cloudflare's time.
func Assemble(owner cftoken.Owner, accountID, name string, pols []policy.Policy, cidrs []netip.Prefix, zones []policy.Zone, buckets []policy.Bucket, ttl time.Duration, now time.Time) *Plan {
	return &Plan{
		Owner:     owner,
		AccountID: accountID,
		Request:   policy.Request{Name: name, Policies: pols, CIDRs: cidrs, ExpiresOn: now.Add(ttl).UTC().Truncate(time.Second)},
		Zones:     zones,
		Buckets:   buckets,
		TTL:       ttl,
	}
}
