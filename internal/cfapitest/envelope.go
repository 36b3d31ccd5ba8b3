package cfapitest

import (
	"encoding/json"
	"net/http"
	"slices"
)

// Error codes. Those marked unverified were chosen here because neither
// Cloudflare's docs nor observed answers settle them; a product that keys
// on one of them is relying on the fake, not on Cloudflare. The others come
// from the answers the project's Cloudflare reference lists as seen in the
// wild, where the code depends on which product's API answers (see access).
const (
	codeInvalidToken   = 1000  // "Invalid API Token": a dead token on a verify endpoint
	codeInvalidRequest = 1001  // invalid create body; seen in the wild for a policy carrying "id"
	codeDNSValidation  = 1004  // "DNS Validation Error", as the DNS API answers
	codeBadHeaders     = 6003  // "Invalid request headers": a malformed Authorization header
	codeMalformedJSON  = 6007  // "Malformed JSON in request body", seen on other endpoints
	codeBadAuthFormat  = 6111  // in error_chain of 6003
	codeNoRoute        = 7003  // "Could not route to ..., perhaps your object identifier is invalid?"
	codeBadMethod      = 7001  // unverified: 405 for a known path and the wrong method
	codeMissingAuth    = 9106  // no Authorization header at all
	codeForbidden      = 9109  // the accounts, zones and token APIs: dead token, IP filter, missing permission
	codeRateLimited    = 971   // "Please wait and consider throttling your request speed"
	codeAuthError      = 10000 // "Authentication error": product APIs, and a permission the token lacks
	codeTokenValid     = 10000 // the message of a successful verify
	codeFault          = 10001 // unverified: injected 5xx faults; real 5xx answers vary
)

// Messages that Cloudflare is known to send with those codes.
const (
	msgInvalidToken       = "Invalid API Token"
	msgInvalidAccessToken = "Invalid access token"
	msgUnauthorized       = "Unauthorized to access requested resource"
	msgNoUserAuth         = "Valid user-level authentication not found"
	msgMissingAuth        = "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
	msgBadHeaders         = "Invalid request headers"
	msgBadAuthFormat      = "Invalid format for Authorization header"
	msgLocation           = "Cannot use the access token from location: " // + the client's address
	msgAuthError          = "Authentication error"
	msgRateLimited        = "Please wait and consider throttling your request speed"
	msgMalformedJSON      = "Malformed JSON in request body"
	// msgTokenValid is the message (code 10000) of a successful verify.
	msgTokenValid = "This API Token is valid and active"
)

// apiError is one entry of an envelope's errors.
type apiError struct {
	Code             int        `json:"code"`
	Message          string     `json:"message"`
	DocumentationURL string     `json:"documentation_url,omitempty"`
	ErrorChain       []apiError `json:"error_chain,omitempty"`
}

// docPermissions is the documentation_url of a 403's errors. Cloudflare
// added the field to 403 answers on 2026-08-21 (changelog); which page it
// points to is unverified, so clients must not key on it.
const docPermissions = "https://developers.cloudflare.com/fundamentals/api/reference/permissions/"

// envelope is Cloudflare's answer shape.
type envelope struct {
	Success    bool        `json:"success"`
	Errors     []apiError  `json:"errors"`
	Messages   []apiError  `json:"messages"`
	Result     any         `json:"result"`
	ResultInfo *resultInfo `json:"result_info,omitempty"`
}

// resultInfo is the paging block of list answers.
type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Encoding the fake's own values cannot fail; a write error means the
	// client has gone, and there is nobody left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

func writeResult(w http.ResponseWriter, result any, messages ...apiError) {
	if messages == nil {
		messages = []apiError{}
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Errors: []apiError{}, Messages: messages, Result: result})
}

func writeList(w http.ResponseWriter, result any, info resultInfo) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Errors: []apiError{}, Messages: []apiError{}, Result: result, ResultInfo: &info})
}

func writeError(w http.ResponseWriter, status int, errs ...apiError) {
	if status == http.StatusForbidden {
		errs = slices.Clone(errs)
		for i := range errs {
			if errs[i].DocumentationURL == "" {
				errs[i].DocumentationURL = docPermissions
			}
		}
	}
	writeJSON(w, status, envelope{Success: false, Errors: errs, Messages: []apiError{}, Result: nil})
}

func writeErr(w http.ResponseWriter, status, code int, msg string) {
	writeError(w, status, apiError{Code: code, Message: msg})
}

// paginate cuts a page out of n items and returns the bounds and the
// result_info to send with it.
func paginate(n, page, perPage int) (lo, hi int, info resultInfo) {
	lo = min((page-1)*perPage, n)
	hi = min(lo+perPage, n)
	return lo, hi, resultInfo{
		Page:       page,
		PerPage:    perPage,
		Count:      hi - lo,
		TotalCount: n,
		TotalPages: (n + perPage - 1) / perPage,
	}
}
