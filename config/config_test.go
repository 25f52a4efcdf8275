package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elmascale/elmascale/policy"
)

const minimal = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: shop
services:
  api:
    minReplicas: 1
    maxReplicas: 5
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 60}
`

// Verifies defaults: interval 15s, staleAfter 3×interval, HPA behavior,
// Deployment named after the service.
func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != 15*time.Second || cfg.Policy.StaleAfter != 45*time.Second {
		t.Errorf("interval %s staleAfter %s, want 15s and 45s", cfg.Interval, cfg.Policy.StaleAfter)
	}
	api := cfg.Policy.Services[0]
	if diff := cmp.Diff(policy.DefaultBehavior(), api.Behavior); diff != "" {
		t.Errorf("behavior is not the autoscaling/v2 default (-want,+got):\n%s", diff)
	}
	if got := cfg.Services[0].Target; got != (Target{Kind: "Deployment", Name: "api"}) {
		t.Errorf("target %+v", got)
	}
	if cfg.Policy.AttributionMemory != 2*time.Minute {
		t.Errorf("attributionMemory %s, want 2m", cfg.Policy.AttributionMemory)
	}
	sym, err := Parse([]byte(minimal + "      - name: inflight\n        symptom: true\n        perReplica: {metric: m, targetPerReplica: 5}\nmetrics: {m: {prometheus: {query: x}}}\nattributionMemory: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !sym.Policy.Services[0].Signals[1].Symptom || sym.Policy.AttributionMemory != 0 {
		t.Errorf("symptom %v, memory %s", sym.Policy.Services[0].Signals[1].Symptom, sym.Policy.AttributionMemory)
	}
}

// Verifies every problem is reported at once, each naming its path.
func TestErrorsNamePathsAndComeTogether(t *testing.T) {
	bad := `
apiVersion: elmascale.io/v1alpha1
kind: Config
platform: elma365
interval: 10ms
metrics:
  lat:
    prometheus: {query: 'histogram_quantile(0.95, x)'}
services:
  worker:
    minReplicas: 5
    maxReplicas: 3
    dependsOn: [ghost]
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 70}
      - name: q
        queue: {rabbitmq: {queues: [w]}, drainTime: 0s}
      - name: both
        latency: {metric: nope, quantile: 0.95, slo: 1s}
        perReplica: {metric: lat, targetPerReplica: 0}
  notifier:
    maxReplicas: 3
  main:
    dependsOn: [processor]
    behavior:
      scaleUp:
        selectPolicy: Fastest
        policies: [{type: Pods, value: 0, period: 15s}]
  processor:
    dependsOn: [main]
`
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	want := []string{
		"interval: must be >= 1s",
		"services.worker: minReplicas 5 must be <= maxReplicas 3",
		`services.worker.dependsOn: unknown service "ghost"`,
		"services.worker.signals[1].queue.drainTime: must be > 0",
		"services.worker.signals[2]: must set exactly one of utilization, queue, latency, perReplica, object (has 2)",
		`services.worker.signals[2].latency.metric: unknown metric "nope"`,
		"services.worker.signals[2].perReplica.targetPerReplica: must be > 0",
		"services.notifier.maxReplicas: must be 1: the service cannot run as more than one instance in ELMA365",
		"services.main.behavior.scaleUp.selectPolicy: must be Max, Min or Disabled",
		"services.main.behavior.scaleUp.policies[0].value: must be > 0",
		"dependency cycle main → processor → main",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing error %q in:\n%v", w, err)
		}
	}
}

// Verifies unknown fields are errors with their path, and type errors are
// reported too.
func TestStrictDecoding(t *testing.T) {
	_, err := Parse([]byte(minimal + "    replicas: 3\n    signals2: []\n"))
	if err == nil || !strings.Contains(err.Error(), "services.api.replicas: unknown field") || !strings.Contains(err.Error(), "services.api.signals2: unknown field") {
		t.Errorf("unknown fields not reported by path: %v", err)
	}
	_, err = Parse([]byte(strings.Replace(minimal, "maxReplicas: 5", "maxReplicas: five", 1)))
	if err == nil || !strings.Contains(err.Error(), "five") {
		t.Errorf("type error not reported: %v", err)
	}
	_, err = Parse([]byte(strings.Replace(minimal, "targetPercent: 60", "targetPercent: 60}\n      - {name: x, latency: {slo: fast", 1)))
	if err == nil {
		t.Error("broken YAML accepted")
	}
	for _, empty := range []string{"", "   \n", "---\n"} {
		if _, err := Parse([]byte(empty)); err == nil {
			t.Errorf("empty config %q accepted", empty)
		}
	}
}

// Verifies a pinned service is held at exactly 1 and that trying to scale
// it is rejected.
func TestPinned(t *testing.T) {
	cfg, err := Parse([]byte(minimal + "  cron:\n    pinned: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range cfg.Policy.Services {
		if s.Name == "cron" && (!s.Pinned || s.MinReplicas != 1 || s.MaxReplicas != 1) {
			t.Errorf("cron: %+v", s)
		}
	}
	_, err = Parse([]byte(minimal + "  cron:\n    pinned: true\n    minReplicas: 2\n"))
	if err == nil || !strings.Contains(err.Error(), "services.cron.minReplicas: must be 1") {
		t.Errorf("scaling a pinned service accepted: %v", err)
	}
}

// Verifies behavior overrides replace one direction at a time.
func TestBehaviorOverride(t *testing.T) {
	cfg, err := Parse([]byte(minimal + `    behavior:
      tolerance: 0.05
      scaleDown:
        stabilizationWindow: 1m
        policies: [{type: Pods, value: 1, period: 30s}]
`))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Policy.Services[0].Behavior
	want := policy.DefaultBehavior()
	want.Tolerance = 0.05
	want.ScaleDown.StabilizationWindow = time.Minute
	want.ScaleDown.Policies = []policy.RatePolicy{{Type: policy.RatePods, Value: 1, Period: 30 * time.Second}}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("behavior (-want,+got):\n%s", diff)
	}
}

// Verifies the loader never panics on arbitrary input.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(ELMA365PresetYAML())
	f.Add([]byte("services: {a: {signals: [{queue: {drainTime: 1s}}]}}"))
	f.Add([]byte("apiVersion: [\n"))
	f.Add([]byte("services:\n  a:\n    dependsOn: [a]\n"))
	f.Add([]byte("interval: 99999999999h\n"))
	if data, err := os.ReadFile("testdata/fuzz-seed.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err == nil {
			for _, s := range cfg.Policy.Services {
				if s.MinReplicas > s.MaxReplicas || s.MinReplicas < 0 {
					t.Fatalf("accepted bounds [%d,%d]", s.MinReplicas, s.MaxReplicas)
				}
			}
		}
	})
}

// Verifies that a config whose two service lists disagree is refused:
// every consumer pairs Services[i] with Policy.Services[i].
func TestServiceOrderChecked(t *testing.T) {
	c, err := Parse([]byte("apiVersion: elmascale.io/v1alpha1\nkind: Config\nservices: {a: {}, b: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.checkOrder(); err != nil {
		t.Fatalf("compiled config out of order: %v", err)
	}
	c.Services[0], c.Services[1] = c.Services[1], c.Services[0]
	if err := c.checkOrder(); err == nil {
		t.Error("swapped services accepted")
	}
	c.Services = c.Services[:1]
	if err := c.checkOrder(); err == nil {
		t.Error("a missing service accepted")
	}
}
