package config

import (
	"regexp"
	"strconv"
)

// histogramQuantile finds the φ of histogram_quantile(φ, …) in a query.
var histogramQuantile = regexp.MustCompile(`histogram_quantile\s*\(\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*,`)

// queryQuantile returns the one quantile a PromQL query computes with
// histogram_quantile, if it shows exactly one.
func queryQuantile(query string) (float64, bool) {
	var q float64
	found := false
	for _, m := range histogramQuantile.FindAllStringSubmatch(query, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil || (found && v != q) {
			return 0, false
		}
		q, found = v, true
	}
	return q, found
}

// latencyQuantile is the quantile a latency signal stands for. The metric's
// query decides it: a signal saying 0.99 against a query computing
// histogram_quantile(0.95, …) would make every reason read p99 for a p95.
// The field is needed only when the query does not show it (a recorded
// series, say), and is refused when it disagrees with the query.
func latencyQuantile(v *validator, path string, l *LatencyFile, query string) float64 {
	if l.Quantile != 0 && !(l.Quantile > 0 && l.Quantile < 1) {
		v.add(path, "must be in (0, 1)")
		return 0
	}
	if query == "" { // unknown metric: reported at .metric
		return l.Quantile
	}
	q, shown := queryQuantile(query)
	switch {
	case shown && l.Quantile != 0 && l.Quantile != q:
		v.add(path, "%g, but metric %q computes histogram_quantile(%g, …): the query decides the quantile; drop this field or make them agree", l.Quantile, l.Metric, q)
	case shown:
		return q
	case l.Quantile == 0:
		v.add(path, "metric %q's query does not show its quantile as histogram_quantile(φ, …): say which it is, e.g. quantile: 0.95", l.Metric)
	}
	return l.Quantile
}
