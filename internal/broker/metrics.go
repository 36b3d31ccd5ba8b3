package broker

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics are the broker's Prometheus series, all named cfmint_*, beside the Go runtime's go_*
// and the process's process_* series.
//
// They are written with github.com/VictoriaMetrics/metrics rather than Prometheus' own
// client_golang: client_golang brings in protobuf, which looks methods up by reflection, and from
// then on the linker keeps every exported method of every type in the binary (twice its size; see
// testDeadcode in image_test.go). Each Metrics has sets of its own, never the library's global
// one, so that several servers in one process do not count into each other.
type Metrics struct {
	families []*family

	exchanges, exchangeDur, revokes, denials, cfCalls, cfLatency *family
	replayErrs                                                   *metrics.Counter

	reloadErrs *metrics.Counter
	bootValid  atomic.Bool
	policyInfo *family
	policyMu   sync.Mutex
	policySum  string  // the sha256 label cfmint_policy_info has now; "" before the first
	swept      *family // sweeper.go
}

// family is one metric name: its HELP and TYPE lines, and its series (one per label set) in a
// set of their own, so that the lines can be written above them. The library would write
// neither without its process-wide ExposeMetadata, and then a HELP line without the help.
type family struct {
	name, help, typ string
	set             *metrics.Set
}

// latencyBuckets are the histograms' upper bounds in seconds: client_golang's DefBuckets, which
// the histograms had before.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics makes the broker's series; budget, when set, is exported as the rate-limit budget
// left.
func NewMetrics(budget *Budget) *Metrics {
	m := &Metrics{}
	add := func(name, typ, help string) *family {
		f := &family{name: name, help: help, typ: typ, set: metrics.NewSet()}
		m.families = append(m.families, f)
		return f
	}
	m.exchanges = add("cfmint_exchanges_total", "counter", "ID-token exchanges (mints), by rule and outcome.")
	m.exchangeDur = add("cfmint_exchange_duration_seconds", "histogram", "Time to answer an exchange.")
	m.revokes = add("cfmint_revokes_total", "counter", "Revokes through the broker, by rule and outcome.")
	m.denials = add("cfmint_denials_total", "counter", "Requests refused, by reason.")
	m.cfCalls = add("cfmint_cloudflare_calls_total", "counter", "Calls to Cloudflare's API, by operation and HTTP status (0: no answer).")
	m.cfLatency = add("cfmint_cloudflare_call_duration_seconds", "histogram", "Latency of calls to Cloudflare's API.")
	// Written from the start, at 0: an alert on its rate needs the series before the first error.
	replay := add("cfmint_replay_store_errors_total", "counter", "Failed claims of an ID token's single use (the exchange was refused).")
	m.replayErrs = replay.set.NewCounter(replay.name)
	reloads := add("cfmint_policy_reload_errors_total", "counter", "Policy reloads refused (the policy file changed, or SIGHUP, and the new policy did not validate); the last good policy stays in force.")
	m.reloadErrs = reloads.set.NewCounter(reloads.name)
	m.policyInfo = add("cfmint_policy_info", "gauge", "The policy in force, by the sha256 of its file's content; always 1.")
	boot := add("cfmint_bootstrap_token_valid", "gauge", "1 while Cloudflare accepts the bootstrap token, 0 once its verify says it is no longer valid (checked periodically and after a refused create).")
	m.bootValid.Store(true)
	boot.set.NewGauge(boot.name, func() float64 {
		if m.bootValid.Load() {
			return 1
		}
		return 0
	})
	m.swept = add("cfmint_swept_tokens_total", "counter", "The broker's own dead tokens its sweeper deleted, by reason (expired, revoked, inactive, abandoned).")

	version, gover := "dev", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		gover = bi.GoVersion
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
	}
	info := add("cfmint_build_info", "gauge", "The broker's build.")
	info.set.NewGauge(series(info.name, "goversion", gover, "version", version), func() float64 { return 1 })
	if budget != nil {
		left := add("cfmint_ratelimit_budget_remaining", "gauge", "Cloudflare requests the broker may still make in the current window: Cloudflare's count less the calls reserved or in flight.")
		left.set.NewGauge(left.name, func() float64 { return float64(budget.Remaining()) })
		// As Cloudflare's latest Ratelimit header stated them; -1 until an answer did.
		cfLeft := add("cfmint_cloudflare_ratelimit_remaining", "gauge", "Requests left in the window, as Cloudflare's latest Ratelimit header stated them (-1: none stated yet).")
		cfLeft.set.NewGauge(cfLeft.name, func() float64 {
			r, _, ok := budget.Stated()
			if !ok {
				return -1
			}
			return float64(r)
		})
		cfReset := add("cfmint_cloudflare_ratelimit_reset_seconds", "gauge", "Seconds until Cloudflare's window resets, as its latest Ratelimit header stated (-1: none stated yet).")
		cfReset.set.NewGauge(cfReset.name, func() float64 {
			_, at, ok := budget.Stated()
			if !ok {
				return -1
			}
			return max(at.Sub(budget.Now()).Seconds(), 0)
		})
	}
	return m
}

// series is a series' name: the metric's name and its labels, given as name, value pairs in the
// order of their names (the order Prometheus' own client writes them in). Values are escaped as
// the text format requires.
func series(name string, labels ...string) string {
	var b strings.Builder
	b.WriteString(name)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString(`="`)
		_, _ = labelEscaper.WriteString(&b, labels[i+1])
		b.WriteByte('"')
	}
	if len(labels) > 0 {
		b.WriteByte('}')
	}
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func (f *family) inc(labels ...string) {
	f.set.GetOrCreateCounter(series(f.name, labels...)).Inc()
}

// observe records d in a histogram with Prometheus' le buckets (the library's own Histogram has
// VictoriaMetrics' vmrange buckets, which Prometheus' histogram_quantile cannot read).
func (f *family) observe(d time.Duration, labels ...string) {
	f.set.GetOrCreatePrometheusHistogramExt(series(f.name, labels...), latencyBuckets).Update(d.Seconds())
}

// writeTo writes the family in Prometheus' text format; nothing when it has no series yet, as
// Prometheus' own client does.
func (f *family) writeTo(w io.Writer) {
	var b bytes.Buffer
	f.set.WritePrometheus(&b)
	if b.Len() == 0 {
		return
	}
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
	_, _ = w.Write(b.Bytes())
}

// Handler serves the series in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		var b bytes.Buffer
		for _, f := range m.families {
			f.writeTo(&b)
		}
		// go_* and process_* (CPU, memory, file descriptors), untyped.
		metrics.WriteProcessMetrics(&b)
		metrics.WriteFDMetrics(&b)
		_, _ = w.Write(b.Bytes())
	})
}

func (m *Metrics) exchange(rule, outcome string, d time.Duration) {
	m.exchanges.inc("outcome", outcome, "rule", rule)
	m.exchangeDur.observe(d, "outcome", outcome)
}

func (m *Metrics) policyReloadError()        { m.reloadErrs.Inc() }
func (m *Metrics) bootstrapValid(valid bool) { m.bootValid.Store(valid) }

// policyLoaded makes cfmint_policy_info name the policy whose file's content has the sha256
// sum (hex), and removes the series of the one before.
func (m *Metrics) policyLoaded(sum string) {
	m.policyMu.Lock()
	defer m.policyMu.Unlock()
	if sum == m.policySum {
		return
	}
	if m.policySum != "" {
		m.policyInfo.set.UnregisterMetric(series(m.policyInfo.name, "sha256", m.policySum))
	}
	m.policyInfo.set.GetOrCreateGauge(series(m.policyInfo.name, "sha256", sum), func() float64 { return 1 })
	m.policySum = sum
}

func (m *Metrics) revoke(rule, outcome string) { m.revokes.inc("outcome", outcome, "rule", rule) }
func (m *Metrics) denial(reason string)        { m.denials.inc("reason", reason) }
func (m *Metrics) replayError()                { m.replayErrs.Inc() }

// CloudflareCall records one call to Cloudflare's API.
func (m *Metrics) CloudflareCall(op string, status int, d time.Duration) {
	m.cfCalls.inc("operation", op, "status", strconv.Itoa(status))
	m.cfLatency.observe(d, "operation", op)
}
