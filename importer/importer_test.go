package importer

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/scaler"
)

func ptr[T any](v T) *T { return &v }

// SampleHPA is an HPA with CPU and memory targets, behavior and a metric
// that has no equivalent.
func sampleHPA() *autoscalingv2.HorizontalPodAutoscaler {
	q := resource.MustParse("0.05")
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "main-hpa", Namespace: "elma365"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "main"},
			MinReplicas:    ptr(int32(2)),
			MaxReplicas:    8,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu",
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(65))}}},
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: "memory",
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "rps"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("100"))}}},
			},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(30)), SelectPolicy: ptr(autoscalingv2.MaxChangePolicySelect),
					Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 3, PeriodSeconds: 20}}, Tolerance: &q},
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(600)), SelectPolicy: ptr(autoscalingv2.MinChangePolicySelect),
					Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 25, PeriodSeconds: 60}}, Tolerance: &q},
			},
		},
	}
}

// SampleScaledObject scales worker on a RabbitMQ queue and CPU.
func sampleScaledObject() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "worker-so", "namespace": "elma365"},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": "worker"},
			"minReplicaCount": int64(2), "maxReplicaCount": int64(24),
			"advanced": map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"behavior": map[string]any{
				"scaleDown": map[string]any{"stabilizationWindowSeconds": int64(120)}}}},
			"triggers": []any{
				map[string]any{"type": "rabbitmq", "metadata": map[string]any{"queueName": "worker.default", "mode": "QueueLength", "value": "30"}},
				map[string]any{"type": "cpu", "metricType": "Utilization", "metadata": map[string]any{"value": "75"}},
				map[string]any{"type": "cron", "metadata": map[string]any{"start": "0 8 * * *"}},
			},
		},
	}}
}

// Verifies that an HPA and a ScaledObject become services whose bounds,
// targets and behavior match, and that the output validates.
func TestImport(t *testing.T) {
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{scaler.ScaledObjectGVR: "ScaledObjectList"}, sampleScaledObject())
	res, err := Import(context.Background(), Options{Client: fake.NewClientset(sampleHPA()), Dynamic: dyn, Namespace: "elma365"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated:\n%s", res.YAML)
	main, _ := res.Config.Service("main")
	var mainSpec, workerSpec policy.ServiceSpec
	for _, s := range res.Config.Policy.Services {
		switch s.Name {
		case "main":
			mainSpec = s
		case "worker":
			workerSpec = s
		}
	}
	if mainSpec.MinReplicas != 2 || mainSpec.MaxReplicas != 8 {
		t.Errorf("main bounds %d..%d, want 2..8", mainSpec.MinReplicas, mainSpec.MaxReplicas)
	}
	if len(main.Signals) != 3 || mainSpec.Signals[0].Utilization.TargetPercent != 65 || mainSpec.Signals[1].Utilization.Resource != "memory" {
		t.Errorf("main signals %+v", mainSpec.Signals)
	}
	if p := mainSpec.Signals[2]; p.Kind != policy.KindPods || p.Pods.TargetPerPod != 100 {
		t.Errorf("the Pods metric became %+v, want a pods signal at 100 per pod", p)
	}
	b := mainSpec.Behavior
	if b.ScaleUp.Tolerance == nil || *b.ScaleUp.Tolerance != 0.05 || b.ScaleDown.Tolerance == nil || *b.ScaleDown.Tolerance != 0.05 {
		t.Errorf("per-direction tolerances not carried over: %+v", b)
	}
	if b.Legacy || b.ScaleUp.StabilizationWindow != 30*time.Second || b.ScaleDown.SelectPolicy != policy.SelectMin ||
		b.ScaleDown.Policies[0] != (policy.RatePolicy{Type: policy.RatePercent, Value: 25, Period: time.Minute}) {
		t.Errorf("main behavior %+v", b)
	}
	if workerSpec.MinReplicas != 2 || workerSpec.MaxReplicas != 24 || workerSpec.Behavior.ScaleDown.StabilizationWindow != 2*time.Minute {
		t.Errorf("worker spec %+v", workerSpec)
	}
	if q := workerSpec.Signals[0].Queue; q == nil || q.ThroughputPerReplica != 0.5 || q.DrainTime != time.Minute {
		t.Errorf("worker queue signal %+v", workerSpec.Signals[0])
	}
	for _, want := range []string{"NOTE: Pods metric rps", "NOTE: trigger 2 of type \"cron\"", "from ScaledObject/worker-so"} {
		if !strings.Contains(string(res.YAML), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// Verifies what the autoscaling/v2 API leaves to the controller: an HPA
// without behavior takes the legacy path (not the v2 defaults), tolerances
// that differ per direction stay per direction, and Object/External metrics
// become object and perReplica signals with a metric definition to check.
func TestImportHPAWithoutBehaviorAndCustomMetrics(t *testing.T) {
	up, down := resource.MustParse("0.02"), resource.MustParse("0.3")
	plain := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "docflow", Namespace: "elma365"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "docflow"},
			MaxReplicas:    6,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "queue-depth"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr(resource.MustParse("40"))}}},
				{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "jobs"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("5"))}}},
			},
		},
	}
	split := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "auth", Namespace: "elma365"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "auth"},
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu",
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(70))}}}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp:   &autoscalingv2.HPAScalingRules{Tolerance: &up},
				ScaleDown: &autoscalingv2.HPAScalingRules{Tolerance: &down},
			},
		},
	}
	res, err := Import(context.Background(), Options{Client: fake.NewClientset(plain, split), Namespace: "elma365"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated:\n%s", res.YAML)
	specs := map[string]policy.ServiceSpec{}
	for _, s := range res.Config.Policy.Services {
		specs[s.Name] = s
	}
	d := specs["docflow"]
	if !d.Behavior.Legacy || d.Behavior.ScaleDown.StabilizationWindow != 5*time.Minute {
		t.Errorf("docflow without behavior: %+v, want the legacy path with a 5m downscale window", d.Behavior)
	}
	if len(d.Signals) != 2 || d.Signals[0].Kind != policy.KindObject || d.Signals[0].Object.Target != 40 ||
		d.Signals[1].Kind != policy.KindPerReplica || d.Signals[1].PerReplica.TargetPerReplica != 5 {
		t.Errorf("docflow signals %+v", d.Signals)
	}
	a := specs["auth"].Behavior
	if a.Legacy || a.ScaleUp.Tolerance == nil || *a.ScaleUp.Tolerance != 0.02 || a.ScaleDown.Tolerance == nil || *a.ScaleDown.Tolerance != 0.3 {
		t.Errorf("auth behavior %+v: want tolerance 0.02 up, 0.3 down", a)
	}
	for _, want := range []string{`queue_depth{namespace="elma365"}`, "check the query of metrics.docflow-jobs", "legacy: true"} {
		if !strings.Contains(string(res.YAML), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(string(res.YAML), "differ") {
		t.Error("a note still says per-direction tolerances cannot be carried over")
	}
}
