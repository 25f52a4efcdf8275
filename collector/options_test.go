package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elmascale/elmascale/policy"
)

// Verifies that the Prometheus HTTP client config file is honoured: the
// bearer token read from its credentials file reaches the server.
func TestPrometheusHTTPConfigFile(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "http.yaml")
	if err := os.WriteFile(cfgFile, []byte("authorization:\n  type: Bearer\n  credentials_file: "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inner := newCannedProm(t, map[string]cannedAnswer{
		"q_latency":  ok(vector("service", anyTime, [2]string{"auth", "0.2"})),
		"q_inflight": ok(vector("app", anyTime)),
	})
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	c, _ := newCollector(t, Options{PrometheusURL: srv.URL, PrometheusConfigFile: cfgFile, MaxParallelQueries: 1})
	sigs := collect(t, c, parseConfig(t, unitYAML), anyTime)
	if o := sigs["auth"]["latency"]; o.Status != policy.StatusOK {
		t.Fatalf("latency %+v (Authorization headers seen: %q)", o, auths)
	}

	// The same server without the token: an auth failure naming the source.
	c, _ = newCollector(t, Options{PrometheusURL: srv.URL})
	o := collect(t, c, parseConfig(t, unitYAML), anyTime)["auth"]["latency"]
	if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "prometheus: query latency: client error: 401") {
		t.Errorf("without token: %+v", o)
	}
	if v := counterValue(t, c.m.errors.WithLabelValues(SourcePrometheus, ReasonAuth)); v != 2 {
		t.Errorf("errors_total{reason=auth} = %v, want 2", v)
	}
}

// Verifies that a tick cut short by its own context (shutdown) fails its
// observations but is not held against the source: the breaker stays
// closed however often it happens.
func TestCanceledTickDoesNotTripBreaker(t *testing.T) {
	p := newCannedProm(t, map[string]cannedAnswer{
		"q_latency":  ok(vector("service", anyTime, [2]string{"auth", "0.2"})),
		"q_inflight": ok(vector("app", anyTime)),
	})
	c, _ := newCollector(t, Options{PrometheusURL: p.srv.URL, Breaker: BreakerSettings{FailureThreshold: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := parseConfig(t, unitYAML)
	for i := 0; i < 3; i++ {
		sigs, err := c.Collect(ctx, cfg, anyTime)
		if err != nil {
			t.Fatal(err)
		}
		if o := sigs["auth"]["latency"]; o.Status != policy.StatusFailed {
			t.Fatalf("canceled tick: %+v, want failed", o)
		}
	}
	if st := c.promGuard.state().String(); st != "closed" {
		t.Errorf("breaker %s after canceled ticks, want closed", st)
	}
}

// Verifies that the log line of a breaker trip names the error that
// tripped it, and that source failure and recovery are logged once each.
func TestBreakerTripIsLoggedWithCause(t *testing.T) {
	p := newCannedProm(t, map[string]cannedAnswer{
		"q_latency":  {status: 503, body: "maintenance"},
		"q_inflight": {status: 503, body: "maintenance"},
	})
	core, logs := observer.New(zapcore.InfoLevel)
	c, _ := newCollector(t, Options{PrometheusURL: p.srv.URL, Logger: zap.New(core), MaxParallelQueries: 1, Breaker: BreakerSettings{FailureThreshold: 2}})
	cfg := parseConfig(t, unitYAML)
	for i := 0; i < 3; i++ {
		collect(t, c, cfg, anyTime)
	}
	trips := logs.FilterMessageSnippet("breaker opened").All()
	if len(trips) != 1 || !strings.Contains(trips[0].ContextMap()["error"].(string), "server error: 503") {
		t.Errorf("trip log entries %v; want one naming the 503", trips)
	}
	if n := logs.FilterMessageSnippet("signal source failed").Len(); n != 1 {
		t.Errorf("%d 'source failed' entries over 3 failing ticks, want 1", n)
	}
}
