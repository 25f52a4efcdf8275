package daemon_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/rabbittest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/scaler"
)

// stormMessages is one storm: 60 scripts queued at once. With 0.8
// messages/s planned per replica and a 10 s drain time the queue asks for
// about (60/10)/0.8 = 8 replicas of the one running, past the burst
// threshold of twice the current count.
const stormMessages = 60

// stormRig is a daemon scaling a worker Deployment on a real RabbitMQ
// queue, and a watch on that Deployment.
type stormRig struct {
	tb      testing.TB
	broker  *rabbittest.Broker
	admin   kubernetes.Interface
	ns      string
	queue   string
	changes chan int32 // spec.replicas of every change the watch sees
	// spread is the tick interval: each storm starts at a random point of
	// it, as real storms do, so the tick is not measured at one phase.
	spread time.Duration
}

// detectConfig is the worker's config: ticks every interval, the burst
// path every second when burst is true.
func detectConfig(ns, queue string, interval time.Duration, burst bool) string {
	return fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
interval: %s
services:
  worker:
    minReplicas: 1
    maxReplicas: 20
    burst: {enabled: %t, interval: 1s, threshold: 2}
    signals:
      - name: script-queue
        queue:
          rabbitmq: {vhost: /, queues: [%s]}
          drainTime: 10s
          targetUtilization: 0.8
          throughputPerReplica: 1
`, ns, interval, burst, queue)
}

// startStormRig starts the daemon (apply mode, admin credentials) and the
// watch. The daemon runs until ctx ends.
func startStormRig(ctx context.Context, tb testing.TB, c *testcluster.Cluster, broker *rabbittest.Broker, name string, interval time.Duration, burst bool) *stormRig {
	tb.Helper()
	ns := fmt.Sprintf("detect-%s-%d", name, time.Now().UnixNano()%1e6)
	if err := c.CreateNamespace(ctx, ns); err != nil {
		tb.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, kubetest.Deployment(ns, "worker", 1, nil), metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	r := &stormRig{tb: tb, broker: broker, admin: admin, ns: ns, queue: "storm." + ns, changes: make(chan int32, 64), spread: interval}
	if err := broker.DeclareQueue("/", r.queue); err != nil {
		tb.Fatal(err)
	}
	cfgPath := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(detectConfig(ns, r.queue, interval, burst)), 0o600); err != nil {
		tb.Fatal(err)
	}
	col, err := collector.New(collector.Options{RabbitMQURL: broker.URL, RabbitMQUser: broker.AdminUser, RabbitMQPasswordEnv: "ELMASCALE_DETECT_RABBIT_PW"})
	if err != nil {
		tb.Fatal(err)
	}
	go r.watch(ctx)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			RESTConfig: c.AdminConfig, ConfigPath: cfgPath, Mode: scaler.ModeApply,
			Collector: col, Registry: prometheus.NewRegistry(), Version: "bench",
		})
	}()
	tb.Cleanup(func() {
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("daemon: %v", err)
			}
		case <-time.After(30 * time.Second):
			tb.Error("daemon did not stop")
		}
		_ = broker.DeleteQueue("/", r.queue)
	})
	return r
}

// watch sends the worker's spec.replicas on every change, re-watching
// when the API server ends a watch.
func (r *stormRig) watch(ctx context.Context) {
	last := int32(-1)
	for ctx.Err() == nil {
		w, err := r.admin.AppsV1().Deployments(r.ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=worker"})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || ev.Type == watch.Deleted || d.Spec.Replicas == nil {
				continue
			}
			if n := *d.Spec.Replicas; n != last {
				last = n
				select {
				case r.changes <- n:
				default:
				}
			}
		}
		w.Stop()
	}
}

// reset empties the queue, puts the worker back at one replica and lets
// the broker's statistics settle, so a storm starts from calm.
func (r *stormRig) reset(ctx context.Context) {
	r.tb.Helper()
	if err := r.broker.DeleteQueue("/", r.queue); err != nil {
		r.tb.Fatal(err)
	}
	if err := r.broker.DeclareQueue("/", r.queue); err != nil {
		r.tb.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		s, err := r.admin.AppsV1().Deployments(r.ns).GetScale(ctx, "worker", metav1.GetOptions{})
		if err == nil && s.Spec.Replicas == 1 {
			break
		}
		if err == nil {
			s.Spec.Replicas = 1
			_, err = r.admin.AppsV1().Deployments(r.ns).UpdateScale(ctx, "worker", s, metav1.UpdateOptions{})
		}
		if err != nil && attempt > 20 {
			r.tb.Fatalf("reset worker to 1: %v", err)
		}
	}
	// Statistics are published once a second; two rounds show the fresh
	// queue to every reader. A random extra spreads the storms over the
	// tick's phase.
	time.Sleep(2500*time.Millisecond + rand.N(r.spread))
	for len(r.changes) > 0 {
		<-r.changes
	}
}

// storm publishes stormMessages at once (8 publishers) and returns how long
// from the first publish until the API server shows the worker scaled up.
func (r *stormRig) storm(ctx context.Context, timeout time.Duration) time.Duration {
	r.tb.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.broker.Publish("/", r.queue, stormMessages/8+boolInt(p < stormMessages%8)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		r.tb.Fatal(err)
	}
	deadline := time.After(timeout)
	for {
		select {
		case n := <-r.changes:
			if n > 1 {
				return time.Since(start)
			}
		case <-deadline:
			r.tb.Fatalf("no scale-up within %s of the storm", timeout)
		case <-ctx.Done():
			r.tb.Fatal(ctx.Err())
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// quantile is the nearest-rank q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// BenchmarkDetectToAct measures, over real RabbitMQ and a real API server,
// the time from a storm of scripts published to the worker queue until the
// Deployment's scale-up is visible in a watch, for the burst path (queues
// read every second) and for the regular 15 s tick alone. Each
// sub-benchmark runs ELMASCALE_STORMS storms (default 20) whatever b.N;
// run it once:
//
//	go test ./daemon -run '^$' -bench DetectToAct -benchtime 1x -timeout 30m
func BenchmarkDetectToAct(b *testing.B) {
	storms := 20
	if v, err := strconv.Atoi(os.Getenv("ELMASCALE_STORMS")); err == nil && v > 0 {
		storms = v
	}
	c := testcluster.ForTest(b)
	broker, err := rabbittest.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(broker.Stop)
	b.Setenv("ELMASCALE_DETECT_RABBIT_PW", broker.AdminPassword)
	for _, mode := range []struct {
		name  string
		burst bool
	}{{"burst", true}, {"tick", false}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := startStormRig(ctx, b, c, broker, mode.name, 15*time.Second, mode.burst)
			var took []time.Duration
			for i := 0; i < storms; i++ {
				r.reset(ctx)
				took = append(took, r.storm(ctx, 60*time.Second))
			}
			cancel()
			slices.Sort(took)
			b.ReportMetric(quantile(took, 0.5).Seconds(), "p50-s")
			b.ReportMetric(quantile(took, 0.95).Seconds(), "p95-s")
			b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
			b.ReportMetric(float64(len(took)), "storms")
			b.Logf("%s: %d storms, detect-to-act %v", mode.name, len(took), took)
		})
	}
}

// Verifies end to end, on real RabbitMQ and a real API server, that the
// daemon's burst path scales a worker up within seconds of a storm, long
// before its 60 s tick could.
func TestBurstActsBeforeTheTick(t *testing.T) {
	c := testcluster.ForTest(t)
	broker, err := rabbittest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Stop)
	t.Setenv("ELMASCALE_DETECT_RABBIT_PW", broker.AdminPassword)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := startStormRig(ctx, t, c, broker, "test", time.Minute, true)
	r.spread = time.Millisecond // the storm comes seconds after the first tick; the next is a minute away
	r.reset(ctx)
	if took := r.storm(ctx, 20*time.Second); took > 10*time.Second {
		t.Fatalf("scale-up %s after the storm, want within 10s", took)
	}
	kubetest.WaitFor(t, 10*time.Second, "the burst's scale-up Event", func() error {
		evs, err := r.admin.CoreV1().Events(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == "ScaledUp" && len(e.Message) > 0 && slices.Contains([]string{"worker"}, e.InvolvedObject.Name) {
				return nil
			}
		}
		return fmt.Errorf("%d events, none ScaledUp for worker", len(evs.Items))
	})
	cancel()
}
