package broker_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cfmint/cfmint/internal/broker"
)

// TestMetricsPort: the metrics (which name the rules and the rate budget left) are served on
// --metrics-listen's port only, never on the callers' one, and a bad or shared address is refused
// before anything listens.
func TestMetricsPort(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, c := range []struct{ listen, metrics, want string }{
		{"127.0.0.1:0", "9464", `--metrics-listen: "9464" is not HOST:PORT`},
		{"127.0.0.1:8080", "127.0.0.1:8080", `--metrics-listen: "127.0.0.1:8080" is --listen's address`},
	} {
		cfg := validConfig(w)
		cfg.Listen, cfg.MetricsListen = c.listen, c.metrics
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--listen %s --metrics-listen %s: %v, want %q", c.listen, c.metrics, err, c.want)
		}
	}

	cfg := validConfig(w)
	cfg.MetricsListen = "127.0.0.1:0"
	addr, maddr := make(chan net.Addr, 1), make(chan net.Addr, 1)
	logs := &logBuffer{}
	cfg.Log, cfg.Listening, cfg.MetricsListening = logs, func(a net.Addr) { addr <- a }, func(a net.Addr) { maddr <- a }
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- broker.Serve(ctx, cfg) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	var api, metrics string
	select {
	case a := <-addr:
		api, metrics = "http://"+a.String(), "http://"+(<-maddr).String()
	case err := <-done:
		t.Fatalf("Serve ended before it listened: %v\n%s", err, logs)
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(api + "/metrics"); code != http.StatusNotFound || strings.Contains(body, "cfmint_") {
		t.Errorf("the API's port answers /metrics: %d %.200s", code, body)
	}
	if code, body := get(metrics + "/metrics"); code != http.StatusOK || !strings.Contains(body, "cfmint_policy_info") {
		t.Errorf("the metrics port: %d %.200s", code, body)
	}
	if code, _ := get(metrics + "/v1/tokens"); code == http.StatusOK || code == http.StatusCreated || code == http.StatusUnauthorized {
		t.Errorf("the metrics port serves the API: %d", code)
	}
	if !strings.Contains(logs.String(), `"metrics_addr":"`+strings.TrimPrefix(metrics, "http://")+`"`) {
		t.Errorf("the listening line does not say where the metrics are:\n%s", logs)
	}
}
