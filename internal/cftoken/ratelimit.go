package cftoken

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateLimit is Cloudflare's own count of the caller's requests, as its answers state it since
// 2025-09 on every answer, errors included:
//
//	Ratelimit: "default";r=<requests left>;t=<seconds until the window resets>
//	Ratelimit-Policy: "default";q=<quota>;w=<window seconds>
//
// The count is per Cloudflare user (dashboard, API keys and every token of that user together),
// so it sees what cfmint cannot: other replicas, other tools, the dashboard.
type RateLimit struct {
	Policy    string        // the policy's name, e.g. "default"
	Remaining int           // requests left in the window
	Reset     time.Duration // until the window resets
	Quota     int           // requests per window; 0 when Ratelimit-Policy was absent or unreadable
	Window    time.Duration // the window's length; 0 when Ratelimit-Policy was absent or unreadable
}

// ParseRateLimit reads the Ratelimit and Ratelimit-Policy headers (Structured Fields lists, the
// syntax of draft-ietf-httpapi-ratelimit-headers). ok is false when Ratelimit is absent or holds
// no readable policy. When it names several policies, the one with the fewest requests left is
// the one that binds, and is returned. Ratelimit-Policy fills Quota and Window when it names the
// same policy.
func ParseRateLimit(h http.Header) (rl RateLimit, ok bool) {
	var best *sfItem
	for _, it := range parseSFList(strings.Join(h.Values("Ratelimit"), ",")) {
		r, okR := it.intParam("r")
		_, okT := it.intParam("t")
		if !okR || !okT {
			continue
		}
		if best == nil {
			best = &it
			continue
		}
		if br, _ := best.intParam("r"); r < br {
			best = &it
		}
	}
	if best == nil {
		return RateLimit{}, false
	}
	r, _ := best.intParam("r")
	t, _ := best.intParam("t")
	rl = RateLimit{Policy: best.name, Remaining: r, Reset: time.Duration(t) * time.Second}
	for _, it := range parseSFList(strings.Join(h.Values("Ratelimit-Policy"), ",")) {
		q, okQ := it.intParam("q")
		if it.name != rl.Policy || !okQ {
			continue
		}
		rl.Quota = q
		if w, okW := it.intParam("w"); okW {
			rl.Window = time.Duration(w) * time.Second
		}
		break
	}
	return rl, true
}

// sfItem is one member of a Structured Fields list (RFC 8941) whose bare item is a string or a
// token (the policy's name), with its parameters. Members of any other kind are skipped.
type sfItem struct {
	name   string
	params map[string]string // bare values as written; strings unquoted
}

// intParam reads a parameter that must be a non-negative integer of at most 15 digits (RFC 8941).
func (it sfItem) intParam(key string) (int, bool) {
	v, ok := it.params[key]
	if !ok || v == "" || len(v) > 15 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// parseSFList parses a Structured Fields list leniently: a member that does not parse is dropped
// (and the parse resumes after the next comma outside a string) rather than failing the whole
// header, so one odd policy does not hide the others.
func parseSFList(s string) []sfItem {
	var out []sfItem
	p := sfParser{s: s}
	for {
		p.skipOWS()
		if p.done() {
			return out
		}
		it, ok := p.member()
		p.skipOWS()
		if ok && (p.done() || p.peek() == ',') {
			out = append(out, it)
		} else {
			p.skipToComma()
		}
		if !p.done() {
			p.i++ // the comma
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }
func (p *sfParser) peek() byte { return p.s[p.i] }

func (p *sfParser) skipOWS() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

func (p *sfParser) skipSP() {
	for !p.done() && p.peek() == ' ' {
		p.i++
	}
}

// skipToComma moves to the next comma that is not inside a string.
func (p *sfParser) skipToComma() {
	for !p.done() && p.peek() != ',' {
		if p.peek() == '"' {
			if _, ok := p.str(); !ok {
				p.i = len(p.s)
				return
			}
			continue
		}
		p.i++
	}
}

// member reads a bare item (string or token) and its parameters.
func (p *sfParser) member() (sfItem, bool) {
	var it sfItem
	var ok bool
	switch {
	case p.done():
		return it, false
	case p.peek() == '"':
		it.name, ok = p.str()
	case isAlpha(p.peek()) || p.peek() == '*':
		it.name, ok = p.token(), true
	default:
		return it, false
	}
	if !ok {
		return it, false
	}
	it.params = map[string]string{}
	for !p.done() && p.peek() == ';' {
		p.i++
		p.skipSP()
		key := p.key()
		if key == "" {
			return it, false
		}
		val := "?1" // a parameter without a value is boolean true
		if !p.done() && p.peek() == '=' {
			p.i++
			if val, ok = p.bareValue(); !ok {
				return it, false
			}
		}
		it.params[key] = val
	}
	return it, true
}

// str reads a quoted string, undoing \" and \\ escapes.
func (p *sfParser) str() (string, bool) {
	var b strings.Builder
	for p.i++; !p.done(); p.i++ {
		switch c := p.peek(); {
		case c == '\\':
			p.i++
			if p.done() || (p.peek() != '"' && p.peek() != '\\') {
				return "", false
			}
			b.WriteByte(p.peek())
		case c == '"':
			p.i++
			return b.String(), true
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

func (p *sfParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *sfParser) key() string {
	start := p.i
	if p.done() || !(p.peek() >= 'a' && p.peek() <= 'z' || p.peek() == '*') {
		return ""
	}
	for !p.done() {
		c := p.peek()
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i]
}

// bareValue reads a parameter's value: a string (unquoted), or a number, token, boolean or byte
// sequence as written.
func (p *sfParser) bareValue() (string, bool) {
	if p.done() {
		return "", false
	}
	switch c := p.peek(); {
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		p.i++
		for !p.done() && (p.peek() >= '0' && p.peek() <= '9' || p.peek() == '.') {
			p.i++
		}
		return p.s[start:p.i], true
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-2 : p.i], true
		}
		return "", false
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return "", false
		}
		v := p.s[p.i : p.i+end+2]
		p.i += end + 2
		return v, true
	case isAlpha(c) || c == '*':
		return p.token(), true
	}
	return "", false
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isTokenChar: tchar, ":" and "/" (RFC 8941 sf-token).
func isTokenChar(c byte) bool {
	if isAlpha(c) || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}
