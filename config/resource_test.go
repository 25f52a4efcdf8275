package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Verifies that the ELMA365 preset turned into a ScalingPolicy compiles to
// exactly the preset's Config, so one YAML serves validate, recommend,
// simulate and kubectl apply.
func TestResourceFormIsTheSameConfig(t *testing.T) {
	want, err := ELMA365Preset()
	if err != nil {
		t.Fatal(err)
	}
	res, err := AsResource(ELMA365PresetYAML(), "elma365", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"kind: ScalingPolicy", "metadata:\n  name: elma365\n  namespace: elma365\n", "spec:\n"} {
		if !strings.Contains(string(res), s) {
			t.Errorf("resource lacks %q:\n%s", s, res)
		}
	}
	got, err := Parse(res)
	if err != nil {
		t.Fatalf("resource form does not parse: %v\n%s", err, res)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resource form compiles differently (-file +resource):\n%s", diff)
	}
	if _, err := AsResource(res, "x", ""); err == nil {
		t.Error("AsResource of a resource: no error")
	}
}

// Verifies that a resource's problems are named under spec, as the API
// server names them, and that its header is checked.
func TestResourceErrorsAreUnderSpec(t *testing.T) {
	head := "apiVersion: elmascale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: p, namespace: shop}\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"compile error", head + "spec:\n  services:\n    api: {minReplicas: 5, maxReplicas: 2}\n",
			[]string{"spec.services.api: minReplicas 5 must be <= maxReplicas 2"}},
		{"unknown field", head + "spec:\n  servics: {}\n",
			[]string{"spec.servics: unknown field; did you mean services?"}},
		{"kind in spec", head + "spec:\n  kind: Config\n  services: {api: {}}\n",
			[]string{"spec.kind: unknown field"}},
		{"namespace differs", head + "spec:\n  namespace: other\n  services: {api: {}}\n",
			[]string{`spec.namespace: is "other", but the ScalingPolicy is in namespace "shop"`}},
		{"no spec", head, []string{"spec: missing"}},
		{"unknown top-level", head + "spce: {}\nspec: {services: {api: {}}}\n", []string{"spce: unknown field; did you mean spec?"}},
		{"wrong apiVersion", strings.Replace(head, "v1alpha1", "v1", 1) + "spec: {services: {api: {}}}\n", []string{`apiVersion: must be "elmascale.io/v1alpha1"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Verifies that a resource takes its namespace from metadata and that its
// status, which elmascale writes, does not make it invalid.
func TestResourceNamespaceAndStatus(t *testing.T) {
	cfg, err := Parse([]byte(`apiVersion: elmascale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: p, namespace: shop, labels: {a: b}, generation: 3}
spec:
  services:
    api: {maxReplicas: 4}
status:
  mode: dry-run
  services: [{name: api, current: 1, ready: 1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != "shop" {
		t.Errorf("namespace %q, want shop", cfg.Namespace)
	}
}
