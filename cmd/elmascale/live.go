package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"
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
	rabbitCAFile       string
	rabbitCertFile     string
	rabbitKeyFile      string
	rabbitServerName   string
	// kubeconfig is the --kubeconfig flag, this file's or one the command
	// defined before; read when the collector is built.
	kubeconfig    pflag.Value
	sourceTimeout time.Duration
	maxClockSkew  time.Duration
	maxBytes      int64
	maxSeries     int
	breakerFails  uint32
	breakerOpen   time.Duration
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
	fs.StringVar(&l.rabbitCAFile, "rabbitmq-ca-file", "", "PEM file of the CA that signed the RabbitMQ management API's certificate (https only; default: the system's CAs)")
	fs.StringVar(&l.rabbitCertFile, "rabbitmq-cert-file", "", "PEM client certificate presented to the RabbitMQ management API (with --rabbitmq-key-file)")
	fs.StringVar(&l.rabbitKeyFile, "rabbitmq-key-file", "", "PEM private key of --rabbitmq-cert-file")
	fs.StringVar(&l.rabbitServerName, "rabbitmq-server-name", "", "name the RabbitMQ management API's certificate is verified against (default: the --rabbitmq host)")
	if f := fs.Lookup("kubeconfig"); f != nil {
		l.kubeconfig = f.Value
	} else {
		fs.String("kubeconfig", "", "kubeconfig of the cluster whose pods metrics.k8s.io measures (CPU and memory signals)")
		l.kubeconfig = fs.Lookup("kubeconfig").Value
	}
	durationFlag(fs, &l.sourceTimeout, "source-timeout", 10*time.Second, time.Millisecond, "", "timeout of each request to a signal source")
	fs.Int64Var(&l.maxBytes, "source-max-answer-bytes", collector.DefaultMaxResponseBytes, "largest answer read from a signal source (decompressed); a longer one fails its query")
	fs.IntVar(&l.maxSeries, "source-max-series", collector.DefaultMaxSeries, "most series one Prometheus query, or queues one RabbitMQ answer, may return")
	durationFlag(fs, &l.maxClockSkew, "max-clock-skew", 30*time.Second, time.Second, "", "a sample stamped further than this ahead of the tick is invalid")
	fs.Uint32Var(&l.breakerFails, "source-breaker-failures", collector.DefaultBreakerFailures, "failed collections in a row after which a source's breaker opens (its signals fail, their services hold)")
	durationFlag(fs, &l.breakerOpen, "source-breaker-open-for", collector.DefaultBreakerOpenFor, time.Second, "", "how long an open breaker skips its source before one trial collection")
	return l
}

// options are the collector options the flags set, without clients.
func (l *liveFlags) options() (collector.Options, error) {
	if l.sourceTimeout <= 0 {
		return collector.Options{}, errors.New("--source-timeout must be > 0")
	}
	if l.maxBytes < 1<<10 || l.maxSeries < 1 {
		return collector.Options{}, errors.New("--source-max-answer-bytes must be at least 1024 and --source-max-series at least 1")
	}
	if l.breakerFails < 1 {
		return collector.Options{}, errors.New("--source-breaker-failures must be at least 1")
	}
	if (l.rabbitCertFile == "") != (l.rabbitKeyFile == "") {
		return collector.Options{}, errors.New("--rabbitmq-cert-file and --rabbitmq-key-file go together")
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
		MaxResponseBytes:     l.maxBytes,
		MaxSeries:            l.maxSeries,
		RabbitMQTLS: promconfig.TLSConfig{
			CAFile: l.rabbitCAFile, CertFile: l.rabbitCertFile, KeyFile: l.rabbitKeyFile, ServerName: l.rabbitServerName,
		},
		Breaker: collector.BreakerSettings{FailureThreshold: l.breakerFails, OpenFor: l.breakerOpen},
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
		if l.prometheusConfig != "" || l.rabbitUser != "" || l.rabbitPasswordFile != "" || opts.RabbitMQTLS != (promconfig.TLSConfig{}) {
			return nil, false, errors.New("--prometheus-config, --rabbitmq-user, --rabbitmq-password-file and the --rabbitmq TLS files need --prometheus or --rabbitmq")
		}
		return nil, false, nil
	}
	opts.Logger = logger
	for _, src := range []struct{ flag, raw, instead string }{
		{"--prometheus", l.prometheusURL, "--prometheus-config (basic_auth with password_file, or a bearer token file)"},
		{"--rabbitmq", l.rabbitURL, "--rabbitmq-user and --rabbitmq-password-file (or $" + rabbitPasswordEnv + ")"},
	} {
		creds, err := checkSourceURL(src.flag, src.raw)
		if err != nil {
			return nil, false, err
		}
		if creds && logger != nil {
			logger.Warn(src.flag+" carries credentials in its URL: they show in the pod spec, in ps and in shell history; give them with "+src.instead,
				zap.String("url", withoutUserInfo(src.raw)))
		}
	}
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

// checkSourceURL refuses a malformed source URL with an error that never
// echoes what may be a password, and reports whether the URL carries
// credentials (user info).
func checkSourceURL(flag, raw string) (creds bool, err error) {
	if raw == "" {
		return false, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return false, fmt.Errorf("%s %q: want scheme://host[:port][/path]", flag, withoutUserInfo(raw))
	}
	return u.User != nil, nil
}

// withoutUserInfo drops everything between "://" and the last "@" of the
// authority, parsed or not, so a password never reaches a log or an error.
func withoutUserInfo(raw string) string {
	rest, scheme := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	if i := strings.LastIndex(auth, "@"); i >= 0 {
		return scheme + "…@" + rest[i+1:]
	}
	return raw
}
