package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/internal/testcluster"
)

// RepoRoot is the repository root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var nsSeq atomic.Int64

// Namespace creates a fresh namespace named after the test, grants user
// elmascale the shipped RBAC in it (deploy/base/rbac.yaml, with the Lease
// Role in the same namespace) plus any extra RBAC files given, and returns
// its name.
func Namespace(t *testing.T, c *testcluster.Cluster, extraRBAC ...string) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(fmt.Sprintf("%s-%d", name, nsSeq.Add(1)), "-")
	ctx := context.Background()
	if err := c.CreateNamespace(ctx, name); err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	files := append([]string{filepath.Join(RepoRoot(), "deploy", "base", "rbac.yaml")}, extraRBAC...)
	for _, f := range files {
		if err := applyRBAC(ctx, admin, f, name); err != nil {
			t.Fatalf("RBAC %s: %v", f, err)
		}
	}
	return name
}

// applyRBAC creates the RBAC objects of a file, moving every namespaced
// object into ns and binding user elmascale instead of the ServiceAccount.
func applyRBAC(ctx context.Context, admin kubernetes.Interface, path, ns string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	user := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: testcluster.UserElmascale}}
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return err
		}
		switch meta.Kind {
		case "ClusterRole":
			var o rbacv1.ClusterRole
			if err := yaml.UnmarshalStrict(doc, &o); err != nil {
				return err
			}
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
		case "Role":
			var o rbacv1.Role
			if err := yaml.UnmarshalStrict(doc, &o); err != nil {
				return err
			}
			o.Namespace = ns
			_, err = admin.RbacV1().Roles(ns).Create(ctx, &o, metav1.CreateOptions{})
		case "RoleBinding":
			var o rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict(doc, &o); err != nil {
				return err
			}
			o.Namespace, o.Subjects = ns, user
			_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, &o, metav1.CreateOptions{})
		case "":
			continue
		default:
			return fmt.Errorf("unexpected kind %s in an RBAC file", meta.Kind)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
}

// Deployment returns a Deployment whose pods KWOK runs, requesting 100m CPU.
func Deployment(ns, name string, replicas int32, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "example.invalid/app:1", // never pulled: KWOK runs no containers
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("100m"),
						corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
				}}},
			},
		},
	}
}

// CreateDeployments creates Deployments with the admin client.
func CreateDeployments(t *testing.T, admin kubernetes.Interface, ds ...*appsv1.Deployment) {
	t.Helper()
	for _, d := range ds {
		if _, err := admin.AppsV1().Deployments(d.Namespace).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// WaitFor polls cond every 200ms until it returns nil or timeout passes.
func WaitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
}

// Replicas returns spec.replicas and status.readyReplicas of a Deployment.
func Replicas(t *testing.T, admin kubernetes.Interface, ns, name string) (spec, ready int32) {
	t.Helper()
	d, err := admin.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas, d.Status.ReadyReplicas
}

// WaitReplicas waits until a Deployment has want replicas, all Ready.
func WaitReplicas(t *testing.T, admin kubernetes.Interface, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, fmt.Sprintf("%s/%s at %d Ready replicas", ns, name, want), func() error {
		spec, ready := Replicas(t, admin, ns, name)
		if spec != want || ready != want {
			return fmt.Errorf("spec %d, ready %d", spec, ready)
		}
		return nil
	})
}

// Events returns "Type Reason: message" of the Events about one object.
func Events(t *testing.T, admin kubernetes.Interface, ns, name string) []string {
	t.Helper()
	list, err := admin.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Source.Component != "elmascale" {
			continue
		}
		for i := int32(0); i < max(e.Count, 1); i++ {
			out = append(out, e.Type+" "+e.Reason+": "+e.Message)
		}
	}
	return out
}

// WaitEvent waits for an elmascale Event about name whose text contains
// every part, and returns all its Events.
func WaitEvent(t *testing.T, admin kubernetes.Interface, ns, name string, parts ...string) []string {
	t.Helper()
	var evs []string
	WaitFor(t, 15*time.Second, fmt.Sprintf("event %q on %s", parts, name), func() error {
		evs = Events(t, admin, ns, name)
		for _, e := range evs {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(e, p)
			}
			if ok {
				return nil
			}
		}
		return fmt.Errorf("events so far: %q", evs)
	})
	return evs
}

// ScaledObjectCRD is a minimal KEDA ScaledObject CRD: the real group,
// version and names, with an open schema.
const ScaledObjectCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: scaledobjects.keda.sh
spec:
  group: keda.sh
  scope: Namespaced
  names: {kind: ScaledObject, listKind: ScaledObjectList, plural: scaledobjects, singular: scaledobject}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallScaledObjectCRD installs ScaledObjectCRD (once per cluster) and
// waits until ScaledObjects can be created.
func InstallScaledObjectCRD(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(c.AdminConfig)
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(ScaledObjectCRD), &crd.Object); err != nil {
		t.Fatal(err)
	}
	_, err := dyn.Resource(crdGVR).Create(context.Background(), &crd, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	disc := kubernetes.NewForConfigOrDie(c.AdminConfig).Discovery()
	WaitFor(t, 30*time.Second, "the ScaledObject CRD to be served", func() error {
		_, err := disc.ServerResourcesForGroupVersion("keda.sh/v1alpha1")
		return err
	})
}

// CreateScaledObject creates a ScaledObject from YAML in ns.
func CreateScaledObject(t *testing.T, c *testcluster.Cluster, ns, manifest string) {
	t.Helper()
	var so unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(manifest), &so.Object); err != nil {
		t.Fatal(err)
	}
	so.SetNamespace(ns)
	gvr := schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
	dyn := dynamic.NewForConfigOrDie(c.AdminConfig)
	WaitFor(t, 15*time.Second, "ScaledObject created", func() error {
		_, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), &so, metav1.CreateOptions{})
		return err
	})
}

// Collector builds the real signal collector as user elmascale of c sees
// the cluster (its resource source reads metrics-server's metrics.k8s.io
// and the pods with the shipped RBAC). opts adds Prometheus, RabbitMQ,
// breaker and timeout settings; its clients are filled in here.
func Collector(t *testing.T, c *testcluster.Cluster, opts collector.Options) *collector.Collector {
	t.Helper()
	col, err := collector.NewForConfig(c.UserConfig(testcluster.UserElmascale), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(col.Close)
	return col
}
