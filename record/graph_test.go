package record

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

func meshTick() loop.Tick {
	tk := tick([]policy.Decision{
		{Service: "main", Current: 2, Desired: 2, Reason: "within tolerance"},
		{Service: "files", Current: 2, Desired: 4, Bottleneck: true, Reason: "own latency 0.12s above its baseline"},
		{Service: "worker", Current: 2, Desired: 2},
	}, nil, nil)
	tk.Snapshot.Mesh = &policy.MeshObservation{Status: policy.StatusOK, Time: epoch, Window: time.Minute,
		Inbound: map[string]policy.MeshInbound{
			"main":  {RequestRate: 50, ResponseRate: 50, SuccessShare: 1, LatencyMean: 0.25, LatencyP95: 0.295},
			"files": {RequestRate: 110, ResponseRate: 110, SuccessShare: 10.0 / 11, LatencyMean: 0.12, LatencyP95: 0.195},
		},
		Edges: []policy.MeshEdge{
			{From: "main", To: "files", Rate: 50, LatencyMean: 0.121, SuccessShare: 1},
			{From: "main", To: "postgres", External: true, Rate: 20, LatencyMean: 0.08, SuccessShare: 1},
		}}
	return tk
}

// Verifies /api/v1/graph serves the last tick's graph in the Node Graph
// panel's field names: every meshed workload, External destination and
// decided service as a node (the async-only worker too), the bottleneck's
// arc and subtitle set, each edge with its rate and mean latency; and an
// empty graph, not an error, before the first tick.
func TestGraphEndpoint(t *testing.T) {
	h := NewHistory("dry-run", 100)
	e := Endpoints{Registry: prometheus.NewRegistry(), History: h}
	get := func() map[string]any {
		t.Helper()
		rec := httptest.NewRecorder()
		e.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/graph", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /api/v1/graph: %d %s", rec.Code, rec.Body)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return body
	}
	if b := get(); b["status"] != "none" || len(b["nodes"].([]any)) != 0 || len(b["edges"].([]any)) != 0 {
		t.Errorf("before any tick: %v", b)
	}
	h.Record(meshTick())
	g := h.Graph()
	var ids []string
	for _, n := range g.Nodes {
		ids = append(ids, n.ID+"/"+n.Subtitle)
	}
	if got, want := strings.Join(ids, " "), "files/bottleneck main/ postgres/external worker/"; got != want {
		t.Errorf("nodes %s, want %s", got, want)
	}
	files := g.Nodes[0]
	if files.ArcBottleneck != 1 || files.ArcClear != 0 || files.MainStat != 110 || files.SecondaryStat != 0.12 || files.DetailDesired == nil || *files.DetailDesired != 4 {
		t.Errorf("files node %+v", files)
	}
	if len(g.Edges) != 2 || g.Edges[0].ID != "main->files" || g.Edges[0].MainStat != 50 || !g.Edges[1].DetailExternal {
		t.Errorf("edges %+v", g.Edges)
	}
	b := get()
	node := b["nodes"].([]any)[0].(map[string]any)
	for _, f := range []string{"id", "title", "mainstat", "secondarystat", "arc__bottleneck", "arc__clear"} {
		if _, ok := node[f]; !ok {
			t.Errorf("node JSON lacks the Node Graph field %s: %v", f, node)
		}
	}
	edge := b["edges"].([]any)[0].(map[string]any)
	for _, f := range []string{"id", "source", "target", "mainstat", "secondarystat"} {
		if _, ok := edge[f]; !ok {
			t.Errorf("edge JSON lacks the Node Graph field %s: %v", f, edge)
		}
	}
	if b["status"] != "ok" || b["window"] != "1m0s" {
		t.Errorf("status %v window %v", b["status"], b["window"])
	}
}

// Verifies the graph's gauges: one series per node and edge with the ids
// the Node Graph panel joins on, the bottleneck as 1, and the series of an
// edge the mesh no longer sees deleted, not left at its last rate.
func TestGraphMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, true, "v")
	m.Record(meshTick())
	if v := testutil.ToFloat64(m.graph.nodeBottleneck.WithLabelValues("files", "files")); v != 1 {
		t.Errorf("files bottleneck gauge %v", v)
	}
	if v := testutil.ToFloat64(m.graph.edgeRate.WithLabelValues("main->postgres", "main", "postgres", "true")); v != 20 {
		t.Errorf("main->postgres rate %v", v)
	}
	if n := testutil.CollectAndCount(m.graph.edgeRate); n != 2 {
		t.Errorf("%d edge series, want 2", n)
	}
	next := meshTick()
	next.Snapshot.Mesh.Edges = next.Snapshot.Mesh.Edges[:1]
	m.Record(next)
	if n := testutil.CollectAndCount(m.graph.edgeRate); n != 1 {
		t.Errorf("%d edge series after postgres left the graph, want 1", n)
	}
	if n := testutil.CollectAndCount(m.graph.nodeRate); n != 3 {
		t.Errorf("%d node series after postgres left the graph, want 3", n)
	}
}

// Verifies a configuration without a mesh exports no graph series (the
// decided services alone are what the per-service series already say), and
// that the series of a mesh that was configured go when it is taken out.
func TestGraphMetricsWithoutMesh(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, true, "v")
	noMesh := meshTick()
	noMesh.Snapshot.Mesh = nil
	m.Record(noMesh)
	for name, g := range map[string]*prometheus.GaugeVec{"node rate": m.graph.nodeRate, "node bottleneck": m.graph.nodeBottleneck, "edge rate": m.graph.edgeRate} {
		if n := testutil.CollectAndCount(g); n != 0 {
			t.Errorf("%s: %d series without a mesh, want 0", name, n)
		}
	}
	m.Record(meshTick())
	if n := testutil.CollectAndCount(m.graph.nodeRate); n != 4 {
		t.Errorf("%d node series with the mesh, want 4", n)
	}
	m.Record(noMesh)
	if n := testutil.CollectAndCount(m.graph.nodeRate) + testutil.CollectAndCount(m.graph.edgeRate); n != 0 {
		t.Errorf("%d graph series left after the mesh was taken out, want 0", n)
	}
}
