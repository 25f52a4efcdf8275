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
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's stable identifier.
const UID = "elmascale-decisions"

// sel is the label selector every query carries: the namespace elmascale
// runs in and the services picked in the variables.
const sel = `namespace=~"$namespace", service=~"$service"`

// nsSel selects by namespace only, for series without a service label.
const nsSel = `namespace=~"$namespace"`

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
	kind               string // timeseries, stat, statetimeline, table
	unit               string
	width, height      uint32
	mappings           []gdash.ValueMapping
	targets            []target
}

type target struct {
	expr, legend string
	instant      bool
}

func boolMapping(zero, one string) []gdash.ValueMapping {
	z, o := zero, one
	return []gdash.ValueMapping{{ValueMap: &gdash.ValueMap{Type: gdash.MappingTypeValueToText, Options: map[string]gdash.ValueMappingResult{
		"0": {Text: &z}, "1": {Text: &o},
	}}}}
}

func panels() []panelSpec {
	return []panelSpec{
		{
			title: "Mode", kind: "stat", width: 4, height: 4,
			description: "apply changes replicas; dry-run only publishes recommendations.",
			mappings:    boolMapping("apply", "dry-run"),
			targets:     []target{{expr: fmt.Sprintf("max(elmascale_dry_run{%s})", nsSel), instant: true}},
		},
		{
			title: "Leader", kind: "stat", width: 4, height: 4,
			description: "Which elmascale pod holds the Lease and may write.",
			mappings:    boolMapping("standby", "leader"),
			targets:     []target{{expr: fmt.Sprintf("elmascale_leader{%s}", nsSel), legend: "{{pod}}", instant: true}},
		},
		{
			title: "Total desired replicas", kind: "stat", width: 4, height: 4,
			targets: []target{{expr: fmt.Sprintf("sum(elmascale_replicas_desired{%s})", sel), instant: true}},
		},
		{
			title: "Handed off", kind: "table", width: 12, height: 4,
			description: "Targets another autoscaler (HPA, KEDA) or a pause annotation owns; elmascale leaves them alone.",
			targets:     []target{{expr: fmt.Sprintf("max by (service, owner) (elmascale_handoffs{%s}) > 0", sel), instant: true}},
		},
		{
			title: "Replicas: current, desired, recommended", kind: "timeseries", width: 24, height: 9,
			description: "Desired is what the policy decided; recommended is what dry-run would apply.",
			targets: []target{
				{expr: fmt.Sprintf("max by (service) (elmascale_replicas_current{%s})", sel), legend: "{{service}} current"},
				{expr: fmt.Sprintf("max by (service) (elmascale_replicas_desired{%s})", sel), legend: "{{service}} desired"},
				{expr: fmt.Sprintf("max by (service) (elmascale_replicas_recommended{%s})", sel), legend: "{{service}} recommended"},
				{expr: fmt.Sprintf("max by (service) (elmascale_replicas_ready{%s})", sel), legend: "{{service}} ready"},
			},
		},
		{
			title: "Bottleneck", kind: "statetimeline", width: 24, height: 7,
			description: "The services found to be the real bottleneck: saturated on their own signals, or the deepest saturated dependency explaining latency upstream.",
			mappings:    boolMapping("ok", "bottleneck"),
			targets:     []target{{expr: fmt.Sprintf("max by (service) (elmascale_bottleneck{%s})", sel), legend: "{{service}}"}},
		},
		{
			title: "Scale actions", kind: "timeseries", width: 12, height: 8,
			description: "Changes of replicas by direction and by the rule that limited them.",
			targets: []target{{
				expr:   fmt.Sprintf("sum by (service, direction, limited_by) (increase(elmascale_scale_actions_total{%s}[$__rate_interval]))", sel),
				legend: "{{service}} {{direction}} ({{limited_by}})",
			}},
		},
		{
			title: "Signals against their targets", kind: "timeseries", unit: "percentunit", width: 12, height: 8,
			description: "Each signal's value divided by its target: above 1 asks for more replicas.",
			targets: []target{{
				expr:   fmt.Sprintf("max by (service, signal) (elmascale_signal_value{%s}) / max by (service, signal) (elmascale_signal_target{%s} > 0)", sel, sel),
				legend: "{{service}} {{signal}}",
			}},
		},
		{
			title: "Signal values", kind: "timeseries", width: 12, height: 8,
			targets: []target{
				{expr: fmt.Sprintf("max by (service, signal) (elmascale_signal_value{%s})", sel), legend: "{{service}} {{signal}} value"},
				{expr: fmt.Sprintf("max by (service, signal) (elmascale_signal_target{%s})", sel), legend: "{{service}} {{signal}} target"},
			},
		},
		{
			title: "Source health", kind: "statetimeline", width: 12, height: 8,
			description: "Whether each signal source answered; a source down makes its services hold.",
			mappings:    boolMapping("down", "up"),
			targets:     []target{{expr: fmt.Sprintf("max by (source) (elmascale_source_up{%s})", nsSel), legend: "{{source}}"}},
		},
		{
			title: "Circuit breakers", kind: "timeseries", width: 12, height: 8,
			description: "1 marks each source's current breaker state (closed, half-open, open).",
			targets:     []target{{expr: fmt.Sprintf("max by (source, state) (elmascale_source_breaker_state{%s}) > 0", nsSel), legend: "{{source}} {{state}}"}},
		},
		{
			title: "Source errors", kind: "timeseries", width: 12, height: 8,
			targets: []target{{expr: fmt.Sprintf("sum by (source, reason) (rate(elmascale_source_errors_total{%s}[$__rate_interval]))", nsSel), legend: "{{source}} {{reason}}"}},
		},
		{
			title: "Loop duration p99 by step", kind: "timeseries", unit: "s", width: 12, height: 8,
			targets: []target{{
				expr:   fmt.Sprintf("histogram_quantile(0.99, sum by (le, step) (rate(elmascale_loop_duration_seconds_bucket{%s}[$__rate_interval])))", nsSel),
				legend: "{{step}}",
			}},
		},
		{
			title: "Loop ticks and errors", kind: "timeseries", width: 12, height: 8,
			targets: []target{
				{expr: fmt.Sprintf("sum(rate(elmascale_loop_ticks_total{%s}[$__rate_interval]))", nsSel), legend: "ticks/s"},
				{expr: fmt.Sprintf("sum by (step) (rate(elmascale_loop_errors_total{%s}[$__rate_interval]))", nsSel), legend: "errors/s {{step}}"},
			},
		},
	}
}

// annotations mark every change of desired replicas on the time series
// panels. They follow the desired gauge rather than the action counter: a
// counter series is born at its first increment, which changes() cannot
// see, while the gauge exists from the first tick. Direction and limiting
// rule are in the Scale actions panel.
func annotations() []target {
	return []target{{
		expr:   fmt.Sprintf("max by (service) (changes(elmascale_replicas_desired{%s}[1m])) > 0", sel),
		legend: "{{service}}: desired replicas changed",
	}}
}

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
		Query{Panel: "variable: namespace", Expr: "elmascale_build_info"},
		Query{Panel: "variable: service", Expr: `elmascale_replicas_desired{namespace=~"$namespace"}`},
	)
	return out
}

// Build returns the dashboard JSON.
func Build() ([]byte, error) {
	ds := common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	nsQuery := "label_values(elmascale_build_info, namespace)"
	svcQuery := `label_values(elmascale_replicas_desired{namespace=~"$namespace"}, service)`
	b := gdash.NewDashboardBuilder("elmascale: scaling decisions").
		Uid(UID).
		Tags([]string{"elmascale", "autoscaling", "elma365"}).
		Description("Why elmascale scaled: replicas, bottlenecks, signals against targets, and the health of its sources and loop.").
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(gdash.DashboardCursorSyncCrosshair).
		WithVariable(gdash.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus")).
		WithVariable(gdash.NewQueryVariableBuilder("namespace").Label("Namespace").Datasource(ds).
			Query(gdash.StringOrMap{String: &nsQuery}).Refresh(gdash.VariableRefreshOnTimeRangeChanged).
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
		queries = append(queries, q)
	}
	switch p.kind {
	case "stat":
		b := stat.NewPanelBuilder().Title(p.title).Description(p.description).Datasource(ds).Span(p.width).Height(p.height)
		for _, q := range queries {
			b = b.WithTarget(q)
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
	case "table":
		b := table.NewPanelBuilder().Title(p.title).Description(p.description).Datasource(ds).Span(p.width).Height(p.height)
		for _, q := range queries {
			b = b.WithTarget(q)
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
		return b
	}
}
