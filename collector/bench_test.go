package collector

import (
	"context"
	"testing"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/internal/rabbittest"
)

// presetPrometheus serves latency histograms and in-flight gauges for every
// service of the ELMA365 preset to a real Prometheus.
func presetPrometheus(b *testing.B, cfg *config.Config) *promtest.Server {
	b.Helper()
	e := newLoadExporter()
	for _, s := range cfg.Services {
		for i := 0; i < 20; i++ {
			e.latency.WithLabelValues(s.Name).Observe(0.05 * float64(i%7))
		}
		e.inflight.WithLabelValues(s.Name).Set(10)
	}
	return promtest.Start(b, promtest.Target{Job: "elma365", Addr: promtest.ServeRegistry(b, e), Labels: map[string]string{"namespace": "elma365"}})
}

// BenchmarkCollectELMA365Preset times one collection of the shipped preset
// (its two metric definitions) against a local Prometheus.
func BenchmarkCollectELMA365Preset(b *testing.B) {
	cfg, err := config.ELMA365Preset()
	if err != nil {
		b.Fatal(err)
	}
	srv := presetPrometheus(b, cfg)
	c, _ := newCollector(b, Options{PrometheusURL: srv.URL})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Collect(ctx, cfg, timeNow()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollectELMA365PresetWithRabbitMQ adds the worker queue read
// from a local broker's management API.
func BenchmarkCollectELMA365PresetWithRabbitMQ(b *testing.B) {
	cfg, err := config.ELMA365Preset()
	if err != nil {
		b.Fatal(err)
	}
	srv := presetPrometheus(b, cfg)
	broker := rabbittest.Shared(b)
	if err := broker.DeclareQueue("/", "worker.default"); err != nil {
		b.Fatal(err)
	}
	c, _ := newCollector(b, Options{PrometheusURL: srv.URL, RabbitMQURL: broker.URL, RabbitMQUser: broker.AdminUser, RabbitMQPasswordFile: passwordFile(b, broker.AdminPassword)})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Collect(ctx, cfg, timeNow()); err != nil {
			b.Fatal(err)
		}
	}
}
