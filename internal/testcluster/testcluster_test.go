package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

func TestMain(m *testing.M) { Main(m) }

// Verifies that the shared cluster behaves like a real one for everything
// the autoscaler relies on: Deployments become Ready pods, the scale
// subresource works, Leases and Events can be written, RBAC applies to the
// token user, and metrics.k8s.io reports usage set through pod annotations.
func TestClusterWorkloads(t *testing.T) {
	c := ForTest(t)
	t.Logf("cluster started in %s", c.StartupDuration().Round(time.Millisecond))
	logRSS(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	client := kubernetes.NewForConfigOrDie(c.AdminConfig)
	const ns = "tc-workloads"
	if err := c.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	deploy := newDeployment(ns, "web", 2)
	deploy, err := client.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	waitReadyPods(ctx, t, client, ns, "web", 2)
	t.Logf("2 pods Ready %s after the Deployment was created", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	scale, err := client.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	if scale.Spec.Replicas != 2 {
		t.Fatalf("scale.spec.replicas = %d, want 2", scale.Spec.Replicas)
	}
	scale.Spec.Replicas = 5
	if _, err := client.AppsV1().Deployments(ns).UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	waitReadyPods(ctx, t, client, ns, "web", 5)
	t.Logf("scaled 2→5 Ready in %s", time.Since(start).Round(time.Millisecond))

	t.Run("Lease", func(t *testing.T) {
		holder := "elmascale-0"
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: "elmascale-leader", Namespace: ns},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       &holder,
				LeaseDurationSeconds: new(int32(15)),
				RenewTime:            &metav1.MicroTime{Time: time.Now()},
			},
		}
		if _, err := client.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create lease: %v", err)
		}
		got, err := client.CoordinationV1().Leases(ns).Get(ctx, lease.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get lease: %v", err)
		}
		if got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != holder {
			t.Fatalf("lease holder = %v, want %q", got.Spec.HolderIdentity, holder)
		}
	})

	t.Run("Event", func(t *testing.T) {
		broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
		broadcaster.StartRecordingToSink(ctx.Done())
		defer broadcaster.Shutdown()
		recorder := broadcaster.NewRecorder(scheme.Scheme, "elmascale-testcluster")
		recorder.Eventf(deploy, nil, corev1.EventTypeNormal, "ScaledUp", "Scale", "scaled %s to %d replicas", deploy.Name, 5)
		waitFor(ctx, t, "the ScaledUp event", func() error {
			list, err := client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, ev := range list.Items {
				if ev.Reason == "ScaledUp" && ev.Regarding.Name == "web" && ev.Regarding.Kind == "Deployment" {
					return nil
				}
			}
			return fmt.Errorf("%d events, none ScaledUp", len(list.Items))
		})
	})

	t.Run("RBAC", func(t *testing.T) {
		testElmascaleRBAC(ctx, t, c, client, ns)
	})

	t.Run("PodMetrics", func(t *testing.T) {
		testPodMetrics(ctx, t, c, client, ns)
	})
}

// testElmascaleRBAC checks that the token user is who it should be, is
// denied by default, and gains exactly what a RoleBinding grants it.
func testElmascaleRBAC(ctx context.Context, t *testing.T, c *Cluster, admin kubernetes.Interface, ns string) {
	user := kubernetes.NewForConfigOrDie(c.UserConfig(UserElmascale))
	review, err := user.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	if got := review.Status.UserInfo; got.Username != UserElmascale || strings.Join(got.Groups, ",") != "system:authenticated" {
		t.Fatalf("elmascale identity = %q groups %v, want %q groups [system:authenticated]", got.Username, got.Groups, UserElmascale)
	}
	if _, err := user.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list deployments before any RoleBinding: err = %v, want Forbidden", err)
	}

	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "elmascale-scaler", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"apps"},
			Resources: []string{"deployments", "deployments/scale"},
			Verbs:     []string{"get", "list", "watch", "update", "patch"},
		}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "elmascale-scaler", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: UserElmascale}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The RBAC authorizer reads through an informer, so the grant takes
	// effect a moment after the write.
	waitFor(ctx, t, "elmascale to read the scale subresource", func() error {
		_, err := user.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
		return err
	})
	if _, err := user.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list pods without a grant: err = %v, want Forbidden", err)
	}
}

// testPodMetrics sets a pod's usage annotations and waits for
// metrics.k8s.io to report them. metrics-server derives CPU from the
// difference of two cumulative samples, so a fresh value needs two
// 10-second scrapes; 90 seconds leaves room for a slow machine.
func testPodMetrics(ctx context.Context, t *testing.T, c *Cluster, client kubernetes.Interface, ns string) {
	if !c.MetricsServer {
		t.Fatal("the shared cluster should run metrics-server")
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("list pods: %v (%d pods)", err, len(pods.Items))
	}
	pod := pods.Items[0].Name
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"250m",%q:"64Mi"}}}`, AnnotationUsageCPU, AnnotationUsageMemory)
	if _, err := client.CoreV1().Pods(ns).Patch(ctx, pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate pod: %v", err)
	}

	metrics := metricsclient.NewForConfigOrDie(c.AdminConfig)
	start := time.Now()
	wantCPU, wantMem := resource.MustParse("250m"), resource.MustParse("64Mi")
	deadline, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	waitFor(deadline, t, "PodMetrics "+ns+"/"+pod+" to report 250m CPU and 64Mi", func() error {
		pm, err := metrics.MetricsV1beta1().PodMetricses(ns).Get(deadline, pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(pm.Containers) != 1 {
			return fmt.Errorf("%d containers in PodMetrics", len(pm.Containers))
		}
		cpu, mem := pm.Containers[0].Usage[corev1.ResourceCPU], pm.Containers[0].Usage[corev1.ResourceMemory]
		// CPU is a rate over the scrape interval; a window that straddles
		// the annotation change mixes old and new usage, so allow ±10%.
		if diff := cpu.MilliValue() - wantCPU.MilliValue(); diff < -25 || diff > 25 {
			return fmt.Errorf("cpu %s, memory %s", cpu.String(), mem.String())
		}
		if mem.Cmp(wantMem) != 0 {
			return fmt.Errorf("cpu %s, memory %s", cpu.String(), mem.String())
		}
		return nil
	})
	t.Logf("PodMetrics reported the annotated usage %s after the patch", time.Since(start).Round(time.Millisecond))
}

// Verifies that a test can take the API server away and bring it back at the
// same address, and that the cluster then works again end to end: stored
// objects survive, and the controllers, scheduler and KWOK reconnect.
func TestAPIServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", c.LogTails(40))
		}
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	client := kubernetes.NewForConfigOrDie(c.AdminConfig)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "before-restart", Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"k": "v"},
	}
	if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := c.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server stopped in %s", time.Since(start).Round(time.Millisecond))
	if c.APIServerRunning() {
		t.Fatal("APIServerRunning() = true after StopAPIServer")
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err = client.CoreV1().ConfigMaps(cm.Namespace).Get(short, cm.Name, metav1.GetOptions{})
	cancelShort()
	if err == nil {
		t.Fatal("the API answered while stopped")
	}

	start = time.Now()
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server back in %s", time.Since(start).Round(time.Millisecond))
	got, err := client.CoreV1().ConfigMaps(cm.Namespace).Get(ctx, cm.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ConfigMap after restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Fatalf("ConfigMap data = %v after restart", got.Data)
	}

	if err := c.CreateNamespace(ctx, "after-restart"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments("after-restart").Create(ctx, newDeployment("after-restart", "web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReadyPods(ctx, t, client, "after-restart", "web", 1)
	t.Logf("a new Deployment had a Ready pod %s after the restart began", time.Since(start).Round(time.Millisecond))
}

// Verifies that missing binaries are a loud error naming the build command,
// never a reason to skip.
func TestStartWithoutBinaries(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	if !errors.Is(err, ErrBinariesMissing) {
		t.Fatalf("err = %v, want ErrBinariesMissing", err)
	}
	if !strings.Contains(err.Error(), "make testcluster") {
		t.Fatalf("error %q does not say how to build the binaries", err)
	}
}

func newDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:  "app",
						Image: "example.invalid/app:1", // never pulled: KWOK runs no containers
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("100m"),
							corev1.ResourceMemory: resource.MustParse("64Mi"),
						}},
					}},
				},
			},
		},
	}
}

// waitReadyPods waits until exactly want pods of the Deployment are Ready
// and the Deployment's status agrees.
func waitReadyPods(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, want int) {
	t.Helper()
	waitFor(ctx, t, fmt.Sprintf("%d Ready pods of %s/%s", want, ns, name), func() error {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready++
			}
		}
		if ready != want {
			return fmt.Errorf("%d of %d pods Ready", ready, len(pods.Items))
		}
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if int(d.Status.ReadyReplicas) != want {
			return fmt.Errorf("deployment reports %d ready replicas", d.Status.ReadyReplicas)
		}
		return nil
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitFor polls cond every 200 ms until it succeeds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() error) {
	t.Helper()
	var last error
	for {
		if last = cond(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %v", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logRSS records the resident memory of each component, to keep an eye on
// what the cluster costs a 24 GiB CI machine.
func logRSS(t *testing.T, c *Cluster) {
	var total int64
	var parts []string
	for _, p := range c.procs {
		kib := rssKiB(p.pid())
		total += kib
		parts = append(parts, fmt.Sprintf("%s %d MiB", p.name, kib/1024))
	}
	t.Logf("RSS %d MiB: %s", total/1024, strings.Join(parts, ", "))
}

func rssKiB(pid int) int64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
