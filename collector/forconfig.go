package collector

import (
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// NewForConfig builds a collector whose resource source (metrics.k8s.io,
// pods and workloads) talks to the cluster behind rc, as scaler.NewForConfig
// does for the scaler; a nil rc leaves the resource source off, so
// utilization signals are reported missing. Prometheus and RabbitMQ come
// from opts as in New. Clients already set in opts are kept.
func NewForConfig(rc *rest.Config, opts Options) (*Collector, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if rc != nil {
		var err error
		if opts.Kubernetes == nil {
			if opts.Kubernetes, err = kubernetes.NewForConfig(rc); err != nil {
				return nil, fmt.Errorf("kubernetes client: %w", err)
			}
		}
		if opts.PodMetrics == nil {
			if opts.PodMetrics, err = metricsclient.NewForConfig(rc); err != nil {
				return nil, fmt.Errorf("metrics.k8s.io client: %w", err)
			}
		}
	}
	return New(opts)
}

// check reports option combinations that cannot work, in the words of the
// command-line flags that set them.
func (o Options) check() error {
	if o.PrometheusConfigFile != "" && o.PrometheusURL == "" {
		return errors.New("--prometheus-config needs --prometheus")
	}
	if o.RabbitMQURL == "" && (o.RabbitMQUser != "" || o.RabbitMQPasswordFile != "") {
		return errors.New("--rabbitmq-user and --rabbitmq-password-file need --rabbitmq")
	}
	if o.QueryTimeout < 0 {
		return errors.New("--source-timeout must be > 0")
	}
	return nil
}
