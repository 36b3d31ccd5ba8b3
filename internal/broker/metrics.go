package broker

import (
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the broker's Prometheus series, all named cfmint_*.
type Metrics struct {
	reg         *prometheus.Registry
	exchanges   *prometheus.CounterVec
	exchangeDur *prometheus.HistogramVec
	revokes     *prometheus.CounterVec
	denials     *prometheus.CounterVec
	cfCalls     *prometheus.CounterVec
	cfLatency   *prometheus.HistogramVec
	replayErrs  prometheus.Counter
	budgetLeft  prometheus.GaugeFunc
}

// NewMetrics registers the broker's series; budget, when set, is exported as the rate-limit
// budget left.
func NewMetrics(budget *Budget) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cfmint_exchanges_total", Help: "ID-token exchanges (mints), by rule and outcome.",
		}, []string{"rule", "outcome"}),
		exchangeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cfmint_exchange_duration_seconds", Help: "Time to answer an exchange.", Buckets: prometheus.DefBuckets,
		}, []string{"outcome"}),
		revokes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cfmint_revokes_total", Help: "Revokes through the broker, by rule and outcome.",
		}, []string{"rule", "outcome"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cfmint_denials_total", Help: "Requests refused, by reason.",
		}, []string{"reason"}),
		cfCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cfmint_cloudflare_calls_total", Help: "Calls to Cloudflare's API, by operation and HTTP status (0: no answer).",
		}, []string{"operation", "status"}),
		cfLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cfmint_cloudflare_call_duration_seconds", Help: "Latency of calls to Cloudflare's API.", Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
		replayErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cfmint_replay_store_errors_total", Help: "Failed claims of an ID token's single use (the exchange was refused).",
		}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cfmint_build_info", Help: "The broker's build."}, []string{"version", "goversion"})
	version, gover := "dev", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		gover = bi.GoVersion
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
	}
	info.WithLabelValues(version, gover).Set(1)
	reg.MustRegister(m.exchanges, m.exchangeDur, m.revokes, m.denials, m.cfCalls, m.cfLatency, m.replayErrs, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if budget != nil {
		m.budgetLeft = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cfmint_ratelimit_budget_remaining", Help: "Cloudflare requests the broker may still make in the current window.",
		}, func() float64 { return float64(budget.Remaining()) })
		reg.MustRegister(m.budgetLeft)
	}
	return m
}

// Handler serves the series in Prometheus' format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) exchange(rule, outcome string, d time.Duration) {
	m.exchanges.WithLabelValues(rule, outcome).Inc()
	m.exchangeDur.WithLabelValues(outcome).Observe(d.Seconds())
}

func (m *Metrics) revoke(rule, outcome string) { m.revokes.WithLabelValues(rule, outcome).Inc() }
func (m *Metrics) denial(reason string)        { m.denials.WithLabelValues(reason).Inc() }
func (m *Metrics) replayError()                { m.replayErrs.Inc() }

// CloudflareCall records one call to Cloudflare's API.
func (m *Metrics) CloudflareCall(op string, status int, d time.Duration) {
	m.cfCalls.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.cfLatency.WithLabelValues(op).Observe(d.Seconds())
}
