package simulations

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/elmascale/elmascale/internal/promtest"
)

// captureTemplate is a cluster fed at its five entry services and a
// queue, with a worker pool from a template, its
// cluster and configuration in other files.
const captureTemplate = `
name: small
duration: 2h
warmup: 10m
cluster:
  base: clusters/small.yaml
load:
  - {service: main, constant: 10, noise: {cv: 0.2}}
  - {service: main, constant: 1}
  - {service: front, constant: 5}
  - {service: integrations, constant: 1}
  - {service: web-forms, constant: 1}
  - {service: mailer, constant: 1}
  - {queue: jobs, constant: 1}
slo:
  endToEnd: {main: 500ms}
marks:
  - {name: morning, at: 1h, horizon: 30m}
elmascale:
  overlays: [configs/cpu.yaml]
`

const captureCluster = `
services:
  main: {slots: 8, serviceTime: {mean: 20ms}, cpuPerRequest: 10ms, cpuRequest: 1000m, calls: [{service: auth, mean: 1}]}
  auth: {slots: 8, serviceTime: {mean: 5ms}, cpuPerRequest: 5ms, cpuRequest: 500m}
  front: {slots: 8, serviceTime: {mean: 5ms}, cpuPerRequest: 5ms, cpuRequest: 500m, calls: [{service: main, mean: 1}]}
  integrations: {slots: 8, serviceTime: {mean: 5ms}, cpuPerRequest: 5ms, cpuRequest: 500m}
  web-forms: {slots: 8, serviceTime: {mean: 5ms}, cpuPerRequest: 5ms, cpuRequest: 500m}
  mailer: {slots: 8, serviceTime: {mean: 5ms}, cpuPerRequest: 5ms, cpuRequest: 500m}
  worker: {slots: 4, serviceTime: {mean: 5ms}, cpuPerRequest: 5ms, cpuRequest: 500m, consumes: [jobs]}
queues:
  jobs: {serviceTime: {mean: 200ms}}
pools:
  - {template: worker, names: [sales]}
`

const captureConfig = `
apiVersion: elmascale.io/v1alpha1
kind: Config
services:
  main:
    dependsOn: [auth]
    signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]
  auth:
    signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]
  worker:
    signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]
`

// recordedRate is the requests per second the recorded week has at a
// service at t seconds from its start: a daily curve, a different level
// per service.
func recordedRate(level float64, t float64) float64 {
	return level * (1 + 0.8*math.Sin(2*math.Pi*t/86400))
}

// recordedWeek is a week of Linkerd request counters, one sample a minute,
// for the ingress controller's calls to each entry service, RabbitMQ's
// publish counter of the jobs queue, and, to be left out of the capture, one service's calls to another.
func recordedWeek(end time.Time, levels map[string]float64) []byte {
	var b bytes.Buffer
	start := end.Add(-7*24*time.Hour - time.Hour)
	write := func(metric, labels string, level float64) {
		total := 0.0
		for t := 0.0; t <= (7*24+1)*3600; t += 60 {
			fmt.Fprintf(&b, "%s{%s} %.3f %d\n", metric, labels, total, start.Unix()+int64(t))
			// The counter's increase over the next minute (the rate's integral).
			total += 60 * (level + 0.8*level*(math.Cos(2*math.Pi*(t-3600)/86400)-math.Cos(2*math.Pi*(t+60-3600)/86400))*86400/(2*math.Pi)/60)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(levels)) {
		if name == "jobs" {
			continue
		}
		write("request_total", fmt.Sprintf(`direction="outbound",deployment="ingress-nginx",dst_deployment=%q`, name), levels[name])
	}
	write("request_total", `direction="outbound",deployment="main",dst_deployment="auth"`, 500)
	write("rabbitmq_queue_messages_published_total", `queue="jobs"`, levels["jobs"])
	b.WriteString("# EOF\n")
	return b.Bytes()
}

// Verifies the trace-driven what-if against a real Prometheus holding a
// recorded week (backfilled with promtool): the captured scenario is the
// template's cluster under the recorded rates of its entry services, at
// the capture's step, its queue under the recorded publish rate,
// self-contained (it parses with no files around it),
// a week long; other services' traffic is not taken for outside load; and
// a source with no record is refused by name.
func TestCaptureFromPrometheus(t *testing.T) {
	end := time.Now().Add(-time.Hour).Truncate(time.Hour)
	levels := map[string]float64{"main": 60, "front": 20, "integrations": 2, "web-forms": 1, "mailer": 0.5, "jobs": 3}
	prom := promtest.StartBackfilled(t, recordedWeek(end, levels))
	files := fstest.MapFS{
		"clusters/small.yaml": {Data: []byte(captureCluster)},
		"configs/cpu.yaml":    {Data: []byte(captureConfig)},
	}
	template := []byte(captureTemplate)
	ctx := context.Background()
	out, err := Capture(ctx, template, files, ".", CaptureOptions{URL: prom.URL, End: end, Range: 7 * 24 * time.Hour, Step: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario(out, fstest.MapFS{}, ".")
	if err != nil {
		t.Fatalf("captured scenario does not parse on its own: %v\n%.2000s", err, out)
	}
	if sc.Duration != 7*24*time.Hour || len(sc.Marks) != 0 {
		t.Fatalf("duration %s, %d marks; want 168h and none", sc.Duration, len(sc.Marks))
	}
	tmpl, err := ParseScenario(template, files, ".")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.Elmascale.Service("worker-sales"); !ok || sc.ServiceIndex("worker-sales") < 0 {
		t.Fatal("the template's worker pool, or its configuration entry, is not in the captured scenario")
	}
	if len(sc.Services) != len(tmpl.Services) || string(sc.ElmascaleYAML) != string(tmpl.ElmascaleYAML) {
		t.Fatal("captured scenario's cluster or configuration differs from the template's")
	}
	if len(sc.Load) != len(levels) {
		t.Fatalf("%d load sources, want one per recorded entry service and queue (%d)", len(sc.Load), len(levels))
	}
	load := sc.NewLoad(1)
	// rate(…[5m]) at t is the mean over the five minutes before it.
	recStart := float64(time.Hour / time.Second)
	for i, l := range sc.Load {
		level, ok := levels[l.Service+l.Queue]
		if !ok {
			t.Fatalf("load source %+v is not a recorded entry service", l)
		}
		for _, at := range []time.Duration{time.Hour, 30*time.Hour + 10*time.Minute, 100 * time.Hour, 167 * time.Hour} {
			s := recStart + at.Seconds()
			want := 0.0
			for k := 0; k < 300; k++ {
				want += recordedRate(level, s-300+float64(k)+0.5-recStart) / 300
			}
			if got := load.Rate(i, at); math.Abs(got-want) > 0.02*level {
				t.Errorf("%s at %s: captured %.3f/s, recorded %.3f/s", l.Service+l.Queue, at, got, want)
			}
		}
	}

	_, err = Capture(ctx, template, files, ".", CaptureOptions{URL: prom.URL, End: end, Range: 24 * time.Hour,
		ServiceQuery: `sum by (dst_deployment) (rate(request_total{deployment=~"ingress.*", dst_deployment!="main"}[5m]))`, ServiceLabel: "dst_deployment"})
	if err == nil || !strings.Contains(err.Error(), "service main") {
		t.Fatalf("template source without a record: want an error naming service main, got %v", err)
	}
	_, err = Capture(ctx, template, files, ".", CaptureOptions{URL: prom.URL, End: end, Range: time.Hour, ServiceQuery: `sum(rate(request_total[5m]))`, ServiceLabel: "dst_deployment"})
	if err == nil || !strings.Contains(err.Error(), "without label dst_deployment") {
		t.Fatalf("series without the key label: want an error, got %v", err)
	}
}
