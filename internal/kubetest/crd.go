package kubetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/elmascale/elmascale/internal/testcluster"
)

// ScalingPolicyCRD is the shipped CRD file.
func ScalingPolicyCRD() string {
	return filepath.Join(RepoRoot(), "deploy", "base", "crd", "elmascale.io_scalingpolicies.yaml")
}

// InstallScalingPolicyCRD installs the shipped ScalingPolicy CRD (updating
// it when a test binary finds an older one) and waits until the API server
// serves elmascale.io/v1alpha1.
func InstallScalingPolicyCRD(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	data, err := os.ReadFile(ScalingPolicyCRD())
	if err != nil {
		t.Fatal(err)
	}
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal(data, &crd.Object); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(c.AdminConfig)
	_, err = dyn.Resource(crdGVR).Create(ctx, &crd, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
		if gerr != nil {
			t.Fatal(gerr)
		}
		crd.SetResourceVersion(cur.GetResourceVersion())
		_, err = dyn.Resource(crdGVR).Update(ctx, &crd, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("installing %s: %v", ScalingPolicyCRD(), err)
	}
	disc := kubernetes.NewForConfigOrDie(c.AdminConfig).Discovery()
	WaitFor(t, 30*time.Second, "the ScalingPolicy CRD to be served", func() error {
		_, err := disc.ServerResourcesForGroupVersion("elmascale.io/v1alpha1")
		return err
	})
}
