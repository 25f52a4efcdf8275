package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Options configure the sources. A source left unset is not used; the
// signals that need it are reported missing, so their services are held.
type Options struct {
	// PrometheusURL is the base URL of the Prometheus (or Thanos, Mimir)
	// query API, e.g. http://prometheus.monitoring:9090.
	PrometheusURL string
	// PrometheusConfigFile is a YAML file in the format of Prometheus's
	// http_config (bearer token or its file, basic auth, TLS, proxy).
	PrometheusConfigFile string
	// PrometheusHTTPConfig is the same settings given in code; ignored when
	// PrometheusConfigFile is set.
	PrometheusHTTPConfig *promconfig.HTTPClientConfig

	// RabbitMQURL is the management API's base URL, e.g.
	// http://rabbitmq.elma365:15672. User info in it is used as the
	// credentials when none are given below, and stripped otherwise.
	RabbitMQURL  string
	RabbitMQUser string
	// RabbitMQPasswordFile is read on every tick, so a rotated Secret is
	// picked up; it wins over RabbitMQPasswordEnv, the name of an
	// environment variable holding the password.
	RabbitMQPasswordFile string
	RabbitMQPasswordEnv  string
	// RabbitMQTLS configures TLS to an https management API: the CA that
	// signed the broker's certificate (CAFile), a client certificate
	// (CertFile, KeyFile) and the name to verify it against (ServerName).
	// The files are read again when they change, so rotated Secrets are
	// picked up. Ignored when RabbitMQHTTPClient is set.
	RabbitMQTLS promconfig.TLSConfig
	// RabbitMQHTTPClient, when set, is used for the management API as it
	// is; its own timeout should not be shorter than QueryTimeout.
	RabbitMQHTTPClient *http.Client

	// Kubernetes and PodMetrics read workloads, pods and metrics.k8s.io.
	// Both nil: no resource source, utilization signals are missing.
	Kubernetes kubernetes.Interface
	PodMetrics metricsclient.Interface

	// QueryTimeout bounds every single request to a source, inside the
	// tick's own context (default 10s).
	QueryTimeout time.Duration
	// MaxClockSkew is how far in the future of the tick a sample may be
	// stamped and still count (default 30s): a source whose clock runs
	// ahead would otherwise make an old sample look fresh for as long.
	MaxClockSkew time.Duration
	// MaxParallelQueries bounds concurrent Prometheus queries (default 4).
	MaxParallelQueries int
	// MaxResponseBytes bounds the body of every answer of a source, read
	// decompressed (default DefaultMaxResponseBytes); a longer one fails
	// that query.
	MaxResponseBytes int64
	// MaxSeries bounds the series of one Prometheus answer and the queues
	// of one RabbitMQ answer (default DefaultMaxSeries).
	MaxSeries int
	// Breaker tunes the circuit breakers, one per source.
	Breaker BreakerSettings

	// Logger receives source failures, recoveries and Prometheus warnings;
	// nil means no logging.
	Logger *zap.Logger
	// Registerer receives the source health metrics; nil means they are
	// not registered.
	Registerer prometheus.Registerer
}

// Collector samples signals from the configured sources. It is safe for
// concurrent use, though the loop calls it once per tick.
type Collector struct {
	log  *zap.Logger
	m    *metrics
	skew time.Duration

	prom      *promSource
	promGuard *guard

	rabbit      *rabbitSource
	rabbitGuard *guard

	kube      *kubeSource
	kubeGuard *guard
}

var _ loop.Collector = (*Collector)(nil)

// New builds a Collector. It checks the options but contacts no source.
func New(opts Options) (*Collector, error) {
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 10 * time.Second
	}
	if opts.MaxParallelQueries <= 0 {
		opts.MaxParallelQueries = 4
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c := &Collector{log: log, m: newMetrics(opts.Registerer), skew: opts.MaxClockSkew}
	bs := opts.Breaker.withDefaults()

	if opts.PrometheusURL != "" {
		api, err := newPromAPI(opts)
		if err != nil {
			return nil, err
		}
		c.prom = &promSource{api: api, timeout: opts.QueryTimeout, parallel: opts.MaxParallelQueries, maxSeries: opts.MaxSeries, m: c.m, log: log}
		c.promGuard = newGuard(SourcePrometheus, bs, c.m, log)
	}

	if opts.RabbitMQURL != "" {
		src, err := newRabbitSource(opts)
		if err != nil {
			return nil, err
		}
		src.m = c.m
		c.rabbit = src
		c.rabbitGuard = newGuard(SourceRabbitMQ, bs, c.m, log)
	}

	switch {
	case opts.Kubernetes != nil && opts.PodMetrics != nil:
		c.kube = &kubeSource{core: opts.Kubernetes, metrics: opts.PodMetrics, timeout: opts.QueryTimeout, m: c.m}
		c.kubeGuard = newGuard(SourceKubernetes, bs, c.m, log)
	case opts.Kubernetes != nil || opts.PodMetrics != nil:
		return nil, errors.New("collector: Kubernetes and PodMetrics clients must be given together")
	}
	return c, nil
}

func newPromAPI(opts Options) (promv1.API, error) {
	u, err := url.Parse(opts.PrometheusURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// The URL may hold a password, and url.Parse's own error quotes
		// it: never echo either.
		return nil, errors.New("collector: prometheus URL: want scheme://host[:port][/path]")
	}
	httpCfg := promconfig.DefaultHTTPClientConfig
	switch {
	case opts.PrometheusConfigFile != "":
		cfg, _, err := promconfig.LoadHTTPConfigFile(opts.PrometheusConfigFile)
		if err != nil {
			return nil, fmt.Errorf("collector: prometheus HTTP config %s: %w", opts.PrometheusConfigFile, err)
		}
		httpCfg = *cfg
	case opts.PrometheusHTTPConfig != nil:
		httpCfg = *opts.PrometheusHTTPConfig
	}
	if u.User != nil {
		// Credentials in the URL become basic auth, unless the HTTP config
		// names its own, and leave the URL: a request's error quotes its
		// URL, and would carry the user name into logs and the decisions.
		if httpCfg.BasicAuth == nil && httpCfg.Authorization == nil && httpCfg.BearerToken == "" && httpCfg.BearerTokenFile == "" && httpCfg.OAuth2 == nil {
			pw, _ := u.User.Password()
			httpCfg.BasicAuth = &promconfig.BasicAuth{Username: u.User.Username(), Password: promconfig.Secret(pw)}
		}
		u.User = nil
	}
	if err := httpCfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector: prometheus HTTP config: %w", err)
	}
	rt, err := promconfig.NewRoundTripperFromConfig(httpCfg, "elmascale", promconfig.WithUserAgent("elmascale"))
	if err != nil {
		return nil, fmt.Errorf("collector: prometheus HTTP client: %w", err)
	}
	client, err := api.NewClient(api.Config{Address: u.String(), RoundTripper: limitBody{next: rt, max: opts.MaxResponseBytes}})
	if err != nil {
		return nil, errors.New("collector: prometheus client: the URL is not usable as a query API base")
	}
	return promv1.NewAPI(client), nil
}

func newRabbitSource(opts Options) (*rabbitSource, error) {
	u, err := url.Parse(opts.RabbitMQURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// The URL may hold a password: never echo it.
		return nil, errors.New("collector: rabbitmq URL: want scheme://host[:port][/path]")
	}
	user := opts.RabbitMQUser
	var urlPassword string
	if u.User != nil {
		if user == "" {
			user = u.User.Username()
		}
		urlPassword, _ = u.User.Password()
		u.User = nil
	}
	if user == "" {
		return nil, errors.New("collector: rabbitmq: a user is required (in the URL or as the user option)")
	}
	password := passwordFrom(opts.RabbitMQPasswordFile, opts.RabbitMQPasswordEnv, urlPassword)
	if _, err := password(); err != nil {
		return nil, fmt.Errorf("collector: rabbitmq: %w", err)
	}
	client := opts.RabbitMQHTTPClient
	if client == nil {
		if client, err = rabbitHTTPClient(u, opts.RabbitMQTLS); err != nil {
			return nil, err
		}
	}
	return &rabbitSource{base: u, user: user, password: password, client: client, timeout: opts.QueryTimeout,
		maxBody: opts.MaxResponseBytes, maxQueues: opts.MaxSeries}, nil
}

// Collect samples every signal of cfg once. Sources run concurrently, each
// through its breaker; a source's failure fails only its own signals. The
// error is reserved for a collection that cannot run at all.
func (c *Collector) Collect(ctx context.Context, cfg *config.Config, now time.Time) (loop.Signals, error) {
	if cfg == nil {
		return nil, errors.New("collector: no configuration")
	}
	w := workFor(cfg)

	var (
		wg        sync.WaitGroup
		promRes   map[string]*metricResult
		promErr   error
		rabbitRes map[queueRef]queueStats
		rabbitErr error
		kubeRes   map[string]*workloadPods
		kubeErr   error
	)
	if c.prom != nil && len(w.metrics) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			promErr = c.promGuard.run(ctx, func(ctx context.Context) error {
				var err error
				promRes, err = c.prom.collect(ctx, w.metrics, now)
				return err
			})
		}()
	}
	if c.rabbit != nil && len(w.vhosts) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rabbitErr = c.rabbitGuard.run(ctx, func(ctx context.Context) error {
				var err error
				rabbitRes, err = c.rabbit.collect(ctx, w.vhosts)
				return err
			})
		}()
	}
	if c.kube != nil && len(w.kubeServices) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kubeErr = c.kubeGuard.run(ctx, func(ctx context.Context) error {
				var err error
				kubeRes, err = c.kube.collect(ctx, cfg.Namespace, w.kubeServices)
				return err
			})
		}()
	}
	wg.Wait()

	keyLabels := make(map[string]string, len(cfg.Metrics))
	for _, m := range cfg.Metrics {
		if m.Prometheus != nil {
			keyLabels[m.Name] = m.Prometheus.KeyLabel
		}
	}
	prom := promView{configured: c.prom != nil, res: promRes, err: promErr, keyLabels: keyLabels}
	out := make(loop.Signals, len(cfg.Services))
	for _, svc := range cfg.Services {
		sigs := make(map[string]policy.Observation, len(svc.Signals))
		for _, sg := range svc.Signals {
			var obs policy.Observation
			switch sg.Kind {
			case policy.KindUtilization:
				obs = c.utilization(kubeRes[svc.Name], kubeErr, sg.Resource)
			case policy.KindQueue:
				obs = c.queue(prom, rabbitRes, rabbitErr, sg.Queue, now)
			case policy.KindPods:
				obs = c.pods(kubeRes[svc.Name], kubeErr, prom, sg.Metric)
			default:
				obs = prom.observation(sg.Metric, sg.Key)
			}
			sigs[sg.Name] = c.notFromTheFuture(obs, now)
		}
		out[svc.Name] = sigs
	}
	return out, nil
}

func (c *Collector) utilization(wp *workloadPods, err error, resource string) policy.Observation {
	switch {
	case c.kube == nil:
		return policy.Observation{Status: policy.StatusMissing, Error: "kubernetes: no client configured for metrics.k8s.io"}
	case err != nil:
		return failed(err)
	case wp == nil:
		return policy.Observation{Status: policy.StatusMissing, Error: "kubernetes: no pods collected"}
	}
	return utilizationObservation(wp, resource)
}

func (c *Collector) queue(prom promView, stats map[queueRef]queueStats, err error, qs *config.QueueSource, now time.Time) policy.Observation {
	if qs == nil {
		return policy.Observation{Status: policy.StatusMissing, Error: "queue signal without a source"}
	}
	if qs.Backlog != "" {
		return prom.queueObservation(qs)
	}
	switch {
	case c.rabbit == nil:
		return policy.Observation{Status: policy.StatusMissing, Error: "rabbitmq: no management API URL configured"}
	case err != nil:
		return failed(err)
	}
	refs, reason := queueRefs(stats, qs)
	if reason != "" {
		return policy.Observation{Status: policy.StatusMissing, Error: reason}
	}
	q, reason := queueObservation(stats, refs)
	if reason != "" {
		return policy.Observation{Status: policy.StatusMissing, Error: reason}
	}
	// The management API reports the queues' current state and carries no
	// sample time of its own; it is as fresh as this tick.
	return policy.Observation{
		Status: policy.StatusOK,
		Time:   now,
		Queue:  &q,
	}
}

// queueRefs lists the queues a signal reads: its named queues, and every
// queue of its vhost a pattern entry matches (worker.* for every worker
// pool), in name order. A pattern that matches nothing is missing: the
// pools may not be declared yet, and zero messages would be a guess.
func queueRefs(stats map[queueRef]queueStats, qs *config.QueueSource) ([]queueRef, string) {
	refs := make([]queueRef, 0, len(qs.Queues))
	seen := map[queueRef]bool{}
	for _, e := range qs.Queues {
		if !config.IsQueuePattern(e) {
			if r := (queueRef{vhost: qs.VHost, name: e}); !seen[r] {
				seen[r] = true
				refs = append(refs, r)
			}
			continue
		}
		var matched []queueRef
		found := false
		for r := range stats {
			if r.vhost == qs.VHost && config.MatchQueue(e, r.name) {
				found = true
				if !seen[r] {
					matched = append(matched, r)
				}
			}
		}
		if !found {
			return nil, fmt.Sprintf("rabbitmq: no queue in vhost %q matches %q", qs.VHost, e)
		}
		sort.Slice(matched, func(i, j int) bool { return matched[i].name < matched[j].name })
		for _, r := range matched {
			seen[r] = true
		}
		refs = append(refs, matched...)
	}
	return refs, ""
}

// notFromTheFuture makes a sample stamped beyond the allowed clock skew
// ahead of the tick invalid: its age cannot be judged, so it must not count
// as fresh (and, being invalid, it never scales a service down).
func (c *Collector) notFromTheFuture(o policy.Observation, now time.Time) policy.Observation {
	if o.Status != policy.StatusOK || o.Time.IsZero() || !o.Time.After(now.Add(c.skew)) {
		return o
	}
	return policy.Observation{Status: policy.StatusInvalid, Time: o.Time,
		Error: fmt.Sprintf("sample stamped %s, %s ahead of this tick (more than the allowed clock skew %s): check the source's clock",
			o.Time.UTC().Format(time.RFC3339), o.Time.Sub(now).Round(time.Second), c.skew)}
}

func failed(err error) policy.Observation {
	return policy.Observation{Status: policy.StatusFailed, Error: err.Error()}
}

// promView answers signals from this tick's Prometheus results.
type promView struct {
	configured bool
	res        map[string]*metricResult
	err        error
	keyLabels  map[string]string
}

// observation is the value of metric for key: missing when absent, invalid
// when not a finite number or when several series share the key.
func (p promView) observation(metric, key string) policy.Observation {
	if !p.configured {
		return policy.Observation{Status: policy.StatusMissing, Error: "prometheus: no URL configured"}
	}
	r := p.res[metric]
	switch {
	case r == nil && p.err != nil:
		return failed(p.err)
	case r == nil:
		return policy.Observation{Status: policy.StatusMissing, Error: fmt.Sprintf("prometheus: metric %s was not queried", metric)}
	case r.err != nil:
		return failed(r.err)
	}
	label := p.keyLabels[metric]
	s, ok := r.byKey[key]
	switch {
	case !ok:
		return policy.Observation{Status: policy.StatusMissing, Error: fmt.Sprintf("prometheus: metric %s has no series with %s=%q", metric, label, key)}
	case s.series > 1:
		return policy.Observation{Status: policy.StatusInvalid, Time: s.time, Error: fmt.Sprintf("prometheus: metric %s has %d series with %s=%q: its query must aggregate by (%s)", metric, s.series, label, key, label)}
	case s.native:
		return policy.Observation{Status: policy.StatusInvalid, Time: s.time, Error: fmt.Sprintf("prometheus: metric %s is a native histogram for %s=%q: wrap its query in histogram_quantile or histogram_sum", metric, label, key)}
	case math.IsNaN(s.value) || math.IsInf(s.value, 0):
		return policy.Observation{Status: policy.StatusInvalid, Time: s.time, Error: fmt.Sprintf("prometheus: metric %s is %v for %s=%q", metric, s.value, label, key)}
	}
	return policy.Observation{Status: policy.StatusOK, Time: s.time, Value: s.value}
}

// queueObservation builds a queue signal from backlog, arrival and
// completion metrics. Any part that is not usable makes the whole signal
// unusable: a backlog without its rates would misjudge the pool.
func (p promView) queueObservation(qs *config.QueueSource) policy.Observation {
	q := &policy.QueueObservation{}
	obs := policy.Observation{Status: policy.StatusOK, Queue: q}
	parts := []struct {
		metric string
		dst    *float64
	}{{qs.Backlog, &q.Backlog}, {qs.ArrivalRate, &q.ArrivalRate}, {qs.CompletionRate, &q.CompletionRate}}
	for _, part := range parts {
		if part.metric == "" {
			continue
		}
		o := p.observation(part.metric, qs.Key)
		if o.Status != policy.StatusOK {
			return o
		}
		*part.dst = o.Value
		if obs.Time.IsZero() || o.Time.Before(obs.Time) {
			obs.Time = o.Time
		}
	}
	if qs.Unacked != "" {
		// Optional: a reading that is missing or not a count leaves the
		// signal as it would be without it (messages waiting only, the
		// pods' pace unknown). Its own sample time goes with it, so a
		// stale one is not used to tell the pace and does not make the
		// rest stale.
		if o := p.observation(qs.Unacked, qs.Key); o.Status == policy.StatusOK && o.Value >= 0 {
			q.Unacked = o.Value
			q.Backlog += o.Value
			q.UnackedTime = o.Time
		}
	}
	return obs
}

// work is what one tick must fetch for a config.
type work struct {
	metrics      []config.Metric
	vhosts       []string
	kubeServices []config.Service
}

// workFor lists the metric definitions the signals reference (each becomes
// one query, however many services read it), the RabbitMQ vhosts, and the
// services whose pods are needed.
func workFor(cfg *config.Config) work {
	usedMetric := map[string]bool{}
	vhosts := map[string]bool{}
	var w work
	for _, svc := range cfg.Services {
		needPods := false
		for _, sg := range svc.Signals {
			switch sg.Kind {
			case policy.KindUtilization:
				needPods = true
			case policy.KindPods:
				needPods = true
				if sg.Metric != "" {
					usedMetric[sg.Metric] = true
				}
			case policy.KindQueue:
				if sg.Queue == nil {
					continue
				}
				if sg.Queue.Backlog != "" {
					for _, m := range []string{sg.Queue.Backlog, sg.Queue.ArrivalRate, sg.Queue.CompletionRate, sg.Queue.Unacked} {
						if m != "" {
							usedMetric[m] = true
						}
					}
				} else if len(sg.Queue.Queues) > 0 {
					vhosts[sg.Queue.VHost] = true
				}
			default:
				if sg.Metric != "" {
					usedMetric[sg.Metric] = true
				}
			}
		}
		if needPods {
			w.kubeServices = append(w.kubeServices, svc)
		}
	}
	for _, m := range cfg.Metrics {
		if usedMetric[m.Name] && m.Prometheus != nil {
			w.metrics = append(w.metrics, m)
		}
	}
	for v := range vhosts {
		w.vhosts = append(w.vhosts, v)
	}
	sort.Strings(w.vhosts)
	return w
}

// rabbitHTTPClient is the management API's client with the TLS settings
// given. TLS settings on a plain http URL are refused: they would be
// silently unused, and the password sent in the clear.
func rabbitHTTPClient(u *url.URL, tlsCfg promconfig.TLSConfig) (*http.Client, error) {
	if tlsCfg == (promconfig.TLSConfig{}) {
		return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, nil
	}
	if u.Scheme != "https" {
		return nil, errors.New("collector: rabbitmq: TLS settings (CA, client certificate, server name) need an https:// management URL")
	}
	httpCfg := promconfig.DefaultHTTPClientConfig
	httpCfg.TLSConfig = tlsCfg
	if err := httpCfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector: rabbitmq TLS: %w", err)
	}
	rt, err := promconfig.NewRoundTripperFromConfig(httpCfg, "rabbitmq", promconfig.WithUserAgent("elmascale"))
	if err != nil {
		return nil, fmt.Errorf("collector: rabbitmq TLS: %w", err)
	}
	return &http.Client{Transport: rt}, nil
}
