package dashboard

import (
	"bytes"
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
