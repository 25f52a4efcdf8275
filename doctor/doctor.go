package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/scaler"
)

// Severity grades one check. Only SeverityProblem fails the report.
type Severity string

// Severities, from fine to failing.
const (
	SeverityOK      Severity = "ok"
	SeverityInfo    Severity = "info"    // worth knowing, nothing to fix (a hand-off)
	SeverityWarning Severity = "warning" // works, but not as well as it could
	SeverityProblem Severity = "problem" // elmascale is blind or cannot act: fix it
)

// Check kinds.
const (
	KindSignal     = "signal"
	KindPermission = "permission"
	KindTarget     = "target"
	KindMesh       = "mesh"
)

// Check is one line of the report.
type Check struct {
	Kind     string   `json:"kind"`
	Service  string   `json:"service,omitempty"`
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	// Detail is what was found, Fix what to do about it (empty when fine).
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is every check, signals first (by service, in config order),
// then the mesh, permissions and targets.
type Report struct {
	Namespace string  `json:"namespace"`
	Checks    []Check `json:"checks"`
	Problems  int     `json:"problems"`
	Warnings  int     `json:"warnings"`
}

// OK is true when no check found a problem.
func (r Report) OK() bool { return r.Problems == 0 }

// Resolved reports, by service and signal name, whether the signal
// resolved; the daemon exports it as elmascale_signal_resolved.
func (r Report) Resolved() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, c := range r.Checks {
		if c.Kind != KindSignal {
			continue
		}
		if out[c.Service] == nil {
			out[c.Service] = map[string]bool{}
		}
		out[c.Service][c.Name] = c.Severity != SeverityProblem
	}
	return out
}

func (r *Report) add(c Check) {
	switch c.Severity {
	case SeverityProblem:
		r.Problems++
	case SeverityWarning:
		r.Warnings++
	}
	r.Checks = append(r.Checks, c)
}

// Targets reads the scale targets as the loop sees them; *scaler.Scaler
// implements it.
type Targets interface {
	Observe(ctx context.Context, cfg *config.Config) (map[string]loop.TargetStatus, error)
}

// Sources says which signal sources the collector was given, so a missing
// signal is blamed on the right thing. The URLs appear in the report.
type Sources struct {
	PrometheusURL string
	RabbitMQURL   string
	// Kubernetes is true when metrics.k8s.io is read (utilization signals).
	Kubernetes bool
}

// Options are what the checks run against. Collector, Targets and Access
// are required.
type Options struct {
	Collector loop.Collector
	Targets   Targets
	Access    AccessReviewer
	Sources   Sources
	// Apply is true when elmascale runs (or is about to run) in apply mode:
	// writing the scale subresource is then required, not only advised.
	Apply bool
	// LeaseNamespace is where leader election keeps its Lease; empty when
	// leader election is off.
	LeaseNamespace string
	// AnnotateRecommendations needs patch on workloads.
	AnnotateRecommendations bool
	// MetricsAuth needs to create token and access reviews, cluster-wide,
	// to check the callers of /metrics and /api/v1/*.
	MetricsAuth bool
	// PolicyNamespace, when set, is where the ScalingPolicy the config
	// comes from lives: reading it and writing its status are needed.
	PolicyNamespace string
	// Subject names who the permissions are checked for, for the fixes,
	// e.g. system:serviceaccount:elmascale:elmascale.
	Subject string
}

// Run runs every check once against cfg at now. It makes one collection
// and one observation of the targets, as one loop tick does, and one
// access review per permission.
func Run(ctx context.Context, cfg *config.Config, opts Options, now time.Time) Report {
	r := Report{Namespace: cfg.Namespace}
	signals(ctx, &r, cfg, opts, now)
	mesh(ctx, &r, cfg, opts, now)
	permissions(ctx, &r, cfg, opts)
	targets(ctx, &r, cfg, opts)
	return r
}

// signals checks that every signal of every service resolves: its query
// has a series for that service, its queue exists and is consumed, its
// pods are measured.
func signals(ctx context.Context, r *Report, cfg *config.Config, opts Options, now time.Time) {
	got, err := opts.Collector.Collect(ctx, cfg, now)
	if err != nil {
		r.add(Check{Kind: KindSignal, Name: "collection", Severity: SeverityProblem,
			Detail: err.Error(), Fix: "no signal could be collected; check the source flags (--prometheus, --rabbitmq) and the cluster connection"})
		return
	}
	queries := map[string]*config.PrometheusQuery{}
	for _, m := range cfg.Metrics {
		queries[m.Name] = m.Prometheus
	}
	for _, svc := range cfg.Services {
		for _, sg := range svc.Signals {
			obs, ok := got[svc.Name][sg.Name]
			if !ok {
				obs = policy.Observation{Status: policy.StatusMissing, Error: "the collector returned nothing for this signal"}
			}
			c := signalCheck(svc, sg, obs, queries, opts.Sources, cfg.Policy.StaleAfter, now)
			c.Kind, c.Service, c.Name = KindSignal, svc.Name, sg.Name
			r.add(c)
		}
	}
}

func signalCheck(svc config.Service, sg config.SignalSource, obs policy.Observation, queries map[string]*config.PrometheusQuery, src Sources, staleAfter time.Duration, now time.Time) Check {
	source := sourceOf(sg)
	if obs.Status == policy.StatusOK && staleAfter > 0 && !obs.Time.IsZero() && now.Sub(obs.Time) > staleAfter {
		return Check{Severity: SeverityProblem, Detail: fmt.Sprintf("%s: last sample %s old, beyond staleAfter %s", source, now.Sub(obs.Time).Round(time.Second), staleAfter),
			Fix: "the source stopped updating this series: check its scrape (Prometheus targets page) or metrics-server"}
	}
	switch source {
	case sourceKubernetes:
		return utilizationCheck(svc, sg, obs, src)
	case sourceRabbitMQ:
		return rabbitCheck(sg, obs, src)
	}
	c := promCheck(svc, sg, obs, queries, src)
	if c.Severity == SeverityOK && sg.Queue != nil && sg.Queue.Unacked != "" {
		return unackedCheck(svc, sg, obs, c, staleAfter, now)
	}
	return c
}

// unackedCheck grades the optional messages-in-progress reading of a
// Prometheus queue signal whose other parts resolve: without it the
// signal still works, but the pods' pace cannot be told from it and
// backlogMetric (meant to count only the waiting messages) is the whole
// backlog, so a missing or stale reading is a warning.
func unackedCheck(svc config.Service, sg config.SignalSource, obs policy.Observation, ok Check, staleAfter time.Duration, now time.Time) Check {
	q := sg.Queue
	key := q.Key
	if key == "" {
		key = svc.Name
	}
	switch {
	case obs.Queue == nil || obs.Queue.UnackedTime.IsZero():
		return Check{Severity: SeverityWarning, Detail: ok.Detail + fmt.Sprintf("; unackedMetric %s: no reading for %q", q.Unacked, key),
			Fix: "the messages in progress are left out (the pods' pace falls back to the learned one, the backlog counts only what waits): " +
				"check the query answers rabbitmq_queue_messages_unacked for the queue, keyed like the backlog"}
	case staleAfter > 0 && now.Sub(obs.Queue.UnackedTime) > staleAfter:
		return Check{Severity: SeverityWarning, Detail: ok.Detail + fmt.Sprintf("; unackedMetric %s: last sample %s old, beyond staleAfter %s", q.Unacked, now.Sub(obs.Queue.UnackedTime).Round(time.Second), staleAfter),
			Fix: "a stale in-progress count is not used for the pods' pace: check RabbitMQ's Prometheus plugin is still scraped"}
	}
	ok.Detail += fmt.Sprintf("; %s = %.4g in progress", q.Unacked, obs.Queue.Unacked)
	return ok
}

const (
	sourcePrometheus = "prometheus"
	sourceRabbitMQ   = "rabbitmq"
	sourceKubernetes = "metrics.k8s.io"
)

func sourceOf(sg config.SignalSource) string {
	switch {
	case sg.Kind == policy.KindUtilization:
		return sourceKubernetes
	case sg.Kind == policy.KindQueue && sg.Queue != nil && sg.Queue.Backlog == "":
		return sourceRabbitMQ
	}
	return sourcePrometheus
}

func utilizationCheck(svc config.Service, sg config.SignalSource, obs policy.Observation, src Sources) Check {
	target := svc.Target.Kind + "/" + svc.Target.Name
	switch {
	case !src.Kubernetes && obs.Status != policy.StatusOK:
		return Check{Severity: SeverityProblem, Detail: obs.Error, Fix: "utilization needs metrics.k8s.io through the cluster connection: give --kubeconfig or run in the cluster"}
	case obs.Status == policy.StatusFailed:
		return Check{Severity: SeverityProblem, Detail: obs.Error,
			Fix: "metrics.k8s.io does not answer: install metrics-server and check `kubectl get apiservice v1beta1.metrics.k8s.io` is Available"}
	case obs.Status != policy.StatusOK:
		return Check{Severity: SeverityProblem, Detail: obs.Error,
			Fix: fmt.Sprintf("metrics.k8s.io has no sample for the pods of %s: check they run (`kubectl top pod` lists them) and the config's target", target)}
	}
	measured, requested := 0, 0
	for _, p := range obs.Pods {
		if p.HasMetric {
			measured++
		}
		if p.Request > 0 {
			requested++
		}
	}
	detail := fmt.Sprintf("metrics.k8s.io: %d of %d pods measured", measured, len(obs.Pods))
	switch {
	case requested == 0:
		return Check{Severity: SeverityProblem, Detail: detail + ", none requests " + sg.Resource,
			Fix: fmt.Sprintf("utilization is relative to the request: set resources.requests.%s on %s", sg.Resource, target)}
	case measured < len(obs.Pods):
		return Check{Severity: SeverityWarning, Detail: detail, Fix: "pods without a sample count as idle on a scale-up and as full on a scale-down; metrics-server measures new pods within a minute"}
	}
	return Check{Severity: SeverityOK, Detail: detail}
}

func rabbitCheck(sg config.SignalSource, obs policy.Observation, src Sources) Check {
	q := sg.Queue
	where := fmt.Sprintf("queue %s in vhost %s", strings.Join(q.Queues, ", "), vhost(q.VHost))
	switch {
	case src.RabbitMQURL == "" && obs.Status != policy.StatusOK:
		return Check{Severity: SeverityProblem, Detail: "rabbitmq: no management API URL configured",
			Fix: "give --rabbitmq, --rabbitmq-user and --rabbitmq-password-file (chart: rabbitmq.url and rabbitmq.existingSecret)"}
	case obs.Status == policy.StatusFailed:
		return Check{Severity: SeverityProblem, Detail: obs.Error,
			Fix: fmt.Sprintf("the management API at %s failed: check the URL (port 15672, the management plugin) and the credentials (a user with the monitoring tag)", src.RabbitMQURL)}
	case obs.Status != policy.StatusOK || obs.Queue == nil:
		return Check{Severity: SeverityProblem, Detail: obs.Error,
			Fix: fmt.Sprintf("%s not found: name the worker pools' queues in the config (`rabbitmqctl list_queues -p %s name consumers`)", where, vhost(q.VHost))}
	case obs.Queue.Consumers == 0:
		return Check{Severity: SeverityProblem, Detail: fmt.Sprintf("%s: backlog %.0f, no consumers", where, obs.Queue.Backlog),
			Fix: "nothing consumes the queue: check it is the queue the service's pods read (the pool's routing key) and that they run"}
	}
	return Check{Severity: SeverityOK, Detail: fmt.Sprintf("%s: backlog %.0f, %d consumers", where, obs.Queue.Backlog, obs.Queue.Consumers)}
}

func vhost(v string) string {
	if v == "" {
		return "/"
	}
	return v
}

func promCheck(svc config.Service, sg config.SignalSource, obs policy.Observation, queries map[string]*config.PrometheusQuery, src Sources) Check {
	metric, key := sg.Metric, sg.Key
	if sg.Queue != nil {
		metric, key = sg.Queue.Backlog, sg.Queue.Key
		// A queue signal fails on the first of its metrics that does not
		// resolve, and the error names it: the fix shows that one's query.
		for _, m := range []string{sg.Queue.Backlog, sg.Queue.ArrivalRate, sg.Queue.CompletionRate} {
			if m != "" && obs.Status != policy.StatusOK && strings.Contains(obs.Error, "metric "+m+" ") {
				metric = m
				break
			}
		}
	}
	if key == "" {
		key = svc.Name
	}
	q := queries[metric]
	label, query := "service", metric
	if q != nil {
		label, query = q.KeyLabel, q.Query
	}
	switch {
	case src.PrometheusURL == "" && obs.Status != policy.StatusOK:
		return Check{Severity: SeverityProblem, Detail: "prometheus: no URL configured",
			Fix: "give --prometheus (chart: prometheus.url; Linkerd-viz's is http://prometheus.linkerd-viz.svc.cluster.local:9090)"}
	case obs.Status == policy.StatusFailed:
		return Check{Severity: SeverityProblem, Detail: obs.Error,
			Fix: fmt.Sprintf("Prometheus at %s failed the query: check the URL, --prometheus-config credentials and the query's syntax", src.PrometheusURL)}
	case obs.Status == policy.StatusInvalid && strings.Contains(obs.Error, "NaN"):
		return Check{Severity: SeverityWarning, Detail: obs.Error,
			Fix: "the query has a series for the service but no value now (no requests in its window): the service holds until there is traffic"}
	case obs.Status == policy.StatusInvalid:
		return Check{Severity: SeverityProblem, Detail: obs.Error, Fix: fmt.Sprintf("make the query return one finite value per %s: aggregate it with sum by (%s)", label, label)}
	case obs.Status != policy.StatusOK:
		return Check{Severity: SeverityProblem, Detail: obs.Error,
			Fix: fmt.Sprintf("the query returns no series with %s=%q: check that %s's pods are scraped, that the series keep their %s label "+
				"(the Prometheus Operator renames it exported_%s unless honorLabels is set) and the namespace selector; query: %s",
				label, key, svc.Name, label, label, oneLine(query))}
	}
	v := obs.Value
	if sg.Queue != nil && obs.Queue != nil {
		v = obs.Queue.Waiting() // what backlogMetric read
	}
	return Check{Severity: SeverityOK, Detail: fmt.Sprintf("%s{%s=%q} = %.4g", metric, label, key, v)}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// targets reports the targets elmascale will not scale: missing ones,
// hand-offs (an HPA, a ScaledObject, the pause annotation) and pinned
// services running more than one pod now.
func targets(ctx context.Context, r *Report, cfg *config.Config, opts Options) {
	st, err := opts.Targets.Observe(ctx, cfg)
	if err != nil {
		r.add(Check{Kind: KindTarget, Name: "targets", Severity: SeverityProblem, Detail: err.Error(),
			Fix: "the workloads could not be read: check the permissions above and the API server"})
		return
	}
	for _, svc := range cfg.Services {
		ts := st[svc.Name]
		name := svc.Target.Kind + "/" + svc.Target.Name
		c := Check{Kind: KindTarget, Service: svc.Name, Name: name}
		switch {
		case !ts.Found:
			c.Severity, c.Detail = SeverityWarning, fmt.Sprintf("%s not found in %s", name, cfg.Namespace)
			c.Fix = fmt.Sprintf("set services.%s.target to the workload's kind and name, or remove the service if it is not installed", svc.Name)
		case ts.Pinned && (ts.Current > 1 || ts.Ready > 1):
			c.Severity = SeverityProblem
			c.Detail = fmt.Sprintf("single-instance service runs %d replicas (%d ready)", ts.Current, ts.Ready)
			c.Fix = fmt.Sprintf("it cannot run as more than one instance: `kubectl -n %s scale %s --replicas=1` (in apply mode elmascale does it)", cfg.Namespace, strings.ToLower(name))
			if ts.HandedOff != "" {
				c.Fix += "; and remove " + ts.HandedOff + ", which claims it"
			}
		case ts.Pinned && ts.HandedOff != "":
			c.Severity, c.Detail = SeverityWarning, loop.PinnedHandoffRefused(ts.HandedOff)
			c.Fix = "remove " + ts.HandedOff + ": a single-instance service must not be scaled by anyone"
		case ts.HandedOff != "":
			c.Severity, c.Detail = SeverityInfo, loop.HandoffReason(ts.HandedOff)
			c.Fix = handoffFix(ts.HandedOff, cfg.Namespace, name)
		default:
			c.Severity, c.Detail = SeverityOK, fmt.Sprintf("%d replicas, %d ready; elmascale scales it", ts.Current, ts.Ready)
			if ts.Pinned {
				c.Detail = fmt.Sprintf("single instance, %d replica", ts.Current)
			}
		}
		r.add(c)
	}
}

func handoffFix(owner, ns, target string) string {
	kind, name, _ := strings.Cut(owner, "/")
	switch kind {
	case scaler.OwnerHPA:
		return fmt.Sprintf("to let elmascale scale it: `elmascale import` carries the HPA's settings over, then `kubectl -n %s delete hpa %s`", ns, name)
	case scaler.OwnerScaledObject:
		return fmt.Sprintf("to let elmascale scale it: `elmascale import` carries the ScaledObject's settings over, then `kubectl -n %s delete scaledobject %s`", ns, name)
	}
	return fmt.Sprintf("to let elmascale scale it: `kubectl -n %s annotate %s %s-`", ns, strings.ToLower(target), scaler.AnnotationPaused)
}
