package promtest

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Verifies that the helper starts a real Prometheus that scrapes the test's
// exporter, adds the target labels, and answers queries.
func TestStartScrapesExporter(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_value"}, []string{"service"})
	reg.MustRegister(g)
	g.WithLabelValues("auth").Set(42)
	s := Start(t, Target{Addr: ServeRegistry(t, reg), Labels: map[string]string{"namespace": "elma365"}})
	t.Logf("prometheus ready in %s", s.StartupTime)
	got, err := s.Query(context.Background(), `probe_value{namespace="elma365"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Value != 42 || got[0].Labels["service"] != "auth" {
		t.Fatalf("got %+v, want one series service=auth value 42", got)
	}
	s.Stop()
	if _, err := s.Query(context.Background(), "up"); err == nil {
		t.Fatal("query answered after Stop")
	}
	s.Restart()
	if _, err := s.Query(context.Background(), "up"); err != nil {
		t.Fatalf("query after Restart: %v", err)
	}
}
