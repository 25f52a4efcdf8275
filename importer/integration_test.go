package importer_test

import (
	"context"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/importer"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/policy"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

func ptr[T any](v T) *T { return &v }

const workerScaledObject = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker-so}
spec:
  scaleTargetRef: {name: worker}
  minReplicaCount: 2
  maxReplicaCount: 24
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          policies: [{type: Pods, value: 6, periodSeconds: 15}]
  triggers:
    - type: rabbitmq
      metadata: {queueName: worker.default, mode: QueueLength, value: "20", vhostName: elma}
    - type: cpu
      metricType: Utilization
      metadata: {value: "75"}
`

// Verifies that `import` reads real HPA objects (after the API server's
// defaulting) and a ScaledObject of a minimal KEDA CRD, as user elmascale,
// and produces a config that config.Parse accepts with matching bounds,
// targets and behavior.
func TestImportFromCluster(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.InstallScaledObjectCRD(t, c)
	kubetest.CreateScaledObject(t, c, ns, workerScaledObject)

	hpas := []*autoscalingv2.HorizontalPodAutoscaler{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "main"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "main"},
				MinReplicas:    ptr(int32(2)), MaxReplicas: 8,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(60))}}}},
				Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(120)),
						Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 20, PeriodSeconds: 60}}},
				},
			},
		},
		{
			// No metrics and no behavior: the API server fills in 80% CPU.
			ObjectMeta: metav1.ObjectMeta{Name: "db-sts"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "cache"},
				MaxReplicas:    3,
			},
		},
	}
	for _, h := range hpas {
		if _, err := admin.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), h, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	user := c.UserConfig(testcluster.UserElmascale)
	res, err := importer.Import(context.Background(), importer.Options{
		Client: kubernetes.NewForConfigOrDie(user), Dynamic: dynamic.NewForConfigOrDie(user), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated:\n%s", res.YAML)
	if _, err := config.Parse(res.YAML); err != nil {
		t.Fatalf("config.Parse rejects the import: %v", err)
	}
	if res.HPAs != 2 || res.ScaledObjects != 1 {
		t.Errorf("read %d HPAs and %d ScaledObjects, want 2 and 1", res.HPAs, res.ScaledObjects)
	}
	specs := map[string]policy.ServiceSpec{}
	for _, s := range res.Config.Policy.Services {
		specs[s.Name] = s
	}
	main := specs["main"]
	if main.MinReplicas != 2 || main.MaxReplicas != 8 || main.Signals[0].Utilization.TargetPercent != 60 {
		t.Errorf("main = %+v", main)
	}
	// The API server defaulted scaleUp; both directions must match it.
	def := policy.DefaultBehavior()
	if got := main.Behavior.ScaleDown; got.StabilizationWindow != 2*time.Minute || got.Policies[0] != (policy.RatePolicy{Type: policy.RatePercent, Value: 20, Period: time.Minute}) {
		t.Errorf("main scaleDown = %+v", got)
	}
	if got := main.Behavior.ScaleUp; got.StabilizationWindow != def.ScaleUp.StabilizationWindow || len(got.Policies) != 2 {
		t.Errorf("main scaleUp = %+v, want the HPA defaults", got)
	}
	cache := specs["cache"]
	svc, _ := res.Config.Service("cache")
	if cache.MinReplicas != 1 || cache.MaxReplicas != 3 || svc.Target.Kind != "StatefulSet" || cache.Signals[0].Utilization.TargetPercent != 80 {
		t.Errorf("cache = %+v, target %+v", cache, svc.Target)
	}
	worker := specs["worker"]
	wsvc, _ := res.Config.Service("worker")
	if worker.MinReplicas != 2 || worker.MaxReplicas != 24 || worker.Behavior.ScaleUp.Policies[0].Value != 6 {
		t.Errorf("worker = %+v", worker)
	}
	if q := wsvc.Signals[0].Queue; q == nil || q.VHost != "elma" || q.Queues[0] != "worker.default" || worker.Signals[1].Utilization.TargetPercent != 75 {
		t.Errorf("worker signals = %+v / %+v", wsvc.Signals, worker.Signals)
	}
}
