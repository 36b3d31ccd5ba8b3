package broker

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// scrape is what GET /metrics answers.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q; want Prometheus' text format", ct)
	}
	return rec.Body.String()
}

// TestMetricsExposition: the names, types and labels docs/broker.md documents, in Prometheus'
// text format, with le buckets that histogram_quantile can read.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	b := NewBudget(1200, 5*time.Minute, 50)
	b.Record(3)
	m := NewMetrics(b)
	m.exchange("site-deploy", "minted", 30*time.Millisecond)
	m.exchange("site-deploy", "minted", 2*time.Second)
	m.exchange("odd\"rule\\", "error", time.Millisecond)
	m.revoke("site-deploy", "revoked")
	m.denial("replay")
	m.denial("replay")
	m.replayError()
	m.CloudflareCall("create", 200, 40*time.Millisecond)
	m.CloudflareCall("create", 0, 20*time.Second)
	got := scrape(t, m)

	for _, want := range []string{
		"# HELP cfmint_exchanges_total ID-token exchanges (mints), by rule and outcome.\n# TYPE cfmint_exchanges_total counter\n",
		`cfmint_exchanges_total{outcome="minted",rule="site-deploy"} 2` + "\n",
		`cfmint_exchanges_total{outcome="error",rule="odd\"rule\\"} 1` + "\n",
		"# TYPE cfmint_exchange_duration_seconds histogram\n",
		`cfmint_exchange_duration_seconds_bucket{outcome="minted",le="0.025"} 0` + "\n",
		`cfmint_exchange_duration_seconds_bucket{outcome="minted",le="0.05"} 1` + "\n",
		`cfmint_exchange_duration_seconds_bucket{outcome="minted",le="2.5"} 2` + "\n",
		`cfmint_exchange_duration_seconds_bucket{outcome="minted",le="+Inf"} 2` + "\n",
		`cfmint_exchange_duration_seconds_count{outcome="minted"} 2` + "\n",
		`cfmint_exchange_duration_seconds_sum{outcome="minted"} 2.03` + "\n",
		"# TYPE cfmint_revokes_total counter\n",
		`cfmint_revokes_total{outcome="revoked",rule="site-deploy"} 1` + "\n",
		"# TYPE cfmint_denials_total counter\n",
		`cfmint_denials_total{reason="replay"} 2` + "\n",
		"# TYPE cfmint_cloudflare_calls_total counter\n",
		`cfmint_cloudflare_calls_total{operation="create",status="200"} 1` + "\n",
		`cfmint_cloudflare_calls_total{operation="create",status="0"} 1` + "\n",
		"# TYPE cfmint_cloudflare_call_duration_seconds histogram\n",
		`cfmint_cloudflare_call_duration_seconds_bucket{operation="create",le="10"} 1` + "\n",
		`cfmint_cloudflare_call_duration_seconds_bucket{operation="create",le="+Inf"} 2` + "\n",
		"# TYPE cfmint_replay_store_errors_total counter\ncfmint_replay_store_errors_total 1\n",
		"# TYPE cfmint_ratelimit_budget_remaining gauge\ncfmint_ratelimit_budget_remaining 1197\n",
		"# TYPE cfmint_build_info gauge\ncfmint_build_info{goversion=\"go",
		"\ngo_goroutines ",
		"\nprocess_resident_memory_bytes ",
		"\nprocess_open_fds ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(got, "vmrange") {
		t.Errorf("metrics have vmrange buckets, which Prometheus' histogram_quantile cannot read:\n%s", got)
	}
	// Each family's HELP and TYPE once.
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "# TYPE cfmint_") && strings.Count(got, line+"\n") != 1 {
			t.Errorf("%q appears %d times", line, strings.Count(got, line+"\n"))
		}
	}
}

// TestMetricsPrivate: each Metrics counts alone, as two servers in one process must, and a
// family without a series yet is not written at all.
func TestMetricsPrivate(t *testing.T) {
	t.Parallel()
	a, b := NewMetrics(nil), NewMetrics(nil)
	a.denial("replay")
	if got := scrape(t, a); !strings.Contains(got, `cfmint_denials_total{reason="replay"} 1`+"\n") {
		t.Errorf("the first server's metrics lack its denial:\n%s", got)
	}
	got := scrape(t, b)
	for _, absent := range []string{"cfmint_denials_total", "cfmint_ratelimit_budget_remaining"} {
		if strings.Contains(got, absent) {
			t.Errorf("the second server's metrics have %s:\n%s", absent, got)
		}
	}
	if !strings.Contains(got, "cfmint_replay_store_errors_total 0\n") {
		t.Errorf("the replay store's error counter is not written before its first error:\n%s", got)
	}
}
