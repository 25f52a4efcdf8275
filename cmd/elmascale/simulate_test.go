package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Verifies that simulate runs a scenario file under two policies and
// writes the report with its score table and plots.
func TestSimulateWritesReport(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(scenario, []byte(`
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
`), 0o644); err != nil {
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
