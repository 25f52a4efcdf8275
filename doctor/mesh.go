package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// meshSeriesFix says what the mesh source reads, for every fix.
const meshSeriesFix = "elmascale reads Linkerd's proxy series request_total, response_total and response_latency_ms (direction inbound and outbound) with namespace and deployment labels, as Linkerd-viz's Prometheus stores them"

// mesh checks, when the config names a mesh, that its series resolve: one
// mesh collection, as one tick makes. The graph found is reported, and the
// managed services the mesh sees no inbound traffic of are named (not
// meshed, idle, or fed only through RabbitMQ).
func mesh(ctx context.Context, r *Report, cfg *config.Config, opts Options, now time.Time) {
	if cfg.Mesh == nil {
		return
	}
	name := cfg.Mesh.Provider
	mc, ok := opts.Collector.(loop.MeshCollector)
	if !ok {
		r.add(Check{Kind: KindMesh, Name: name, Severity: SeverityProblem, Detail: loop.NoMeshSource,
			Fix: "the mesh is read through Prometheus: give --prometheus (Linkerd-viz's Prometheus)"})
		return
	}
	o := mc.CollectMesh(ctx, cfg, now)
	where := fmt.Sprintf("namespace %s", cfg.Mesh.Namespace)
	if cfg.Mesh.Selector != "" {
		where += ", selector " + cfg.Mesh.Selector
	}
	switch o.Status {
	case policy.StatusOK:
	case policy.StatusFailed:
		fix := "Prometheus does not answer the mesh queries: check --prometheus and its credentials (elmascale_source_up, the logs)"
		if opts.Sources.PrometheusURL == "" {
			fix = "the mesh is read through Prometheus: give --prometheus (Linkerd-viz's Prometheus); " + meshSeriesFix
		}
		r.add(Check{Kind: KindMesh, Name: name, Severity: SeverityProblem, Detail: o.Error, Fix: fix})
		return
	default:
		fix := fmt.Sprintf("%s; check that %s is meshed (linkerd.io/inject: enabled), that --prometheus is the Prometheus scraping the proxies, and mesh.linkerd.namespace and selector (%s)", meshSeriesFix, cfg.Mesh.Namespace, where)
		if opts.Sources.PrometheusURL == "" {
			fix = "the mesh is read through Prometheus: give --prometheus (Linkerd-viz's Prometheus); " + meshSeriesFix
		}
		r.add(Check{Kind: KindMesh, Name: name, Severity: SeverityProblem, Detail: o.Error, Fix: fix})
		return
	}
	external := 0
	for _, e := range o.Edges {
		if e.External {
			external++
		}
	}
	c := Check{Kind: KindMesh, Name: name, Severity: SeverityOK,
		Detail: fmt.Sprintf("Linkerd series resolve (%s, window %s): inbound traffic of %d workloads, %d edges of which %d to destinations outside the mesh", where, o.Window, len(o.Inbound), len(o.Edges), external)}
	if o.Error != "" {
		c.Severity, c.Detail = SeverityWarning, c.Detail+"; "+o.Error
		c.Fix = "some workloads' series are stale or wrong and were left out: check their proxies' scrape (Prometheus targets page)"
	}
	r.add(c)
	var unseen []string
	for _, svc := range cfg.Services {
		if _, ok := o.Inbound[svc.Target.Name]; !ok {
			unseen = append(unseen, svc.Name)
		}
	}
	if len(unseen) > 0 {
		r.add(Check{Kind: KindMesh, Name: "unseen", Severity: SeverityInfo,
			Detail: fmt.Sprintf("no inbound mesh traffic for %s", strings.Join(unseen, ", ")),
			Fix:    "fine for a service fed only through RabbitMQ or idle; otherwise its pods are not meshed: add the linkerd.io/inject: enabled annotation and restart them (dependsOn covers hops the mesh cannot see)"})
	}
}
