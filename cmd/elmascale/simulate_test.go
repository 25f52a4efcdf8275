package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elmascale/elmascale/internal/promtest"
	"github.com/elmascale/elmascale/simulations"
)

// Verifies that simulate runs a scenario file under two policies and
// writes the report with its score table and plots.
func TestSimulateWritesReport(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(scenario, []byte(tinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := run(t, "simulate", "--scenario", scenario, "--policy", "hpa,oracle", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "| hpa |") || !strings.Contains(stdout, "| oracle |") {
		t.Errorf("score table lacks a policy row:\n%s", stdout)
	}
	if !strings.Contains(stdout, "- hpa: CPU utilization") || !strings.Contains(stdout, "- oracle: offline") {
		t.Errorf("the output does not say what the policies are:\n%s", stdout)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"load.png", "p95-main.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("plot missing: %v", err)
		}
		if !strings.Contains(string(md), f) {
			t.Errorf("report does not show %s", f)
		}
	}
	if code, _, stderr := run(t, "simulate", "--scenario", scenario, "--policy", "nope", "--out", out); code != 2 || !strings.Contains(stderr, `unknown policy "nope"`) {
		t.Errorf("unknown policy: exit %d %q, want 2 naming it", code, stderr)
	}
}

// tinyScenario is two services for ten minutes, fed at main.
const tinyScenario = `
name: tiny
description: two services for ten minutes
duration: 10m
cluster:
  services:
    main: {slots: 2, serviceTime: {mean: 20ms}, cpuPerRequest: 10ms, cpuRequest: 1000m, calls: [{service: worker, mean: 1}]}
    worker: {slots: 1, serviceTime: {mean: 50ms}, cpuPerRequest: 50ms, cpuRequest: 1000m}
load:
  - service: main
    points: [{at: 0s, rps: 10}, {at: 5m, rps: 10}, {at: 5m, rps: 40}]
slo:
  endToEnd: {main: 500ms}
marks:
  - {name: step, at: 5m, horizon: 5m}
elmascale:
  overrides:
    apiVersion: elmascale.io/v1alpha1
    kind: Config
    services:
      main:
        dependsOn: [worker]
        signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]
      worker:
        signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]
`

// Verifies the trace-driven what-if end to end against a real Prometheus
// holding three recorded hours of the ingress controller's requests to
// main (20/s, then 60/s for the last hour): simulate replays the last two
// hours on tiny's cluster, writes the captured scenario with the recorded
// step in it, and scores it; a query of its own is used; the capture flags without --from-prometheus
// are a usage error.
func TestSimulateFromPrometheus(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(scenario, []byte(tinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var om bytes.Buffer
	total := 0.0
	for ts := end.Add(-3 * time.Hour); !ts.After(end); ts = ts.Add(15 * time.Second) {
		fmt.Fprintf(&om, "request_total{direction=\"outbound\",deployment=\"ingress-nginx\",dst_deployment=\"main\"} %g %d\n", total, ts.Unix())
		rate := 20.0
		if end.Sub(ts) <= time.Hour {
			rate = 60
		}
		total += 15 * rate
	}
	om.WriteString("# EOF\n")
	prom := promtest.StartBackfilled(t, om.Bytes())

	out, captured := filepath.Join(dir, "out"), filepath.Join(dir, "captured.yaml")
	code, stdout, stderr := run(t, "simulate", "--scenario", scenario, "--from-prometheus", prom.URL, "--range", "2h",
		"--end", end.UTC().Format(time.RFC3339), "--step", "1m", "--capture", captured, "--policy", "static", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "## tiny-captured") || !strings.Contains(stdout, "| static |") {
		t.Errorf("no score table for the captured scenario:\n%s", stdout)
	}
	data, err := os.ReadFile(captured)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"duration: 2h0m0s", "rps: 20", "rps: 60", "service: main"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("captured scenario lacks %q:\n%.1500s", want, data)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "report.md")); err != nil {
		t.Error(err)
	}
	if code, _, stderr := run(t, "simulate", "--scenario", scenario, "--from-prometheus", prom.URL, "--range", "2h",
		"--end", end.UTC().Format(time.RFC3339), "--service-rate-query", `sum by (app) (rate(request_total[5m]))`, "--service-rate-label", "app",
		"--policy", "static", "--out", out); code != 1 || !strings.Contains(stderr, "without label app") {
		t.Errorf("--service-rate-query whose series lack --service-rate-label: exit %d %q, want 1 naming the label", code, stderr)
	}
	if code, _, stderr := run(t, "simulate", "--scenario", scenario, "--capture", captured, "--out", out); code != 2 || !strings.Contains(stderr, "need --from-prometheus") {
		t.Errorf("--capture alone: exit %d %q, want 2", code, stderr)
	}
	if code, _, stderr := run(t, "simulate", "--scenario", scenario, "--from-prometheus", prom.URL, "--range", "3x", "--out", out); code != 2 || !strings.Contains(stderr, "7d") {
		t.Errorf("--range 3x: exit %d %q, want 2 with an example", code, stderr)
	}
}

// Verifies every policy simulate can run has its one-line explanation.
func TestEveryPolicyExplained(t *testing.T) {
	for _, p := range append(simulations.PolicyNames(), simulations.ExtraPolicyNames()...) {
		if policyLegend[p] == "" {
			t.Errorf("policy %s has no explanation", p)
		}
	}
}
