package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/mint"
)

func TestNewNonce(t *testing.T) {
	t.Parallel()
	// The broker takes 8 to 32 [a-z0-9]; the broker's own pattern is tested with the broker.
	valid := regexp.MustCompile(`^[a-f0-9]{16}$`)
	a, b := NewNonce(), NewNonce()
	if !valid.MatchString(a) || !valid.MatchString(b) {
		t.Errorf("NewNonce = %q, %q; want 16 hex characters", a, b)
	}
	if a == b {
		t.Errorf("two nonces are the same: %q", a)
	}
}

// body is the body of the i-th mint the broker got.
func (f *fakeBroker) body(i int) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[i]
}

// calls records the hooks and saves a Minter makes, in order.
type calls []string

func (c *calls) hooks() mint.Hooks {
	return mint.Hooks{
		Created: func(id string) { *c = append(*c, "created "+id) },
		Settled: func() { *c = append(*c, "settled") },
		Undone:  func(id string) { *c = append(*c, "undone "+id) },
		Mask:    func(s string) { *c = append(*c, "mask "+s) },
	}
}

func (c *calls) save(nonce string, retry bool) {
	*c = append(*c, fmt.Sprintf("save %s retry=%v", nonce, retry))
}

func TestMinterMint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "POST", path: "/v1/tokens", status: 201, body: issuedJSON})
	var got calls
	fields := map[string]string{"preset": "dns-edit"}
	m := &Minter{Client: h.client, Fields: fields, Save: got.save}
	tok, err := m.Mint(context.Background(), got.hooks())
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != "0123456789abcdef0123456789abcdef" {
		t.Errorf("Mint = %+v", tok)
	}
	if b := h.broker.body(0); len(b) != 2 || b["preset"] != "dns-edit" || b["nonce"] != m.Nonce || m.Nonce == "" {
		t.Errorf("body = %v, want the fields and the nonce %q", b, m.Nonce)
	}
	if len(fields) != 1 {
		t.Errorf("Mint changed the caller's fields: %v", fields)
	}
	// The nonce is saved before the exchange; the token id before anything else once it is known,
	// and the secret masked.
	want := calls{"save " + m.Nonce + " retry=false", "created " + tok.ID, "mask cf-secret-token-value"}
	if !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	if m.Via() != h.client.Base {
		t.Errorf("Via = %q, want %q", m.Via(), h.client.Base)
	}
}

func TestMinterFreshNonceEachMint(t *testing.T) {
	t.Parallel()
	h := newHarness(t,
		answer{method: "POST", path: "/v1/tokens", status: 201, body: issuedJSON},
		answer{method: "POST", path: "/v1/tokens", status: 201, body: issuedJSON},
	)
	m := &Minter{Client: h.client}
	var nonces []string
	for range 2 {
		if _, err := m.Mint(context.Background(), mint.Hooks{}); err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, m.Nonce)
	}
	if nonces[0] == nonces[1] || h.broker.body(1)["nonce"] != nonces[1] {
		t.Errorf("nonces %q, sent %q and %q; want a fresh one each time", nonces, h.broker.body(0)["nonce"], h.broker.body(1)["nonce"])
	}
}

func TestMinterSavesARetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t,
		answer{method: "POST", path: "/v1/tokens", status: 503, body: errJSON("Cloudflare did not answer")},
		answer{method: "POST", path: "/v1/tokens", status: 201, body: issuedJSON},
	)
	var got calls
	retried := 0
	h.client.OnRetry = func(*Error, time.Duration) { retried++; got = append(got, "on retry") }
	m := &Minter{Client: h.client, Save: got.save}
	if _, err := m.Mint(context.Background(), mint.Hooks{}); err != nil {
		t.Fatal(err)
	}
	// The retry is saved before the client's own OnRetry hears of it, and so before it is sent.
	want := calls{"save " + m.Nonce + " retry=false", "save " + m.Nonce + " retry=true", "on retry"}
	if !slices.Equal(got, want) || retried != 1 {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

func TestMinterRefusalSettles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "POST", path: "/v1/tokens", status: 403, body: errJSON("no rule matches")})
	var got calls
	m := &Minter{Client: h.client}
	_, err := m.Mint(context.Background(), got.hooks())
	var be *Error
	if !errors.As(err, &be) || be.Status != 403 || errors.Is(err, ErrAnswerLost) {
		t.Fatalf("Mint error = %v, want the broker's 403", err)
	}
	if !slices.Equal(got, calls{"settled"}) {
		t.Errorf("calls = %q; a refusal minted nothing, so it settles", got)
	}
}

func TestMinterLostAnswerDoesNotSettle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, answer{method: "POST", path: "/v1/tokens", hangUp: true})
	var got calls
	m := &Minter{Client: h.client}
	_, err := m.Mint(context.Background(), got.hooks())
	if !errors.Is(err, ErrAnswerLost) {
		t.Fatalf("Mint error = %v, want ErrAnswerLost", err)
	}
	if len(got) != 0 {
		t.Errorf("calls = %q; a lost answer may have minted, so nothing is settled", got)
	}
	if m.Nonce == "" || h.broker.body(0)["nonce"] != m.Nonce {
		t.Errorf("Nonce = %q, sent %q: the caller cleans up by the nonce sent", m.Nonce, h.broker.body(0)["nonce"])
	}
}

func TestMinterUndo(t *testing.T) {
	t.Parallel()
	id := "0123456789abcdef0123456789abcdef"
	cause := errors.New("could not write the outputs")
	t.Run("revoked", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, answer{method: "DELETE", path: "/v1/tokens/" + id, status: 204})
		var got calls
		err := (&Minter{Client: h.client}).Undo(context.Background(), &mint.Issued{ID: id}, got.hooks(), cause)
		if !errors.Is(err, cause) || !strings.Contains(err.Error(), "revoked through the broker") {
			t.Errorf("Undo = %v, want the cause and that the token was revoked", err)
		}
		if !slices.Equal(got, calls{"undone " + id}) {
			t.Errorf("calls = %q", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, answer{method: "DELETE", path: "/v1/tokens/" + id, status: 403, body: errJSON("not this run's token")})
		var got calls
		err := (&Minter{Client: h.client}).Undo(context.Background(), &mint.Issued{ID: id}, got.hooks(), cause)
		var ue *mint.UndoError
		if !errors.As(err, &ue) || ue.ID != id || !errors.Is(err, cause) {
			t.Errorf("Undo = %#v, want a *mint.UndoError for %s with the cause", err, id)
		}
		if len(got) != 0 {
			t.Errorf("calls = %q; nothing was undone", got)
		}
	})
}
