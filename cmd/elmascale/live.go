package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/internal/version"
	"github.com/elmascale/elmascale/loop"
)

// rabbitPasswordEnv holds the RabbitMQ password when no file is given.
const rabbitPasswordEnv = "ELMASCALE_RABBITMQ_PASSWORD"

// liveFlags are the flags of the live signal sources: a command that has
// them reads load from a real Prometheus, RabbitMQ and metrics.k8s.io.
type liveFlags struct {
	prometheusURL      string
	prometheusConfig   string
	rabbitURL          string
	rabbitUser         string
	rabbitPasswordFile string
	// kubeconfig is the --kubeconfig flag, this file's or one the command
	// defined before; read when the collector is built.
	kubeconfig    pflag.Value
	sourceTimeout time.Duration
	maxClockSkew  time.Duration
}

// addLiveFlags defines the source flags on fs. A --kubeconfig the command
// already defines is shared rather than defined twice.
func addLiveFlags(fs *pflag.FlagSet) *liveFlags {
	l := &liveFlags{}
	fs.StringVar(&l.prometheusURL, "prometheus", "", "Prometheus (or Thanos, Mimir) query API base URL, e.g. http://prometheus.monitoring:9090")
	fs.StringVar(&l.prometheusConfig, "prometheus-config", "", "file with Prometheus http_config settings: bearer token, basic auth, TLS")
	fs.StringVar(&l.rabbitURL, "rabbitmq", "", "RabbitMQ management API base URL, e.g. http://rabbitmq.elma365:15672")
	fs.StringVar(&l.rabbitUser, "rabbitmq-user", "", "RabbitMQ user (the monitoring tag is enough)")
	fs.StringVar(&l.rabbitPasswordFile, "rabbitmq-password-file", "", "file holding the RabbitMQ password (default: $"+rabbitPasswordEnv+")")
	if f := fs.Lookup("kubeconfig"); f != nil {
		l.kubeconfig = f.Value
	} else {
		fs.String("kubeconfig", "", "kubeconfig of the cluster whose pods metrics.k8s.io measures (CPU and memory signals)")
		l.kubeconfig = fs.Lookup("kubeconfig").Value
	}
	durationFlag(fs, &l.sourceTimeout, "source-timeout", 10*time.Second, time.Millisecond, "", "timeout of each request to a signal source")
	durationFlag(fs, &l.maxClockSkew, "max-clock-skew", 30*time.Second, time.Second, "", "a sample stamped further than this ahead of the tick is invalid")
	return l
}

// options are the collector options the flags set, without clients.
func (l *liveFlags) options() (collector.Options, error) {
	if l.sourceTimeout <= 0 {
		return collector.Options{}, errors.New("--source-timeout must be > 0")
	}
	return collector.Options{
		PrometheusURL:        l.prometheusURL,
		PrometheusConfigFile: l.prometheusConfig,
		RabbitMQURL:          l.rabbitURL,
		RabbitMQUser:         l.rabbitUser,
		RabbitMQPasswordFile: l.rabbitPasswordFile,
		RabbitMQPasswordEnv:  rabbitPasswordEnv,
		QueryTimeout:         l.sourceTimeout,
		MaxClockSkew:         l.maxClockSkew,
	}, nil
}

// collector builds the live collector. enabled is false when no source was
// asked for, so the caller can fall back to its snapshot file.
func (l *liveFlags) collector(logger *zap.Logger) (c loop.Collector, enabled bool, err error) {
	opts, err := l.options()
	if err != nil {
		return nil, false, err
	}
	kubeconfig := l.kubeconfig.String()
	if l.prometheusURL == "" && l.rabbitURL == "" && kubeconfig == "" {
		if l.prometheusConfig != "" || l.rabbitUser != "" || l.rabbitPasswordFile != "" {
			return nil, false, errors.New("--prometheus-config, --rabbitmq-user and --rabbitmq-password-file need --prometheus or --rabbitmq")
		}
		return nil, false, nil
	}
	opts.Logger = logger
	var rc *rest.Config
	if kubeconfig != "" {
		if rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, false, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		rc.UserAgent = "elmascale/" + version.Version
	}
	col, err := collector.NewForConfig(rc, opts)
	if err != nil {
		return nil, false, err
	}
	return col, true, nil
}
