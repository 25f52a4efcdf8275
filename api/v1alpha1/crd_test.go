package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The committed CRD and the chart's copy of it.
var crdFiles = []string{
	"../../deploy/base/crd/elmascale.io_scalingpolicies.yaml",
	"../../deploy/helm/elmascale/crds/elmascale.io_scalingpolicies.yaml",
}

// Verifies that the committed CRD is what controller-gen, at the version
// hack/tools pins, generates from the types today: a field added to the
// config file's types, or a marker changed, without `make crd` fails here.
// The generator is built from hack/tools/go.mod (the Go build cache makes
// that quick after the first time).
func TestCRDIsGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds controller-gen")
	}
	tmp := t.TempDir()
	gen := filepath.Join(tmp, "controller-gen")
	build := exec.Command("go", "build", "-C", "../../hack/tools", "-o", gen, "sigs.k8s.io/controller-tools/cmd/controller-gen")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building controller-gen from hack/tools: %v\n%s", err, out)
	}
	out := filepath.Join(tmp, "crd")
	run := exec.Command(gen, "crd:allowDangerousTypes=true", "paths=./api/...", "output:crd:dir="+out)
	run.Dir = "../.."
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(filepath.Join(out, "elmascale.io_scalingpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range crdFiles {
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not the generated CRD: run make crd", f)
		}
	}
}
