package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Verifies that the shipped ScalingPolicy is a config every command reads:
// validate takes it as it takes the preset file, and recommend decides
// with it; a resource's problems are named under spec.
func TestCommandsReadAScalingPolicy(t *testing.T) {
	const policy = "../../deploy/components/scalingpolicy/elma365.yaml"
	code, out, errOut := run(t, "validate", "--config", policy)
	if code != 0 || !strings.Contains(out, "valid: 26 services (3 pinned at one)") {
		t.Fatalf("validate of the ScalingPolicy: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = run(t, "recommend", "--config", policy, "--snapshot", "../../examples/snapshots/script-storm.json")
	if code != 0 || !strings.Contains(out, "worker") {
		t.Fatalf("recommend with the ScalingPolicy: exit %d, %q %q", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  services:\n    a: {minReplicas: -1}\n"), 0o644)
	if code, _, errOut := run(t, "validate", "--config", bad); code != 1 || !strings.Contains(errOut, "spec.services.a.minReplicas: must be >= 0") {
		t.Errorf("bad ScalingPolicy: exit %d, %q", code, errOut)
	}
}

// Verifies that run refuses --policy with --config, and a malformed
// --policy, as command-line errors (exit 2).
func TestRunPolicyFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--policy", "elma365/elma365", "--config", "x.yaml"}, "--policy and --config both name the config"},
		{[]string{"run", "--policy", "elma365"}, "want namespace/name"},
		{[]string{"run", "--policy", "a/b/c"}, "want namespace/name"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
