package oidctest

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// idTokenPattern is the path of a job's ID-token endpoint, shaped like the
// runner's (ACTIONS_ID_TOKEN_REQUEST_URL without its query).
const idTokenPattern = "/_apis/distributedtask/hubs/Actions/plans/{plan}/jobs/{job}/idtoken"

type jobEndpoint struct {
	requestToken string
	claims       func() map[string]string
}

// IDTokenEndpoint opens the ID-token request endpoint of one job, as the
// runner gives a job with `permissions: id-token: write`. It returns the
// values of ACTIONS_ID_TOKEN_REQUEST_URL (ending in ?api-version=2.0, so a
// client appends &audience=...) and ACTIONS_ID_TOKEN_REQUEST_TOKEN.
//
// `GET URL&audience=AUD` with `Authorization: bearer TOKEN` answers
// {"value": "<JWT>"}: a token whose claims are claims() (nil: none) on top
// of Complete's, with aud = AUD when the request names an audience. Another
// bearer gets 401.
func (i *Issuer) IDTokenEndpoint(claims func() map[string]string) (url, requestToken string) {
	plan, job := newJTI(), newJTI()
	e := &jobEndpoint{requestToken: randomHex(32), claims: claims}
	i.mu.Lock()
	i.endpoints[plan+"/"+job] = e
	i.mu.Unlock()
	url = i.URL() + strings.NewReplacer("{plan}", plan, "{job}", job).Replace(idTokenPattern) + "?api-version=2.0"
	return url, e.requestToken
}

func (i *Issuer) serveIDToken(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	i.counts[idTokenPattern]++
	e := i.endpoints[r.PathValue("plan")+"/"+r.PathValue("job")]
	i.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, "no such job")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") != "2.0" {
		writeError(w, http.StatusBadRequest, "api-version must be 2.0")
		return
	}
	scheme, bearer, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") || subtle.ConstantTimeCompare([]byte(bearer), []byte(e.requestToken)) != 1 {
		writeError(w, http.StatusUnauthorized, "the request token is not valid")
		return
	}
	c := Claims{}
	if e.claims != nil {
		for k, v := range e.claims() {
			c[k] = v
		}
	}
	if aud := q.Get("audience"); aud != "" {
		c["aud"] = aud
	}
	raw, _ := i.Issue(c)
	i.mu.Lock()
	i.issued = append(i.issued, raw)
	i.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"value": raw})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

// TokenPath is the issuer's playground endpoint, relative to URL(): `GET URL/token?audience=A&
// CLAIM=VALUE...` answers {"value": "<JWT>"}, a token whose claims are the query's on top of
// Complete's (GitHub's shape: numeric ids, run_id, run_attempt, ...), with aud = A. It needs no
// credential: the issuer is a fake on loopback, for `cfmint demo --serve` and tests that want a
// token as a script would get one.
const TokenPath = "/token"

// serveToken answers TokenPath. A claim given twice is refused: which one was meant is unclear.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	i.counts[TokenPath]++
	i.mu.Unlock()
	c := Claims{}
	for k, vs := range r.URL.Query() {
		if len(vs) != 1 {
			writeError(w, http.StatusBadRequest, "claim "+k+" is given more than once; give each once")
			return
		}
		if k == "audience" {
			k = "aud"
		}
		c[k] = vs[0]
	}
	raw, _ := i.Issue(c)
	i.mu.Lock()
	i.issued = append(i.issued, raw)
	i.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"value": raw})
}
