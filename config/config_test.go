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
		"services.worker.signals[2]: must set exactly one of utilization, queue, latency, perReplica, object, pods (has 2)",
		`services.worker.signals[2].latency.metric: unknown metric "nope"`,
		"services.worker.signals[2].perReplica.targetPerReplica: must be > 0",
		"services.notifier.maxReplicas: must be 1: the service targets notifier, which cannot run as more than one instance in ELMA365",
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

// Verifies pinning follows the workload: an entry of another name that
// targets an ELMA365 single-instance workload is pinned and may not be
// given more than one replica, and two entries may not share a target.
func TestPinnedFollowsTarget(t *testing.T) {
	const head = "apiVersion: elmascale.io/v1alpha1\nkind: Config\nplatform: elma365\nnamespace: elma365\nservices:\n"
	_, err := Parse([]byte(head + "  notifier-alias: {target: {name: notifier}, minReplicas: 3}\n"))
	if err == nil || !strings.Contains(err.Error(), "services.notifier-alias.minReplicas: must be 1: the service targets notifier") {
		t.Errorf("an alias raising notifier to 3 was not refused: %v", err)
	}
	cfg, err := Parse([]byte(head + "  notifier-alias: {target: {kind: StatefulSet, name: notifier}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Policy.Services[0]; !s.Pinned || s.MinReplicas != 1 || s.MaxReplicas != 1 {
		t.Errorf("alias of notifier not pinned: %+v", s)
	}
	_, err = Parse([]byte(head + "  notifier: {}\n  notifier-alias: {target: {name: notifier}}\n"))
	if err == nil || !strings.Contains(err.Error(), "services.notifier-alias.target: Deployment/notifier is already the target of services.notifier") {
		t.Errorf("two entries on one target accepted: %v", err)
	}
	// Another kind of the same name is another workload.
	if _, err := Parse([]byte(head + "  worker: {}\n  worker-set: {target: {kind: StatefulSet, name: worker}}\n")); err != nil {
		t.Errorf("a Deployment and a StatefulSet of one name refused: %v", err)
	}
}

// Verifies the autoscaling/v2 fields an imported HPA carries: pods signals,
// per-direction tolerance, the legacy path of an HPA without behavior, and
// an object signal's opt-in refusal against the load.
func TestHPAFields(t *testing.T) {
	c, err := Parse([]byte(`apiVersion: elmascale.io/v1alpha1
kind: Config
metrics:
  rps: {prometheus: {query: "sum by (pod) (rate(http_requests_total[1m]))", keyLabel: pod}}
  depth: {prometheus: {query: "max by (service) (depth)"}}
services:
  web:
    behavior:
      scaleUp: {tolerance: 0.05}
      scaleDown: {tolerance: 0.2}
    signals:
      - name: rps
        pods: {metric: rps, targetPerPod: 50}
      - name: depth
        object: {metric: depth, target: 10, refuseAgainstLoad: true}
  api:
    behavior: {legacy: true, scaleDown: {stabilizationWindow: 2m}}
`))
	if err != nil {
		t.Fatal(err)
	}
	api, web := c.Policy.Services[0], c.Policy.Services[1]
	if web.Signals[0].Kind != policy.KindPods || web.Signals[0].Pods.TargetPerPod != 50 || c.Services[1].Signals[0].Metric != "rps" {
		t.Errorf("pods signal = %+v / %+v", web.Signals[0], c.Services[1].Signals[0])
	}
	if !web.Signals[1].Object.RefuseAgainstLoad {
		t.Error("refuseAgainstLoad dropped")
	}
	up, down := web.Behavior.ScaleUp.Tolerance, web.Behavior.ScaleDown.Tolerance
	if up == nil || *up != 0.05 || down == nil || *down != 0.2 {
		t.Errorf("tolerances up %v down %v", up, down)
	}
	if !api.Behavior.Legacy || api.Behavior.ScaleDown.StabilizationWindow != 2*time.Minute || len(api.Behavior.ScaleUp.Policies) != 0 {
		t.Errorf("legacy behavior = %+v", api.Behavior)
	}

	_, err = Parse([]byte(`apiVersion: elmascale.io/v1alpha1
kind: Config
services:
  api:
    behavior: {legacy: true, scaleUp: {stabilizationWindow: 0s}, scaleDown: {tolerance: 1.5}}
  web:
    signals: [{name: rps, pods: {metric: nope, targetPerPod: 0}}]
`))
	for _, want := range []string{
		"services.api.behavior.scaleUp: must not be set with legacy",
		"services.api.behavior.scaleDown: only stabilizationWindow may be set with legacy",
		`services.web.signals[0].pods.metric: unknown metric "nope"`,
		"services.web.signals[0].pods.targetPerPod: must be > 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing error %q in:\n%v", want, err)
		}
	}
}

// Verifies that replica bounds are capped: 2³¹−1 or 10001 is refused with
// the field named, 10000 is accepted.
func TestMaxReplicasCapped(t *testing.T) {
	base := "apiVersion: elmascale.io/v1alpha1\nkind: Config\n"
	for _, tc := range []struct{ yaml, path string }{
		{base + "services: {worker: {maxReplicas: 2147483647}}\n", "services.worker.maxReplicas"},
		{base + "services: {worker: {maxReplicas: 10001}}\n", "services.worker.maxReplicas"},
		{base + "defaults: {maxReplicas: 50000}\nservices: {worker: {maxReplicas: 5}}\n", "defaults.maxReplicas"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), "must be <= 10000") {
			t.Errorf("%q: err %v, want %s must be <= 10000", tc.yaml, err, tc.path)
		}
	}
	cfg, err := Parse([]byte(base + "services: {worker: {maxReplicas: 10000}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Policy.Services[0].MaxReplicas; got != 10000 {
		t.Errorf("maxReplicas = %d, want 10000", got)
	}
}

// Verifies that an entry targeting a data store (by its workload's name,
// whatever the entry is called) is refused unless it sets allowDataStore.
func TestDataStoreTargetsRefused(t *testing.T) {
	base := "apiVersion: elmascale.io/v1alpha1\nkind: Config\nservices:\n"
	for _, entry := range []string{
		"  postgres: {}\n",
		"  db: {target: {kind: StatefulSet, name: postgresql}}\n",
		"  cache: {target: {name: Redis-master}}\n",
		"  files: {target: {kind: StatefulSet, name: minio}}\n",
		"  docs: {target: {name: mongodb}}\n",
		"  broker: {target: {kind: StatefulSet, name: rabbitmq}}\n",
	} {
		_, err := Parse([]byte(base + entry))
		if err == nil || !strings.Contains(err.Error(), "a data store elmascale does not scale") || !strings.Contains(err.Error(), "allowDataStore") {
			t.Errorf("%q: err %v, want a data-store refusal", entry, err)
		}
		if _, err := Parse([]byte(base + strings.Replace(entry, "{}", "{allowDataStore: true}", 1))); strings.Contains(entry, "{}") && err != nil {
			t.Errorf("%q with allowDataStore: %v", entry, err)
		}
	}
	if _, err := Parse([]byte(base + "  broker: {target: {kind: StatefulSet, name: rabbitmq}, allowDataStore: true}\n")); err != nil {
		t.Errorf("allowDataStore: true: %v", err)
	}
	if _, err := Parse([]byte(base + "  worker: {}\n  mailer: {}\n")); err != nil {
		t.Errorf("ordinary services refused: %v", err)
	}
}

// Verifies a queue's in-progress count: unackedMetric goes with the
// metric-based source and reaches the collector, concurrencyPerReplica
// the policy; either out of place or out of range is reported.
func TestQueueUnackedAndConcurrency(t *testing.T) {
	const head = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: shop
metrics:
  ready: {prometheus: {query: 'sum by (queue) (r)', keyLabel: queue}}
  unacked: {prometheus: {query: 'sum by (queue) (u)', keyLabel: queue}}
services:
  worker:
    signals:
      - name: q
`
	cfg, err := Parse([]byte(head + "        queue: {backlogMetric: ready, unackedMetric: unacked, key: w, drainTime: 1m, concurrencyPerReplica: 4}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if src := cfg.Services[0].Signals[0].Queue; src.Unacked != "unacked" || src.Backlog != "ready" {
		t.Errorf("queue source %+v, want backlog ready and unacked unacked", src)
	}
	if c := cfg.Policy.Services[0].Signals[0].Queue.ConcurrencyPerReplica; c != 4 {
		t.Errorf("concurrencyPerReplica %v, want 4", c)
	}
	for yaml, want := range map[string]string{
		"        queue: {rabbitmq: {queues: [w]}, unackedMetric: unacked, drainTime: 1m}\n":      "services.worker.signals[0].queue.unackedMetric: needs backlogMetric",
		"        queue: {backlogMetric: ready, unackedMetric: nope, drainTime: 1m}\n":            `services.worker.signals[0].queue.unackedMetric: unknown metric "nope"`,
		"        queue: {backlogMetric: ready, drainTime: 1m, concurrencyPerReplica: -1}\n":      "services.worker.signals[0].queue.concurrencyPerReplica: must be >= 0",
		"        queue: {rabbitmq: {queues: [w]}, drainTime: 1m, concurrencyPerReplica: .inf}\n": "services.worker.signals[0].queue.concurrencyPerReplica: must be a finite number",
	} {
		if _, err := Parse([]byte(head + yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", strings.TrimSpace(yaml), err, want)
		}
	}
}
