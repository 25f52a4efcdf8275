package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/rabbittest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/scaler"
)

// poolsYAML is a worker template over the queues <prefix>.<pool>: the
// default pool on Deployment worker, every other on worker-<pool>, at
// least two replicas each, scaling down at once when a signal says so.
func poolsYAML(ns, prefix string, interval, grace time.Duration) string {
	return fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
interval: %s
services:
  worker:
    minReplicas: 2
    maxReplicas: 8
    target: {name: "worker-{pool}"}
    pools:
      queue: "%s.{pool}"
      targets: {default: worker}
      gracePeriod: %s
    behavior:
      scaleDown: {stabilizationWindow: 0s}
    signals:
      - name: script-queue
        queue:
          rabbitmq: {queues: ["%s.{pool}"]}
          drainTime: 1m
          throughputPerReplica: 4
`, ns, interval, prefix, grace, prefix)
}

func poolNames(c *config.Config) []string {
	var out []string
	for _, s := range c.Services {
		out = append(out, s.Name+"→"+s.Target.Name)
	}
	return out
}

// brokerFor starts a broker of the test's own and a collector reading it.
func brokerFor(t *testing.T) (*rabbittest.Broker, *collector.Collector) {
	t.Helper()
	b, err := rabbittest.Start()
	if err != nil {
		t.Fatalf("rabbittest: %v", err)
	}
	t.Cleanup(b.Stop)
	t.Setenv("ELMASCALE_POOLS_RABBIT_PW", b.AdminPassword)
	col, err := collector.New(collector.Options{RabbitMQURL: b.URL, RabbitMQUser: b.AdminUser, RabbitMQPasswordEnv: "ELMASCALE_POOLS_RABBIT_PW"})
	if err != nil {
		t.Fatal(err)
	}
	return b, col
}

func declare(t *testing.T, b *rabbittest.Broker, queues ...string) {
	t.Helper()
	for _, q := range queues {
		if err := b.DeclareQueue("/", q); err != nil {
			t.Fatal(err)
		}
	}
}

// failingLister stands for a broker that cannot be read.
type failingLister struct{}

func (failingLister) ListQueues(context.Context, []string) (config.QueueNames, error) {
	return nil, fmt.Errorf("connection refused")
}

// Verifies, against a real RabbitMQ, the pool source: the template expands
// to one service per pool queue the broker lists (default on worker, the
// others on worker-<pool>), a queue whose id is no DNS label is refused,
// a new queue adds its service at the next refresh, a queue that is gone
// keeps its service for the grace period and then loses it, and a listing
// that fails changes nothing.
func TestPoolSourceRealRabbitMQ(t *testing.T) {
	b, col := brokerFor(t)
	declare(t, b, "ps.default", "ps.sales", "ps.Bad_Id", "other.queue")
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(poolsYAML("elma365", "ps", time.Second, time.Minute)), 0o600); err != nil {
		t.Fatal(err)
	}
	inner, err := daemon.NewConfigSource(path, nil, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	ps := daemon.NewPoolSource(inner, col, clk, zap.NewNop())
	ctx := context.Background()
	expect := func(want ...string) {
		t.Helper()
		if got := poolNames(ps.Current()); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("services %q, want %q", got, want)
		}
	}
	if !ps.Refresh(ctx) {
		t.Error("first refresh reported no change")
	}
	expect("worker-default→worker", "worker-sales→worker-sales")
	if r := ps.Current().Pools.Refused; len(r) != 1 || r[0].Queue != "ps.Bad_Id" || !strings.Contains(r[0].Reason, "not a DNS label") {
		t.Errorf("refused %+v", r)
	}
	if ps.Refresh(ctx) {
		t.Error("a refresh over the same queues reported a change")
	}

	declare(t, b, "ps.hr")
	ps.Refresh(ctx)
	expect("worker-default→worker", "worker-hr→worker-hr", "worker-sales→worker-sales")

	if err := b.DeleteQueue("/", "ps.sales"); err != nil {
		t.Fatal(err)
	}
	clk.Step(59 * time.Second)
	ps.Refresh(ctx)
	expect("worker-default→worker", "worker-hr→worker-hr", "worker-sales→worker-sales")
	clk.Step(2 * time.Second)
	ps.Refresh(ctx)
	expect("worker-default→worker", "worker-hr→worker-hr")

	// The broker unreadable: the pools known stay, however long it lasts.
	broken := daemon.NewPoolSource(inner, failingLister{}, clk, zap.NewNop())
	broken.Refresh(ctx)
	expect("worker-default→worker", "worker-hr→worker-hr")
	if got := poolNames(broken.Current()); len(got) != 0 {
		t.Errorf("never listed: services %q, want none", got)
	}
	same := daemon.NewPoolSource(inner, col, clk, zap.NewNop())
	same.Refresh(ctx)
	if err := b.DeleteQueue("/", "ps.hr"); err != nil {
		t.Fatal(err)
	}
	same.Refresh(ctx)
	clk.Step(time.Hour)
	same.Refresh(ctx) // a listing without ps.hr an hour on: dropped
	if got := poolNames(same.Current()); strings.Join(got, " ") != "worker-default→worker" {
		t.Errorf("services %q", got)
	}
}

// Verifies the daemon against a real API server and a real RabbitMQ: the
// template's pools become services the daemon scales (the default pool's
// Deployment worker and worker-sales raised to the template's minimum), a
// pool without a Deployment is held and says its target is not found, and
// a pool whose queue vanishes is never scaled down for it, during its grace
// period or after its service is dropped, while a pool whose queue is
// there and empty is scaled down.
func TestDaemonPoolsRealClusterAndRabbitMQ(t *testing.T) {
	c := testcluster.ForTest(t)
	b, col := brokerFor(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil), kubetest.Deployment(ns, "worker-sales", 1, nil))
	declare(t, b, "dp.default", "dp.sales", "dp.hr")
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, poolsYAML(ns, "dp", time.Second, 3*time.Second))
	d := startDaemon(t, c, "pools", path, func(o *daemon.Options) { o.Collector = col })

	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)
	kubetest.WaitReplicas(t, admin, ns, "worker-sales", 2, 30*time.Second)
	kubetest.WaitFor(t, 20*time.Second, "worker-hr held, its target not found", func() error {
		if _, body := get(t, "http://"+d.metrics+"/api/v1/decisions?service=worker-hr"); !strings.Contains(body, "not found") {
			return fmt.Errorf("decisions: %.400s", body)
		}
		return nil
	})

	if _, body := get(t, "http://"+d.metrics+"/api/v1/recommendations"); !strings.Contains(body, `"worker-sales"`) || !strings.Contains(body, `"worker-hr"`) {
		t.Fatalf("recommendations lack the pools: %.600s", body)
	}

	// sales loses its queue, then runs 4: held through the grace period
	// and left alone after it; the default pool at 4 with its queue there
	// and empty goes back to 2.
	if err := b.DeleteQueue("/", "dp.sales"); err != nil {
		t.Fatal(err)
	}
	setReplicas(t, admin, ns, "worker-sales", 4)
	setReplicas(t, admin, ns, "worker", 4)
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)
	kubetest.WaitFor(t, 20*time.Second, "worker-sales dropped from management", func() error {
		if _, body := get(t, "http://"+d.metrics+"/api/v1/recommendations"); strings.Contains(body, `"worker-sales"`) {
			return fmt.Errorf("still managed: %.300s", body)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // some ticks after the drop
	if spec, _ := kubetest.Replicas(t, admin, ns, "worker-sales"); spec != 4 {
		t.Errorf("worker-sales at %d, want 4: a vanished queue must never scale a pool down", spec)
	}
}

// Verifies a template in a ScalingPolicy on a real API server: the CRD
// takes the pools block (and refuses a grace period over 24h), and the
// daemon expands it over a real broker's queues, its status carrying a
// decision for each pool's service.
func TestScalingPolicyPoolTemplate(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	b, col := brokerFor(t)
	ns := kubetest.Namespace(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil), kubetest.Deployment(ns, "worker-sales", 1, nil))
	declare(t, b, "sp.default", "sp.sales")
	spec := func(grace string) string {
		body := poolsYAML(ns, "sp", time.Second, time.Minute)
		body = body[strings.Index(body, "services:"):]
		body = strings.ReplaceAll(body, "gracePeriod: 1m0s", "gracePeriod: "+grace)
		return "apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: pools}\nspec:\n  interval: 1s\n" +
			"  " + strings.ReplaceAll(strings.TrimRight(body, "\n"), "\n", "\n  ") + "\n"
	}
	ri := dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)
	var bad unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(spec("48h")), &bad.Object); err != nil {
		t.Fatal(err)
	}
	if _, err := ri.Create(context.Background(), &bad, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "gracePeriod") {
		t.Errorf("a 48h grace period: %v, want refused at gracePeriod", err)
	}
	pc := policyClient{t: t, ri: ri}
	pc.apply(spec("1m"))
	startDaemon(t, c, "policy-pools", "", func(o *daemon.Options) {
		o.Policy = ns + "/pools"
		o.Mode = scaler.ModeDryRun
		o.Collector = col
	})
	pc.waitStatus("pools", "a decision for each pool", func(sp *v1alpha1.ScalingPolicy) error {
		d, s := service(sp, "worker-default"), service(sp, "worker-sales")
		return want(len(sp.Status.Services) == 2 && d.Recommended != nil && *d.Recommended == 2 && s.Recommended != nil && *s.Recommended == 2,
			"status %+v", sp.Status.Services)
	})
}

// staticLister lists the same queues every time.
type staticLister config.QueueNames

func (l staticLister) ListQueues(context.Context, []string) (config.QueueNames, error) {
	return config.QueueNames(l), nil
}

// Verifies a reloaded config is expanded at once, not at the next interval
// (an hour here), and that a reader waiting on Changed is woken.
func TestPoolSourceReexpandsOnReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, poolsYAML("elma365", "rl", time.Hour, time.Minute))
	inner, err := daemon.NewConfigSource(path, nil, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := daemon.NewPoolSource(inner, staticLister{"/": {"rl.default", "rl.sales"}}, nil, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ps.Run(ctx)
	maxOf := func(name string) int32 {
		for _, s := range ps.Current().Policy.Services {
			if s.Name == name {
				return s.MaxReplicas
			}
		}
		return -1
	}
	kubetest.WaitFor(t, 5*time.Second, "the first expansion", func() error {
		return want(maxOf("worker-sales") == 8, "worker-sales max %d", maxOf("worker-sales"))
	})
	changed := ps.Changed()
	writeConfig(t, path, strings.Replace(poolsYAML("elma365", "rl", time.Hour, time.Minute), "maxReplicas: 8", "maxReplicas: 5", 1))
	inner.Check()
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed after a reload")
	}
	if maxOf("worker-sales") != 5 || maxOf("worker-default") != 5 {
		t.Errorf("after the reload: max %d and %d, want 5", maxOf("worker-sales"), maxOf("worker-default"))
	}
}

// Verifies elmascale_pool_queues: per template the pools managed and the
// queues refused (an id that is no DNS label), both set at every refresh
// and following the queues listed (an unlisted queue counts until its
// grace period ends); a template taken out of the config
// takes its series with it.
func TestPoolQueuesMetric(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, poolsYAML("elma365", "pm", time.Hour, time.Minute))
	inner, err := daemon.NewConfigSource(path, nil, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lister := &staticLister{"/": {"pm.default", "pm.sales", "pm.Bad_Id", "other"}}
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	ps := daemon.NewPoolSource(inner, lister, clk, zap.NewNop())
	reg := prometheus.NewRegistry()
	if err := ps.Register(reg); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				out = append(out, fmt.Sprintf("%s/%s=%g", l["template"], l["state"], m.GetGauge().GetValue()))
			}
		}
		return strings.Join(out, " ")
	}
	ps.Refresh(context.Background())
	if got, want := read(), "worker/managed=2 worker/refused=1"; got != want {
		t.Errorf("after the first refresh: %s, want %s", got, want)
	}
	*lister = staticLister{"/": {"pm.default", "pm.sales", "pm.hr"}}
	ps.Refresh(context.Background())
	if got, want := read(), "worker/managed=3 worker/refused=1"; got != want {
		t.Errorf("hr came, the bad queue unlisted within the grace period: %s, want %s", got, want)
	}
	clk.Step(2 * time.Minute)
	ps.Refresh(context.Background())
	if got, want := read(), "worker/managed=3 worker/refused=0"; got != want {
		t.Errorf("after the grace period: %s, want %s", got, want)
	}
	writeConfig(t, path, `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
services:
  main:
    signals:
      - name: cpu
        utilization: {resource: cpu, targetPercent: 70}
`)
	inner.Check()
	ps.Refresh(context.Background())
	if got := read(); got != "" {
		t.Errorf("after the template was taken out: %q, want no series", got)
	}
}
