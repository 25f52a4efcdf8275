package config

import (
	"math"
	"regexp"
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
	if strings.ContainsAny(src.Selector, "{}") {
		v.add("mesh.linkerd.selector", "must be label matchers without braces, e.g. job=\"linkerd-proxy\"")
	} else {
		checkMeshSelector(v, src.Selector)
	}
	v.check(src.Namespace != "", "mesh.linkerd.namespace", "must be set when the config sets no namespace")
	if m.MinEdgeRate != nil {
		src.MinEdgeRate = *m.MinEdgeRate
		v.check(!math.IsNaN(src.MinEdgeRate) && src.MinEdgeRate >= 0 && src.MinEdgeRate <= 1e6, "mesh.minEdgeRate", "must be in [0, 1e6] calls per second")
	}
	c.Mesh = src
	c.Policy.Mesh = &policy.MeshSpec{MinEdgeRate: src.MinEdgeRate}
}

// meshMatcher is one PromQL label matcher: name, operator, quoted value.
var meshMatcher = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*$`)

// checkMeshSelector refuses a selector Prometheus would reject, or one
// that fights the source's own matchers: direction is set per question
// (inbound, then outbound) and namespace by mesh.linkerd.namespace, so a
// matcher on either would empty one of the questions without an error.
func checkMeshSelector(v *validator, sel string) {
	if sel == "" {
		return
	}
	for _, m := range splitMatchers(sel) {
		sm := meshMatcher.FindStringSubmatch(m)
		if sm == nil {
			v.add("mesh.linkerd.selector", "%q is not a label matcher like job=\"linkerd-proxy\" (name, =, !=, =~ or !~, a quoted value)", strings.TrimSpace(m))
			continue
		}
		switch sm[1] {
		case "direction":
			v.add("mesh.linkerd.selector", "must not match direction: each query sets it (inbound, outbound)")
		case "namespace":
			v.add("mesh.linkerd.selector", "must not match namespace: set mesh.linkerd.namespace instead")
		}
	}
}

// splitMatchers splits a selector at the commas outside quoted values.
func splitMatchers(sel string) []string {
	var out []string
	start, escaped := 0, false
	var quote rune
	for i, r := range sel {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && quote != 0:
			escaped = true
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case r == quote:
			quote = 0
		case r == ',' && quote == 0:
			out = append(out, sel[start:i])
			start = i + 1
		}
	}
	if rest := sel[start:]; strings.TrimSpace(rest) != "" || len(out) == 0 {
		out = append(out, rest)
	}
	return out
}
