package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// Defaults of the breaker settings: three failed ticks in a row (half a
// minute at the preset's interval) say a source is down rather than slow
// once, and half a minute open keeps a down source from being asked every
// tick while still noticing its return soon.
const (
	DefaultBreakerFailures = 3
	DefaultBreakerOpenFor  = 30 * time.Second
)

// BreakerSettings tune every source's circuit breaker. While a breaker is
// open its source's signals are failed without asking it, so the services
// they drive are held, never scaled down.
type BreakerSettings struct {
	// FailureThreshold is how many collections in a row must fail before
	// the breaker opens (default DefaultBreakerFailures).
	FailureThreshold uint32
	// OpenFor is how long an open breaker refuses calls before it lets one
	// trial collection through (default DefaultBreakerOpenFor).
	OpenFor time.Duration
}

func (b BreakerSettings) withDefaults() BreakerSettings {
	if b.FailureThreshold == 0 {
		b.FailureThreshold = DefaultBreakerFailures
	}
	if b.OpenFor <= 0 {
		b.OpenFor = DefaultBreakerOpenFor
	}
	return b
}

// SourceError is why a source produced no data this tick. Its text names
// the source, so a decision's reason says where the problem is.
type SourceError struct {
	Source string
	// Reason is one of the Reason* constants.
	Reason string
	Err    error
}

func (e *SourceError) Error() string { return e.Source + ": " + e.Err.Error() }

func (e *SourceError) Unwrap() error { return e.Err }

// errCallerGone marks a call cut short because the tick's own context
// ended (shutdown, leadership lost). That says nothing about the source,
// so the breaker does not count it.
var errCallerGone = errors.New("collection canceled")

// guard runs one source's collection through its breaker and keeps its
// health metrics.
type guard struct {
	source string
	cb     *gobreaker.CircuitBreaker[struct{}]
	m      *metrics
	log    *zap.Logger

	mu      sync.Mutex
	up      bool
	lastErr error
}

func newGuard(source string, s BreakerSettings, m *metrics, log *zap.Logger) *guard {
	g := &guard{source: source, m: m, log: log, up: true}
	m.initSource(source)
	g.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        source,
		MaxRequests: 1,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.FailureThreshold },
		IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			m.setBreaker(name, to)
			g.mu.Lock()
			last := g.lastErr
			g.mu.Unlock()
			fields := []zap.Field{zap.String("source", name), zap.String("from", from.String()), zap.String("to", to.String())}
			if to == gobreaker.StateOpen {
				g.log.Warn("signal source breaker opened: its signals are held until it recovers", append(fields, zap.Error(last))...)
			} else {
				g.log.Info("signal source breaker changed state", fields...)
			}
		},
	})
	return g
}

// run calls fn through the breaker. fn returns an error only when the
// source as a whole failed; problems of single queries travel in its
// results. The returned error is a *SourceError or nil.
func (g *guard) run(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := g.cb.Execute(func() (struct{}, error) {
		err := fn(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			err = fmt.Errorf("%w: %w", errCallerGone, err)
		default:
			// Recorded before the breaker sees the failure, so the log
			// line of a trip names the error that caused it.
			g.mu.Lock()
			g.lastErr = err
			var se *SourceError
			if errors.As(err, &se) {
				g.lastErr = se.Err
			}
			g.mu.Unlock()
		}
		return struct{}{}, err
	})
	// The open → half-open transition happens lazily inside the breaker;
	// reading the state here keeps the gauge current.
	g.m.setBreaker(g.source, g.cb.State())
	if err == nil {
		g.setUp(true, nil)
		return nil
	}
	var se *SourceError
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		g.mu.Lock()
		last := g.lastErr
		g.mu.Unlock()
		msg := "circuit breaker open after repeated failures"
		if last != nil {
			msg += "; last error: " + last.Error()
		}
		se = &SourceError{Source: g.source, Reason: ReasonBreakerOpen, Err: errors.New(msg)}
		g.m.errors.WithLabelValues(g.source, ReasonBreakerOpen).Inc()
	case errors.As(err, &se):
		// Counted where it happened.
	default:
		se = &SourceError{Source: g.source, Reason: ReasonAPI, Err: err}
		g.m.errors.WithLabelValues(g.source, ReasonAPI).Inc()
	}
	g.setUp(false, se)
	return se
}

func (g *guard) setUp(up bool, err error) {
	g.mu.Lock()
	was := g.up
	g.up = up
	g.mu.Unlock()
	v := 0.0
	if up {
		v = 1
	}
	g.m.up.WithLabelValues(g.source).Set(v)
	switch {
	case was && !up:
		g.log.Warn("signal source failed: its signals are reported as failed and their services held", zap.String("source", g.source), zap.Error(err))
	case !was && up:
		g.log.Info("signal source recovered", zap.String("source", g.source))
	}
}

// state returns the breaker's state.
func (g *guard) state() gobreaker.State { return g.cb.State() }
