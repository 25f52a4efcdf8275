package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/retry"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/scaler"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// renderUnstructured renders an overlay into API objects.
func renderUnstructured(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(data, &u.Object); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// serviceMonitorCRD is the smallest CRD that lets the API server accept a
// ServiceMonitor, standing in for the Prometheus Operator's.
func serviceMonitorCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "servicemonitors.monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com",
			"scope": "Namespaced",
			"names": map[string]any{"plural": "servicemonitors", "singular": "servicemonitor", "kind": "ServiceMonitor", "listKind": "ServiceMonitorList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
}

type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dynamic.NewForConfigOrDie(cfg), mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply server-side applies u, for real or as a dry run.
func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if rm, ok := a.mapper.(meta.ResettableRESTMapper); ok {
			rm.Reset()
			m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", gvk, err)
		}
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "elmascale-deploy-test", Force: new(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = a.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// Verifies every object of both overlays is accepted by a real API server
// (server-side dry-run: admission, schema and defaulting all run), and that
// the RBAC the base ships lets the daemon's ServiceAccount do its job and
// nothing more.
func TestManifestsOnRealAPIServer(t *testing.T) {
	c := testcluster.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := newApplier(t, c.AdminConfig)
	if err := a.apply(ctx, serviceMonitorCRD(), false); err != nil {
		t.Fatal(err)
	}
	// Namespaced objects need their namespaces to exist, even in a dry run.
	for _, ns := range []string{"elmascale", "elma365"} {
		if err := c.CreateNamespace(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	waitCRD(ctx, t, a)

	for _, overlay := range []string{"overlays/dry-run", "overlays/apply"} {
		objs := renderUnstructured(t, overlay)
		for _, u := range objs {
			if err := a.apply(ctx, u, true); err != nil {
				t.Errorf("%s rejected by the API server: %v", overlay, err)
			}
		}
		t.Logf("%s: %d objects accepted by server-side dry-run", overlay, len(objs))
	}

	// Install the ServiceAccount and RBAC for real and act as that account.
	for _, u := range renderUnstructured(t, "overlays/apply") {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "Role", "RoleBinding":
			if err := a.apply(ctx, u, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	sa := serviceAccountConfig(ctx, t, c, admin)
	t.Run("enough", func(t *testing.T) { rbacEnough(ctx, t, admin, sa) })
	t.Run("no more", func(t *testing.T) { rbacNoMore(ctx, t, admin, sa) })
	t.Run("daemon runs as the ServiceAccount", func(t *testing.T) { daemonAsServiceAccount(ctx, t, admin, sa) })
}

// daemonAsServiceAccount runs the real daemon in apply mode, with leader
// election, under the ServiceAccount's token: it must watch, decide and
// write the scale subresource with nothing but the shipped RBAC.
func daemonAsServiceAccount(ctx context.Context, t *testing.T, admin kubernetes.Interface, cfg *rest.Config) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	conf := `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
interval: 1s
services:
  worker:
    minReplicas: 5
    maxReplicas: 8
`
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(runCtx, daemon.Options{
			RESTConfig: cfg, ConfigPath: path, Mode: scaler.ModeApply,
			LeaderElect: true, LeaseNamespace: "elmascale", Identity: "rbac-test",
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: time.Second,
			MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0",
		})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := admin.AppsV1().Deployments("elma365").Get(ctx, "worker", metav1.GetOptions{})
		if err == nil && *d.Spec.Replicas == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon running as the ServiceAccount never raised worker to minReplicas 5 (last: %v, %v)", d.Spec.Replicas, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if _, err := admin.CoordinationV1().Leases("elmascale").Get(ctx, "elmascale", metav1.GetOptions{}); err != nil {
		t.Errorf("no leader Lease: %v", err)
	}
}

func waitCRD(ctx context.Context, t *testing.T, a *applier) {
	t.Helper()
	for {
		if rm, ok := a.mapper.(meta.ResettableRESTMapper); ok {
			rm.Reset()
		}
		if _, err := a.mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}, "v1"); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("ServiceMonitor CRD never became established")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serviceAccountConfig returns a client config that authenticates with a
// token issued to the elmascale ServiceAccount, as the pod would.
func serviceAccountConfig(ctx context.Context, t *testing.T, c *testcluster.Cluster, admin kubernetes.Interface) *rest.Config {
	t.Helper()
	tr, err := admin.CoreV1().ServiceAccounts("elmascale").CreateToken(ctx, "elmascale",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for the ServiceAccount: %v", err)
	}
	cfg := rest.AnonymousClientConfig(c.AdminConfig)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

func worker() *appsv1.Deployment {
	labels := map[string]string{"app": "worker"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "elma365"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "worker:1"}}},
			},
		},
	}
}

func rbacEnough(ctx context.Context, t *testing.T, admin kubernetes.Interface, cfg *rest.Config) {
	if _, err := admin.AppsV1().Deployments("elma365").Create(ctx, worker(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sa := kubernetes.NewForConfigOrDie(cfg)
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("the ServiceAccount cannot %s: %v", what, err)
		}
	}
	_, err := sa.AppsV1().Deployments("elma365").List(ctx, metav1.ListOptions{})
	check("list deployments", err)
	_, err = sa.AppsV1().StatefulSets("elma365").List(ctx, metav1.ListOptions{})
	check("list statefulsets", err)
	_, err = sa.AutoscalingV2().HorizontalPodAutoscalers("elma365").List(ctx, metav1.ListOptions{})
	check("list HPAs", err)
	_, err = sa.CoreV1().Pods("elma365").List(ctx, metav1.ListOptions{})
	check("list pods", err)
	_, err = metricsclient.NewForConfigOrDie(cfg).MetricsV1beta1().PodMetricses("elma365").List(ctx, metav1.ListOptions{})
	check("list pod metrics", err)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		scale, err := sa.AppsV1().Deployments("elma365").GetScale(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return err
		}
		scale.Spec.Replicas = 3
		_, err = sa.AppsV1().Deployments("elma365").UpdateScale(ctx, "worker", scale, metav1.UpdateOptions{})
		return err
	})
	check("read and write the scale subresource", err)
	_, err = sa.CoreV1().Events("elma365").Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "worker-", Namespace: "elma365"},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "elma365", Name: "worker", APIVersion: "apps/v1"},
		Reason:         "Scaled", Message: "test", Type: corev1.EventTypeNormal,
	}, metav1.CreateOptions{})
	check("record an Event on a target", err)
	holder := "elmascale-0"
	_, err = sa.CoordinationV1().Leases("elmascale").Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "elmascale-rbac-test-", Namespace: "elmascale"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}, metav1.CreateOptions{})
	check("take its Lease", err)
}

func rbacNoMore(ctx context.Context, t *testing.T, admin kubernetes.Interface, cfg *rest.Config) {
	sa := kubernetes.NewForConfigOrDie(cfg)
	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("the ServiceAccount should be forbidden to %s, got %v", what, err)
		}
	}
	d, err := admin.AppsV1().Deployments("elma365").Get(ctx, "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "evil:1"
	_, err = sa.AppsV1().Deployments("elma365").Update(ctx, d, metav1.UpdateOptions{})
	forbidden("update a Deployment's spec", err)
	_, err = sa.AppsV1().Deployments("elma365").Patch(ctx, "worker", types.MergePatchType, []byte(`{"metadata":{"annotations":{"x":"y"}}}`), metav1.PatchOptions{})
	forbidden("patch a Deployment", err)
	_, err = sa.AppsV1().Deployments("elma365").Create(ctx, worker(), metav1.CreateOptions{})
	forbidden("create a Deployment", err)
	err = sa.AppsV1().Deployments("elma365").Delete(ctx, "worker", metav1.DeleteOptions{})
	forbidden("delete a Deployment", err)
	for _, ns := range []string{"elma365", "elmascale", "default"} {
		_, err = sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		forbidden("list Secrets in "+ns, err)
	}
	_, err = sa.CoreV1().ConfigMaps("elma365").List(ctx, metav1.ListOptions{})
	forbidden("list ConfigMaps", err)
	_, err = sa.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{})
	forbidden("list Deployments outside the scaled namespace", err)
	holder := "x"
	_, err = sa.CoordinationV1().Leases("elma365").Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "nope", Namespace: "elma365"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}, metav1.CreateOptions{})
	forbidden("create Leases outside its namespace", err)
}
