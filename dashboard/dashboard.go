// Package dashboard generates the Grafana dashboard of elmascale's scaling
// decisions from the metrics the daemon exports.
package dashboard

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	gdash "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/nodegraph"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's stable identifier.
const UID = "elmascale-decisions"

// svc selects the services picked in the service variable.
const svc = `service=~"$service"`

// inNamespace is 1 for every elmascale process (by job and instance) whose
// config manages a namespace picked in the namespace variable. The
// namespace is the managed one (elma365), not elmascale's own: the scrape
// adds the latter to every series, and a person picks the former.
const inNamespace = `max by (job, instance) (elmascale_config_info{target_namespace=~"$namespace"})`

// scoped keeps the series of expr that come from an elmascale process
// managing the picked namespaces. expr must keep the job and instance
// labels (a selector, or a rate of one).
func scoped(expr string) string {
	return fmt.Sprintf("(%s * on (job, instance) group_left () %s)", expr, inNamespace)
}

// series selects a per-service metric of the picked services and
// namespaces.
func series(metric string) string { return scoped(metric + "{" + svc + "}") }

// global selects a metric without a service label in the picked
// namespaces.
func global(metric string) string { return scoped(metric) }

// Query is one PromQL expression of a panel or annotation, with where it
// appears, so tests can check every one.
type Query struct {
	Panel string
	Expr  string
}

// spec lists the panels, in order, each with its queries. It is the single
// source both the JSON and the query list come from.
type panelSpec struct {
	title, description string
	kind               string // timeseries, stat, statetimeline, table, nodegraph
	unit               string
	axisLabel          string
	decimals           *float64
	width, height      uint32
	mappings           []gdash.ValueMapping
	targets            []target
	// repeat names the variable the panel is repeated for, one panel per
	// value; maxPerRow bounds them per row.
	repeat    string
	maxPerRow float64
	stacked   bool
	// transformations, for tables built from several queries.
	transformations []gdash.DataTransformerConfig
}

type target struct {
	expr, legend string
	instant      bool
	table        bool
}

func boolMapping(zero, one string) []gdash.ValueMapping {
	z, o := zero, one
	return []gdash.ValueMapping{{ValueMap: &gdash.ValueMap{Type: gdash.MappingTypeValueToText, Options: map[string]gdash.ValueMappingResult{
		"0": {Text: &z}, "1": {Text: &o},
	}}}}
}

func zeroDecimals() *float64 { z := 0.0; return &z }

// signalPanel shows the value and target of one kind of signal, so one
// axis never mixes percent, seconds and messages.
func signalPanel(title, kinds, unit, axis, description string) panelSpec {
	sel := fmt.Sprintf(`elmascale_signal_%%s{%s, kind=~"%s"}`, svc, kinds)
	return panelSpec{
		title: title, kind: "timeseries", unit: unit, axisLabel: axis, width: 12, height: 8, description: description,
		targets: []target{
			{expr: fmt.Sprintf("max by (service, signal) %s", scoped(fmt.Sprintf(sel, "value"))), legend: "{{service}} {{signal}} value"},
			{expr: fmt.Sprintf("max by (service, signal) %s", scoped(fmt.Sprintf(sel, "target"))), legend: "{{service}} {{signal}} target"},
		},
	}
}

func panels() []panelSpec {
	return []panelSpec{
		{
			title: "Mode", kind: "stat", width: 4, height: 4,
			description: "apply changes replicas; dry-run only publishes recommendations.",
			mappings:    boolMapping("apply", "dry-run"),
			targets:     []target{{expr: fmt.Sprintf("max(%s)", global("elmascale_dry_run")), instant: true}},
		},
		{
			title: "Leader", kind: "stat", width: 4, height: 4,
			description: "Which elmascale pod holds the Lease and may write.",
			mappings:    boolMapping("standby", "leader"),
			targets:     []target{{expr: fmt.Sprintf("max by (pod) %s", global("elmascale_leader")), legend: "{{pod}}", instant: true}},
		},
		{
			title: "Total desired replicas", kind: "stat", width: 4, height: 4, decimals: zeroDecimals(),
			targets: []target{{expr: fmt.Sprintf("sum(max by (service) %s)", series("elmascale_replicas_desired")), instant: true}},
		},
		{
			title: "Budget in use", kind: "stat", width: 6, height: 4, decimals: zeroDecimals(),
			description: "Desired replicas of all managed services against budget.maxTotalReplicas (0: no cap). At the cap, scarce replicas go to the bottleneck first.",
			targets: []target{
				{expr: fmt.Sprintf("sum(max by (service) %s)", scoped(`elmascale_replicas_desired`)), legend: "in use", instant: true},
				{expr: fmt.Sprintf("max(%s)", global("elmascale_budget_max_total_replicas")), legend: "cap", instant: true},
			},
		},
		{
			title: "Handed off", kind: "stat", width: 6, height: 4, decimals: zeroDecimals(),
			description: "Targets another autoscaler (HPA, KEDA) or a pause annotation owns; elmascale leaves them alone. Which, and to whom: /api/v1/decisions and the target's Events.",
			targets:     []target{{expr: fmt.Sprintf("count(max by (service, owner) %s > 0) or vector(0)", series("elmascale_handoffs")), legend: "targets", instant: true}},
		},
		{
			title: "Latest decision per service", kind: "table", width: 24, height: 9,
			description: "Each service's last decision: replicas, bounds, the direction, the rule that limited it and the HPA ScalingLimited reason. The full sentence with the signals' values is in /api/v1/decisions and the target's Events.",
			targets: []target{
				{expr: fmt.Sprintf("max by (service, direction, limited_by, scaling_limited) %s", series("elmascale_decision_info")), instant: true, table: true},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_current")), instant: true, table: true},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_desired")), instant: true, table: true},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_min")), instant: true, table: true},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_max")), instant: true, table: true},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_bottleneck")), instant: true, table: true},
			},
			transformations: []gdash.DataTransformerConfig{
				{Id: "merge", Options: map[string]any{}},
				{Id: "organize", Options: map[string]any{
					"excludeByName": map[string]bool{"Time": true, "Value #A": true},
					"indexByName":   map[string]int{"service": 0, "Value #B": 1, "Value #C": 2, "Value #D": 3, "Value #E": 4, "direction": 5, "limited_by": 6, "scaling_limited": 7, "Value #F": 8},
					"renameByName": map[string]string{"Value #B": "current", "Value #C": "desired", "Value #D": "min", "Value #E": "max",
						"limited_by": "limited by", "scaling_limited": "HPA reason", "Value #F": "bottleneck"},
				}},
			},
		},
		{
			title: "Replicas: $service", kind: "timeseries", width: 6, height: 7, decimals: zeroDecimals(), axisLabel: "replicas",
			repeat: "service", maxPerRow: 4,
			description: "One panel per service. Desired is what the policy decided; recommended is what dry-run would apply; min and max are the bounds in force.",
			targets: []target{
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_current")), legend: "current"},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_desired")), legend: "desired"},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_recommended")), legend: "recommended"},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_ready")), legend: "ready"},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_min")), legend: "min"},
				{expr: fmt.Sprintf("max by (service) %s", series("elmascale_replicas_max")), legend: "max"},
			},
		},
		{
			title: "Bottleneck", kind: "statetimeline", width: 24, height: 7,
			description: "The services found to be the real bottleneck: saturated on their own signals, or the deepest saturated dependency explaining latency upstream.",
			mappings:    boolMapping("ok", "bottleneck"),
			targets:     []target{{expr: fmt.Sprintf("max by (service) %s", series("elmascale_bottleneck")), legend: "{{service}}"}},
		},
		callGraphPanel(),
		{
			title: "Services by limiting rule", kind: "timeseries", width: 12, height: 8, decimals: zeroDecimals(), axisLabel: "services", stacked: true,
			description: "How many services each rule held at the last decision: none (the signals' proposal stood), hold (signals missing), stabilization, rate, min, max, pinned, budget.",
			targets:     []target{{expr: fmt.Sprintf("count by (limited_by) (max by (service, limited_by) %s)", series("elmascale_decision_info")), legend: "{{limited_by}}"}},
		},
		{
			title: "Scale actions", kind: "timeseries", width: 12, height: 8, axisLabel: "changes",
			description: "Changes of replicas by direction and by the rule that limited them.",
			targets: []target{{
				expr:   fmt.Sprintf("sum by (service, direction, limited_by) (%s)", scoped(fmt.Sprintf("increase(elmascale_scale_actions_total{%s}[$__rate_interval])", svc))),
				legend: "{{service}} {{direction}} ({{limited_by}})",
			}},
		},
		{
			title: "Signals against their targets", kind: "timeseries", unit: "suffix:×", axisLabel: "value ÷ target", width: 24, height: 8,
			description: "Each signal's value divided by its target: above 1× asks for more replicas. For a queue, the throughput needed divided by what the current replicas give, so an overrun queue stands far above 1×; a target of 0 (no replicas yet) has no ratio.",
			targets: []target{{
				expr: fmt.Sprintf("max by (service, signal) %s / max by (service, signal) (%s > 0)",
					scoped(fmt.Sprintf(`elmascale_signal_value{%s}`, svc)), scoped(fmt.Sprintf(`elmascale_signal_target{%s}`, svc))),
				legend: "{{service}} {{signal}}",
			}},
		},
		signalPanel("Utilization signals", "utilization", "percent", "% of requests", "CPU or memory use against the pods' requests, and its target."),
		signalPanel("Latency signals", "latency", "s", "latency", "Each latency signal's quantile against its SLO."),
		signalPanel("Queue signals", "queue", "none", "messages/s", "The throughput each queue needs (arrivals plus its backlog drained within drainTime) against what the current replicas give at the target utilization."),
		signalPanel("Other signals", "perReplica|object|pods", "none", "the metric's unit", "perReplica, object and pods signals, each in its metric's unit."),
		{
			title: "Source health", kind: "statetimeline", width: 12, height: 8,
			description: "Whether each signal source answered; a source down makes its services hold.",
			mappings:    boolMapping("down", "up"),
			targets:     []target{{expr: fmt.Sprintf("max by (source) %s", global("elmascale_source_up")), legend: "{{source}}"}},
		},
		{
			title: "Circuit breakers", kind: "timeseries", width: 12, height: 8,
			description: "1 marks each source's current breaker state (closed, half-open, open).",
			targets:     []target{{expr: fmt.Sprintf("max by (source, state) %s > 0", global("elmascale_source_breaker_state")), legend: "{{source}} {{state}}"}},
		},
		{
			title: "Source errors", kind: "timeseries", width: 12, height: 8, unit: "reqps",
			targets: []target{{expr: fmt.Sprintf("sum by (source, reason) (%s)", scoped("rate(elmascale_source_errors_total[$__rate_interval])")), legend: "{{source}} {{reason}}"}},
		},
		{
			title: "Loop duration p99 by step", kind: "timeseries", unit: "s", width: 12, height: 8,
			targets: []target{{
				expr:   fmt.Sprintf("histogram_quantile(0.99, sum by (le, step) (%s))", scoped("rate(elmascale_loop_duration_seconds_bucket[$__rate_interval])")),
				legend: "{{step}}",
			}},
		},
		{
			title: "Loop ticks and errors", kind: "timeseries", width: 12, height: 8, unit: "ops",
			targets: []target{
				{expr: fmt.Sprintf("sum(%s)", scoped("rate(elmascale_loop_ticks_total[$__rate_interval])")), legend: "ticks/s"},
				{expr: fmt.Sprintf("sum by (step) (%s)", scoped("rate(elmascale_loop_errors_total[$__rate_interval])")), legend: "errors/s {{step}}"},
			},
		},
	}
}

// callGraphPanel is the call graph the service mesh measured at the last
// tick, drawn by Grafana's Node Graph panel from elmascale's own
// elmascale_graph_* gauges: the nodes frame from the node queries merged
// on their id, the edges frame from the edge queries merged on theirs,
// fields renamed to what the panel reads (mainstat, secondarystat, arc__*).
// It needs nothing but the Prometheus that scrapes elmascale, as on a site
// without internet access; the same graph is /api/v1/graph as JSON.
func callGraphPanel() panelSpec {
	nodes := func(metric string) string { return fmt.Sprintf("max by (id, title) %s", global(metric)) }
	edges := func(metric string) string {
		return fmt.Sprintf("max by (id, source, target, external) %s", global(metric))
	}
	byRefID := func(re string) *gdash.MatcherConfig { return &gdash.MatcherConfig{Id: "byRefId", Options: re} }
	return panelSpec{
		title: "Call graph", kind: "nodegraph", width: 24, height: 12,
		description: "The services and the calls between them as the service mesh (Linkerd) measured them at the last tick: a node's main figure is its inbound requests per second, the second its mean inbound latency; an edge's are calls per second and mean seconds per call. A red ring marks a service the last decision named as a bottleneck. Services without mesh traffic (scripts reached through RabbitMQ) stand alone.",
		targets: []target{
			{expr: nodes("elmascale_graph_node_requests_per_second"), instant: true, table: true},
			{expr: nodes("elmascale_graph_node_latency_seconds"), instant: true, table: true},
			{expr: nodes("elmascale_graph_node_bottleneck"), instant: true, table: true},
			{expr: "1 - " + nodes("elmascale_graph_node_bottleneck"), instant: true, table: true},
			{expr: edges("elmascale_graph_edge_requests_per_second"), instant: true, table: true},
			{expr: edges("elmascale_graph_edge_latency_seconds"), instant: true, table: true},
		},
		transformations: []gdash.DataTransformerConfig{
			{Id: "merge", Filter: byRefID("/^[ABCD]$/"), Options: map[string]any{}},
			{Id: "merge", Filter: byRefID("/^[EF]$/"), Options: map[string]any{}},
			{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]bool{"Time": true},
				"renameByName": map[string]string{"Value #A": "mainstat", "Value #B": "secondarystat", "Value #C": "arc__bottleneck", "Value #D": "arc__clear",
					"Value #E": "mainstat", "Value #F": "secondarystat", "external": "detail__external"},
			}},
		},
	}
}

// annotations mark every change of desired replicas on the time series
// panels, with the decision's direction and the rule that limited it. They
// follow the desired gauge rather than the action counter: a counter series
// is born at its first increment, which changes() cannot see, while the
// gauge exists from the first tick.
func annotations() []target {
	return []target{{
		// Joined per process: two elmascale processes (a dry-run beside
		// an apply one) may decide differently for one service.
		expr:   scoped(fmt.Sprintf("((max by (job, instance, service) (changes(elmascale_replicas_desired{%s}[1m])) > 0) * on (job, instance, service) group_left (direction, limited_by, scaling_limited) elmascale_decision_info{%s})", svc, svc)),
		legend: "{{service}} scaled {{direction}}, limited by {{limited_by}} ({{scaling_limited}})",
	}}
}

// Variable queries.
const (
	namespaceQuery = "label_values(elmascale_config_info, target_namespace)"
	serviceQuery   = "label_values(elmascale_replicas_desired, service)"
)

// Queries returns every PromQL expression the dashboard holds.
func Queries() []Query {
	var out []Query
	for _, p := range panels() {
		for _, t := range p.targets {
			out = append(out, Query{Panel: p.title, Expr: t.expr})
		}
	}
	for _, a := range annotations() {
		out = append(out, Query{Panel: "annotation: scale actions", Expr: a.expr})
	}
	out = append(out,
		Query{Panel: "variable: namespace", Expr: "elmascale_config_info"},
		Query{Panel: "variable: service", Expr: "elmascale_replicas_desired"},
	)
	return out
}

// Build returns the dashboard JSON.
func Build() ([]byte, error) {
	ds := common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	nsQuery, svcQuery := namespaceQuery, serviceQuery
	b := gdash.NewDashboardBuilder("elmascale: scaling decisions").
		Uid(UID).
		Tags([]string{"elmascale", "autoscaling", "elma365"}).
		Description("Why elmascale scaled: replicas, bottlenecks, signals against targets, and the health of its sources and loop.").
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(gdash.DashboardCursorSyncCrosshair).
		WithVariable(gdash.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus")).
		WithVariable(gdash.NewQueryVariableBuilder("namespace").Label("Managed namespace").
			Description("The namespace whose workloads elmascale scales (the config's namespace), not the one elmascale runs in.").
			Datasource(ds).Query(gdash.StringOrMap{String: &nsQuery}).Refresh(gdash.VariableRefreshOnTimeRangeChanged).
			Multi(true).IncludeAll(true).AllValue(".*")).
		WithVariable(gdash.NewQueryVariableBuilder("service").Label("Service").Datasource(ds).
			Query(gdash.StringOrMap{String: &svcQuery}).Refresh(gdash.VariableRefreshOnTimeRangeChanged).
			Multi(true).IncludeAll(true).AllValue(".*"))
	for _, a := range annotations() {
		b = b.Annotation(gdash.NewAnnotationQueryBuilder().
			Name("Scale actions").Datasource(ds).Enable(true).IconColor("orange").
			Expr(a.expr).TitleFormat(a.legend).TagKeys("service").Step("15s"))
	}
	for _, p := range panels() {
		b = b.WithPanel(panel(p, ds))
	}
	d, err := b.Build()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func panel(p panelSpec, ds common.DataSourceRef) cog.Builder[gdash.Panel] {
	queries := make([]cog.Builder[variants.Dataquery], 0, len(p.targets))
	for i, t := range p.targets {
		q := prometheus.NewDataqueryBuilder().Expr(t.expr).RefId(string(rune('A' + i)))
		if t.legend != "" {
			q = q.LegendFormat(t.legend)
		}
		if t.instant {
			q = q.Instant()
		}
		if t.table {
			q = q.Format(prometheus.PromQueryFormatTable)
		}
		queries = append(queries, q)
	}
	switch p.kind {
	case "stat":
		b := stat.NewPanelBuilder().Title(p.title).Description(p.description).Datasource(ds).Span(p.width).Height(p.height)
		for _, q := range queries {
			b = b.WithTarget(q)
		}
		if p.decimals != nil {
			b = b.Decimals(*p.decimals)
		}
		if p.mappings != nil {
			b = b.Mappings(p.mappings)
		}
		return b
	case "statetimeline":
		b := statetimeline.NewPanelBuilder().Title(p.title).Description(p.description).Datasource(ds).Span(p.width).Height(p.height)
		for _, q := range queries {
			b = b.WithTarget(q)
		}
		if p.mappings != nil {
			b = b.Mappings(p.mappings)
		}
		return b
	case "nodegraph":
		b := nodegraph.NewPanelBuilder().Title(p.title).Description(p.description).Datasource(ds).Span(p.width).Height(p.height).
			Nodes(nodegraph.NewNodeOptionsBuilder().MainStatUnit("reqps").SecondaryStatUnit("s").Arcs([]cog.Builder[nodegraph.ArcOption]{
				nodegraph.NewArcOptionBuilder().Field("arc__bottleneck").Color("red"),
				nodegraph.NewArcOptionBuilder().Field("arc__clear").Color("green"),
			})).
			Edges(nodegraph.NewEdgeOptionsBuilder().MainStatUnit("reqps").SecondaryStatUnit("s"))
		for _, q := range queries {
			b = b.WithTarget(q)
		}
		for _, tr := range p.transformations {
			b = b.WithTransformation(tr)
		}
		return b
	case "table":
		b := table.NewPanelBuilder().Title(p.title).Description(p.description).Datasource(ds).Span(p.width).Height(p.height)
		for _, q := range queries {
			b = b.WithTarget(q)
		}
		for _, tr := range p.transformations {
			b = b.WithTransformation(tr)
		}
		return b
	default:
		b := timeseries.NewPanelBuilder().Title(p.title).Description(p.description).Datasource(ds).Span(p.width).Height(p.height)
		for _, q := range queries {
			b = b.WithTarget(q)
		}
		if p.unit != "" {
			b = b.Unit(p.unit)
		}
		if p.axisLabel != "" {
			b = b.AxisLabel(p.axisLabel)
		}
		if p.decimals != nil {
			b = b.Decimals(*p.decimals)
		}
		if p.repeat != "" {
			b = b.Repeat(p.repeat).RepeatDirection(gdash.PanelRepeatDirectionH).MaxPerRow(p.maxPerRow)
		}
		if p.stacked {
			b = b.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).FillOpacity(30)
		}
		return b
	}
}
