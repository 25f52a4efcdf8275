package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/elmascale/elmascale/policy"
)

// APIVersion and Kind every configuration file declares.
const (
	APIVersion = "elmascale.io/v1alpha1"
	Kind       = "Config"
)

// PlatformELMA365 enables the ELMA365 rules.
const PlatformELMA365 = "elma365"

// ELMA365SingleInstance are the ELMA365 services that cannot run as more
// than one instance.
var ELMA365SingleInstance = []string{"scheduler", "notifier", "messengers"}

// Config is a validated configuration: the policy spec plus what the
// collector and the scaler need to feed and apply it.
type Config struct {
	Namespace string
	Interval  time.Duration
	Policy    policy.Spec
	// Metrics by name, sorted by name.
	Metrics []Metric
	// Services in the same order as Policy.Services.
	Services []Service
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
	// Metric names (empty when RabbitMQ is used), keyed by Key.
	Backlog, ArrivalRate, CompletionRate string
	Key                                  string
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

// Parse decodes YAML strictly and validates it. Every problem found is
// reported in the returned error, one per line, each naming its path.
func Parse(data []byte) (*Config, error) {
	f, decodeErrs, err := decode(data)
	if err != nil {
		return nil, err
	}
	// Keep going after unknown fields and type errors so one run reports
	// every problem, not the first.
	c, err := Compile(f)
	if len(decodeErrs) == 0 {
		return c, err
	}
	var compileErrs Errors
	if err != nil && !errors.As(err, &compileErrs) {
		compileErrs = Errors{err}
	}
	return nil, append(decodeErrs, compileErrs...)
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

// decode reads one YAML document into a File. It fails only when the text
// is not YAML at all; unknown fields and type errors come back as a list
// beside the (partly filled) File.
func decode(data []byte) (*File, Errors, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("config is empty")
		}
		return nil, nil, fmt.Errorf("config is not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, nil, fmt.Errorf("config holds more than one YAML document")
	}
	var errs Errors
	unknownFields(&root, reflect.TypeOf(File{}), "", &errs)
	var f File
	if err := root.Decode(&f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		for _, m := range te.Errors {
			errs = append(errs, errors.New(m))
		}
	}
	return &f, errs, nil
}

// unknownFields walks the YAML tree beside the Go type and reports every key
// the type does not have, by path.
func unknownFields(n *yaml.Node, t reflect.Type, path string, errs *Errors) {
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			unknownFields(c, t, path, errs)
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t == reflect.TypeOf(Duration(0)) {
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag != "" && tag != "-" {
				fields[tag] = t.Field(i).Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			ft, ok := fields[key]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: unknown field (line %d)", join(path, key), n.Content[i].Line))
				continue
			}
			unknownFields(n.Content[i+1], ft, join(path, key), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			unknownFields(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			unknownFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Compile validates a decoded file and builds the Config.
func Compile(f *File) (*Config, error) {
	v := &validator{}
	c := &Config{Namespace: f.Namespace}

	v.check(f.APIVersion == APIVersion, "apiVersion", "must be %q", APIVersion)
	v.check(f.Kind == Kind, "kind", "must be %q", Kind)
	elma := false
	switch f.Platform {
	case "":
	case PlatformELMA365:
		elma = true
	default:
		v.add("platform", "must be empty or %q", PlatformELMA365)
	}
	defMin, defMax := int32(1), int32(10)
	switch f.Edition {
	case "", "enterprise":
		if elma {
			defMin = 2
		}
	case "standard":
	default:
		v.add("edition", "must be enterprise or standard")
	}
	if f.Edition != "" && !elma {
		v.add("edition", "is only meaningful with platform %q", PlatformELMA365)
	}

	c.Interval = 15 * time.Second
	if f.Interval != 0 {
		c.Interval = f.Interval.D()
		v.check(c.Interval >= time.Second, "interval", "must be >= 1s")
	}
	c.Policy.StaleAfter = 3 * c.Interval
	if f.StaleAfter != 0 {
		c.Policy.StaleAfter = f.StaleAfter.D()
		v.check(c.Policy.StaleAfter > 0, "staleAfter", "must be > 0")
	}
	c.Policy.AttributionMemory = 2 * time.Minute
	if f.AttributionMemory != nil {
		c.Policy.AttributionMemory = f.AttributionMemory.D()
		v.check(c.Policy.AttributionMemory >= 0 && c.Policy.AttributionMemory <= time.Hour, "attributionMemory", "must be in [0s, 1h]")
	}
	v.check(f.Budget.MaxTotalReplicas >= 0, "budget.maxTotalReplicas", "must be >= 0")
	c.Policy.Budget.MaxTotalReplicas = f.Budget.MaxTotalReplicas

	if f.Defaults.MinReplicas != nil {
		defMin = *f.Defaults.MinReplicas
		v.check(defMin >= 0, "defaults.minReplicas", "must be >= 0")
	}
	if f.Defaults.MaxReplicas != nil {
		defMax = *f.Defaults.MaxReplicas
		v.check(defMax >= 1, "defaults.maxReplicas", "must be >= 1")
	}
	v.check(defMin <= defMax, "defaults", "minReplicas %d must be <= maxReplicas %d", defMin, defMax)
	defBehavior := compileBehavior(v, "defaults.behavior", f.Defaults.Behavior, policy.DefaultBehavior())

	// Metrics.
	for _, name := range sortedKeys(f.Metrics) {
		m := f.Metrics[name]
		p := "metrics." + name
		v.check(validName(name), p, "name must be letters, digits, '-', '_' or '.'")
		if m.Prometheus == nil {
			v.add(p, "needs a source (prometheus)")
			continue
		}
		q := &PrometheusQuery{Query: strings.TrimSpace(m.Prometheus.Query), KeyLabel: m.Prometheus.KeyLabel}
		if q.KeyLabel == "" {
			q.KeyLabel = "service"
		}
		v.check(q.Query != "", p+".prometheus.query", "must not be empty")
		c.Metrics = append(c.Metrics, Metric{Name: name, Prometheus: q})
	}
	metricExists := func(n string) bool {
		for _, m := range c.Metrics {
			if m.Name == n {
				return true
			}
		}
		return false
	}

	// Services.
	v.check(len(f.Services) > 0, "services", "must list at least one service")
	names := sortedKeys(f.Services)
	for _, name := range names {
		sf := f.Services[name]
		p := "services." + name
		v.check(validName(name), p, "name must be letters, digits, '-', '_' or '.'")
		ps := policy.ServiceSpec{Name: name, Pinned: sf.Pinned, FallbackReplicas: sf.FallbackReplicas}
		single := elma && contains(ELMA365SingleInstance, name)
		if single {
			ps.Pinned = true
		}
		ps.MinReplicas, ps.MaxReplicas = defMin, defMax
		if ps.Pinned {
			ps.MinReplicas, ps.MaxReplicas = 1, 1
			why := "is pinned"
			if single {
				why = "cannot run as more than one instance in ELMA365"
			}
			if sf.MinReplicas != nil && *sf.MinReplicas != 1 {
				v.add(p+".minReplicas", "must be 1: the service %s", why)
			}
			if sf.MaxReplicas != nil && *sf.MaxReplicas != 1 {
				v.add(p+".maxReplicas", "must be 1: the service %s", why)
			}
			if sf.FallbackReplicas > 1 {
				v.add(p+".fallbackReplicas", "must be 0 or 1: the service %s", why)
			}
		} else {
			if sf.MinReplicas != nil {
				ps.MinReplicas = *sf.MinReplicas
			}
			if sf.MaxReplicas != nil {
				ps.MaxReplicas = *sf.MaxReplicas
			}
			v.check(ps.MinReplicas >= 0, p+".minReplicas", "must be >= 0")
			v.check(ps.MaxReplicas >= 1, p+".maxReplicas", "must be >= 1")
			v.check(ps.MinReplicas <= ps.MaxReplicas, p, "minReplicas %d must be <= maxReplicas %d", ps.MinReplicas, ps.MaxReplicas)
			v.check(sf.FallbackReplicas >= 0 && sf.FallbackReplicas <= ps.MaxReplicas, p+".fallbackReplicas", "must be in [0, maxReplicas]")
		}
		ps.Behavior = compileBehavior(v, p+".behavior", sf.Behavior, defBehavior)
		for _, d := range sf.DependsOn {
			if _, ok := f.Services[d]; !ok {
				v.add(p+".dependsOn", "unknown service %q", d)
			}
			v.check(d != name, p+".dependsOn", "a service cannot depend on itself")
		}
		ps.DependsOn = append([]string(nil), sf.DependsOn...)

		svc := Service{Name: name, Target: Target{Kind: "Deployment", Name: name}}
		if sf.Target != nil {
			if sf.Target.Kind != "" {
				svc.Target.Kind = sf.Target.Kind
			}
			if sf.Target.Name != "" {
				svc.Target.Name = sf.Target.Name
			}
			v.check(svc.Target.Kind == "Deployment" || svc.Target.Kind == "StatefulSet", p+".target.kind", "must be Deployment or StatefulSet")
		}
		seen := map[string]bool{}
		for i, sg := range sf.Signals {
			sp := fmt.Sprintf("%s.signals[%d]", p, i)
			spec, src := compileSignal(v, sp, name, sg, metricExists)
			if sg.Name == "" {
				v.add(sp+".name", "must not be empty")
			} else if seen[sg.Name] {
				v.add(sp+".name", "duplicate signal name %q", sg.Name)
			}
			seen[sg.Name] = true
			ps.Signals = append(ps.Signals, spec)
			svc.Signals = append(svc.Signals, src)
		}
		c.Policy.Services = append(c.Policy.Services, ps)
		c.Services = append(c.Services, svc)
	}
	serviceNames := make([]string, len(c.Policy.Services))
	for i, ps := range c.Policy.Services {
		serviceNames[i] = ps.Name
	}
	if cycle := FindCycle(serviceNames, func(i int) []string { return c.Policy.Services[i].DependsOn }); cycle != nil {
		v.add("services."+cycle[0]+".dependsOn", "dependency cycle %s", strings.Join(cycle, " → "))
	}
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return c, nil
}

func compileSignal(v *validator, p, service string, sg SignalFile, metricExists func(string) bool) (policy.SignalSpec, SignalSource) {
	spec := policy.SignalSpec{Name: sg.Name, Symptom: sg.Symptom}
	src := SignalSource{Name: sg.Name}
	if sg.Tolerance != nil {
		v.check(*sg.Tolerance >= 0 && *sg.Tolerance < 1, p+".tolerance", "must be in [0, 1)")
		spec.Tolerance = *sg.Tolerance
	}
	set := 0
	key := func(k string) string {
		if k == "" {
			return service
		}
		return k
	}
	metric := func(kp, m string) {
		if m == "" {
			v.add(kp, "must name a metric definition")
		} else if !metricExists(m) {
			v.add(kp, "unknown metric %q (define it under metrics)", m)
		}
	}
	if u := sg.Utilization; u != nil {
		set++
		spec.Kind, src.Kind = policy.KindUtilization, policy.KindUtilization
		v.check(u.Resource == policy.ResourceCPU || u.Resource == policy.ResourceMemory, p+".utilization.resource", "must be cpu or memory")
		v.check(u.TargetPercent > 0 && u.TargetPercent <= 1000, p+".utilization.targetPercent", "must be in (0, 1000]")
		spec.Utilization = &policy.UtilizationSpec{Resource: u.Resource, TargetPercent: u.TargetPercent}
		src.Resource = u.Resource
	}
	if q := sg.Queue; q != nil {
		set++
		spec.Kind, src.Kind = policy.KindQueue, policy.KindQueue
		v.check(q.DrainTime > 0, p+".queue.drainTime", "must be > 0")
		v.check(q.TargetUtilization == 0 || (q.TargetUtilization > 0 && q.TargetUtilization <= 1), p+".queue.targetUtilization", "must be in (0, 1]")
		v.check(q.ThroughputPerReplica >= 0 && !math.IsInf(q.ThroughputPerReplica, 0), p+".queue.throughputPerReplica", "must be >= 0")
		spec.Queue = &policy.QueueSpec{DrainTime: q.DrainTime.D(), TargetUtilization: q.TargetUtilization, ThroughputPerReplica: q.ThroughputPerReplica}
		qs := &QueueSource{Key: key(q.Key)}
		switch {
		case q.RabbitMQ != nil && q.Backlog != "":
			v.add(p+".queue", "set either rabbitmq or backlogMetric, not both")
		case q.RabbitMQ != nil:
			v.check(len(q.RabbitMQ.Queues) > 0, p+".queue.rabbitmq.queues", "must list at least one queue")
			qs.VHost, qs.Queues = q.RabbitMQ.VHost, append([]string(nil), q.RabbitMQ.Queues...)
			if qs.VHost == "" {
				qs.VHost = "/"
			}
		case q.Backlog != "":
			metric(p+".queue.backlogMetric", q.Backlog)
			if q.ArrivalRate != "" {
				metric(p+".queue.arrivalRateMetric", q.ArrivalRate)
			}
			if q.CompletionRate != "" {
				metric(p+".queue.completionRateMetric", q.CompletionRate)
			}
			qs.Backlog, qs.ArrivalRate, qs.CompletionRate = q.Backlog, q.ArrivalRate, q.CompletionRate
		default:
			v.add(p+".queue", "needs a source: rabbitmq or backlogMetric")
		}
		src.Queue = qs
	}
	if l := sg.Latency; l != nil {
		set++
		spec.Kind, src.Kind = policy.KindLatency, policy.KindLatency
		metric(p+".latency.metric", l.Metric)
		v.check(l.SLO > 0, p+".latency.slo", "must be > 0")
		v.check(l.Quantile > 0 && l.Quantile < 1, p+".latency.quantile", "must be in (0, 1)")
		spec.Latency = &policy.LatencySpec{Quantile: l.Quantile, SLO: l.SLO.D()}
		src.Metric, src.Key = l.Metric, key(l.Key)
	}
	if r := sg.PerReplica; r != nil {
		set++
		spec.Kind, src.Kind = policy.KindPerReplica, policy.KindPerReplica
		metric(p+".perReplica.metric", r.Metric)
		v.check(r.TargetPerReplica > 0 && !math.IsInf(r.TargetPerReplica, 0), p+".perReplica.targetPerReplica", "must be > 0")
		spec.PerReplica = &policy.PerReplicaSpec{TargetPerReplica: r.TargetPerReplica}
		src.Metric, src.Key = r.Metric, key(r.Key)
	}
	if o := sg.Object; o != nil {
		set++
		spec.Kind, src.Kind = policy.KindObject, policy.KindObject
		metric(p+".object.metric", o.Metric)
		v.check(o.Target > 0 && !math.IsInf(o.Target, 0), p+".object.target", "must be > 0")
		spec.Object = &policy.ObjectSpec{Target: o.Target}
		src.Metric, src.Key = o.Metric, key(o.Key)
	}
	if set != 1 {
		v.add(p, "must set exactly one of utilization, queue, latency, perReplica, object (has %d)", set)
	}
	return spec, src
}

func compileBehavior(v *validator, p string, b *BehaviorFile, base policy.Behavior) policy.Behavior {
	out := base
	if b == nil {
		return out
	}
	if b.Tolerance != nil {
		v.check(*b.Tolerance >= 0 && *b.Tolerance < 1, p+".tolerance", "must be in [0, 1)")
		out.Tolerance = *b.Tolerance
	}
	out.ScaleUp = compileRules(v, p+".scaleUp", b.ScaleUp, base.ScaleUp)
	out.ScaleDown = compileRules(v, p+".scaleDown", b.ScaleDown, base.ScaleDown)
	return out
}

func compileRules(v *validator, p string, r *ScalingRulesFile, base policy.ScalingRules) policy.ScalingRules {
	if r == nil {
		return base
	}
	out := base
	if r.StabilizationWindow != nil {
		w := r.StabilizationWindow.D()
		v.check(w >= 0 && w <= time.Hour, p+".stabilizationWindow", "must be in [0s, 1h]")
		out.StabilizationWindow = w
	}
	if r.SelectPolicy != "" {
		sp := policy.SelectPolicy(r.SelectPolicy)
		v.check(sp == policy.SelectMax || sp == policy.SelectMin || sp == policy.SelectDisabled, p+".selectPolicy", "must be Max, Min or Disabled")
		out.SelectPolicy = sp
	}
	if r.Policies != nil {
		out.Policies = nil
		for i, rp := range r.Policies {
			pp := fmt.Sprintf("%s.policies[%d]", p, i)
			t := policy.RatePolicyType(rp.Type)
			v.check(t == policy.RatePods || t == policy.RatePercent, pp+".type", "must be Pods or Percent")
			v.check(rp.Value > 0, pp+".value", "must be > 0")
			v.check(rp.Period > 0 && rp.Period.D() <= 30*time.Minute, pp+".period", "must be in (0s, 30m]")
			out.Policies = append(out.Policies, policy.RatePolicy{Type: t, Value: rp.Value, Period: rp.Period.D()})
		}
	}
	return out
}

// FindCycle returns a cycle of a directed graph as a path of names whose
// first and last are the same, or nil. Node i is names[i]; edges(i) lists
// the names it points to; names not in the graph are ignored.
func FindCycle(names []string, edges func(i int) []string) []string {
	idx := make(map[string]int, len(names))
	for i, n := range names {
		idx[n] = i
	}
	state := make([]uint8, len(names)) // 0 new, 1 on the path, 2 done
	var path, found []string
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = 1
		path = append(path, names[i])
		for _, d := range edges(i) {
			j, ok := idx[d]
			switch {
			case !ok:
			case state[j] == 1:
				for k, n := range path {
					if n == d {
						found = append(append([]string(nil), path[k:]...), d)
						return true
					}
				}
			case state[j] == 0 && visit(j):
				return true
			}
		}
		path = path[:len(path)-1]
		state[i] = 2
		return false
	}
	for i := range names {
		if state[i] == 0 && visit(i) {
			return found
		}
	}
	return nil
}

type validator struct{ errs Errors }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) check(ok bool, path, format string, args ...any) {
	if !ok {
		v.add(path, format, args...)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
