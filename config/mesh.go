package config

import (
	"math"
	"strings"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// Mesh providers a configuration can name.
const MeshLinkerd = "linkerd"

// MeshSource is where the collector reads the service mesh's proxy
// metrics, and how.
type MeshSource struct {
	// Provider is MeshLinkerd.
	Provider string
	// Namespace matched against the series' namespace and dst_namespace.
	Namespace string
	// Window of the rates.
	Window time.Duration
	// Selector is extra PromQL label matchers for every series selector,
	// without braces; empty for none.
	Selector string
	// MinEdgeRate: calls per second below which an edge is dropped.
	MinEdgeRate float64
}

// Defaults of the mesh block.
const (
	defaultMeshWindow      = time.Minute
	defaultMeshMinEdgeRate = 0.05
)

// compileMesh builds the collector's mesh source and the policy's use of
// it from the mesh block; nothing when the block is absent.
func compileMesh(v *validator, f *File, c *Config) {
	m := f.Mesh
	if m == nil {
		return
	}
	if m.Linkerd == nil {
		v.add("mesh", "must set a provider: linkerd")
		return
	}
	src := &MeshSource{Provider: MeshLinkerd, Namespace: m.Linkerd.Namespace, Window: defaultMeshWindow, Selector: strings.TrimSpace(m.Linkerd.Selector), MinEdgeRate: defaultMeshMinEdgeRate}
	if src.Namespace == "" {
		src.Namespace = f.Namespace
	}
	if m.Linkerd.Window != 0 {
		src.Window = m.Linkerd.Window.D()
	}
	v.check(src.Window >= 10*time.Second && src.Window <= time.Hour, "mesh.linkerd.window", "must be in [10s, 1h]")
	v.check(src.Window >= 2*c.Interval, "mesh.linkerd.window", "must be at least twice the interval (%s) so every tick sees a full window", c.Interval)
	v.check(!strings.ContainsAny(src.Selector, "{}"), "mesh.linkerd.selector", "must be label matchers without braces, e.g. job=\"linkerd-proxy\"")
	v.check(src.Namespace != "", "mesh.linkerd.namespace", "must be set when the config sets no namespace")
	if m.MinEdgeRate != nil {
		src.MinEdgeRate = *m.MinEdgeRate
		v.check(!math.IsNaN(src.MinEdgeRate) && src.MinEdgeRate >= 0 && src.MinEdgeRate <= 1e6, "mesh.minEdgeRate", "must be in [0, 1e6] calls per second")
	}
	c.Mesh = src
	c.Policy.Mesh = &policy.MeshSpec{MinEdgeRate: src.MinEdgeRate}
}
