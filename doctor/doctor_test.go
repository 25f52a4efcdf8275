package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

var epoch = time.Unix(1_700_000_000, 0)

const testConfig = `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
staleAfter: 1m
metrics:
  latency:
    prometheus: {query: 'histogram_quantile(0.95, sum by (service, le) (rate(x_bucket[1m])))', keyLabel: service}
services:
  main:
    signals:
      - {name: cpu, utilization: {resource: cpu, targetPercent: 70}}
      - {name: latency, latency: {metric: latency, quantile: 0.95, slo: 300ms}}
  worker:
    signals:
      - {name: queue, queue: {rabbitmq: {queues: [worker.default]}, drainTime: 1m}}
  scheduler:
    pinned: true
  chat: {}
`

type fakeCollector loop.Signals

func (f fakeCollector) Collect(context.Context, *config.Config, time.Time) (loop.Signals, error) {
	return loop.Signals(f), nil
}

type fakeTargets map[string]loop.TargetStatus

func (f fakeTargets) Observe(context.Context, *config.Config) (map[string]loop.TargetStatus, error) {
	return f, nil
}

// denyAccess denies the listed "verb resource/subresource" pairs.
type denyAccess map[string]bool

func (d denyAccess) Allowed(_ context.Context, a authorizationv1.ResourceAttributes) (bool, string, error) {
	k := a.Verb + " " + a.Resource
	if a.Subresource != "" {
		k += "/" + a.Subresource
	}
	return !d[k], "", nil
}

func find(t *testing.T, r Report, kind, service, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Kind == kind && c.Service == service && strings.HasPrefix(c.Name, name) {
			return c
		}
	}
	t.Fatalf("no %s check %s/%s in %+v", kind, service, name, r.Checks)
	return Check{}
}

func pods(n int, measured bool) []policy.PodSample {
	out := make([]policy.PodSample, n)
	for i := range out {
		out[i] = policy.PodSample{HasMetric: measured, Request: 100, Usage: 50}
	}
	return out
}

// Verifies each kind of unresolved signal, denied permission and target
// state is graded as it should be and carries a fix.
func TestRunGradesEveryCheck(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	base := func() Options {
		return Options{
			Collector: fakeCollector{
				"main": {
					"cpu":     {Status: policy.StatusOK, Time: epoch, Pods: pods(2, true)},
					"latency": {Status: policy.StatusOK, Time: epoch, Value: 0.12},
				},
				"worker": {"queue": {Status: policy.StatusOK, Time: epoch, Queue: &policy.QueueObservation{Backlog: 3, Consumers: 2}}},
			},
			Targets: fakeTargets{
				"main":      {Found: true, Current: 2, Ready: 2},
				"worker":    {Found: true, Current: 2, Ready: 2},
				"scheduler": {Found: true, Current: 1, Ready: 1, Pinned: true},
				"chat":      {Found: true, Current: 2, Ready: 2},
			},
			Access:  denyAccess{},
			Sources: Sources{PrometheusURL: "http://p", RabbitMQURL: "http://r", Kubernetes: true},
		}
	}
	t.Run("all fine", func(t *testing.T) {
		r := Run(context.Background(), cfg, base(), epoch)
		if !r.OK() || r.Warnings != 0 {
			t.Fatalf("want no problem, got:\n%s", r.Table())
		}
		if res := r.Resolved(); !res["main"]["latency"] || !res["worker"]["queue"] || len(res["chat"]) != 0 {
			t.Errorf("resolved %v", res)
		}
	})
	cases := []struct {
		name                string
		edit                func(*Options)
		kind, service, what string
		want                Severity
		fix                 string
	}{
		{"series missing for the service", func(o *Options) {
			o.Collector.(fakeCollector)["main"]["latency"] = policy.Observation{Status: policy.StatusMissing, Error: `prometheus: metric latency has no series with service="main"`}
		}, KindSignal, "main", "latency", SeverityProblem, "exported_service"},
		{"no Prometheus", func(o *Options) {
			o.Sources.PrometheusURL = ""
			o.Collector.(fakeCollector)["main"]["latency"] = policy.Observation{Status: policy.StatusMissing, Error: "prometheus: no URL configured"}
		}, KindSignal, "main", "latency", SeverityProblem, "--prometheus"},
		{"NaN latency at no traffic", func(o *Options) {
			o.Collector.(fakeCollector)["main"]["latency"] = policy.Observation{Status: policy.StatusInvalid, Error: `prometheus: metric latency is NaN for service="main"`}
		}, KindSignal, "main", "latency", SeverityWarning, "traffic"},
		{"stale sample", func(o *Options) {
			o.Collector.(fakeCollector)["main"]["latency"] = policy.Observation{Status: policy.StatusOK, Time: epoch.Add(-5 * time.Minute), Value: 0.1}
		}, KindSignal, "main", "latency", SeverityProblem, "scrape"},
		{"queue without consumers", func(o *Options) {
			o.Collector.(fakeCollector)["worker"]["queue"] = policy.Observation{Status: policy.StatusOK, Time: epoch, Queue: &policy.QueueObservation{Backlog: 40}}
		}, KindSignal, "worker", "queue", SeverityProblem, "consumes"},
		{"queue absent", func(o *Options) {
			o.Collector.(fakeCollector)["worker"]["queue"] = policy.Observation{Status: policy.StatusMissing, Error: "rabbitmq: queue worker.default not found"}
		}, KindSignal, "worker", "queue", SeverityProblem, "list_queues"},
		{"no pod measured", func(o *Options) {
			o.Collector.(fakeCollector)["main"]["cpu"] = policy.Observation{Status: policy.StatusMissing, Error: "metrics.k8s.io: no pod of the workload has a sample yet"}
		}, KindSignal, "main", "cpu", SeverityProblem, "kubectl top pod"},
		{"no CPU request", func(o *Options) {
			ps := pods(2, true)
			ps[0].Request, ps[1].Request = 0, 0
			o.Collector.(fakeCollector)["main"]["cpu"] = policy.Observation{Status: policy.StatusOK, Time: epoch, Pods: ps}
		}, KindSignal, "main", "cpu", SeverityProblem, "resources.requests.cpu"},
		{"scale denied in apply mode", func(o *Options) {
			o.Apply = true
			o.Access = denyAccess{"update deployments/scale": true}
		}, KindPermission, "", "get,update deployments.apps/scale", SeverityProblem, "kubectl auth can-i update deployments.apps/scale -n elma365"},
		{"scale denied in dry-run only advised", func(o *Options) {
			o.Access = denyAccess{"update deployments/scale": true}
		}, KindPermission, "", "get,update deployments.apps/scale", SeverityWarning, "ClusterRole"},
		{"token reviews denied with metrics auth", func(o *Options) {
			o.MetricsAuth = true
			o.Access = denyAccess{"create tokenreviews": true}
		}, KindPermission, "", "create tokenreviews.authentication.k8s.io", SeverityProblem, "deploy/base/metrics-auth.yaml"},
		{"HPA hand-off", func(o *Options) {
			o.Targets.(fakeTargets)["chat"] = loop.TargetStatus{Found: true, Current: 2, Ready: 2, HandedOff: "HorizontalPodAutoscaler/chat"}
		}, KindTarget, "chat", "Deployment/chat", SeverityInfo, "delete hpa chat"},
		{"pinned running three", func(o *Options) {
			o.Targets.(fakeTargets)["scheduler"] = loop.TargetStatus{Found: true, Current: 3, Ready: 3, Pinned: true}
		}, KindTarget, "scheduler", "Deployment/scheduler", SeverityProblem, "--replicas=1"},
		{"target missing", func(o *Options) {
			o.Targets.(fakeTargets)["chat"] = loop.TargetStatus{}
		}, KindTarget, "chat", "Deployment/chat", SeverityWarning, "services.chat.target"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.edit(&o)
			r := Run(context.Background(), cfg, o, epoch)
			c := find(t, r, tc.kind, tc.service, tc.what)
			if c.Severity != tc.want || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("got %s (fix %q), want %s with a fix naming %q", c.Severity, c.Fix, tc.want, tc.fix)
			}
			if (tc.want == SeverityProblem) == r.OK() {
				t.Errorf("report OK = %v with a %s", r.OK(), tc.want)
			}
			if tc.kind == KindSignal {
				if res := r.Resolved()[tc.service][tc.what]; res == (tc.want == SeverityProblem) {
					t.Errorf("resolved = %v for a %s", res, tc.want)
				}
			}
		})
	}
}

// Verifies the table and JSON forms carry every check and the fixes.
func TestReportForms(t *testing.T) {
	r := Report{Namespace: "elma365"}
	r.add(Check{Kind: KindSignal, Service: "main", Name: "latency", Severity: SeverityProblem, Detail: "no series", Fix: "relabel"})
	r.add(Check{Kind: KindPermission, Name: "list pods in elma365", Severity: SeverityOK, Detail: "allowed"})
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"PROBLEM", "fix: relabel", "list pods in elma365", "1 problems, 0 warnings"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || len(back.Checks) != 2 || back.Problems != 1 || back.Checks[0].Fix != "relabel" {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

// Verifies that a config taken from a ScalingPolicy adds reading the
// policy and writing its status, in the policy's namespace, to what is
// checked, and that a file config does not.
func TestPolicyPermissionsNeeded(t *testing.T) {
	cfg := &config.Config{Namespace: "elma365"}
	onPolicy := func(opts Options) []string {
		var out []string
		for _, p := range needs(cfg, opts) {
			if p.group == "elmascale.io" {
				out = append(out, p.String()+p.where())
			}
		}
		return out
	}
	if got := onPolicy(Options{}); len(got) != 0 {
		t.Errorf("a file config needs %v on ScalingPolicies, want nothing", got)
	}
	got := onPolicy(Options{PolicyNamespace: "team-a"})
	want := []string{"get,list,watch scalingpolicies.elmascale.io in team-a", "get,update,patch scalingpolicies.elmascale.io/status in team-a"}
	if !slices.Equal(got, want) {
		t.Errorf("with a ScalingPolicy in team-a: %q, want %q", got, want)
	}
}

// Verifies a queue signal read from Prometheus: a failing rate metric is
// named with its own query in the fix (not the backlog's), and the
// optional messages-in-progress reading, when configured, is a warning
// when absent or stale and shown when read.
func TestPrometheusQueueParts(t *testing.T) {
	cfg, err := config.Parse([]byte(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
staleAfter: 1m
metrics:
  ready: {prometheus: {query: 'sum by (queue) (rabbitmq_queue_messages_ready)', keyLabel: queue}}
  published: {prometheus: {query: 'sum by (queue) (rate(rabbitmq_queue_messages_published_total[1m]))', keyLabel: queue}}
  acked: {prometheus: {query: 'sum by (queue) (rate(rabbitmq_queue_messages_acked_total[1m]))', keyLabel: queue}}
  unacked: {prometheus: {query: 'sum by (queue) (rabbitmq_queue_messages_unacked)', keyLabel: queue}}
services:
  worker:
    signals:
      - name: queue
        queue: {backlogMetric: ready, arrivalRateMetric: published, completionRateMetric: acked, unackedMetric: unacked, key: worker.default, drainTime: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	run := func(obs policy.Observation) Check {
		o := Options{
			Collector: fakeCollector{"worker": {"queue": obs}},
			Targets:   fakeTargets{"worker": {Found: true, Current: 2, Ready: 2}},
			Access:    denyAccess{},
			Sources:   Sources{PrometheusURL: "http://p", Kubernetes: true},
		}
		return find(t, Run(context.Background(), cfg, o, epoch), KindSignal, "worker", "queue")
	}
	c := run(policy.Observation{Status: policy.StatusMissing, Error: `prometheus: metric acked has no series with queue="worker.default"`})
	if c.Severity != SeverityProblem || !strings.Contains(c.Fix, "rabbitmq_queue_messages_acked_total") || strings.Contains(c.Fix, "messages_ready") {
		t.Errorf("failing ack rate: %s, fix %q; want a problem showing the ack rate's query", c.Severity, c.Fix)
	}
	c = run(policy.Observation{Status: policy.StatusOK, Time: epoch, Queue: &policy.QueueObservation{Backlog: 7}})
	if c.Severity != SeverityWarning || !strings.Contains(c.Detail, "unackedMetric unacked") || !strings.Contains(c.Fix, "pace") {
		t.Errorf("no in-progress reading: %s %q, fix %q; want a warning", c.Severity, c.Detail, c.Fix)
	}
	c = run(policy.Observation{Status: policy.StatusOK, Time: epoch, Queue: &policy.QueueObservation{Backlog: 7, Unacked: 4, UnackedTime: epoch.Add(-10 * time.Minute)}})
	if c.Severity != SeverityWarning || !strings.Contains(c.Detail, "old") {
		t.Errorf("stale in-progress reading: %s %q; want a warning", c.Severity, c.Detail)
	}
	c = run(policy.Observation{Status: policy.StatusOK, Time: epoch, Queue: &policy.QueueObservation{Backlog: 7, Unacked: 4, UnackedTime: epoch}})
	if c.Severity != SeverityOK || !strings.Contains(c.Detail, "ready{queue=\"worker.default\"} = 3") || !strings.Contains(c.Detail, "4 in progress") {
		t.Errorf("all read: %s %q; want OK with 3 waiting and 4 in progress", c.Severity, c.Detail)
	}
}
