package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// The mesh source reads Linkerd's proxy metrics through the configured
// Prometheus: every proxy counts the requests it receives (direction
// "inbound", labelled with its own namespace and deployment) and the
// requests its workload sends (direction "outbound", labelled with the
// destination's dst_namespace, dst_deployment and dst_service, and the
// authority called). request_total counts requests, response_total
// responses with their classification (success or failure), and
// response_latency_ms is the histogram of the time to the response's first
// byte, in milliseconds.
//
// A tick asks Prometheus two questions whatever the number of services:
// one for the inbound side of every workload, one for every edge. Each is
// several aggregations or'ed together, told apart by meshPartLabel, so the
// answer grows with workloads and edges, never the number of requests.

var _ loop.MeshCollector = (*Collector)(nil)

// meshPartLabel names, in a mesh answer, which aggregation a series is.
const meshPartLabel = "elmascale_mesh_part"

// Parts of a mesh answer.
const (
	partRequests     = "requests"
	partResponses    = "responses"
	partLatencySum   = "latency_sum"
	partLatencyCount = "latency_count"
	partP95          = "p95"
	partSampleTime   = "sample_time"
)

// Linkerd's metric and label names (its proxy metrics reference).
const (
	linkerdRequests     = "request_total"
	linkerdResponses    = "response_total"
	linkerdLatency      = "response_latency_ms"
	labelDirection      = "direction"
	labelNamespace      = "namespace"
	labelDeployment     = "deployment"
	labelDstNamespace   = "dst_namespace"
	labelDstDeployment  = "dst_deployment"
	labelDstService     = "dst_service"
	labelAuthority      = "authority"
	labelClassification = "classification"
)

// inboundBy and outboundBy are the labels the two questions keep.
var (
	inboundBy  = []string{labelDeployment}
	outboundBy = []string{labelDeployment, labelDstNamespace, labelDstDeployment, labelDstService, labelAuthority}
)

// MeshQueries are the PromQL questions one tick asks of a Linkerd mesh
// source: Inbound by deployment, Outbound by caller and destination.
type MeshQueries struct {
	Inbound, Outbound string
}

// LinkerdQueries builds the two questions for a mesh source. Exported so
// doctor and the documentation show exactly what runs.
func LinkerdQueries(m *config.MeshSource) MeshQueries {
	w := model.Duration(m.Window).String()
	sel := func(direction string) string {
		ms := []string{fmt.Sprintf("%s=%q", labelDirection, direction), fmt.Sprintf("%s=%q", labelNamespace, m.Namespace)}
		if m.Selector != "" {
			ms = append(ms, m.Selector)
		}
		return "{" + strings.Join(ms, ",") + "}"
	}
	build := func(s string, by []string, quantile bool) string {
		keys := strings.Join(by, ", ")
		respKeys := strings.Join(append(slices.Clone(by), labelClassification), ", ")
		parts := []string{
			tagPart(partRequests, fmt.Sprintf("sum by (%s) (rate(%s%s[%s]))", keys, linkerdRequests, s, w)),
			tagPart(partResponses, fmt.Sprintf("sum by (%s) (rate(%s%s[%s]))", respKeys, linkerdResponses, s, w)),
			tagPart(partLatencySum, fmt.Sprintf("sum by (%s) (rate(%s_sum%s[%s]))", keys, linkerdLatency, s, w)),
			tagPart(partLatencyCount, fmt.Sprintf("sum by (%s) (rate(%s_count%s[%s]))", keys, linkerdLatency, s, w)),
		}
		if quantile {
			parts = append(parts, tagPart(partP95, fmt.Sprintf("histogram_quantile(0.95, sum by (%s, le) (rate(%s_bucket%s[%s])))", keys, linkerdLatency, s, w)))
		}
		// Prometheus stamps every answer with the evaluation time; the
		// newest raw sample behind each key says whether its proxies are
		// still scraped (see freshness.go).
		parts = append(parts, tagPart(partSampleTime, fmt.Sprintf("max by (%s) (timestamp(%s%s))", keys, linkerdRequests, s)))
		return strings.Join(parts, " or ")
	}
	return MeshQueries{
		Inbound:  build(sel("inbound"), inboundBy, true),
		Outbound: build(sel("outbound"), outboundBy, false),
	}
}

func tagPart(part, q string) string {
	return fmt.Sprintf("label_replace(%s, %q, %q, \"\", \"\")", q, meshPartLabel, part)
}

// CollectMesh reads the mesh's observation for cfg through the Prometheus
// source and its breaker. Every failure is inside the observation: failed
// when Prometheus or a query failed, invalid when the answer makes no
// sense, missing when no Linkerd series match.
func (c *Collector) CollectMesh(ctx context.Context, cfg *config.Config, now time.Time) policy.MeshObservation {
	switch {
	case cfg == nil || cfg.Mesh == nil:
		return policy.MeshObservation{Status: policy.StatusMissing, Error: "mesh: the configuration names no mesh"}
	case cfg.Mesh.Provider != config.MeshLinkerd:
		return policy.MeshObservation{Status: policy.StatusFailed, Error: fmt.Sprintf("mesh: provider %q is not supported (want %s)", cfg.Mesh.Provider, config.MeshLinkerd)}
	case c.prom == nil:
		return policy.MeshObservation{Status: policy.StatusMissing, Error: "mesh: prometheus: no URL configured; Linkerd's series are read through it"}
	}
	qs := LinkerdQueries(cfg.Mesh)
	var in, out model.Vector
	var qerr error
	err := c.promGuard.run(ctx, func(ctx context.Context) error {
		var (
			wg           sync.WaitGroup
			inErr, outEr *meshQueryError
		)
		wg.Add(2)
		go func() { defer wg.Done(); in, inErr = c.prom.meshQuery(ctx, "mesh inbound", qs.Inbound, now) }()
		go func() { defer wg.Done(); out, outEr = c.prom.meshQuery(ctx, "mesh outbound", qs.Outbound, now) }()
		wg.Wait()
		for _, e := range []*meshQueryError{inErr, outEr} {
			if e == nil {
				continue
			}
			if e.sourceLevel {
				return e.err
			}
			if qerr == nil {
				qerr = e.err
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return policy.MeshObservation{Status: policy.StatusFailed, Error: "mesh: " + err.Error()}
	case qerr != nil:
		return policy.MeshObservation{Status: policy.StatusFailed, Error: "mesh: " + qerr.Error()}
	}
	return c.meshObservation(cfg, in, out, now)
}

// meshQueryError is a failed mesh question; sourceLevel when it is
// Prometheus's fault (counted by the breaker), not the question's.
type meshQueryError struct {
	err         *SourceError
	sourceLevel bool
}

// meshQuery asks one mesh question with the same timeout, metrics and
// answer bounds as the signal queries.
func (s *promSource) meshQuery(ctx context.Context, name, q string, now time.Time) (model.Vector, *meshQueryError) {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	val, warnings, _, err := s.api.Query(qctx, q, now, promv1.WithTimeout(s.timeout))
	s.m.queries.WithLabelValues(SourcePrometheus).Inc()
	s.m.duration.WithLabelValues(SourcePrometheus).Observe(time.Since(start).Seconds())
	if len(warnings) > 0 {
		s.log.Warn("prometheus query returned warnings", zap.String("metric", name), zap.Strings("warnings", warnings))
	}
	queryErr := func(err error) *meshQueryError {
		s.m.errors.WithLabelValues(SourcePrometheus, ReasonQuery).Inc()
		return &meshQueryError{err: &SourceError{Source: SourcePrometheus, Reason: ReasonQuery, Err: fmt.Errorf("query %s: %w", name, err)}}
	}
	switch {
	case errors.Is(err, ErrAnswerTooLarge):
		return nil, queryErr(fmt.Errorf("%w; narrow mesh.linkerd.selector or the namespace", err))
	case err != nil:
		reason, sourceLevel := classifyPromError(err)
		s.m.errors.WithLabelValues(SourcePrometheus, reason).Inc()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: %w", s.timeout, err)
		}
		return nil, &meshQueryError{err: &SourceError{Source: SourcePrometheus, Reason: reason, Err: fmt.Errorf("query %s: %w", name, readablePromError{err})}, sourceLevel: sourceLevel}
	}
	vec, ok := val.(model.Vector)
	if !ok {
		typ := "nothing"
		if val != nil {
			typ = val.Type().String()
		}
		return nil, queryErr(fmt.Errorf("returned %s, want an instant vector", typ))
	}
	if s.maxSeries > 0 && len(vec) > s.maxSeries {
		return nil, queryErr(fmt.Errorf("returned %d series, more than the limit of %d (--source-max-series): narrow mesh.linkerd.selector or the namespace", len(vec), s.maxSeries))
	}
	return vec, nil
}

// meshEntry gathers one workload's or one edge's parts.
type meshEntry struct {
	counts policy.MeshCounts
	// classified is true when some response carried a classification.
	classified bool
	sampled    time.Time
	// nonFinite names a part whose value was NaN or infinite with traffic
	// behind it.
	nonFinite string
}

// meshObservation turns the two answers into the observation: entries
// whose proxies are no longer scraped are dropped as stale, entries
// stamped ahead of the tick as invalid, and what remains goes through
// policy.NewMeshObservation.
func (c *Collector) meshObservation(cfg *config.Config, in, out model.Vector, now time.Time) policy.MeshObservation {
	m := cfg.Mesh
	inbound := map[string]*meshEntry{}
	for _, smp := range in {
		name := string(smp.Metric[labelDeployment])
		if name == "" {
			continue
		}
		addPart(entryOf(inbound, name), smp)
	}
	edges := map[policy.MeshEdgeKey]*meshEntry{}
	for _, smp := range out {
		k, ok := edgeKey(smp.Metric, m.Namespace)
		if !ok {
			continue
		}
		addPart(entryOf(edges, k), smp)
	}
	if len(inbound) == 0 && len(edges) == 0 {
		return policy.MeshObservation{Status: policy.StatusMissing, Time: now, Window: m.Window,
			Error: fmt.Sprintf("mesh: no Linkerd series (%s, %s) with namespace=%q%s: is the namespace meshed and its proxies scraped by this Prometheus?",
				linkerdRequests, linkerdLatency, m.Namespace, selectorNote(m.Selector))}
	}

	var stale, future, bad []string
	oldest := time.Time{}
	keep := func(name string, e *meshEntry) bool {
		switch {
		case e.nonFinite != "":
			bad = append(bad, name+" ("+e.nonFinite+")")
			return false
		case e.sampled.IsZero():
		case e.sampled.After(now.Add(c.skew)):
			future = append(future, name)
			return false
		case cfg.Policy.StaleAfter > 0 && now.Sub(e.sampled) > cfg.Policy.StaleAfter:
			stale = append(stale, name)
			return false
		}
		if !e.sampled.IsZero() && (oldest.IsZero() || e.sampled.Before(oldest)) {
			oldest = e.sampled
		}
		return true
	}
	inCounts := make(map[string]policy.MeshCounts, len(inbound))
	for name, e := range inbound {
		if keep(name, e) {
			inCounts[name] = e.finish()
		}
	}
	edgeCounts := make(map[policy.MeshEdgeKey]policy.MeshCounts, len(edges))
	for k, e := range edges {
		if keep(k.From+"→"+k.To, e) {
			edgeCounts[k] = e.finish()
		}
	}
	t := now
	if !oldest.IsZero() && oldest.Before(now) {
		t = oldest
	}
	o := policy.NewMeshObservation(t, m.Window, inCounts, edgeCounts, m.MinEdgeRate)
	var notes []string
	if len(stale) > 0 {
		slices.Sort(stale)
		notes = append(notes, fmt.Sprintf("stale (no sample for more than %s) for %s", cfg.Policy.StaleAfter, strings.Join(stale, ", ")))
	}
	if len(future) > 0 {
		slices.Sort(future)
		notes = append(notes, fmt.Sprintf("stamped more than %s ahead of this tick (check the source's clock) for %s", c.skew, strings.Join(future, ", ")))
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		notes = append(notes, "not a finite number for "+strings.Join(bad, ", "))
	}
	if o.Error != "" {
		notes = append(notes, o.Error)
	}
	if len(notes) > 0 {
		o.Error = "mesh: " + strings.Join(notes, "; ")
	}
	if len(inCounts) == 0 && len(edgeCounts) == 0 {
		switch {
		case len(stale) > 0 && len(future) == 0 && len(bad) == 0:
			o.Status = policy.StatusStale
		default:
			o.Status = policy.StatusInvalid
		}
	}
	return o
}

func entryOf[K comparable](m map[K]*meshEntry, k K) *meshEntry {
	e := m[k]
	if e == nil {
		e = &meshEntry{}
		m[k] = e
	}
	return e
}

// addPart adds one series of an answer to its entry. Several series may
// add to one edge (the same destination reached through two authorities).
func addPart(e *meshEntry, smp *model.Sample) {
	v := float64(smp.Value)
	part := string(smp.Metric[meshPartLabel])
	if part == partSampleTime {
		if t, ok := unixTime(v); ok && t.After(e.sampled) {
			e.sampled = t
		}
		return
	}
	if smp.Histogram != nil {
		e.nonFinite = part + " is a native histogram"
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		// histogram_quantile over no traffic is NaN: unknown, not wrong.
		if part != partP95 {
			e.nonFinite = fmt.Sprintf("%s is %v", part, v)
		} else if !math.IsNaN(v) {
			e.nonFinite = fmt.Sprintf("p95 is %v", v)
		}
		return
	}
	c := &e.counts
	switch part {
	case partRequests:
		c.Requests += v
	case partResponses:
		c.Responses += v
		switch cl := string(smp.Metric[labelClassification]); cl {
		case "":
		case "success":
			e.classified = true
			c.Successes += v
		default:
			e.classified = true
		}
	case partLatencySum:
		c.LatencySum += v / 1000
	case partLatencyCount:
		c.LatencyCount += v
	case partP95:
		c.P95 = v / 1000
	}
}

// finish returns the counts, the success rate unknown when no response
// was classified.
func (e *meshEntry) finish() policy.MeshCounts {
	c := e.counts
	if !e.classified {
		c.Successes = -1
	}
	return c
}

// edgeKey names the edge of an outbound series: a meshed workload of the
// mesh's namespace by its deployment, anything else (a data store, a
// workload elsewhere, a host outside the cluster) as External by its
// service, else its authority.
func edgeKey(l model.Metric, namespace string) (policy.MeshEdgeKey, bool) {
	from := string(l[labelDeployment])
	if from == "" {
		return policy.MeshEdgeKey{}, false
	}
	dst, dstNS := string(l[labelDstDeployment]), string(l[labelDstNamespace])
	if dst != "" && dstNS == namespace {
		return policy.MeshEdgeKey{From: from, To: dst}, true
	}
	to := string(l[labelDstService])
	if to == "" {
		to = dst
	}
	if to != "" && dstNS != "" && dstNS != namespace {
		to += "." + dstNS
	}
	if to == "" {
		to = string(l[labelAuthority])
	}
	if to == "" {
		return policy.MeshEdgeKey{}, false
	}
	return policy.MeshEdgeKey{From: from, To: to, External: true}, true
}

func selectorNote(sel string) string {
	if sel == "" {
		return ""
	}
	return " and " + sel
}
