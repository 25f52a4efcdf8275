package dashboard

// ExportedMetrics lists the metric families the daemon and its sources
// export, by name; the dashboard may select nothing else. The daemon's tests
// check this list against its real registry.
func ExportedMetrics() []string {
	return []string{
		"elmascale_build_info",
		"elmascale_dry_run",
		"elmascale_leader",
		"elmascale_replicas_current",
		"elmascale_replicas_desired",
		"elmascale_replicas_recommended",
		"elmascale_replicas_ready",
		"elmascale_replicas_min",
		"elmascale_replicas_max",
		"elmascale_decision_info",
		"elmascale_budget_max_total_replicas",
		"elmascale_config_info",
		"elmascale_signal_value",
		"elmascale_signal_target",
		"elmascale_bottleneck",
		"elmascale_scale_actions_total",
		"elmascale_handoffs",
		"elmascale_loop_duration_seconds",
		"elmascale_loop_ticks_total",
		"elmascale_loop_errors_total",
		"elmascale_config_reloads_total",
		"elmascale_source_up",
		"elmascale_source_breaker_state",
		"elmascale_source_query_duration_seconds",
		"elmascale_source_errors_total",
		"elmascale_source_queries_total",
		"elmascale_graph_node_requests_per_second",
		"elmascale_graph_node_latency_seconds",
		"elmascale_graph_node_bottleneck",
		"elmascale_graph_edge_requests_per_second",
		"elmascale_graph_edge_latency_seconds",
	}
}
