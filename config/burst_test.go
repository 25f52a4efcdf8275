package config

import (
	"strings"
	"testing"
	"time"
)

// burstConfig has a RabbitMQ worker pool and a CPU-scaled API.
const burstConfig = `apiVersion: elmascale.io/v1alpha1
kind: Config
interval: 15s
services:
  api:
    signals:
      - {name: cpu, utilization: {resource: cpu, targetPercent: 70}}
  worker:
    signals:
      - name: queue
        queue: {rabbitmq: {vhost: /, queues: [jobs]}, drainTime: 1m}
`

func serviceByName(t *testing.T, c *Config, name string) (Service, int) {
	t.Helper()
	for i, s := range c.Services {
		if s.Name == name {
			return s, i
		}
	}
	t.Fatalf("no service %s", name)
	return Service{}, 0
}

// Verifies the burst block: off by default; on at the top level for the
// services with a RabbitMQ queue only, with the defaults (2s, 2×); a
// service's own block overrides the top level's.
func TestBurstBlock(t *testing.T) {
	cfg, err := Parse([]byte(burstConfig))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range cfg.Services {
		if s.BurstInterval != 0 || cfg.Policy.Services[i].Burst != nil {
			t.Errorf("%s: burst on without being asked for", s.Name)
		}
	}

	cfg, err = Parse([]byte(burstConfig + "burst: {enabled: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, i := serviceByName(t, cfg, "worker")
	if b := cfg.Policy.Services[i].Burst; w.BurstInterval != DefaultBurstInterval || b == nil || b.Threshold != DefaultBurstThreshold {
		t.Errorf("worker burst every %s, spec %+v; want the defaults", w.BurstInterval, b)
	}
	if a, j := serviceByName(t, cfg, "api"); a.BurstInterval != 0 || cfg.Policy.Services[j].Burst != nil {
		t.Error("api has no queue but got the burst path")
	}

	over := strings.Replace(burstConfig, "  worker:\n", "  worker:\n    burst: {interval: 1s, threshold: 1.5}\n", 1) + "burst: {enabled: true, interval: 3s}\n"
	cfg, err = Parse([]byte(over))
	if err != nil {
		t.Fatal(err)
	}
	w, i = serviceByName(t, cfg, "worker")
	if b := cfg.Policy.Services[i].Burst; w.BurstInterval != time.Second || b == nil || b.Threshold != 1.5 {
		t.Errorf("worker burst every %s, spec %+v; want 1s and 1.5", w.BurstInterval, b)
	}
	off := strings.Replace(burstConfig, "  worker:\n", "  worker:\n    burst: {enabled: false}\n", 1) + "burst: {enabled: true}\n"
	if cfg, err = Parse([]byte(off)); err != nil {
		t.Fatal(err)
	}
	if w, _ := serviceByName(t, cfg, "worker"); w.BurstInterval != 0 {
		t.Error("a service's enabled: false did not win over the top level")
	}
}

// Verifies that a burst block that cannot work is an error naming its
// path: on for a service without a RabbitMQ queue, an interval too short
// or not shorter than the loop's, a threshold below 1, an unknown field.
func TestBurstBlockErrors(t *testing.T) {
	cases := map[string]struct{ config, want string }{
		"no queue": {strings.Replace(burstConfig, "  api:\n", "  api:\n    burst: {enabled: true}\n", 1),
			"services.api.burst.enabled: the burst path watches queue signals read from RabbitMQ"},
		"too fast":       {burstConfig + "burst: {enabled: true, interval: 100ms}\n", "burst.interval: must be >= 500ms"},
		"slower as tick": {burstConfig + "burst: {enabled: true, interval: 15s}\n", "burst.interval: must be shorter than the loop interval 15s"},
		"threshold": {strings.Replace(burstConfig, "  worker:\n", "  worker:\n    burst: {enabled: true, threshold: 0.5}\n", 1),
			"services.worker.burst.threshold: must be >= 1"},
		"unknown field": {burstConfig + "burst: {enable: true}\n", "burst.enable"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// Verifies that the shipped preset turns the burst path on for the worker
// pool's queue, and for nothing else.
func TestPresetBurstsWorkerQueue(t *testing.T) {
	cfg, err := ELMA365Preset()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range cfg.Services {
		on := cfg.Policy.Services[i].Burst != nil
		if on != (s.Name == "worker") {
			t.Errorf("%s: burst path on = %v", s.Name, on)
		}
		if s.Name == "worker" && (s.BurstInterval != 2*time.Second || cfg.Policy.Services[i].Burst.Threshold != 2) {
			t.Errorf("worker burst every %s at %+v, want 2s at 2×", s.BurstInterval, cfg.Policy.Services[i].Burst)
		}
	}
}

// Verifies which signals the burst path reads: the named services' queue
// signals read from RabbitMQ, not a queue read from Prometheus, not CPU,
// and nothing of a service not named.
func TestBurstSignals(t *testing.T) {
	cfg, err := Parse([]byte(burstConfig + `  reports:
    signals:
      - {name: rabbit, queue: {rabbitmq: {queues: [reports]}, drainTime: 1m}}
      - {name: scraped, queue: {backlogMetric: backlog, drainTime: 1m}}
metrics:
  backlog: {prometheus: {query: 'sum by (service) (backlog)'}}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, w := range cfg.BurstSignals([]string{"api", "reports"}) {
		for _, s := range w.Signals {
			got[w.Service] = append(got[w.Service], s.Name)
		}
	}
	if len(got) != 1 || len(got["reports"]) != 1 || got["reports"][0] != "rabbit" {
		t.Errorf("burst signals of api and reports = %v, want reports' rabbit only", got)
	}
	if w := cfg.BurstSignals([]string{"worker"}); len(w) != 1 || w[0].Service != "worker" || w[0].Signals[0].Name != "queue" {
		t.Errorf("burst signals of worker = %+v, want its queue", w)
	}
}
