package record

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elmascale/elmascale/loop"
)

// The call graph as the last tick saw it: the service mesh's edges and
// every workload's inbound traffic, with the services the plan marked as a
// bottleneck. GET /api/v1/graph serves it in the shape Grafana's Node
// Graph panel reads (a nodes frame and an edges frame, its field names),
// and the elmascale_graph_* gauges carry the same, so the dashboard's Node
// Graph panel needs only the Prometheus that scrapes elmascale.

// maxGraphEdges bounds the edges kept: the mesh, not the config, decides
// how many there are, and a label set per edge must stay bounded.
const maxGraphEdges = 2000

// Graph is the body of GET /api/v1/graph.
type Graph struct {
	Time time.Time `json:"time"`
	// Status of the mesh observation (ok, missing, failed, stale,
	// invalid); "none" when no mesh is configured.
	Status string `json:"status"`
	// Error says why the mesh observation is not ok, or what it dropped.
	Error string `json:"error,omitempty"`
	// Window the rates are taken over, e.g. "1m0s".
	Window string      `json:"window,omitempty"`
	Nodes  []GraphNode `json:"nodes"`
	Edges  []GraphEdge `json:"edges"`
	// Truncated is set when edges beyond maxGraphEdges were left out.
	Truncated bool `json:"truncated,omitempty"`
}

// GraphNode is one workload or service: a managed service (its decision's
// name), a meshed workload, or an External destination. Field names are
// the Node Graph panel's.
type GraphNode struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Subtitle: "bottleneck", "external", or empty.
	Subtitle string `json:"subtitle,omitempty"`
	// MainStat is inbound requests per second; SecondaryStat the mean
	// inbound latency in seconds (0 when the mesh has no inbound traffic).
	MainStat      float64 `json:"mainstat"`
	SecondaryStat float64 `json:"secondarystat"`
	// ArcBottleneck is 1 for a bottleneck, ArcClear 1 otherwise: the two
	// colored sections of the node's circle.
	ArcBottleneck float64 `json:"arc__bottleneck"`
	ArcClear      float64 `json:"arc__clear"`
	// DetailP95 is the inbound p95 latency in seconds, DetailSuccess the
	// inbound success share (-1 unknown), DetailDesired the decided
	// replicas (absent for workloads elmascale does not manage).
	DetailP95     float64 `json:"detail__p95_seconds,omitempty"`
	DetailSuccess float64 `json:"detail__success_share"`
	DetailDesired *int32  `json:"detail__desired_replicas,omitempty"`
	DetailReason  string  `json:"detail__reason,omitempty"`
}

// GraphEdge is the calls one workload made to another.
type GraphEdge struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Target string `json:"target"`
	// MainStat is calls per second; SecondaryStat the mean seconds a call
	// took as its caller saw it.
	MainStat      float64 `json:"mainstat"`
	SecondaryStat float64 `json:"secondarystat"`
	DetailSuccess float64 `json:"detail__success_share"`
	// DetailExternal is true when the target is outside the mesh (a data
	// store, another namespace, a host outside the cluster).
	DetailExternal bool `json:"detail__external,omitempty"`
}

// edgeID names an edge in the graph and in its gauges' id label.
func edgeID(from, to string) string { return from + "->" + to }

// BuildGraph is the graph of one tick: the mesh's edges and inbound
// traffic, and every decided service, bottlenecks marked.
func BuildGraph(t loop.Tick) Graph {
	g := Graph{Time: t.Time, Status: "none", Nodes: []GraphNode{}, Edges: []GraphEdge{}}
	nodes := map[string]*GraphNode{}
	node := func(id string) *GraphNode {
		n := nodes[id]
		if n == nil {
			n = &GraphNode{ID: id, Title: id, ArcClear: 1, DetailSuccess: -1}
			nodes[id] = n
		}
		return n
	}
	if m := t.Snapshot.Mesh; m != nil {
		g.Status, g.Error = string(m.Status), Redact(m.Error)
		if m.Window > 0 {
			g.Window = m.Window.String()
		}
		for name, in := range m.Inbound {
			n := node(name)
			n.MainStat, n.SecondaryStat, n.DetailP95, n.DetailSuccess = in.RequestRate, in.LatencyMean, in.LatencyP95, in.SuccessShare
		}
		for i, e := range m.Edges {
			if i == maxGraphEdges {
				g.Truncated = true
				break
			}
			node(e.From)
			if to := node(e.To); e.External {
				to.Subtitle = "external"
			}
			g.Edges = append(g.Edges, GraphEdge{ID: edgeID(e.From, e.To), Source: e.From, Target: e.To,
				MainStat: e.Rate, SecondaryStat: e.LatencyMean, DetailSuccess: e.SuccessShare, DetailExternal: e.External})
		}
	}
	for _, d := range t.Plan.Decisions {
		n := node(d.Service)
		desired := d.Desired
		n.DetailDesired, n.DetailReason = &desired, Redact(d.Reason)
		if d.Bottleneck {
			n.Subtitle, n.ArcBottleneck, n.ArcClear = "bottleneck", 1, 0
		}
	}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(a, b GraphNode) int { return strings.Compare(a.ID, b.ID) })
	return g
}

// graphStore keeps the last tick's graph for the HTTP surface.
type graphStore struct {
	mu sync.RWMutex
	g  *Graph
}

func (s *graphStore) set(g Graph) {
	s.mu.Lock()
	s.g = &g
	s.mu.Unlock()
}

func (s *graphStore) get() Graph {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.g == nil {
		return Graph{Status: "none", Nodes: []GraphNode{}, Edges: []GraphEdge{}}
	}
	return *s.g
}

// Graph returns the last tick's graph.
func (h *History) Graph() Graph { return h.graph.get() }

// ServeGraph serves GET /api/v1/graph.
func (h *History) ServeGraph(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, h.Graph())
}

// graphMetrics are the graph's gauges: per node its inbound rate, mean
// latency and whether it is a bottleneck; per edge its rate and mean
// latency. Node and edge ids are labels, as the Node Graph panel names its
// fields, so a table-format query gives it its frames directly.
type graphMetrics struct {
	nodeRate, nodeLatency, nodeBottleneck *prometheus.GaugeVec
	edgeRate, edgeLatency                 *prometheus.GaugeVec

	nodes map[[2]string]bool
	edges map[[4]string]bool
}

func newGraphMetrics() *graphMetrics {
	node := []string{"id", "title"}
	edge := []string{"id", "source", "target", "external"}
	return &graphMetrics{
		nodeRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_graph_node_requests_per_second",
			Help: "Inbound requests per second of a workload as the service mesh measured it at the last tick (0 for a decided service the mesh saw no traffic to)."}, node),
		nodeLatency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_graph_node_latency_seconds",
			Help: "Mean inbound latency of a workload, in seconds, as the service mesh measured it at the last tick."}, node),
		nodeBottleneck: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_graph_node_bottleneck",
			Help: "1 when the node is a service the last plan marked as a bottleneck, else 0."}, node),
		edgeRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_graph_edge_requests_per_second",
			Help: "Calls per second from source to target as the caller's mesh proxy counted them at the last tick. id is source->target; external: true when the target is outside the mesh."}, edge),
		edgeLatency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elmascale_graph_edge_latency_seconds",
			Help: "Mean seconds a call from source to target took as the caller saw it, at the last tick."}, edge),
		nodes: map[[2]string]bool{},
		edges: map[[4]string]bool{},
	}
}

func (g *graphMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.nodeRate, g.nodeLatency, g.nodeBottleneck, g.edgeRate, g.edgeLatency}
}

// record sets the gauges from a graph and deletes the label sets of nodes
// and edges that left it.
func (g *graphMetrics) record(gr Graph) {
	nodes := make(map[[2]string]bool, len(gr.Nodes))
	for _, n := range gr.Nodes {
		k := [2]string{n.ID, n.Title}
		nodes[k] = true
		g.nodeRate.WithLabelValues(k[:]...).Set(n.MainStat)
		g.nodeLatency.WithLabelValues(k[:]...).Set(n.SecondaryStat)
		g.nodeBottleneck.WithLabelValues(k[:]...).Set(n.ArcBottleneck)
	}
	deleteVanished(g.nodes, nodes, func(k [2]string) []string { return k[:] }, g.nodeRate, g.nodeLatency, g.nodeBottleneck)
	g.nodes = nodes
	edges := make(map[[4]string]bool, len(gr.Edges))
	for _, e := range gr.Edges {
		ext := "false"
		if e.DetailExternal {
			ext = "true"
		}
		k := [4]string{e.ID, e.Source, e.Target, ext}
		edges[k] = true
		g.edgeRate.WithLabelValues(k[:]...).Set(e.MainStat)
		g.edgeLatency.WithLabelValues(k[:]...).Set(e.SecondaryStat)
	}
	deleteVanished(g.edges, edges, func(k [4]string) []string { return k[:] }, g.edgeRate, g.edgeLatency)
	g.edges = edges
}
