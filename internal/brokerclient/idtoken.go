// Package brokerclient is how the action and the CLI ask cfmint's broker
// for a token: getting the job's OIDC ID token, then calling the broker.
package brokerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The variables FetchIDToken reads.
const (
	// EnvIDToken holds a ready ID token: GitLab CI's `id_tokens:` can put
	// one under this name, and any CI system can.
	EnvIDToken = "CFMINT_ID_TOKEN"
	// EnvRequestURL and EnvRequestToken are set by the GitHub Actions runner
	// for a job with `permissions: id-token: write`.
	EnvRequestURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

const (
	// maxAnswerSize bounds the runner's answer: an ID token is a few KiB.
	maxAnswerSize = 64 << 10
	// requestTimeout bounds the whole exchange with the runner, retries
	// included.
	requestTimeout = 30 * time.Second
	// attempts is how often a request the runner answered with a 5xx or
	// not at all is tried, as the toolkit's HTTP client retries.
	attempts = 3
)

// FetchIDToken returns the job's OIDC ID token for audience: $CFMINT_ID_TOKEN
// when set, else one asked from the GitHub Actions runner, as
// actions/toolkit's getIDToken does (GET $ACTIONS_ID_TOKEN_REQUEST_URL
// &audience=..., bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN). An empty audience
// asks for the runner's default, the owner's URL. lookup reads the
// environment. The caller must mask the token. Errors never contain the
// request token or the ID token.
func FetchIDToken(ctx context.Context, hc *http.Client, lookup func(string) (string, bool), audience string) (string, error) {
	return fetchIDToken(ctx, hc, lookup, audience, 250*time.Millisecond, true)
}

// FetchRunnerIDToken is FetchIDToken that ignores $CFMINT_ID_TOKEN and asks only the runner.
// The action's phases use it: an earlier step of the job can set $CFMINT_ID_TOKEN through
// $GITHUB_ENV, to another identity's ID token (main would mint as that) or to a spent one (post
// could not revoke). A terminal's environment is its user's own, so the CLI honours it.
func FetchRunnerIDToken(ctx context.Context, hc *http.Client, lookup func(string) (string, bool), audience string) (string, error) {
	return fetchIDToken(ctx, hc, lookup, audience, 250*time.Millisecond, false)
}

// FetchIDTokenFrom returns the ID token held in the environment variable name, and never asks
// the runner: a CI system that gives a job several ID tokens (GitLab's `id_tokens:` entries, one
// per use, since the broker takes each once) names the one to spend. Errors never contain the
// token.
func FetchIDTokenFrom(lookup func(string) (string, bool), name string) (string, error) {
	if lookup == nil {
		return "", errors.New("brokerclient: FetchIDTokenFrom needs an environment lookup")
	}
	tok, ok := lookup(name)
	tok = strings.TrimSpace(tok)
	switch {
	case !ok:
		return "", fmt.Errorf("no OIDC ID token: $%s is not set; name the variable your CI system puts the ID token in (GitLab: an entry under id_tokens:)", name)
	case tok == "":
		return "", fmt.Errorf("no OIDC ID token: $%s is empty; name the variable your CI system puts the ID token in (GitLab: an entry under id_tokens:)", name)
	case strings.Count(tok, ".") != 2:
		return "", fmt.Errorf("$%s does not hold an ID token (a JWT: three parts separated by dots)", name)
	}
	return tok, nil
}

func fetchIDToken(ctx context.Context, hc *http.Client, lookup func(string) (string, bool), audience string, backoff time.Duration, fromEnv bool) (string, error) {
	if lookup == nil {
		return "", errors.New("brokerclient: FetchIDToken needs an environment lookup")
	}
	if tok, ok := lookup(EnvIDToken); fromEnv && ok && strings.TrimSpace(tok) != "" {
		return strings.TrimSpace(tok), nil
	}
	reqURL, _ := lookup(EnvRequestURL)
	reqToken, _ := lookup(EnvRequestToken)
	var missing []string
	if reqURL == "" {
		missing = append(missing, EnvRequestURL)
	}
	if reqToken == "" {
		missing = append(missing, EnvRequestToken)
	}
	if len(missing) > 0 {
		or := ""
		if fromEnv {
			or = fmt.Sprintf(", or set %s to an ID token", EnvIDToken)
		}
		return "", fmt.Errorf("no OIDC ID token: %s not set; add `permissions: id-token: write` to the job (pull requests from forks get no ID token)%s", describeMissing(missing), or)
	}
	if hc == nil {
		return "", errors.New("brokerclient: FetchIDToken needs an HTTP client")
	}
	u := reqURL
	if audience != "" {
		sep := "&"
		if !strings.Contains(u, "?") {
			sep = "?"
		}
		u += sep + "audience=" + encodeURIComponent(audience)
	}

	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var lastErr error
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("failed to get an OIDC ID token from the runner: %w (after: %w)", ctx.Err(), lastErr)
			case <-time.After(backoff << (attempt - 2)):
			}
		}
		tok, retry, err := requestIDToken(ctx, hc, u, reqToken)
		if err == nil {
			return tok, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return "", fmt.Errorf("failed to get an OIDC ID token from the runner: %w", lastErr)
}

func describeMissing(names []string) string {
	if len(names) == 1 {
		return names[0] + " is"
	}
	return strings.Join(names, " and ") + " are"
}

// requestIDToken makes one request; retry says whether another might work.
func requestIDToken(ctx context.Context, hc *http.Client, u, reqToken string) (tok string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", false, fmt.Errorf("%s is not a URL; it should be the runner's", EnvRequestURL)
	}
	req.Header.Set("Authorization", "bearer "+reqToken)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		// The error names the URL, which holds no secret, never the header.
		return "", ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize+1))
	if err != nil {
		return "", true, fmt.Errorf("failed to read the answer: %w", err)
	}
	// The body is never quoted in an error: a 200 body holds the ID token.
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", false, fmt.Errorf("the runner refused %s (HTTP %d); it lasts about 6 hours from the job's start, so ask early in the job", EnvRequestToken, resp.StatusCode)
	case resp.StatusCode >= 500:
		return "", true, fmt.Errorf("the runner answered HTTP %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return "", false, fmt.Errorf("the runner answered HTTP %d", resp.StatusCode)
	case len(body) > maxAnswerSize:
		return "", false, fmt.Errorf("the runner's answer is larger than %d bytes", maxAnswerSize)
	}
	var answer struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", false, errors.New(`the runner's answer is not JSON of the form {"value": "<ID token>"}`)
	}
	if strings.Count(answer.Value, ".") != 2 {
		return "", false, errors.New(`the runner's answer has no ID token in "value"`)
	}
	return answer.Value, false, nil
}

// encodeURIComponent escapes s as JavaScript's encodeURIComponent does, as
// the toolkit escapes the audience: everything but A-Z a-z 0-9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
