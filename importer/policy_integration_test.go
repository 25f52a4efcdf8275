package importer_test

import (
	"context"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/importer"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
)

// Verifies that import with a policy name writes a ScalingPolicy the real
// API server accepts under strict field validation, holding the HPA's
// settings, in the namespace it was imported from.
func TestImportWritesAScalingPolicy(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"},
			MinReplicas:    ptr(int32(2)), MaxReplicas: 7,
		},
	}
	if _, err := admin.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := c.UserConfig(testcluster.UserElmascale)
	res, err := importer.Import(context.Background(), importer.Options{
		Client: kubernetes.NewForConfigOrDie(user), Dynamic: dynamic.NewForConfigOrDie(user), Namespace: ns, PolicyName: "imported"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.YAML), "kind: ScalingPolicy") {
		t.Fatalf("not a ScalingPolicy:\n%s", res.YAML)
	}
	if s, ok := res.Config.Service("api"); !ok || res.Config.Namespace != ns || s.Target.Name != "api" {
		t.Errorf("config %+v", res.Config)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(res.YAML, &u.Object); err != nil {
		t.Fatal(err)
	}
	ri := dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)
	if _, err := ri.Create(context.Background(), &u, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
		t.Fatalf("the API server refuses the imported ScalingPolicy: %v\n%s", err, res.YAML)
	}
	got, err := ri.Get(context.Background(), "imported", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := yaml.Marshal(got.Object)
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Policy.Services[0]; p.MinReplicas != 2 || p.MaxReplicas != 7 {
		t.Errorf("stored policy's api bounds %d..%d, want 2..7", p.MinReplicas, p.MaxReplicas)
	}
}
