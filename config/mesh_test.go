package config

import (
	"strings"
	"testing"
	"time"
)

const meshBase = `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
services:
  main: {signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]}
`

// Verifies the mesh block: defaults, the policy's spec built beside the
// collector's source, and each refusal naming its field.
func TestMeshBlock(t *testing.T) {
	c, err := Parse([]byte(meshBase + "mesh: {linkerd: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mesh == nil || c.Mesh.Provider != MeshLinkerd || c.Mesh.Namespace != "elma365" || c.Mesh.Window != time.Minute || c.Mesh.MinEdgeRate != 0.05 {
		t.Fatalf("mesh source %+v", c.Mesh)
	}
	if c.Policy.Mesh == nil || c.Policy.Mesh.MinEdgeRate != 0.05 {
		t.Fatalf("policy mesh %+v", c.Policy.Mesh)
	}
	for _, sel := range []string{`job="linkerd-proxy"`, `job="linkerd-proxy", cluster=~'a,b|c', pod!="x\"y",`} {
		c, err := Parse([]byte(meshBase + "mesh: {linkerd: {selector: '" + strings.ReplaceAll(sel, "'", "''") + "'}}\n"))
		if err != nil || c.Mesh.Selector != sel {
			t.Errorf("selector %s: %v, %+v", sel, err, c)
		}
	}
	if c, err := Parse([]byte(meshBase)); err != nil || c.Mesh != nil || c.Policy.Mesh != nil {
		t.Fatalf("no mesh block: %v, %+v", err, c)
	}
	for _, tc := range []struct{ block, want string }{
		{`mesh: {}`, "mesh: must set a provider"},
		{`mesh: {linkerd: {window: 5s}}`, "mesh.linkerd.window: must be in [10s, 1h]"},
		{"interval: 1m\nmesh: {linkerd: {window: 1m}}", "mesh.linkerd.window: must be at least twice the interval"},
		{`mesh: {linkerd: {selector: "{job=\"x\"}"}}`, "mesh.linkerd.selector: must be label matchers without braces"},
		{`mesh: {linkerd: {}, minEdgeRate: -1}`, "mesh.minEdgeRate: must be in [0, 1e6]"},
		{`mesh: {linkerd: {windw: 1m}}`, "windw"},
		{`mesh: {linkerd: {selector: 'job="a", linkerd'}}`, `mesh.linkerd.selector: "linkerd" is not a label matcher`},
		{`mesh: {linkerd: {selector: 'job=linkerd-proxy'}}`, `mesh.linkerd.selector: "job=linkerd-proxy" is not a label matcher`},
		{`mesh: {linkerd: {selector: 'direction="inbound"'}}`, "mesh.linkerd.selector: must not match direction"},
		{`mesh: {linkerd: {selector: 'namespace=~"elma.*"'}}`, "mesh.linkerd.selector: must not match namespace: set mesh.linkerd.namespace instead"},
	} {
		_, err := Parse([]byte(meshBase + tc.block + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.block, err, tc.want)
		}
	}
}

// Verifies the mesh block's tuning knobs reach the policy, each refused
// out of range with its path, and that a service whose target is named
// otherwise is found in the mesh under its target's name.
func TestMeshTuningAndWorkloads(t *testing.T) {
	c, err := Parse([]byte(meshBase + `  files: {target: {name: diskjockey}, signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 70}}]}
mesh: {linkerd: {}, growth: 1, minGrowth: 5ms, targetUtilization: 0.7, drainTime: 20s, minResponses: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Policy.Mesh
	if m.Growth != 1 || m.MinGrowth != 5*time.Millisecond || m.TargetUtilization != 0.7 || m.DrainTime != 20*time.Second || m.MinResponses != 10 {
		t.Errorf("tuning %+v", m)
	}
	if len(m.Workloads) != 1 || m.Workloads["files"] != "diskjockey" {
		t.Errorf("workloads %v, want files → diskjockey only", m.Workloads)
	}
	d, err := Parse([]byte(meshBase + "mesh: {linkerd: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if dm := d.Policy.Mesh; dm.Growth != 0 || dm.MinGrowth != 0 || dm.TargetUtilization != 0 || dm.DrainTime != 0 || dm.MinResponses != 0 || dm.Workloads != nil {
		t.Errorf("defaults left to the policy, got %+v", dm)
	}
	for _, tc := range []struct{ block, want string }{
		{`growth: 0`, "mesh.growth: must be in [0.05, 100]"},
		{`targetUtilization: 1.5`, "mesh.targetUtilization: must be in [0.1, 1]"},
		{`minResponses: 0`, "mesh.minResponses: must be in [1, 1e+09]"},
		{`minGrowth: 2m`, "mesh.minGrowth: must be in (0s, 1m]"},
		{`drainTime: -1s`, "mesh.drainTime: must be in (0s, 1h]"},
	} {
		_, err := Parse([]byte(meshBase + "mesh: {linkerd: {}, " + tc.block + "}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.block, err, tc.want)
		}
	}
}
