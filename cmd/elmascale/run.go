package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/version"
	"github.com/elmascale/elmascale/record"
	"github.com/elmascale/elmascale/scaler"
	"github.com/elmascale/elmascale/simulations"
	"github.com/elmascale/elmascale/simulations/demo"
)

// errNoCluster is returned when neither a kubeconfig nor an in-cluster
// service account is available.
var errNoCluster = errors.New("no Kubernetes cluster: pass --kubeconfig (or set KUBECONFIG), or run elmascale in a pod " +
	"(without --config, `elmascale run` drives the embedded simulated ELMA365 cluster instead)")

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o daemon.Options
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then the in-cluster service account)")
	fs.StringVar(&o.ConfigPath, "config", "", "elmascale config file, reloaded when it changes (required)")
	mode := fs.String("mode", string(scaler.ModeDryRun), "apply: write replicas; dry-run: only publish recommendations")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace of the scale targets (overrides the config)")
	fs.DurationVar(&o.Interval, "interval", 0, "loop interval (overrides the config)")
	fs.BoolVar(&o.AnnotateRecommendations, "annotate-recommendations", false,
		"in dry-run, write the "+scaler.AnnotationRecommended+" annotation on targets (needs patch on deployments)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader through a Lease; only the leader writes")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a lease is valid without renewal")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader retries renewing before it stops leading")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "how often candidates try to acquire or renew")
	fs.StringVar(&o.LeaseNamespace, "leader-elect-namespace", "", "namespace of the Lease (default: the pod's namespace, then the config's)")
	fs.StringVar(&o.LeaseName, "leader-elect-name", "elmascale", "name of the Lease")
	fs.StringVar(&o.Identity, "leader-elect-identity", "", "this replica's identity in the Lease (default: hostname plus a random suffix)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "address for /metrics and /api/v1/* (empty: off)")
	fs.StringVar(&o.HealthAddr, "health-probe-bind-address", ":8081", "address for /healthz and /readyz (empty: off)")
	fs.DurationVar(&o.ReloadEvery, "config-poll-interval", 5*time.Second, "how often the config file is checked for changes")
	live := addLiveFlags(fs) // shares --kubeconfig defined above
	var demoOpts demo.Options
	fs.StringVar(&demoOpts.Scenario, "demo-scenario", "elma365-day", "with no cluster and no --config: the simulated scenario to drive ("+strings.Join(simulations.ScenarioNames(), ", ")+")")
	fs.Float64Var(&demoOpts.Speedup, "demo-speed", 600, "with no cluster: simulated seconds per second of wall time")
	fs.Uint64Var(&demoOpts.Seed, "demo-seed", 1, "with no cluster: seed of the simulated load")
	fs.DurationVar(&demoOpts.Duration, "demo-duration", 0, "with no cluster: stop after this much simulated time (0: the whole scenario)")
	logFormat := fs.String("log-format", "auto", "json, console, or auto (console on a terminal, JSON otherwise)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o.Mode = scaler.Mode(*mode)
	if o.Mode != scaler.ModeApply && o.Mode != scaler.ModeDryRun {
		fmt.Fprintf(stderr, "run: --mode must be %s or %s\n", scaler.ModeApply, scaler.ModeDryRun)
		return 2
	}
	// No cluster and no config: show the whole loop working on the
	// embedded simulated ELMA365 cluster.
	if o.ConfigPath == "" {
		if _, err := restConfig(*kubeconfig); errors.Is(err, errNoCluster) {
			return runDemo(ctx, demoOpts, o.MetricsAddr, o.HealthAddr, stdout, stderr)
		}
		fmt.Fprintln(stderr, "run: --config is required")
		return 2
	}
	log, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	// client-go logs through klog; send it to the same sink and format.
	klog.SetLogger(zapr.NewLogger(log.Named("client-go")))

	if os.Getenv("GOGC") == "" {
		// The live heap is small (about 10 MiB for 1,000 Deployments) and
		// ticks are seconds apart, so collecting at 50% growth instead of
		// 100% trims resident memory at a negligible CPU cost.
		debug.SetGCPercent(50)
	}
	o.RESTConfig, err = restConfig(*kubeconfig)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	o.RESTConfig.UserAgent = "elmascale/" + version.Version
	o.Logger, o.Version = log, version.Version
	o.Registry = record.NewRegistry()
	copts, err := live.options()
	if err == nil {
		// metrics.k8s.io through the cluster connection always (CPU and
		// memory signals), Prometheus and RabbitMQ when their URLs are
		// given; a signal whose source is not configured is reported
		// missing, so the policy holds that service.
		copts.RabbitMQPasswordEnv = rabbitPasswordEnv
		copts.Logger, copts.Registerer = log.Named("collector"), o.Registry
		o.Collector, err = collector.NewForConfig(o.RESTConfig, copts)
	}
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	if err := daemon.Run(ctx, o); err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	return 0
}

// restConfig finds the cluster: --kubeconfig, then $KUBECONFIG, then the
// pod's service account.
func restConfig(path string) (*rest.Config, error) {
	if path == "" {
		path = os.Getenv("KUBECONFIG")
	}
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, errNoCluster
	}
	return cfg, err
}

// newLogger logs JSON (for a log pipeline in a cluster) unless asked for
// console or, in auto, writing to a terminal.
func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			format = "console"
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--log-format must be json, console or auto")
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

// runDemo drives the daemon's loop against the embedded simulated ELMA365
// cluster in accelerated time, printing decisions as they happen.
func runDemo(ctx context.Context, o demo.Options, metricsAddr, healthAddr string, stdout, stderr io.Writer) int {
	o.MetricsAddr, o.HealthAddr, o.Out, o.Version = metricsAddr, healthAddr, stdout, version.Version
	fmt.Fprintln(stdout, "no Kubernetes cluster configured: driving the embedded simulated ELMA365 cluster (Ctrl-C stops)")
	if _, err := demo.Run(ctx, o); err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return 1
	}
	return 0
}
