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
