package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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
