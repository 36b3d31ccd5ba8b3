package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cfmint/cfmint/internal/broker"
	"github.com/cfmint/cfmint/internal/cfapitest"
	"github.com/cfmint/cfmint/internal/redistest"
)

// sweepWorld is a shares world on a Cloudflare whose clock the test moves, holding one token of
// each kind the sweeper must tell apart; ids maps each kind to its token's id.
func sweepWorld(t *testing.T) (*shareWorld, *cfapitest.Clock, map[string]string) {
	t.Helper()
	cfClock := cfapitest.NewClock(time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC))
	w := newShareWorld(t, []cfapitest.Option{cfapitest.WithClock(cfClock.Now)}, "")
	ids := map[string]string{}
	issue := func(kind, name string, expires time.Time) {
		t.Helper()
		id, _, err := w.cf.IssueToken(cfapitest.TokenSpec{Name: name, OwnerAccount: w.fx.Account.ID, ExpiresOn: expires,
			Policies: []cfapitest.Policy{{Groups: []string{"DNS Read"}, Resources: map[string]any{"com.cloudflare.api.account.zone." + w.fx.Zone.ID: "*"}}}})
		if err != nil {
			t.Fatal(err)
		}
		ids[kind] = id
	}
	broker := func(nonce, rule string) string {
		return "cfmint-broker:a1b2c3:892345611:9876543210.1:" + nonce + ":" + rule + ":octo-org/shop"
	}
	// Issued two hours ago: abandoned under site-deploy (max_ttl 30m), not yet under a rule
	// that is gone (the longest max_ttl, 6h).
	issue("abandoned", broker("aaaaaaaa", "site-deploy"), time.Time{})
	issue("gone-rule", broker("bbbbbbbb", "old-rule"), time.Time{})
	cfClock.Advance(2 * time.Hour)
	now := cfClock.Now()
	issue("expired", broker("cccccccc", "site-deploy"), now.Add(time.Minute))
	issue("revoked", broker("dddddddd", "site-deploy"), now.Add(20*time.Minute))
	issue("live", broker("eeeeeeee", "site-deploy"), now.Add(20*time.Minute))
	issue("other-expired", "deploy token", now.Add(time.Minute))
	issue("action-expired", "cfmint:octo-org/shop:deploy:1.1:build:-", now.Add(time.Minute))
	issue("other-revoked", "someone's token", now.Add(20*time.Minute))
	w.cf.RevokeToken(ids["revoked"])
	w.cf.RevokeToken(ids["other-revoked"])
	cfClock.Advance(2 * time.Minute)
	return w, cfClock, ids
}

// TestSweeper: the sweeper deletes the broker's expired, revoked and abandoned tokens, with an
// audit line and a metric each, and leaves live ones and every token not named by a broker.
func TestSweeper(t *testing.T) {
	t.Parallel()
	w, _, ids := sweepWorld(t)
	r := w.replica(t, memoryStore(t))
	res, err := r.srv.Sweep(context.Background(), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Locked {
		t.Fatal("the only sweeper did not get the lock")
	}
	got := map[string]string{}
	for _, s := range res.Swept {
		got[s.ID] = s.Reason
	}
	want := map[string]string{ids["expired"]: "expired", ids["revoked"]: "revoked", ids["abandoned"]: "abandoned"}
	if len(got) != len(want) {
		t.Errorf("swept %v, want %v", got, want)
	}
	for id, reason := range want {
		if got[id] != reason {
			t.Errorf("token %s: swept for %q, want %q", id, got[id], reason)
		}
		if _, ok := w.cf.Token(id); ok {
			t.Errorf("token %s (%s) is still there", id, reason)
		}
	}
	for _, kind := range []string{"live", "gone-rule", "other-expired", "action-expired", "other-revoked"} {
		if _, ok := w.cf.Token(ids[kind]); !ok {
			t.Errorf("the sweeper deleted the %s token", kind)
		}
	}
	log := w.log.String()
	for id, reason := range want {
		if !strings.Contains(log, `"event":"sweep","outcome":"deleted","reason":"`+reason+`","rule":"site-deploy","token_id":"`+id+`"`) {
			t.Errorf("no audit line for %s (%s) in\n%s", id, reason, log)
		}
	}
	metrics := scrape(t, r.srv)
	for _, reason := range []string{"expired", "revoked", "abandoned"} {
		if line := `cfmint_swept_tokens_total{reason="` + reason + `"} 1`; !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// scrape is what the broker's metrics port answers.
func scrape(t *testing.T, srv *broker.Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestSweepLock: of two replicas sweeping at once on one store, one sweeps and the other leaves
// it; with a real Redis and with the memory store two servers share.
func TestSweepLock(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) (broker.ReplayStore, broker.ReplayStore){
		"memory": func(t *testing.T) (broker.ReplayStore, broker.ReplayStore) {
			s := memoryStore(t)
			return s, s
		},
		"redis": func(t *testing.T) (broker.ReplayStore, broker.ReplayStore) {
			rs := redistest.Start(t)
			return redisStore(t, rs.URL()), redisStore(t, rs.URL())
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, _, _ := sweepWorld(t)
			s1, s2 := open(t)
			r1, r2 := w.replica(t, s1), w.replica(t, s2)
			type outcome struct {
				res broker.SweepResult
				err error
			}
			done := make(chan outcome, 2)
			for _, r := range []*replica{r1, r2} {
				go func() {
					res, err := r.srv.Sweep(context.Background(), 10*time.Minute)
					done <- outcome{res, err}
				}()
			}
			var locked []bool
			swept := 0
			for range 2 {
				o := <-done
				if o.err != nil {
					t.Fatal(o.err)
				}
				locked = append(locked, o.res.Locked)
				swept += len(o.res.Swept)
			}
			sort.Slice(locked, func(i, j int) bool { return !locked[i] && locked[j] })
			if !slices.Equal(locked, []bool{false, true}) {
				t.Errorf("locked %v; want exactly one sweeper to hold the lock", locked)
			}
			if swept != 3 || len(w.cf.Deleted()) != 3 {
				t.Errorf("swept %d, deleted %d; want 3 once", swept, len(w.cf.Deleted()))
			}
			// The lock lapses within the interval, not at once: a third sweep now is refused too.
			res, err := r1.srv.Sweep(context.Background(), 10*time.Minute)
			if err != nil || res.Locked {
				t.Errorf("a sweep right after: locked %v, error %v; want the lock still held", res.Locked, err)
			}
		})
	}
}

// TestRunSweeper: the sweeper runs by itself every interval until its context ends.
func TestRunSweeper(t *testing.T) {
	t.Parallel()
	w, _, ids := sweepWorld(t)
	r := w.replica(t, memoryStore(t))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { r.srv.RunSweeper(ctx, 20*time.Millisecond); close(stopped) }()
	deadline := time.After(10 * time.Second)
	for {
		if _, ok := w.cf.Token(ids["expired"]); !ok {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the sweeper never swept")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	<-stopped
}

// TestSweepIntervalValidate: --sweep-interval is 0 (never) or 1m to 24h.
func TestSweepIntervalValidate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, d := range []time.Duration{0, time.Minute, 10 * time.Minute, 24 * time.Hour} {
		c := validConfig(w)
		c.SweepInterval = d
		if err := c.Validate(); err != nil {
			t.Errorf("--sweep-interval %s: %v", d, err)
		}
	}
	for _, d := range []time.Duration{time.Second, -time.Minute, 25 * time.Hour} {
		c := validConfig(w)
		c.SweepInterval = d
		want := "--sweep-interval: " + d.String() + " is outside 1m to 24h; write 0 to sweep never"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--sweep-interval %s: %v; want %q", d, err, want)
		}
	}
}
