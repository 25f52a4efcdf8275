package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// meshCollector is a fakeCollector that also answers the mesh.
type meshCollector struct {
	fakeCollector
	obs policy.MeshObservation
}

func (m meshCollector) CollectMesh(context.Context, *config.Config, time.Time) policy.MeshObservation {
	return m.obs
}

// Verifies the mesh check: absent without a mesh block; with one, the
// graph found when the Linkerd series resolve, the managed services the
// mesh sees no traffic of named for information, and a problem with a fix
// naming Linkerd's series when they do not resolve or the collector cannot
// read a mesh at all.
func TestMeshCheck(t *testing.T) {
	plain, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(testConfig + "mesh: {linkerd: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := func(c loop.Collector) Options {
		return Options{Collector: c, Targets: fakeTargets{}, Access: denyAccess{}, Sources: Sources{PrometheusURL: "http://p"}}
	}
	meshChecks := func(r Report) []Check {
		var out []Check
		for _, c := range r.Checks {
			if c.Kind == KindMesh {
				out = append(out, c)
			}
		}
		return out
	}
	if got := meshChecks(Run(context.Background(), plain, opts(fakeCollector{}), epoch)); len(got) != 0 {
		t.Errorf("mesh checks without a mesh block: %+v", got)
	}

	ok := policy.MeshObservation{Status: policy.StatusOK, Window: time.Minute,
		Inbound: map[string]policy.MeshInbound{"main": {RequestRate: 5}},
		Edges:   []policy.MeshEdge{{From: "main", To: "auth", Rate: 5}, {From: "main", To: "postgres", External: true, Rate: 1}}}
	r := Run(context.Background(), cfg, opts(meshCollector{obs: ok}), epoch)
	c := find(t, r, KindMesh, "", "linkerd")
	if c.Severity != SeverityOK || !strings.Contains(c.Detail, "inbound traffic of 1 workloads, 2 edges of which 1 to destinations outside the mesh") {
		t.Errorf("resolving mesh: %+v", c)
	}
	if u := find(t, r, KindMesh, "", "unseen"); u.Severity != SeverityInfo || !strings.Contains(u.Detail, "chat, scheduler, worker") {
		t.Errorf("unseen services: %+v", u)
	}

	missing := policy.MeshObservation{Status: policy.StatusMissing, Error: `mesh: no Linkerd series (request_total, response_latency_ms) with namespace="elma365"`}
	r = Run(context.Background(), cfg, opts(meshCollector{obs: missing}), epoch)
	if c := find(t, r, KindMesh, "", "linkerd"); c.Severity != SeverityProblem || !strings.Contains(c.Fix, "response_latency_ms") || !strings.Contains(c.Fix, "linkerd.io/inject") {
		t.Errorf("missing mesh: %+v", c)
	}
	if r.OK() {
		t.Error("a mesh that does not resolve must fail the report")
	}
	r = Run(context.Background(), cfg, opts(fakeCollector{}), epoch)
	if c := find(t, r, KindMesh, "", "linkerd"); c.Severity != SeverityProblem || c.Detail != loop.NoMeshSource {
		t.Errorf("collector without a mesh source: %+v", c)
	}
}
