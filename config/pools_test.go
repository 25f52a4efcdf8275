package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const poolsBase = `
apiVersion: elmascale.io/v1alpha1
kind: Config
platform: elma365
namespace: elma365
budget: {maxTotalReplicas: 9}
services:
  main:
    dependsOn: [worker]
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 70}
  worker:
    maxReplicas: 8
    target: {name: "worker-{pool}"}
    pools:
      queue: "worker.{pool}"
      targets: {default: worker}
      maxPools: 3
    signals:
      - name: script-queue
        queue:
          rabbitmq: {queues: ["worker.{pool}"]}
          drainTime: 1m
          throughputPerReplica: 4
`

func poolFile(t *testing.T, src string) *File {
	t.Helper()
	f, _, errs, err := decodeDocument([]byte(src))
	if err != nil || len(errs) > 0 {
		t.Fatalf("decode: %v %v", err, errs)
	}
	return f
}

// Verifies the expansion: one service per pool queue, sorted by pool id,
// named <template>-<pool>, the default pool on its named workload, the
// others on the target template, {pool} replaced in the queues, bounds and
// the budget carried over, dependsOn on the template naming every pool,
// and each refused queue with its reason; the same input gives the same
// output whatever the listing's order.
func TestExpandPools(t *testing.T) {
	type want struct {
		services []PoolService
		refused  []string // pool: reason fragment
	}
	ps := func(pool, target string) PoolService {
		return PoolService{Service: "worker-" + pool, Template: "worker", Pool: pool, Queue: "worker." + pool, Target: Target{Kind: "Deployment", Name: target}}
	}
	for _, tc := range []struct {
		name   string
		queues QueueNames
		want   want
	}{
		{"no queues", nil, want{}},
		{"only default", QueueNames{"/": {"worker.default", "mail"}}, want{services: []PoolService{ps("default", "worker")}}},
		{"other vhost ignored", QueueNames{"other": {"worker.default"}}, want{}},
		{"sorted, any listing order", QueueNames{"/": {"worker.sales", "worker.default", "worker.hr"}},
			want{services: []PoolService{ps("default", "worker"), ps("hr", "worker-hr"), ps("sales", "worker-sales")}}},
		{"bad ids refused", QueueNames{"/": {"worker.Sales", "worker.a_b", "worker.-x", "worker.", "worker." + strings.Repeat("a", 64), "worker.ok"}},
			want{services: []PoolService{ps("ok", "worker-ok")}, refused: []string{"-x: not a DNS label", "Sales: not a DNS label", "a_b: not a DNS label", strings.Repeat("a", 64) + ": not a DNS label"}}},
		{"cap", QueueNames{"/": {"worker.d", "worker.c", "worker.b", "worker.a"}},
			want{services: []PoolService{ps("a", "worker-a"), ps("b", "worker-b"), ps("c", "worker-c")}, refused: []string{"d: over maxPools 3"}}},
		{"single-instance workload refused", QueueNames{"/": {"worker.notifier"}}, want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := poolsBase
			if tc.name == "single-instance workload refused" {
				src = strings.Replace(src, `target: {name: "worker-{pool}"}`, `target: {name: "{pool}"}`, 1)
				tc.want.refused = []string{"notifier: single-instance"}
			}
			f := poolFile(t, src)
			c, err := CompilePools(f, tc.queues)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want.services, c.Pools.Services); diff != "" {
				t.Errorf("services (-want,+got):\n%s", diff)
			}
			var refused []string
			for _, r := range c.Pools.Refused {
				refused = append(refused, r.Pool+": "+r.Reason)
			}
			if len(refused) != len(tc.want.refused) {
				t.Fatalf("refused %q, want %q", refused, tc.want.refused)
			}
			for i, w := range tc.want.refused {
				id, frag, _ := strings.Cut(w, ": ")
				if c.Pools.Refused[i].Pool != id || !strings.Contains(c.Pools.Refused[i].Reason, frag) {
					t.Errorf("refused[%d] = %q, want %q", i, refused[i], w)
				}
			}
			var deps []string
			for i, s := range c.Services {
				p := c.Policy.Services[i]
				if s.Name == "main" {
					deps = p.DependsOn
					continue
				}
				if p.MaxReplicas != 8 || p.MinReplicas != 2 || p.Pinned {
					t.Errorf("%s: bounds %d..%d pinned %v, want the template's 2..8", s.Name, p.MinReplicas, p.MaxReplicas, p.Pinned)
				}
				pool := strings.TrimPrefix(s.Name, "worker-")
				if q := s.Signals[0].Queue; q == nil || len(q.Queues) != 1 || q.Queues[0] != "worker."+pool || q.VHost != "/" {
					t.Errorf("%s: queue source %+v, want worker.%s", s.Name, q, pool)
				}
			}
			var wantDeps []string
			for _, s := range tc.want.services {
				wantDeps = append(wantDeps, s.Service)
			}
			if !cmp.Equal(deps, wantDeps, cmpEmpty) {
				t.Errorf("main dependsOn %q, want %q", deps, wantDeps)
			}
			if c.Policy.Budget.MaxTotalReplicas != 9 {
				t.Errorf("budget %d", c.Policy.Budget.MaxTotalReplicas)
			}
			// Deterministic: reversed listing, same config.
			if q := tc.queues["/"]; len(q) > 1 {
				rev := append([]string(nil), q...)
				for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
					rev[i], rev[j] = rev[j], rev[i]
				}
				again, err := CompilePools(poolFile(t, src), QueueNames{"/": rev})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(c.Policy, again.Policy); diff != "" {
					t.Errorf("listing order changed the policy:\n%s", diff)
				}
			}
		})
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })

// Verifies a template is validated where it is written, and that what
// cannot be a template is refused with its path.
func TestPoolTemplateRefused(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{`queue: "worker.{pool}"|queue: "worker.*"`, `services.worker.pools.queue: must contain {pool} exactly once`},
		{`queue: "worker.{pool}"|queue: "w.{pool}.{pool}"`, `services.worker.pools.queue: must contain {pool} exactly once`},
		{`queue: "worker.{pool}"|queue: "w*.{pool}"`, `only {pool} may vary`},
		{`maxPools: 3|maxPools: 501`, `services.worker.pools.maxPools: must be in [1, 500]`},
		{`maxPools: 3|gracePeriod: 48h`, `services.worker.pools.gracePeriod: must be in (0s, 24h]`},
		{`maxReplicas: 8|pinned: true`, `services.worker.pools: a pinned (single-instance) service cannot be a template`},
		{`target: {name: "worker-{pool}"}|target: {name: worker}`, `services.worker.target.name: must contain {pool}`},
		{`target: {name: "worker-{pool}"}|target: {name: "{pool}"}`, ``},
		{`target: {name: "worker-{pool}"}|target: {name: "redis-{pool}"}`, `services.worker.target.name: redis-{pool} looks like Redis`},
		{`targets: {default: worker}|targets: {default: scheduler}`, `services.worker.pools.targets.default: a template's workloads cannot be single-instance`},
		{`targets: {default: worker}|targets: {Default: worker}`, `services.worker.pools.targets.Default: pool id "Default" is not a DNS label`},
		{`["worker.{pool}"]|[worker.default]`, `services.worker.signals: a template needs a queue signal`},
		{`drainTime: 1m|drainTime: 0s`, `services.worker.signals[0].queue.drainTime: must be > 0`},
		{`maxReplicas: 8|maxReplicas: 0`, `services.worker.maxReplicas: must be >= 1`},
	} {
		old, repl, _ := strings.Cut(tc.edit, "|")
		src := strings.Replace(poolsBase, old, repl, 1)
		_, err := Parse([]byte(src))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.edit, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.edit, err, tc.want)
		}
	}
}

// Verifies a template's problems and the rest of the file's come together.
func TestPoolTemplateErrorsTogether(t *testing.T) {
	src := strings.Replace(strings.Replace(poolsBase, "maxPools: 3", "maxPools: 0\n      gracePeriod: 48h", 1), "budget: {maxTotalReplicas: 9}", "interval: 1ms", 1)
	_, err := Parse([]byte(src))
	for _, want := range []string{"services.worker.pools.gracePeriod", "interval: must be >= 1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// Verifies collisions: a pool whose service name or workload is already
// another entry's is refused, the entry keeps its own.
func TestExpandPoolsCollisions(t *testing.T) {
	src := strings.Replace(poolsBase, "services:\n", "services:\n  worker-hr:\n    signals: []\n  reports:\n    target: {name: worker-sales}\n", 1)
	c, err := CompilePools(poolFile(t, src), QueueNames{"/": {"worker.hr", "worker.sales", "worker.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools.Services) != 1 || c.Pools.Services[0].Pool != "default" {
		t.Errorf("services %+v, want only default", c.Pools.Services)
	}
	if len(c.Pools.Refused) != 2 || !strings.Contains(c.Pools.Refused[0].Reason, "service worker-hr already exists") ||
		!strings.Contains(c.Pools.Refused[1].Reason, "Deployment/worker-sales is already the target of services.reports") {
		t.Errorf("refused %+v", c.Pools.Refused)
	}
}

// Verifies Expand re-expands over a new listing and keeps the namespace and
// interval set on the config it is called on; a config without templates
// is itself.
func TestConfigExpand(t *testing.T) {
	c, err := Parse([]byte(poolsBase))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools.Services) != 0 || len(c.Services) != 1 {
		t.Fatalf("no queues yet: %d pool services, %d services", len(c.Pools.Services), len(c.Services))
	}
	c.Namespace, c.Interval = "other", 3e9
	e, err := c.Expand(QueueNames{"/": {"worker.default", "worker.hr"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Services) != 3 || e.Namespace != "other" || e.Interval != 3e9 {
		t.Errorf("%d services, namespace %q interval %s", len(e.Services), e.Namespace, e.Interval)
	}
	plain, _ := Parse([]byte(minimal))
	if same, _ := plain.Expand(QueueNames{"/": {"x"}}); same != plain {
		t.Error("a config without templates changed")
	}
}

// Verifies that pools never take a config past MaxServices in all.
func TestExpandPoolsTotalCap(t *testing.T) {
	f := poolFile(t, poolsBase)
	for i := len(f.Services) - 1; i < MaxServices-1; i++ { // main and the template are there
		f.Services[fmt.Sprintf("svc-%04d", i)] = ServiceFile{}
	}
	c, err := CompilePools(f, QueueNames{"/": {"worker.a", "worker.b", "worker.c"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != MaxServices || len(c.Pools.Services) != 1 || len(c.Pools.Refused) != 2 ||
		!strings.Contains(c.Pools.Refused[0].Reason, "more than 2000 services") {
		t.Errorf("%d services, pools %+v, refused %+v", len(c.Services), c.Pools.Services, c.Pools.Refused)
	}
}
