package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/cfmint/cfmint/internal/brokerclient"
	"github.com/cfmint/cfmint/internal/cftoken"
	"github.com/cfmint/cfmint/internal/mint"
)

// A revoke ticket comes with every token the broker mints: the token's id, where it lives, the
// run it was minted for and when it expires, signed by the broker. The run's revoke shows it
// (header Cfmint-Revoke-Ticket), and the broker deletes the token with one call, without reading
// its name first. Every replica can check it: the key is derived from the bootstrap token, which
// they share.
//
// A ticket is no secret worth guarding: it lets its holder revoke that one token early, which
// the run it was minted for may do anyway, and only with an ID token of that run.

// TicketHeader is the request header a revoke carries its ticket in.
const TicketHeader = brokerclient.TicketHeader

// ticketPrefix versions the format.
const ticketPrefix = "v1."

// TicketKey is the key revoke tickets are signed with: derived from the bootstrap token, so that
// the token itself never signs anything and every replica derives the same key.
func TicketKey(bootstrap string) []byte {
	mac := hmac.New(sha256.New, []byte(strings.TrimSpace(bootstrap)))
	mac.Write([]byte("cfmint revoke ticket v1"))
	return mac.Sum(nil)
}

// ticket is what a revoke ticket binds.
type ticket struct {
	ID      string        `json:"id"`
	Owner   cftoken.Owner `json:"owner"`
	Account string        `json:"account,omitempty"`
	Issuer  string        `json:"iss"` // mint.BrokerRun's issuer hash
	Repo    string        `json:"repo"`
	Run     string        `json:"run"` // run id "." attempt
	Nonce   string        `json:"nonce"`
	Rule    string        `json:"rule"` // for the revoke's audit line and metric
	Expires int64         `json:"exp"`  // Unix seconds: the token's expiry
}

func ticketFor(t *mint.Issued, run mint.BrokerRun, nonce string) ticket {
	return ticket{ID: t.ID, Owner: t.Owner, Account: t.AccountID, Issuer: run.Issuer, Repo: run.RepositoryID, Run: run.RunID + "." + run.Attempt, Nonce: nonce, Rule: t.Rule, Expires: t.ExpiresOn.Unix()}
}

func signTicket(key []byte, t ticket) string {
	b, _ := json.Marshal(t)
	body := base64.RawURLEncoding.EncodeToString(b)
	return ticketPrefix + body + "." + base64.RawURLEncoding.EncodeToString(ticketMAC(key, body))
}

func ticketMAC(key []byte, body string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ticketPrefix + body))
	return mac.Sum(nil)
}

// openTicket checks s's signature and reads it; ok is false for anything this broker did not
// sign (forged, altered, cut, or signed with another bootstrap token's key).
func openTicket(key []byte, s string) (t ticket, ok bool) {
	rest, found := strings.CutPrefix(s, ticketPrefix)
	if !found || len(key) == 0 || len(s) > 2048 {
		return t, false
	}
	body, sig, found := strings.Cut(rest, ".")
	if !found {
		return t, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, ticketMAC(key, body)) {
		return t, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(raw, &t) != nil {
		return ticket{}, false
	}
	return t, true
}

// binds reports whether t is for token id of run, and unexpired at now.
func (t ticket) binds(id string, run mint.BrokerRun, now time.Time) bool {
	return t.ID == id && t.Issuer == run.Issuer && t.Repo == run.RepositoryID && t.Run == run.RunID+"."+run.Attempt && now.Unix() < t.Expires
}
