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
	c.Policy.Mesh = &policy.MeshSpec{MinEdgeRate: src.MinEdgeRate, Workloads: meshWorkloads(c)}
	compileMeshTuning(v, m, c.Policy.Mesh)
}

// meshWorkloads maps each service whose scale target is named otherwise to
// the target's name, which is the workload label its mesh series carry.
func meshWorkloads(c *Config) map[string]string {
	var w map[string]string
	for _, s := range c.Services {
		if s.Target.Name != "" && s.Target.Name != s.Name {
			if w == nil {
				w = map[string]string{}
			}
			w[s.Name] = s.Target.Name
		}
	}
	return w
}

// compileMeshTuning sets how the policy judges the mesh's measurements;
// each knob left out keeps the policy's default (policy.DefaultMesh*).
func compileMeshTuning(v *validator, m *MeshFile, spec *policy.MeshSpec) {
	inRange := func(p *float64, path string, lo, hi float64) float64 {
		if p == nil {
			return 0
		}
		v.check(!math.IsNaN(*p) && *p >= lo && *p <= hi, path, "must be in [%g, %g]", lo, hi)
		return *p
	}
	spec.Growth = inRange(m.Growth, "mesh.growth", 0.05, 100)
	spec.TargetUtilization = inRange(m.TargetUtilization, "mesh.targetUtilization", 0.1, 1)
	spec.MinResponses = inRange(m.MinResponses, "mesh.minResponses", 1, 1e9)
	if m.MinGrowth != 0 {
		spec.MinGrowth = m.MinGrowth.D()
		v.check(spec.MinGrowth > 0 && spec.MinGrowth <= time.Minute, "mesh.minGrowth", "must be in (0s, 1m]")
	}
	if m.DrainTime != 0 {
		spec.DrainTime = m.DrainTime.D()
		v.check(spec.DrainTime > 0 && spec.DrainTime <= time.Hour, "mesh.drainTime", "must be in (0s, 1h]")
	}
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
