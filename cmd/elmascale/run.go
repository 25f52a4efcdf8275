package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"time"

	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
	k8sversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/doctor"
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

// runFlags are run's flags beyond the daemon's options.
type runFlags struct {
	kubeconfig, mode    string
	logFormat, logLevel string
	live                *liveFlags
	demo                demo.Options
}

func newRunCommand() *cobra.Command {
	var o daemon.Options
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the autoscaling daemon against a cluster (apply or dry-run), or the embedded demo without one",
		Long: `Run the autoscaling daemon. It watches the targets in the config's namespace, collects
their signals every interval, decides, and in --mode=apply writes the replicas (only while
leader with --leader-elect); in --mode=dry-run (the default) it only publishes them.

The cluster is --kubeconfig, then $KUBECONFIG, then the pod's service account. Without
--config the embedded ELMA365 preset is used. With no cluster and no --config, run drives the
embedded simulated ELMA365 cluster in accelerated time (the --demo-* flags) and prints each
decision as it happens.`,
		Example: `  elmascale run                                    # the embedded demo: no cluster needed
  elmascale run --kubeconfig ~/.kube/config --prometheus http://localhost:9090
  elmascale run --config elmascale.yaml --mode apply --leader-elect
  elmascale run --policy elma365/elma365 --prometheus http://prometheus.monitoring:9090`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), o, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then the in-cluster service account)")
	fs.StringVar(&o.ConfigPath, "config", "", "elmascale config file, reloaded when it changes (default: the embedded ELMA365 preset)")
	fs.StringVar(&o.Policy, "policy", "", "take the config from this ScalingPolicy, namespace/name (or a name in --namespace), instead of --config: watched through the API server, every decision in its status")
	enumFlag(cmd, &f.mode, "mode", "", string(scaler.ModeDryRun), []string{string(scaler.ModeApply), string(scaler.ModeDryRun)},
		"apply writes replicas; dry-run only publishes recommendations")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace of the scale targets (overrides the config)")
	durationFlag(fs, &o.Interval, "interval", 0, time.Second, "the config's", "loop interval, at least 1s (overrides the config)")
	fs.BoolVar(&o.AnnotateRecommendations, "annotate-recommendations", false,
		"in dry-run, write the "+scaler.AnnotationRecommended+" annotation on targets (needs patch on deployments)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader through a Lease; only the leader writes")
	durationFlag(fs, &o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, time.Second, "", "how long a lease is valid without renewal")
	durationFlag(fs, &o.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, time.Second, "", "how long the leader retries renewing before it stops leading")
	durationFlag(fs, &o.RetryPeriod, "leader-elect-retry-period", 2*time.Second, 100*time.Millisecond, "", "how often candidates try to acquire or renew")
	fs.StringVar(&o.LeaseNamespace, "leader-elect-namespace", "", "namespace of the Lease (default: the pod's namespace, then the config's)")
	fs.StringVar(&o.LeaseName, "leader-elect-name", "elmascale", "name of the Lease")
	fs.StringVar(&o.Identity, "leader-elect-identity", "", "this replica's identity in the Lease (default: hostname plus a random suffix)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "address for /metrics and /api/v1/* (empty: off)")
	fs.StringVar(&o.HealthAddr, "health-probe-bind-address", ":8081", "address for /healthz and /readyz (empty: off)")
	fs.BoolVar(&o.MetricsAuth, "metrics-auth", false,
		"serve /metrics and /api/v1/* only to bearer tokens the API server accepts whose user may get them (TokenReview, SubjectAccessReview; RBAC in deploy/base/metrics-auth.yaml)")
	durationFlag(fs, &o.WriteTimeout, "write-timeout", 10*time.Second, 100*time.Millisecond, "", "timeout of each write to a scale target (scale update, recommendation annotation)")
	durationFlag(fs, &o.ReloadEvery, "config-poll-interval", 5*time.Second, 100*time.Millisecond, "", "how often the config file is checked for changes")
	f.live = addLiveFlags(fs) // shares --kubeconfig defined above
	scenarios := simulations.ScenarioNames()
	enumFlag(cmd, &f.demo.Scenario, "demo-scenario", "", "elma365-day", scenarios,
		"with no cluster and no --config: the simulated scenario to drive (elmascale simulate --list shows them)")
	f.demo.Speedup = 600
	fs.Var(positiveFloat{&f.demo.Speedup}, "demo-speed", "with no cluster: simulated seconds per second of wall time")
	fs.Uint64Var(&f.demo.Seed, "demo-seed", 1, "with no cluster: seed of the simulated load")
	durationFlag(fs, &f.demo.Duration, "demo-duration", 0, time.Second, "the whole scenario", "with no cluster: stop after this much simulated time")
	enumFlag(cmd, &f.logFormat, "log-format", "", "auto", []string{"auto", "json", "console"},
		"log format; auto is console on a terminal, JSON otherwise")
	enumFlag(cmd, &f.logLevel, "log-level", "", "info", []string{"debug", "info", "warn", "error"}, "lowest level logged")
	_ = cmd.MarkFlagFilename("kubeconfig")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

func runRun(ctx context.Context, o daemon.Options, f *runFlags, stdout, stderr io.Writer) error {
	o.Mode = scaler.Mode(f.mode)
	if o.RenewDeadline >= o.LeaseDuration {
		return usageErrorf("--leader-elect-renew-deadline (%s) must be shorter than --leader-elect-lease-duration (%s)", o.RenewDeadline, o.LeaseDuration)
	}
	if o.RetryPeriod >= o.RenewDeadline {
		return usageErrorf("--leader-elect-retry-period (%s) must be shorter than --leader-elect-renew-deadline (%s)", o.RetryPeriod, o.RenewDeadline)
	}
	if o.Policy != "" && o.ConfigPath != "" {
		return usageErrorf("--policy and --config both name the config; give one")
	}
	if o.Policy != "" {
		if _, _, err := daemon.ParsePolicyRef(o.Policy, o.Namespace); err != nil {
			return usageErrorf("--policy: %v", err)
		}
	}
	rc, clusterErr := restConfig(f.kubeconfig)
	// No cluster and no config: show the whole loop working on the
	// embedded simulated ELMA365 cluster.
	if o.ConfigPath == "" && o.Policy == "" && errors.Is(clusterErr, errNoCluster) {
		return runDemo(ctx, f.demo, o.MetricsAddr, o.HealthAddr, stdout)
	}
	log, err := newLogger(f.logFormat, f.logLevel, stderr)
	if err != nil {
		return usageErrorf("%v", err)
	}
	defer func() { _ = log.Sync() }()
	// client-go logs through klog; send it to the same sink and format.
	klog.SetLogger(zapr.NewLogger(log.Named("client-go")))

	if os.Getenv("GOGC") == "" {
		// The live heap is small (about 10 MiB for 1,000 Deployments) and
		// ticks are seconds apart, so collecting at 25% growth instead of
		// 100% keeps 3-4 MiB less resident than 50% would, for about 1 ms
		// more a tick at 1,000 services (docs/benchmarks/daemon-memory.md).
		debug.SetGCPercent(25)
	}
	if clusterErr != nil {
		log.Error("cannot start", zap.Error(clusterErr))
		return failedSilently()
	}
	o.RESTConfig = rc
	o.RESTConfig.UserAgent = "elmascale/" + version.Version
	if err := checkAPIServer(ctx, o.RESTConfig, log); err != nil {
		log.Error("cannot start: the Kubernetes API server does not answer", zap.String("host", o.RESTConfig.Host), zap.Error(err))
		return failedSilently()
	}
	cleanup, err := configInForce(&o, log)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return failedSilently()
	}
	defer cleanup()
	o.Logger, o.Version = log, version.Version
	o.Registry = record.NewRegistry()
	copts, err := f.live.options()
	if err == nil {
		// metrics.k8s.io through the cluster connection always (CPU and
		// memory signals), Prometheus and RabbitMQ when their URLs are
		// given; a signal whose source is not configured is reported
		// missing, so the policy holds that service.
		copts.RabbitMQPasswordEnv = rabbitPasswordEnv
		copts.Logger, copts.Registerer = log.Named("collector"), o.Registry
		o.Collector, err = collector.NewForConfig(o.RESTConfig, copts)
		o.Sources = doctor.Sources{PrometheusURL: copts.PrometheusURL, RabbitMQURL: copts.RabbitMQURL, Kubernetes: true}
	}
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return failedSilently()
	}
	if err := daemon.Run(ctx, o); err != nil {
		log.Error("cannot start", zap.Error(err))
		return failedSilently()
	}
	return nil
}

// apiServerCheckTimeout bounds the start-up reachability check: a dead API
// server is reported at once, not as informer caches that never sync.
const apiServerCheckTimeout = 5 * time.Second

// checkAPIServer asks the API server for its version, which any
// authenticated client may read, and logs who answered.
func checkAPIServer(ctx context.Context, rc *rest.Config, log *zap.Logger) error {
	probe := rest.CopyConfig(rc)
	probe.Timeout = apiServerCheckTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(probe)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	var v *k8sversion.Info
	go func() {
		var err error
		v, err = dc.ServerVersion()
		done <- err
	}()
	select {
	case err := <-done:
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return fmt.Errorf("no answer within %s: %w", apiServerCheckTimeout, err)
		}
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	log.Info("connected to the Kubernetes API server", zap.String("host", rc.Host), zap.String("version", v.GitVersion))
	return nil
}

// configInForce logs which config the daemon runs with. Without --config it
// is the embedded ELMA365 preset, which the daemon reads from a private
// file that never changes; cleanup removes it.
func configInForce(o *daemon.Options, log *zap.Logger) (cleanup func(), err error) {
	if o.ConfigPath != "" {
		log.Info("config in force", zap.String("file", o.ConfigPath))
		return func() {}, nil
	}
	if o.Policy != "" {
		return func() {}, nil // the daemon logs the generation it takes
	}
	tmp, err := os.CreateTemp("", "elmascale-preset-*.yaml")
	if err != nil {
		return nil, fmt.Errorf("no --config: cannot write the embedded preset for the daemon (%w); pass --config", err)
	}
	defer tmp.Close()
	if _, err := tmp.Write(config.ELMA365PresetYAML()); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("no --config: cannot write the embedded preset for the daemon (%w); pass --config", err)
	}
	o.ConfigPath = tmp.Name()
	log.Info("config in force: the embedded ELMA365 preset (no --config given; `elmascale validate` prints it)", zap.String("copy", tmp.Name()))
	return func() { os.Remove(tmp.Name()) }, nil
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
func runDemo(ctx context.Context, o demo.Options, metricsAddr, healthAddr string, stdout io.Writer) error {
	o.MetricsAddr, o.HealthAddr, o.Out, o.Version = metricsAddr, healthAddr, stdout, version.Version
	fmt.Fprintln(stdout, "no Kubernetes cluster configured: driving the embedded simulated ELMA365 cluster (Ctrl-C stops)")
	if _, err := demo.Run(ctx, o); err != nil {
		return failed(err)
	}
	return nil
}
