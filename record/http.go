package record

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// NewRegistry returns a registry holding the Go runtime and process
// collectors, the base every elmascale process exports beside its own
// metrics.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Endpoints is everything elmascale serves over HTTP. Metrics carries
// /metrics and the decisions API; Health carries the probes. Either may be
// served alone; the daemon puts them on two addresses, as kubelet probes
// and Prometheus scrapes usually want.
type Endpoints struct {
	Registry *prometheus.Registry
	History  *History
	Health   *Health
	// Auth, when set, puts the metrics server (not the probes) behind
	// Kubernetes authentication and authorization.
	Auth *KubeAuth
}

// MetricsHandler serves GET /metrics, /api/v1/decisions[?service=NAME],
// /api/v1/recommendations and /api/v1/graph.
func (e Endpoints) MetricsHandler() http.Handler {
	m := http.NewServeMux()
	m.Handle("GET /metrics", promhttp.HandlerFor(e.Registry, promhttp.HandlerOpts{Registry: e.Registry}))
	m.HandleFunc("GET /api/v1/decisions", e.History.ServeDecisions)
	m.HandleFunc("GET /api/v1/recommendations", e.History.ServeRecommendations)
	m.HandleFunc("GET /api/v1/graph", e.History.ServeGraph)
	if e.Auth != nil {
		return e.Auth.Wrap(m)
	}
	return m
}

// HealthHandler serves GET /healthz (loop progress) and /readyz.
func (e Endpoints) HealthHandler() http.Handler {
	h := http.NewServeMux()
	h.HandleFunc("GET /healthz", probe(e.Health.Live))
	h.HandleFunc("GET /readyz", probe(e.Health.Ready))
	return h
}

// Servers are the running HTTP servers of one process.
type Servers struct {
	// MetricsAddr and HealthAddr are the bound addresses ("" when off).
	MetricsAddr, HealthAddr string
	servers                 []*http.Server
}

// Serve starts the metrics server on metricsAddr and the probe server on
// healthAddr; an empty address leaves that server off and ":0" picks a free
// port. It fails, closing what it opened, when an address cannot be bound.
func (e Endpoints) Serve(metricsAddr, healthAddr string, log *zap.Logger) (*Servers, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Servers{}
	start := func(addr string, h http.Handler) (string, error) {
		if addr == "" {
			return "", nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		s.servers = append(s.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("HTTP server stopped", zap.String("addr", addr), zap.Error(err))
			}
		}()
		return ln.Addr().String(), nil
	}
	var err error
	if s.MetricsAddr, err = start(metricsAddr, e.MetricsHandler()); err != nil {
		return nil, err
	}
	if e.Health != nil {
		if s.HealthAddr, err = start(healthAddr, e.HealthHandler()); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Shutdown stops the servers gracefully within timeout.
func (s *Servers) Shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
}

// Close stops the servers at once.
func (s *Servers) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
}
