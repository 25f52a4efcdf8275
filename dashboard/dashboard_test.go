package dashboard

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/elmascale/elmascale/deploy"
)

var update = flag.Bool("update", false, "rewrite deploy/grafana/elmascale.json")

const shipped = "../deploy/grafana/elmascale.json"

// Verifies the committed dashboard is exactly what the generator makes.
func TestShippedDashboardIsGenerated(t *testing.T) {
	got, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(shipped, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatalf("%v (run go test ./dashboard -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./dashboard -update", shipped)
	}
	for _, must := range []string{`"uid": "elmascale-decisions"`, `"name": "namespace"`, `"name": "service"`, `"Scale actions"`} {
		if !bytes.Contains(got, []byte(must)) {
			t.Errorf("dashboard lacks %s", must)
		}
	}
}

// expand replaces Grafana's variables with values a query would run with.
func expand(expr string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$namespace", ".*", "$service", ".*").Replace(expr)
}

// MetricNames returns the metric names a query selects, with histogram
// suffixes removed.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expand(expr))
	if err != nil {
		t.Fatalf("query does not parse: %v\n%s", err, expr)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, strings.TrimSuffix(vs.Name, "_bucket"))
		}
		return nil
	})
	return names
}

// Verifies every panel, annotation and variable query parses as PromQL and
// selects only metrics elmascale exports.
func TestQueriesParseAndUseExportedMetrics(t *testing.T) {
	qs := Queries()
	if len(qs) < 15 {
		t.Fatalf("only %d queries", len(qs))
	}
	exported := map[string]bool{}
	for _, m := range ExportedMetrics() {
		exported[m] = true
	}
	for _, q := range qs {
		names := metricNames(t, q.Expr)
		if len(names) == 0 {
			t.Errorf("%s: selects no metric: %s", q.Panel, q.Expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s is not a metric elmascale exports", q.Panel, n)
			}
		}
	}
}

// Verifies the binary's embedded dashboard is the generated one.
func TestEmbeddedDashboardIsGenerated(t *testing.T) {
	got, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, deploy.Dashboard) {
		t.Fatal("the embedded dashboard differs from the generated one: run go test ./dashboard -update and rebuild")
	}
}

// builtPanels returns the generated dashboard's panels by title.
func builtPanels(t *testing.T) (map[string]map[string]any, map[string]any) {
	t.Helper()
	data, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, p := range d["panels"].([]any) {
		pm := p.(map[string]any)
		out[pm["title"].(string)] = pm
	}
	return out, d
}

func exprs(p map[string]any) []string {
	var out []string
	for _, tg := range p["targets"].([]any) {
		out = append(out, tg.(map[string]any)["expr"].(string))
	}
	return out
}

func unit(p map[string]any) string {
	fc, _ := p["fieldConfig"].(map[string]any)
	def, _ := fc["defaults"].(map[string]any)
	u, _ := def["unit"].(string)
	return u
}

// Verifies what a person reading the dashboard relies on: the namespace
// variable lists the managed namespaces; the ratio panel reads 1 as 1×,
// not 100%, and divides every kind of signal, queues included, by its target;
// each signal values panel holds one kind, so one axis has one unit; the
// replicas panel repeats per service instead of drawing every service's
// lines at once and shows the bounds; the latest decisions, the limiting
// rules and the budget have panels; annotations say why.
func TestDashboardReadsRight(t *testing.T) {
	panels, d := builtPanels(t)
	var nsQuery string
	for _, v := range d["templating"].(map[string]any)["list"].([]any) {
		if vm := v.(map[string]any); vm["name"] == "namespace" {
			nsQuery, _ = vm["query"].(string)
		}
	}
	if nsQuery != "label_values(elmascale_config_info, target_namespace)" {
		t.Errorf("namespace variable query %q: want the managed namespaces", nsQuery)
	}

	ratio := panels["Signals against their targets"]
	if u := unit(ratio); u == "percentunit" || u == "percent" {
		t.Errorf("ratio panel unit %q shows 1× as 100%%", u)
	}
	// A queue's target is positive whenever it has replicas, overrun or not
	// (policy's TestQueueValueAndTargetAreThroughputs), so no kind needs to
	// be left out of, or treated apart in, the ratio.
	for _, e := range exprs(ratio) {
		if strings.Contains(e, "kind") {
			t.Errorf("the ratio panel selects by kind, leaving some signals out: %q", e)
		}
	}

	for title, kind := range map[string]string{"Utilization signals": `kind=~"utilization"`, "Latency signals": `kind=~"latency"`,
		"Queue signals": `kind=~"queue"`, "Other signals": `kind=~"perReplica|object|pods"`} {
		p, ok := panels[title]
		if !ok {
			t.Errorf("no %s panel", title)
			continue
		}
		for _, e := range exprs(p) {
			if !strings.Contains(e, kind) {
				t.Errorf("%s mixes signal kinds: %s", title, e)
			}
		}
	}
	for title, p := range panels {
		if title == "Signals against their targets" {
			continue // value ÷ target has one unit, ×, whatever the kind
		}
		for _, e := range exprs(p) {
			if strings.Contains(e, "elmascale_signal_value") && !strings.Contains(e, "kind") {
				t.Errorf("%s plots signals of every kind on one axis: %s", title, e)
			}
		}
	}

	rep := panels["Replicas: $service"]
	if rep == nil || rep["repeat"] != "service" {
		t.Fatalf("the replicas panel is not repeated per service: %v", rep)
	}
	all := strings.Join(exprs(rep), "\n")
	for _, m := range []string{"elmascale_replicas_min", "elmascale_replicas_max", "elmascale_replicas_desired"} {
		if !strings.Contains(all, m) {
			t.Errorf("replicas panel lacks %s", m)
		}
	}
	for _, title := range []string{"Latest decision per service", "Services by limiting rule", "Budget in use"} {
		if panels[title] == nil {
			t.Errorf("no %q panel", title)
		}
	}
	table := strings.Join(exprs(panels["Latest decision per service"]), "\n")
	if !strings.Contains(table, "elmascale_decision_info") || !strings.Contains(table, "limited_by") {
		t.Errorf("the decisions table lacks the limiting rule: %s", table)
	}
	ann := d["annotations"].(map[string]any)["list"].([]any)
	found := false
	for _, a := range ann {
		if tf, _ := a.(map[string]any)["titleFormat"].(string); strings.Contains(tf, "{{limited_by}}") && strings.Contains(tf, "{{direction}}") {
			found = true
		}
	}
	if !found {
		t.Error("no annotation carries the direction and the limiting rule")
	}
}
