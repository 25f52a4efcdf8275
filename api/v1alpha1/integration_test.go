package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatal(err)
	}
	return &u
}

// Verifies on the real API server that the generated CRD is accepted, that
// the ELMA365 preset as a ScalingPolicy is too, and that what the schema
// and its CEL rules can judge is refused with the field's path: bounds,
// min above max, a pinned service above one, ELMA365's single-instance
// services, durations, unknown fields.
func TestAPIServerValidatesScalingPolicies(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	ri := dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)
	strict := metav1.CreateOptions{FieldValidation: "Strict"}

	preset, err := config.AsResource(config.ELMA365PresetYAML(), "elma365", ns)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ri.Create(ctx, object(t, string(preset)), strict); err != nil {
		t.Fatalf("the ELMA365 preset as a ScalingPolicy is refused: %v", err)
	}

	head := "apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: bad}\nspec:\n"
	for _, tc := range []struct {
		name, spec string
		want       []string // each must appear in the API server's answer
	}{
		{"min above max", "  services:\n    api: {minReplicas: 5, maxReplicas: 2}\n",
			[]string{"spec.services[api].minReplicas", "minReplicas must not exceed maxReplicas"}},
		{"pinned above one", "  services:\n    cron: {pinned: true, maxReplicas: 3}\n",
			[]string{"spec.services[cron].pinned", "a pinned service runs exactly one replica"}},
		{"ELMA365 single instance", "  platform: elma365\n  services:\n    scheduler: {maxReplicas: 3}\n",
			[]string{"spec", "scheduler, notifier and messengers run as exactly one instance"}},
		{"renamed single-instance target", "  platform: elma365\n  services:\n    jobs: {maxReplicas: 3, target: {name: notifier}}\n",
			[]string{"run as exactly one instance"}},
		{"max above the limit", "  services:\n    api: {maxReplicas: 20000}\n",
			[]string{"spec.services.api.maxReplicas", "less than or equal to 10000"}},
		{"interval too short", "  interval: 500ms\n",
			[]string{"spec.interval", "must be at least 1s"}},
		{"not a duration", "  interval: fast\n",
			[]string{"spec.interval"}},
		{"negative duration", "  staleAfter: -5s\n",
			[]string{"spec.staleAfter"}},
		{"zero drain time", "  services:\n    w:\n      signals:\n      - name: q\n        queue: {drainTime: 0s, rabbitmq: {queues: [a]}}\n",
			[]string{"spec.services[w].signals[0].queue.drainTime", "must be positive"}},
		{"unknown resource", "  services:\n    api:\n      signals: [{name: u, utilization: {resource: gpu, targetPercent: 50}}]\n",
			[]string{"spec.services.api.signals[0].utilization.resource", "Unsupported value"}},
		{"rate policy type", "  defaults:\n    behavior:\n      scaleUp:\n        policies: [{type: Replicas, value: 1, period: 1m}]\n",
			[]string{"spec.defaults.behavior.scaleUp.policies[0].type"}},
		{"unknown field", "  servics: {}\n",
			[]string{`unknown field "spec.servics"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ri.Create(ctx, object(t, head+tc.spec), strict)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.spec)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// Verifies that the status subresource takes what elmascale writes and that
// the Table a kubectl get asks for carries the printer columns: mode,
// services, bottleneck, last action and age, and with -o wide the
// over-budget and hand-off counts.
func TestPrinterColumns(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	ri := dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)
	if _, err := ri.Create(ctx, object(t, "apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: shop}\nspec:\n  services: {api: {}, worker: {}}\n"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	five, now := int32(5), metav1.Now()
	st := &v1alpha1.ScalingPolicyStatus{ObservedGeneration: 1, Mode: "dry-run", ServiceCount: 2, Bottleneck: "worker",
		LastAction: "worker 2→5", LastActionTime: &now, OverBudget: 1, HandedOff: 1,
		Services:   []v1alpha1.ServiceStatus{{Name: "worker", Current: 2, Ready: 2, Recommended: &five, Bottleneck: true, Reason: "queue backlog", LastChangeTime: &now}},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Compiled", Message: "ok", LastTransitionTime: now}},
	}
	patch, err := v1alpha1.StatusPatch(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ri.Patch(ctx, "shop", types.JSONPatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("status write refused: %v", err)
	}

	rc := kubernetes.NewForConfigOrDie(c.AdminConfig).CoreV1().RESTClient()
	raw, err := rc.Get().AbsPath("/apis/elmascale.io/v1alpha1/namespaces/"+ns+"/scalingpolicies").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var cols, wide []string
	for _, col := range table.ColumnDefinitions {
		if col.Priority == 0 {
			cols = append(cols, col.Name)
		} else {
			wide = append(wide, col.Name)
		}
	}
	if got, want := strings.Join(cols, ","), "Name,Mode,Services,Bottleneck,Last Action,Age"; got != want {
		t.Errorf("columns %s, want %s", got, want)
	}
	if got, want := strings.Join(wide, ","), "Over Budget,Handed Off,Ready"; got != want {
		t.Errorf("wide columns %s, want %s", got, want)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(table.Rows))
	}
	row, _ := json.Marshal(table.Rows[0].Cells)
	if want := `["shop","dry-run",2,"worker","worker 2→5",`; !strings.HasPrefix(string(row), want) {
		t.Errorf("row %s, want it to start %s", row, want)
	}
	if want := `,1,1,"True","`; !strings.Contains(string(row), want) {
		t.Errorf("row %s, want the wide cells %s then the age", row, want)
	}
}

// Verifies that the largest policy the schema allows, 2,000 services, is
// accepted with its CEL rules, and that its status, with every service's
// decision and a reason as long as the daemon writes for that many, is too.
func TestLargestPolicyAndStatusFit(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	ri := dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns)
	const n = 2000
	services := map[string]any{}
	st := &v1alpha1.ScalingPolicyStatus{Mode: "dry-run", ServiceCount: n}
	reason := strings.Repeat("x", 262) // 512 KiB over 2,000 services
	for i := range n {
		name := fmt.Sprintf("svc-%04d", i)
		services[name] = map[string]any{"minReplicas": int64(1), "maxReplicas": int64(4), "dependsOn": []any{"svc-0000"}}
		rec := int32(2)
		st.Services = append(st.Services, v1alpha1.ServiceStatus{Name: name, Current: 1, Ready: 1, Recommended: &rec, LimitedBy: "rate", Reason: reason})
	}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": v1alpha1.Kind,
		"metadata": map[string]any{"name": "big"}, "spec": map[string]any{"platform": "elma365", "services": services}}}
	if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a policy of %d services refused: %v", n, err)
	}
	patch, err := v1alpha1.StatusPatch(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ri.Patch(ctx, "big", types.JSONPatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("a status of %d services (%d bytes) refused: %v", n, len(patch), err)
	}
	t.Logf("status patch of %d services: %d bytes", n, len(patch))
	services["one-too-many"] = map[string]any{}
	u.SetName("too-big")
	if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "spec.services") {
		t.Errorf("a policy of %d services: %v, want refused at spec.services", n+1, err)
	}
}
