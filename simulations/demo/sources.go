package demo

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// sourceMetrics exports the live collector's source health series for the
// simulated sources (record/METRICS.md), so the dashboard's source panels
// show the demo's collections too: the simulated cluster answers in the
// place of Prometheus, RabbitMQ and metrics.k8s.io.
type sourceMetrics struct {
	inner   loop.Collector
	metrics *collector.SourceMetrics
}

func newSourceMetrics(r prometheus.Registerer, inner loop.Collector, cfg *config.Config) *sourceMetrics {
	m := &sourceMetrics{inner: inner, metrics: collector.NewSourceMetrics(r)}
	for source := range queriesPerTick(cfg) {
		m.metrics.InitSource(source)
	}
	return m
}

// Collect collects from the simulated cluster and records it as the live
// collector records its sources: one query per metric definition, one
// RabbitMQ call per queue signal, one pod metrics list.
func (m *sourceMetrics) Collect(ctx context.Context, cfg *config.Config, now time.Time) (loop.Signals, error) {
	start := time.Now()
	sig, err := m.inner.Collect(ctx, cfg, now)
	took := time.Since(start)
	reason := ""
	if err != nil {
		reason = collector.ReasonAPI
	}
	for source, n := range queriesPerTick(cfg) {
		m.metrics.Observe(source, n, took, reason)
	}
	return sig, err
}

// CollectMesh reads the simulated mesh (the Linkerd series the simulated
// proxies keep), when the inner collector has one, so the demo's decisions
// use the call graph as the daemon's do; it counts as the live mesh
// source's two Prometheus queries.
func (m *sourceMetrics) CollectMesh(ctx context.Context, cfg *config.Config, now time.Time) policy.MeshObservation {
	mc, ok := m.inner.(loop.MeshCollector)
	if !ok {
		return policy.MeshObservation{Status: policy.StatusFailed, Error: loop.NoMeshSource}
	}
	start := time.Now()
	o := mc.CollectMesh(ctx, cfg, now)
	reason := ""
	if o.Status == policy.StatusFailed {
		reason = collector.ReasonAPI
	}
	m.metrics.Observe(collector.SourcePrometheus, 2, time.Since(start), reason)
	return o
}

// queriesPerTick counts what one tick asks of each source for cfg.
func queriesPerTick(cfg *config.Config) map[string]int {
	out := map[string]int{}
	metrics := map[string]bool{}
	for _, s := range cfg.Services {
		for _, sg := range s.Signals {
			switch {
			case sg.Kind == policy.KindUtilization:
				out[collector.SourceKubernetes] = 1
			case sg.Kind == policy.KindQueue && sg.Queue != nil && len(sg.Queue.Queues) > 0:
				out[collector.SourceRabbitMQ]++
			case sg.Kind == policy.KindQueue && sg.Queue != nil:
				for _, name := range []string{sg.Queue.Backlog, sg.Queue.ArrivalRate, sg.Queue.CompletionRate, sg.Queue.Unacked} {
					if name != "" {
						metrics[name] = true
					}
				}
			case sg.Metric != "":
				metrics[sg.Metric] = true
			}
		}
	}
	if len(metrics) > 0 {
		out[collector.SourcePrometheus] = len(metrics)
	}
	return out
}
