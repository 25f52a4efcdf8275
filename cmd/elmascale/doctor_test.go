package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/api/v1alpha1"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/doctor"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
)

// Verifies doctor's command line is checked before any cluster is asked.
func TestDoctorUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"doctor", "--kubeconfig", "/nonexistent/kubeconfig"}, "nonexistent"},
		{[]string{"doctor", "--kubeconfig", writeKubeconfig(t, "https://127.0.0.1:1"), "--service-account", "elmascale"}, "NAMESPACE/NAME"},
		{[]string{"doctor", "-o", "yaml"}, "table or json"},
	} {
		var out, errb bytes.Buffer
		if code := dispatch(context.Background(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// Verifies, on a real API server and with the shipped RBAC, that doctor
// finds a single-instance service running three pods, exits 1 with the
// fix, grants every permission, reports a hand-off, and passes once the
// service is back at one.
func TestDoctorOnCluster(t *testing.T) {
	c := testcluster.ForTest(t)
	ns := kubetest.Namespace(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	kubetest.CreateDeployments(t, admin,
		kubetest.Deployment(ns, "worker", 1, nil),
		kubetest.Deployment(ns, "chat", 1, map[string]string{"elmascale.io/paused": "true"}),
		kubetest.Deployment(ns, "scheduler", 3, nil))
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	conf := fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
platform: elma365
namespace: %s
services:
  worker: {minReplicas: 1, maxReplicas: 4}
  chat: {minReplicas: 1, maxReplicas: 4}
  scheduler: {}
`, ns)
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := func() (int, doctor.Report, string) {
		var out, errb bytes.Buffer
		code := dispatch(context.Background(), []string{"doctor", "--kubeconfig", c.Kubeconfig(testcluster.UserElmascale),
			"--config", cfgPath, "--service-account", "self", "--leader-elect-namespace", ns, "--mode", "apply", "-o", "json",
			// The namespace holds the namespaced RBAC only; the install test
			// (deploy) checks --metrics-auth's cluster-wide grants.
			"--metrics-auth=false"}, &out, &errb)
		var r doctor.Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("doctor -o json printed no report (exit %d): %v\n%s\n%s", code, err, out.String(), errb.String())
		}
		return code, r, errb.String()
	}
	check := func(r doctor.Report, kind, service string) doctor.Check {
		t.Helper()
		for _, ch := range r.Checks {
			if ch.Kind == kind && ch.Service == service {
				return ch
			}
		}
		t.Fatalf("no %s check for %q: %+v", kind, service, r.Checks)
		return doctor.Check{}
	}

	code, r, stderr := doc()
	if code != 1 || r.Problems != 1 {
		t.Fatalf("exit %d with %d problems (%s), want 1 and one problem (scheduler at 3): %+v", code, r.Problems, stderr, r.Checks)
	}
	if sch := check(r, doctor.KindTarget, "scheduler"); sch.Severity != doctor.SeverityProblem || !strings.Contains(sch.Fix, "--replicas=1") {
		t.Errorf("scheduler: %+v", sch)
	}
	if chat := check(r, doctor.KindTarget, "chat"); chat.Severity != doctor.SeverityInfo || !strings.Contains(chat.Detail, "paused") {
		t.Errorf("chat: %+v", chat)
	}
	perms := 0
	for _, ch := range r.Checks {
		if ch.Kind == doctor.KindPermission {
			perms++
			if ch.Severity != doctor.SeverityOK {
				t.Errorf("the shipped RBAC lacks a permission: %+v", ch)
			}
		}
	}
	if perms < 10 {
		t.Errorf("%d permission checks, want every need (at least 10)", perms)
	}

	ctx := context.Background()
	s, err := admin.AppsV1().Deployments(ns).GetScale(ctx, "scheduler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = 1
	if _, err := admin.AppsV1().Deployments(ns).UpdateScale(ctx, "scheduler", s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitReplicas(t, admin, ns, "scheduler", 1, 30*time.Second)
	if code, r, stderr := doc(); code != 0 || !r.OK() {
		t.Errorf("after scaling scheduler to 1: exit %d, %s, %+v", code, stderr, r.Checks)
	}
}

// Verifies doctor --policy on a real API server: it takes the config from
// the ScalingPolicy as run --policy does, checks the permissions on the
// policy and its status with the shipped RBAC, and says which policy when
// it is missing or names a service elmascale refuses.
func TestDoctorReadsScalingPolicy(t *testing.T) {
	c := testcluster.ForTest(t)
	kubetest.InstallScalingPolicyCRD(t, c)
	ns := kubetest.Namespace(t, c)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil))
	apply := func(name, services string) {
		t.Helper()
		file := fmt.Sprintf("apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: %s\nservices:\n%s", ns, services)
		res, err := config.AsResource([]byte(file), name, ns)
		if err != nil {
			t.Fatal(err)
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(res, &u.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dynamic.NewForConfigOrDie(c.AdminConfig).Resource(v1alpha1.GroupVersionResource).Namespace(ns).
			Create(context.Background(), &u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	apply("shop", "  worker: {minReplicas: 1, maxReplicas: 4}\n")
	// The API server takes a dependsOn it cannot check; elmascale cannot.
	apply("broken", "  worker: {minReplicas: 1, maxReplicas: 4, dependsOn: [nowhere]}\n")
	doc := func(policy string) (int, doctor.Report, string) {
		var out, errb bytes.Buffer
		code := dispatch(context.Background(), []string{"doctor", "--kubeconfig", c.Kubeconfig(testcluster.UserElmascale),
			"--policy", policy, "--service-account", "self", "--leader-elect-namespace", ns, "-o", "json", "--metrics-auth=false"}, &out, &errb)
		var r doctor.Report
		_ = json.Unmarshal(out.Bytes(), &r)
		return code, r, errb.String()
	}

	code, r, stderr := doc(ns + "/shop")
	if code != 0 || r.Namespace != ns {
		t.Fatalf("doctor --policy %s/shop: exit %d, namespace %q, %s, %+v", ns, code, r.Namespace, stderr, r.Checks)
	}
	var onPolicy []string
	for _, ch := range r.Checks {
		if ch.Kind == doctor.KindPermission && strings.Contains(ch.Name, "scalingpolicies") {
			onPolicy = append(onPolicy, ch.Name)
			if ch.Severity != doctor.SeverityOK {
				t.Errorf("the shipped RBAC lacks %s: %+v", ch.Name, ch)
			}
		}
	}
	if len(onPolicy) != 2 {
		t.Errorf("permission checks on the policy %q, want reading it and writing its status", onPolicy)
	}

	for _, tc := range []struct{ policy, want string }{
		{ns + "/missing", "ScalingPolicy " + ns + "/missing"},
		{ns + "/broken", "spec.services.worker.dependsOn"},
	} {
		if code, _, stderr := doc(tc.policy); code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("doctor --policy %s: exit %d, stderr %q; want 1 naming %q", tc.policy, code, stderr, tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"doctor", "--policy", "shop"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "NAMESPACE/NAME") {
		t.Errorf("doctor --policy shop: exit %d, stderr %q; want 2 asking for NAMESPACE/NAME", code, errb.String())
	}
}
