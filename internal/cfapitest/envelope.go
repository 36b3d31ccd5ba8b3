package cfapitest

import (
	"encoding/json"
	"net/http"
)

// Error codes. Those marked unverified were chosen here because neither
// Cloudflare's docs nor observed answers settle them; a product that keys
// on one of them is relying on the fake, not on Cloudflare.
const (
	codeInvalidToken   = 1000 // "Invalid API Token": unknown, deleted, expired or not yet valid
	codeInvalidRequest = 1001 // invalid create body; seen in the wild for a policy carrying "id"
	codeDNSValidation  = 1004 // "DNS Validation Error", as the DNS API answers
	codeBadHeaders     = 6003 // "Invalid request headers"
	codeMalformedJSON  = 6007 // "Malformed JSON in request body", seen on other endpoints
	codeBadAuthFormat  = 6111 // in error_chain of 6003
	codeNoRoute        = 7003 // "Could not route to ..., perhaps your object identifier is invalid?"
	codeBadMethod      = 7001 // unverified: 405 for a known path and the wrong method
	codeForbidden      = 9109 // "Unauthorized to access requested resource", IP filter, user-level auth
	codeRateLimited    = 971  // "Please wait and consider throttling your request speed"
	codeAuthError      = 10000
	codeFault          = 10001 // unverified: injected 5xx faults; real 5xx answers vary
)

// Messages that Cloudflare is known to send with those codes.
const (
	msgInvalidToken  = "Invalid API Token"
	msgUnauthorized  = "Unauthorized to access requested resource"
	msgNoUserAuth    = "Valid user-level authentication not found"
	msgAuthError     = "Authentication error"
	msgRateLimited   = "Please wait and consider throttling your request speed"
	msgMalformedJSON = "Malformed JSON in request body"
)

// apiError is one entry of an envelope's errors.
type apiError struct {
	Code       int        `json:"code"`
	Message    string     `json:"message"`
	ErrorChain []apiError `json:"error_chain,omitempty"`
}

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

func writeResult(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Errors: []apiError{}, Messages: []apiError{}, Result: result})
}

func writeList(w http.ResponseWriter, result any, info resultInfo) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Errors: []apiError{}, Messages: []apiError{}, Result: result, ResultInfo: &info})
}

func writeError(w http.ResponseWriter, status int, errs ...apiError) {
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
