package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/elmascale/elmascale/config"
)

// promAPI is the one call of the Prometheus HTTP API the collector needs;
// promv1.API satisfies it.
type promAPI interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...promv1.Option) (model.Value, promv1.Warnings, promv1.Infos, error)
}

// sample is the value of one series of a metric definition for one key.
type sample struct {
	value float64
	time  time.Time
	// series counts the series that carried this key; more than one means
	// the query does not aggregate by its key label.
	series int
	// native is true for a native histogram sample, which has no single
	// value.
	native bool
}

// metricResult is what one metric definition's query gave this tick.
type metricResult struct {
	// err is set when the query failed; every signal reading the metric
	// then fails with it.
	err error
	// byKey holds the samples by the value of the key label.
	byKey map[string]sample
}

// promSource runs each metric definition as one instant query.
type promSource struct {
	api      promAPI
	timeout  time.Duration
	parallel int
	// maxSeries bounds the series of one answer.
	maxSeries int
	m         *metrics
	log       *zap.Logger
	// freshness rewrites each query to carry its samples' own times.
	freshness freshnessQueries
}

// collect runs one query per metric definition, concurrently, evaluated at
// now. The error is a *SourceError when Prometheus itself failed (down,
// 5xx, timeout, garbage); a query Prometheus rejected only fails its metric.
func (s *promSource) collect(ctx context.Context, defs []config.Metric, now time.Time) (map[string]*metricResult, error) {
	out := make(map[string]*metricResult, len(defs))
	var mu sync.Mutex
	var sourceErrs []*SourceError
	sem := make(chan struct{}, max(1, s.parallel))
	var wg sync.WaitGroup
	for _, def := range defs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, serr := s.query(ctx, def, now)
			mu.Lock()
			defer mu.Unlock()
			out[def.Name] = res
			if serr != nil {
				sourceErrs = append(sourceErrs, serr)
			}
		}()
	}
	wg.Wait()
	if len(sourceErrs) == 0 {
		return out, nil
	}
	// Report the first by metric name so the message is stable across ticks.
	sort.Slice(sourceErrs, func(i, j int) bool { return sourceErrs[i].Error() < sourceErrs[j].Error() })
	return out, sourceErrs[0]
}

// query runs one metric definition. It returns the metric's result and,
// separately, a source error when the failure is Prometheus's rather than
// the query's.
func (s *promSource) query(ctx context.Context, def config.Metric, now time.Time) (*metricResult, *SourceError) {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	// The same timeout is sent to Prometheus, so it stops evaluating a
	// query nobody waits for any more.
	val, warnings, infos, err := s.api.Query(qctx, s.freshness.get(def.Prometheus.Query, def.Prometheus.KeyLabel), now, promv1.WithTimeout(s.timeout))
	s.m.queries.WithLabelValues(SourcePrometheus).Inc()
	s.m.duration.WithLabelValues(SourcePrometheus).Observe(time.Since(start).Seconds())
	if len(warnings) > 0 {
		s.log.Warn("prometheus query returned warnings", zap.String("metric", def.Name), zap.Strings("warnings", warnings))
	}
	if len(infos) > 0 {
		s.log.Debug("prometheus query returned infos", zap.String("metric", def.Name), zap.Strings("infos", infos))
	}
	if errors.Is(err, ErrAnswerTooLarge) {
		// The query's fault (it does not aggregate), not the source's:
		// the breaker does not count it.
		s.m.errors.WithLabelValues(SourcePrometheus, ReasonQuery).Inc()
		return &metricResult{err: &SourceError{Source: SourcePrometheus, Reason: ReasonQuery,
			Err: fmt.Errorf("query %s: %w; it must aggregate by (%s), e.g. sum by (%s) (...)", def.Name, err, def.Prometheus.KeyLabel, def.Prometheus.KeyLabel)}}, nil
	}
	if err != nil {
		reason, sourceLevel := classifyPromError(err)
		s.m.errors.WithLabelValues(SourcePrometheus, reason).Inc()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: %w", s.timeout, err)
		}
		se := &SourceError{Source: SourcePrometheus, Reason: reason, Err: fmt.Errorf("query %s: %w", def.Name, readablePromError{err})}
		if sourceLevel {
			return &metricResult{err: se}, se
		}
		return &metricResult{err: se}, nil
	}
	res, err := vectorByKey(val, def.Prometheus.KeyLabel, s.maxSeries)
	if err != nil {
		s.m.errors.WithLabelValues(SourcePrometheus, ReasonQuery).Inc()
		return &metricResult{err: &SourceError{Source: SourcePrometheus, Reason: ReasonQuery, Err: fmt.Errorf("query %s: %w", def.Name, err)}}, nil
	}
	return res, nil
}

// vectorByKey indexes an instant vector by the key label. Series without
// the label cannot belong to any service and are dropped.
func vectorByKey(val model.Value, keyLabel string, maxSeries int) (*metricResult, error) {
	vec, ok := val.(model.Vector)
	if !ok {
		typ := "nothing"
		if val != nil {
			typ = val.Type().String()
		}
		return nil, fmt.Errorf("returned %s, want an instant vector aggregated by (%s)", typ, keyLabel)
	}
	if n := valueSeries(vec); maxSeries > 0 && n > maxSeries {
		return nil, fmt.Errorf("returned %d series, more than the limit of %d: it must aggregate by (%s)", n, maxSeries, keyLabel)
	}
	res := &metricResult{byKey: make(map[string]sample, len(vec))}
	ln := model.LabelName(keyLabel)
	var sampled map[string]time.Time
	for _, smp := range vec {
		key := string(smp.Metric[ln])
		if key == "" {
			continue
		}
		if _, ok := smp.Metric[sampleTimeLabel]; ok {
			if t, ok := unixTime(float64(smp.Value)); ok {
				if sampled == nil {
					sampled = map[string]time.Time{}
				}
				sampled[key] = t
			}
			continue
		}
		prev := res.byKey[key]
		res.byKey[key] = sample{value: float64(smp.Value), time: smp.Timestamp.Time(), series: prev.series + 1, native: smp.Histogram != nil}
	}
	// Prometheus stamps answers with the evaluation time; the time of the
	// newest raw sample behind a key, when known, says how old it really is.
	for key, t := range sampled {
		if smp, ok := res.byKey[key]; ok {
			smp.time = t
			res.byKey[key] = smp
		}
	}
	return res, nil
}

// valueSeries counts the series of an answer that carry values, not
// sample times.
func valueSeries(vec model.Vector) int {
	n := 0
	for _, smp := range vec {
		if _, ok := smp.Metric[sampleTimeLabel]; !ok {
			n++
		}
	}
	return n
}

// unixTime converts the seconds timestamp() gives.
func unixTime(sec float64) (time.Time, bool) {
	if math.IsNaN(sec) || math.IsInf(sec, 0) || sec <= 0 {
		return time.Time{}, false
	}
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(frac*1e9)), true
}

// readablePromError drops the client's doubled prefix ("server_error:
// server error: 500") and appends the start of an unexpected body.
type readablePromError struct{ err error }

func (e readablePromError) Error() string {
	var apiErr *promv1.Error
	if !errors.As(e.err, &apiErr) {
		return e.err.Error()
	}
	msg := apiErr.Msg
	switch apiErr.Type {
	case promv1.ErrServer, promv1.ErrClient:
	case promv1.ErrBadResponse:
		msg = "cannot decode answer: " + msg
	default:
		msg = string(apiErr.Type) + ": " + msg
	}
	if d := snippet([]byte(apiErr.Detail)); d != "" {
		msg += " (" + d + ")"
	}
	return msg
}

func (e readablePromError) Unwrap() error { return e.err }

// classifyPromError gives an error's reason label and whether it is the
// source's fault (which counts against its breaker) rather than the query's.
func classifyPromError(err error) (reason string, sourceLevel bool) {
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Type {
		case promv1.ErrBadData, promv1.ErrExec:
			// Bad PromQL or an evaluation error (many-to-many matching,
			// too many samples): the source is fine, the query is not.
			return ReasonQuery, false
		case promv1.ErrTimeout, promv1.ErrCanceled:
			return ReasonTimeout, true
		case promv1.ErrBadResponse:
			return ReasonBadResponse, true
		case promv1.ErrClient:
			if strings.Contains(apiErr.Msg, "401") || strings.Contains(apiErr.Msg, "403") {
				return ReasonAuth, true
			}
			return ReasonHTTPStatus, true
		default:
			return ReasonHTTPStatus, true
		}
	}
	return classifyTransportError(err), true
}

// classifyTransportError names what went wrong below the HTTP layer.
func classifyTransportError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return ReasonConnection
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return ReasonConnection
	}
	if errors.Is(err, context.Canceled) {
		return ReasonTimeout
	}
	return ReasonConnection
}
