package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// APIVersion and Kind every configuration file declares.
const (
	APIVersion = "elmascale.io/v1alpha1"
	Kind       = "Config"
)

// Config is a validated configuration: the policy spec plus what the
// collector and the scaler need to feed and apply it.
type Config struct {
	Namespace string
	Interval  time.Duration
	Policy    policy.Spec
	// Metrics by name, sorted by name.
	Metrics []Metric
	// Services in the same order as Policy.Services: Services[i] and
	// Policy.Services[i] are one service (Compile guarantees it).
	Services []Service
	// Mesh is the service mesh source; nil when none is configured.
	Mesh *MeshSource
	// Pools is what the service templates (entries with pools) expanded
	// to; nil when the config has none.
	Pools *Pools
}

// Metric is one named metric definition.
type Metric struct {
	Name       string
	Prometheus *PrometheusQuery
}

// PrometheusQuery is one instant query aggregated by KeyLabel.
type PrometheusQuery struct {
	Query    string
	KeyLabel string
}

// Service is one service's scale target and signal sources.
type Service struct {
	Name    string
	Target  Target
	Signals []SignalSource
	// BurstInterval is how often the burst path reads the service's queue
	// signals; zero when the path is off for it (Policy's Burst is nil).
	BurstInterval time.Duration
}

// Target is the workload a service scales.
type Target struct {
	Kind string // Deployment or StatefulSet
	Name string
}

// SignalSource says where a signal's observation comes from.
type SignalSource struct {
	Name string
	Kind policy.SignalKind
	// Resource for utilization signals: cpu or memory (metrics.k8s.io).
	Resource string
	// Metric and Key for latency, perReplica and object signals: the value is
	// the series of Metric whose key label equals Key.
	Metric string
	Key    string
	// Queue for queue signals.
	Queue *QueueSource
}

// QueueSource is a queue signal's source: RabbitMQ queues or metrics.
type QueueSource struct {
	VHost  string
	Queues []string
	// Metric names (empty when RabbitMQ is used), keyed by Key. Unacked is
	// optional; with it, Backlog counts only the messages waiting.
	Backlog, ArrivalRate, CompletionRate, Unacked string
	Key                                           string
}

// checkOrder verifies the invariant every consumer relies on: Services[i]
// and Policy.Services[i] are the same service. Compile builds both from one
// ordered list; this catches a config assembled or edited another way.
func (c *Config) checkOrder() error {
	if len(c.Services) != len(c.Policy.Services) {
		return fmt.Errorf("config: %d services but %d policy services", len(c.Services), len(c.Policy.Services))
	}
	for i, s := range c.Services {
		if s.Name != c.Policy.Services[i].Name {
			return fmt.Errorf("config: service %d is %q but its policy is %q", i, s.Name, c.Policy.Services[i].Name)
		}
	}
	return nil
}

// Service returns the service config by name.
func (c *Config) Service(name string) (Service, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// LoadFile reads and validates a configuration file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes YAML strictly and validates it. The YAML is a configuration
// file (kind Config) or a ScalingPolicy resource whose spec is one; a
// resource's problems are reported under spec, as the API server does. Every problem found is
// reported in the returned error, one per line, each naming its path.
func Parse(data []byte) (*Config, error) {
	f, isResource, decodeErrs, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}
	// Keep going after unknown fields and type errors so one run reports
	// every problem, not the first.
	c, err := Compile(f)
	if err == nil && len(decodeErrs) == 0 {
		return c, nil
	}
	var compileErrs Errors
	if err != nil && !errors.As(err, &compileErrs) {
		compileErrs = Errors{err}
	}
	if isResource {
		compileErrs = underSpec(compileErrs)
	}
	if len(decodeErrs) == 0 {
		return nil, compileErrs
	}
	return nil, append(decodeErrs, withoutFollowOns(compileErrs, decodeErrs)...)
}

// Errors is a list of configuration problems.
type Errors []error

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (e Errors) Unwrap() []error { return e }
