package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/doctor"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/record"
	"github.com/elmascale/elmascale/scaler"
)

// Options configure Run. RESTConfig and ConfigPath are required.
type Options struct {
	RESTConfig *rest.Config
	// ConfigPath is the elmascale config file, reloaded when it changes.
	ConfigPath string
	// Policy names a ScalingPolicy, "namespace/name" or a name in
	// Namespace, to take the config from instead of ConfigPath: watched
	// through the API server, its status carrying every decision.
	Policy string
	// Mode is scaler.ModeApply or scaler.ModeDryRun (the default).
	Mode scaler.Mode
	// Namespace and Interval override the config's when set.
	Namespace string
	Interval  time.Duration
	// AnnotateRecommendations writes the recommended-replicas annotation in
	// dry-run.
	AnnotateRecommendations bool
	// WriteTimeout bounds each write to a target (default 10s).
	WriteTimeout time.Duration

	// LeaderElect turns on Lease-based leader election; without it this
	// process always writes.
	LeaderElect    bool
	LeaseName      string // default "elmascale"
	LeaseNamespace string // default: the pod's namespace, then the config's
	Identity       string // default: hostname plus a random suffix
	LeaseDuration  time.Duration
	RenewDeadline  time.Duration
	RetryPeriod    time.Duration
	// KeepLeaseOnExit: see LeaderElection.
	KeepLeaseOnExit bool

	// MetricsAddr serves /metrics and /api/v1/*; HealthAddr serves /healthz
	// and /readyz. Empty disables the server; ":0" picks a free port.
	MetricsAddr, HealthAddr string
	// MetricsAuth puts /metrics and /api/v1/* behind Kubernetes
	// authentication and authorization (TokenReview, SubjectAccessReview):
	// a caller needs a bearer token whose user may get those URLs.
	MetricsAuth bool
	// OnListen, if set, is told the bound addresses.
	OnListen func(metrics, health string)

	// Collector samples signals; nil means MissingCollector.
	Collector loop.Collector
	// Sources names the collector's sources for the start-up checks, so a
	// signal that does not resolve is blamed on the right one.
	Sources doctor.Sources
	Logger  *zap.Logger
	// Registry for the metrics; nil means a new one with the Go and process
	// collectors.
	Registry *prometheus.Registry
	Version  string
	// ReloadEvery is the config file poll period (default 5s).
	ReloadEvery time.Duration
	// DecisionHistory is how many decisions /api/v1/decisions keeps, newest
	// ticks first (default 2,000).
	DecisionHistory int
	Clock           clock.Clock
}

func (o *Options) defaults() error {
	if o.RESTConfig == nil {
		return errors.New("no cluster connection (RESTConfig)")
	}
	if o.ConfigPath == "" && o.Policy == "" {
		return errors.New("no config file or ScalingPolicy given")
	}
	switch o.Mode {
	case "":
		o.Mode = scaler.ModeDryRun
	case scaler.ModeApply, scaler.ModeDryRun:
	default:
		return fmt.Errorf("mode %q: want %s or %s", o.Mode, scaler.ModeApply, scaler.ModeDryRun)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = record.NewRegistry()
	}
	if o.Collector == nil {
		o.Collector = loop.MissingCollector{Reason: "no signal collector configured"}
	}
	if o.ReloadEvery == 0 {
		o.ReloadEvery = 5 * time.Second
	}
	if o.DecisionHistory == 0 {
		o.DecisionHistory = 2000
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.LeaseName == "" {
		o.LeaseName = "elmascale"
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Identity = host + "_" + hex.EncodeToString(b)
	}
	return nil
}

// Run runs the daemon until ctx ends, then shuts down in order: the loop
// stops, the leader releases its lease, pending Events are flushed and the
// HTTP servers close. It returns an error only when it cannot start.
func Run(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	log := o.Logger
	if limit, from := setMemoryLimit("/sys/fs/cgroup"); limit > 0 {
		log.Info("Go memory limit set from the container's", zap.Int64("bytes", limit), zap.String("from", from))
	}
	metrics := record.NewMetrics(o.Registry, o.Mode == scaler.ModeDryRun, o.Version)

	var firstNS string
	adjust := func(c *config.Config) error {
		if o.Namespace != "" {
			c.Namespace = o.Namespace
		}
		if o.Interval > 0 {
			c.Interval = o.Interval
		}
		if c.Namespace == "" {
			return errors.New("no namespace: set it in the config or with --namespace")
		}
		// The informers watch one namespace, fixed at start-up.
		if firstNS != "" && c.Namespace != firstNS {
			return rejectError{fmt.Sprintf("namespace changed from %q to %q: restart elmascale to watch another namespace", firstNS, c.Namespace)}
		}
		return nil
	}
	client, err := kubernetes.NewForConfig(o.RESTConfig)
	if err != nil {
		return err
	}
	src, status, err := openConfig(ctx, &o, adjust, client, log, metrics.Reload)
	if err != nil {
		return err
	}
	firstNS = src.Current().Namespace
	// The config in force is the file's or the policy's with its worker
	// pool templates expanded over the queues RabbitMQ has.
	lister, _ := o.Collector.(QueueLister)
	pools := NewPoolSource(src, lister, o.Clock, log.Named("pools"))
	if err := pools.Register(o.Registry); err != nil {
		return err
	}
	pools.Refresh(ctx)
	cfg := pools.Current()

	leading := &Leadership{}
	sc, err := scaler.NewForConfig(o.RESTConfig, scaler.Options{
		Client:                  client,
		Namespace:               cfg.Namespace,
		Mode:                    o.Mode,
		IsLeader:                leading.IsLeader,
		WriteTimeout:            o.WriteTimeout,
		AnnotateRecommendations: o.AnnotateRecommendations,
		Logger:                  log.Named("scaler"),
	})
	if err != nil {
		return err
	}

	history := record.NewHistory(string(o.Mode), o.DecisionHistory)
	health := record.NewHealth(o.Clock.Now, func() time.Duration { return pools.Current().Interval })
	health.SetNotReady("waiting for informer caches")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	endpoints := record.Endpoints{Registry: o.Registry, History: history, Health: health}
	if o.MetricsAuth {
		endpoints.Auth = &record.KubeAuth{Client: client, Log: log.Named("metrics-auth")}
	}
	servers, err := endpoints.Serve(o.MetricsAddr, o.HealthAddr, o.Logger)
	if err != nil {
		return err
	}
	if o.OnListen != nil {
		o.OnListen(servers.MetricsAddr, servers.HealthAddr)
	}

	if file, ok := src.(*ConfigSource); ok {
		wg.Add(1)
		go func() { defer wg.Done(); file.Watch(ctx, o.ReloadEvery) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); pools.Run(ctx) }()
	recorders := loop.Recorders{metrics, record.NewSignalResolved(o.Registry), history, health, record.TickLogger{Log: log}}
	if status != nil {
		status.SetLeader(leading.IsLeader)
		recorders = append(recorders, status)
	}

	var electDone chan struct{}
	if o.LeaderElect {
		ns := o.LeaseNamespace
		if ns == "" {
			ns = podNamespace(cfg.Namespace)
		}
		le := LeaderElection{Client: client, Namespace: ns, Name: o.LeaseName, Identity: o.Identity,
			LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod, KeepLeaseOnExit: o.KeepLeaseOnExit}
		electDone = make(chan struct{})
		go func() {
			defer close(electDone)
			if err := elect(ctx, le, leading, metrics.SetLeader, log.Named("leader")); err != nil {
				log.Error("leader election failed to start; this replica never writes", zap.Error(err))
			}
		}()
	} else {
		leading.set(true)
		metrics.SetLeader(true)
	}

	log.Info("elmascale running", zap.String("mode", string(o.Mode)), zap.String("namespace", cfg.Namespace),
		zap.Int("services", len(cfg.Services)), zap.Duration("interval", cfg.Interval),
		zap.Bool("leaderElect", o.LeaderElect), zap.String("identity", o.Identity), zap.String("version", o.Version))

	if err := sc.Start(ctx); err != nil {
		log.Error("informers did not sync", zap.Error(err))
	} else {
		lp := &loop.Loop{
			// The config's bounds, budget and namespace as metrics, kept
			// current across reloads: the loop reads the config once a tick.
			Config: func() *config.Config {
				c := pools.Current()
				metrics.SetConfig(c.Namespace, c.Policy)
				return c
			},
			Collector: o.Collector,
			Scaler:    sc,
			Recorder:  recorders,
		}
		wg.Add(1)
		go func() { defer wg.Done(); checkAtStart(ctx, cfg, o, sc, client, log.Named("doctor")) }()
		go releaseWhenStarted(ctx, o.Clock, log)
		tk, waitBurst := startBurst(ctx, lp, o.Collector, func() time.Duration { return loop.BurstInterval(pools.Current()) }, leading, o.Clock, log.Named("burst"))
		runLoop(ctx, tk, pools, leading, o.Clock)
		waitBurst()
	}

	// Shutdown: the lease goes first so a standby takes over at once.
	cancel()
	if electDone != nil {
		<-electDone
	}
	sc.Close()
	wg.Wait()
	servers.Shutdown(5 * time.Second)
	log.Info("elmascale stopped")
	return nil
}

// runLoop ticks until ctx ends. The wait between ticks follows the config
// in force, so a reload that changes the interval takes effect at once
// rather than after the old interval. Each tick of a leader runs in a
// context that ends with its term.
func runLoop(ctx context.Context, lp ticker, src configSource, leading *Leadership, clk clock.Clock) {
	for ctx.Err() == nil {
		tctx, cancel := leading.TickContext(ctx)
		lp.RunOnce(tctx, clk.Now())
		cancel()
		waitInterval(ctx, src, clk.Now(), clk)
	}
}

// waitInterval waits until the interval in force has passed since last or
// ctx ends. A reload meanwhile is taken into account at once: a shorter
// interval ticks as soon as it has passed, not when the old one would.
func waitInterval(ctx context.Context, src configSource, last time.Time, clk clock.Clock) {
	for {
		changed := src.Changed()
		wait := src.Current().Interval - clk.Since(last)
		if wait <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-clk.After(wait):
			return
		}
	}
}

// podNamespace is the namespace this pod runs in, or fallback outside a pod.
func podNamespace(fallback string) string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	return fallback
}
