package collector

import (
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/promql/parser"
)

// Prometheus stamps every sample of an instant query's answer with the
// evaluation time, not the time it was scraped. A series whose scrapes
// stopped without a staleness marker (samples carrying their own
// timestamps, federation, remote write, a Prometheus restart) is still
// answered for the five-minute lookback, looking as fresh as the tick, so
// staleAfter would never fire. Each query therefore also asks, in the same
// request (so queries per tick stay one per metric definition), for the
// time of the newest raw sample behind each key, in series marked with
// sampleTimeLabel.

// sampleTimeLabel marks the series of an answer that carry a key's sample
// time (Unix seconds) rather than its value.
const sampleTimeLabel = "elmascale_sample_time"

// freshnessQueries builds and remembers, per metric query, the query sent:
// the metric's query, or'ed with its inputs' sample times by key label.
type freshnessQueries struct {
	mu sync.Mutex
	m  map[[2]string]string
}

// get returns the query to send for q keyed by keyLabel: q itself when it
// is not an instant vector, reads no series (a constant) or does not parse
// here (Prometheus then reports the problem in q's own words).
func (f *freshnessQueries) get(q, keyLabel string) string {
	k := [2]string{q, keyLabel}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.m[k]; ok {
		return s
	}
	if f.m == nil {
		f.m = map[[2]string]string{}
	}
	s := q
	if fq := freshnessQuery(q, keyLabel); fq != "" {
		s = fmt.Sprintf(`(%s) or label_replace(%s, %q, "1", "", "")`, q, fq, sampleTimeLabel)
	}
	f.m[k] = s
	return s
}

// freshnessQuery is, for each key, the newest sample time of every series
// selector in q, and of several selectors the stalest: a value computed
// from one live and one dead input is as old as the dead one. Selectors'
// own offsets are not followed; series lacking the key label give no
// freshness, and their keys keep the evaluation time.
func freshnessQuery(q, keyLabel string) string {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil || expr.Type() != parser.ValueTypeVector {
		return ""
	}
	seen := map[string]bool{}
	var parts []string
	for _, ms := range parser.ExtractSelectors(expr) {
		sel := (&parser.VectorSelector{LabelMatchers: ms}).String()
		if seen[sel] {
			continue
		}
		seen[sel] = true
		parts = append(parts, fmt.Sprintf("max by (%s) (timestamp(%s))", keyLabel, sel))
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	// `or` keeps only the first series of a label set: tell them apart,
	// then keep the stalest per key.
	for i, p := range parts {
		parts[i] = fmt.Sprintf(`label_replace(%s, "elmascale_selector", "%d", "", "")`, p, i)
	}
	return fmt.Sprintf("min by (%s) (%s)", keyLabel, strings.Join(parts, " or "))
}
