package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/scaler"
)

// Verifies that an HPA with minReplicas 3 on ELMA365's notifier does not
// make elmascale hand the single-instance service off: the daemon brings
// it back to one with Warning Events and exports the violation.
func TestPinnedHandOffToHPARefused(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	// At 3, as the HPA would have left it.
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "notifier", 3, nil))
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "notifier", Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "notifier"},
			MinReplicas:    new(int32(3)),
			MaxReplicas:    3,
		},
	}
	if _, err := admin.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, fmt.Sprintf("apiVersion: elmascale.io/v1alpha1\nkind: Config\nplatform: elma365\nnamespace: %s\ninterval: 1s\nservices:\n  notifier: {}\n", ns))
	d := startDaemon(t, c, "pinned", path, nil)

	kubetest.WaitEvent(t, admin, ns, "notifier", "Warning "+scaler.ReasonPinnedScaledTo1, "replicas 3 → 1")
	kubetest.WaitEvent(t, admin, ns, "notifier", "Warning "+scaler.ReasonPinnedHandOffRefused, "HorizontalPodAutoscaler/notifier")
	kubetest.WaitFor(t, 10*time.Second, "the violation metric", func() error {
		if v := d.metric("elmascale_pinned_violation", map[string]string{"service": "notifier"}); v != 1 {
			return fmt.Errorf("elmascale_pinned_violation = %v", v)
		}
		return nil
	})
	if v := d.metric("elmascale_handoffs", nil); v != 0 {
		t.Errorf("elmascale_handoffs = %v: a pinned target must not be reported handed off", v)
	}
	// The HPA raises it again on its own period; whenever it does, the
	// daemon brings it back. Observe it at one at least once.
	kubetest.WaitFor(t, 30*time.Second, "notifier at one", func() error {
		if spec, _ := kubetest.Replicas(t, admin, ns, "notifier"); spec != 1 {
			return fmt.Errorf("notifier at %d", spec)
		}
		return nil
	})
}

// scaleGate holds the first scale write that reaches it and lets the test
// depose the daemon meanwhile; it counts every scale write it passes on to
// the API server after the deposition.
type scaleGate struct {
	rt       http.RoundTripper
	depose   func()
	once     sync.Once
	deposed  atomic.Bool
	held     atomic.Int32
	afterCut atomic.Int32
}

func (g *scaleGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/scale") {
		return g.rt.RoundTrip(r)
	}
	first := false
	g.once.Do(func() { first = true })
	if first {
		g.held.Add(1)
		g.depose()
		g.deposed.Store(true)
		// Hold the write as a slow network would, long enough for the
		// daemon to see the Lease in another's hands.
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(5 * time.Second):
		}
	}
	if g.deposed.Load() {
		g.afterCut.Add(1)
	}
	return g.rt.RoundTrip(r)
}

// Verifies fencing on the real API server: a leader whose Lease is taken
// over by another identity in the middle of its writes cancels the write
// in flight and writes nothing more, neither in that tick nor after.
func TestDeposedLeaderWritesNothing(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	names := []string{"w1", "w2", "w3", "w4"}
	var services strings.Builder
	for _, n := range names {
		kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, n, 1, nil))
		services.WriteString("  " + n + ": {}\n")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, strings.Replace(configYAML(ns, 2), "  worker: {}\n", services.String(), 1))

	takeOver := func() {
		leases := admin.CoordinationV1().Leases(ns)
		l, err := leases.Get(context.Background(), "elmascale", metav1.GetOptions{})
		if err != nil {
			t.Errorf("read the lease: %v", err)
			return
		}
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = new("usurper"), new(int32(120))
		l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
		if _, err := leases.Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
			t.Errorf("take the lease over: %v", err)
		}
	}
	gate := &scaleGate{depose: takeOver}
	d := startDaemon(t, c, "deposed", path, func(o *daemon.Options) {
		o.LeaderElect, o.LeaseNamespace = true, ns
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 10*time.Second, 8*time.Second, 200*time.Millisecond
		rc := rest.CopyConfig(o.RESTConfig)
		rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { gate.rt = rt; return gate })
		o.RESTConfig = rc
	})
	kubetest.WaitFor(t, 30*time.Second, "the first write to be held and the lease taken over", func() error {
		if !gate.deposed.Load() {
			return fmt.Errorf("no scale write yet")
		}
		return nil
	})
	kubetest.WaitFor(t, 15*time.Second, "the daemon to see it no longer leads", func() error {
		if v := d.metric("elmascale_leader", nil); v != 0 {
			return fmt.Errorf("elmascale_leader = %v", v)
		}
		return nil
	})
	ticks := d.metric("elmascale_loop_ticks_total", nil)
	kubetest.WaitFor(t, 15*time.Second, "two more ticks", func() error {
		if v := d.metric("elmascale_loop_ticks_total", nil); v < ticks+2 {
			return fmt.Errorf("ticks %v", v)
		}
		return nil
	})
	if n := gate.afterCut.Load(); n != 0 {
		t.Errorf("%d scale writes reached the API server after the lease was taken over", n)
	}
	if n := gate.held.Load(); n != 1 {
		t.Errorf("%d writes held, want 1", n)
	}
	for _, n := range names {
		if spec, _ := kubetest.Replicas(t, admin, ns, n); spec != 1 {
			t.Errorf("%s scaled to %d by a deposed leader", n, spec)
		}
		for _, ev := range kubetest.Events(t, admin, ns, n) {
			if strings.Contains(ev, scaler.ReasonScaleFailed) {
				t.Errorf("deposition recorded as a failed scale on %s: %q", n, ev)
			}
		}
	}
	l, err := admin.CoordinationV1().Leases(ns).Get(context.Background(), "elmascale", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Spec.HolderIdentity; h == nil || *h != "usurper" {
		t.Errorf("lease holder %v, want the usurper", h)
	}
}
