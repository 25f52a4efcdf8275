package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// Compile validates a decoded file and builds the Config. Every problem is
// collected, each with its path, and returned together.
func Compile(f *File) (*Config, error) {
	if HasPoolTemplates(f) {
		return CompilePools(f, nil)
	}
	return compileFile(f, false)
}

// compileFile compiles a file without templates; poolsOnly allows it to
// have no service, as a config whose templates found no pool yet has.
func compileFile(f *File, poolsOnly bool) (*Config, error) {
	v := &validator{poolsOnly: poolsOnly}
	c := &Config{Namespace: f.Namespace}
	v.check(f.APIVersion == APIVersion, "apiVersion", "must be %q", APIVersion)
	v.check(f.Kind == Kind, "kind", "must be %q", Kind)
	plat := compilePlatform(v, f)
	compileGlobals(v, f, c)
	defs := compileDefaults(v, f, plat)
	compileMetrics(v, f, c)
	compileServices(v, f, c, defs, plat)
	compileMesh(v, f, c)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	if err := c.checkOrder(); err != nil {
		return nil, err
	}
	return c, nil
}

// compileGlobals sets the loop interval, staleness, attribution memory and
// the budget.
func compileGlobals(v *validator, f *File, c *Config) {
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
}

// defaults are what a service entry inherits.
type defaults struct {
	min, max int32
	behavior policy.Behavior
}

func compileDefaults(v *validator, f *File, plat platform) defaults {
	d := defaults{min: plat.defaultMin, max: 10}
	if f.Defaults.MinReplicas != nil {
		d.min = *f.Defaults.MinReplicas
		v.check(d.min >= 0, "defaults.minReplicas", "must be >= 0")
	}
	if f.Defaults.MaxReplicas != nil {
		d.max = *f.Defaults.MaxReplicas
		v.check(d.max >= 1, "defaults.maxReplicas", "must be >= 1")
		v.check(d.max <= MaxReplicasLimit, "defaults.maxReplicas", "must be <= %d", MaxReplicasLimit)
	}
	v.check(d.min <= d.max, "defaults", "minReplicas %d must be <= maxReplicas %d", d.min, d.max)
	d.behavior = compileBehavior(v, "defaults.behavior", f.Defaults.Behavior, policy.DefaultBehavior())
	return d
}

// compileMetrics builds the metric definitions, sorted by name.
func compileMetrics(v *validator, f *File, c *Config) {
	for _, name := range slices.Sorted(maps.Keys(f.Metrics)) {
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
}

// compileServices builds the one ordered service list: Policy.Services[i]
// and Services[i] describe the same service, sorted by name.
func compileServices(v *validator, f *File, c *Config, defs defaults, plat platform) {
	burst := compileBurstDefaults(v, f, c.Interval)
	v.check(len(f.Services) > 0 || v.poolsOnly, "services", "must list at least one service")
	metricQuery := func(n string) (string, bool) {
		i := slices.IndexFunc(c.Metrics, func(m Metric) bool { return m.Name == n })
		if i < 0 {
			return "", false
		}
		return c.Metrics[i].Prometheus.Query, true
	}
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		sf := f.Services[name]
		p := "services." + name
		v.check(validName(name), p, "name must be letters, digits, '-', '_' or '.'")
		tg := compileTarget(v, p, name, sf.Target)
		if store := dataStore(tg.Name); store != "" && !sf.AllowDataStore {
			v.add(p+".target", "%s/%s looks like %s, a data store elmascale does not scale; set allowDataStore: true on the service if this workload is stateless", tg.Kind, tg.Name, store)
		}
		ps := compileBounds(v, p, name, tg, sf, defs, plat)
		ps.Behavior = compileBehavior(v, p+".behavior", sf.Behavior, defs.behavior)
		for _, d := range sf.DependsOn {
			if _, ok := f.Services[d]; !ok {
				v.add(p+".dependsOn", "unknown service %q", d)
			}
			v.check(d != name, p+".dependsOn", "a service cannot depend on itself")
		}
		ps.DependsOn = slices.Clone(sf.DependsOn)

		svc := Service{Name: name, Target: tg}
		seen := map[string]bool{}
		for i, sg := range sf.Signals {
			sp := fmt.Sprintf("%s.signals[%d]", p, i)
			spec, src := compileSignal(v, sp, name, sg, metricQuery)
			if sg.Name == "" {
				v.add(sp+".name", "must not be empty")
			} else if seen[sg.Name] {
				v.add(sp+".name", "duplicate signal name %q", sg.Name)
			}
			seen[sg.Name] = true
			ps.Signals = append(ps.Signals, spec)
			svc.Signals = append(svc.Signals, src)
		}
		ps.Burst, svc.BurstInterval = compileBurst(v, p, sf, burst, c.Interval, svc.Signals)
		c.Policy.Services = append(c.Policy.Services, ps)
		c.Services = append(c.Services, svc)
	}
	checkTargetsUnique(v, c.Services)
	names := make([]string, len(c.Policy.Services))
	for i, ps := range c.Policy.Services {
		names[i] = ps.Name
	}
	if cycle := FindCycle(names, func(i int) []string { return c.Policy.Services[i].DependsOn }); cycle != nil {
		v.add("services."+cycle[0]+".dependsOn", "dependency cycle %s", strings.Join(cycle, " → "))
	}
}

// checkTargetsUnique refuses two service entries on one workload: each
// would decide its replicas on its own, so they would fight every tick, and
// an alias could give a single-instance workload bounds its own entry
// forbids.
func checkTargetsUnique(v *validator, services []Service) {
	owner := make(map[Target]string, len(services))
	for _, s := range services {
		if first, dup := owner[s.Target]; dup {
			v.add("services."+s.Name+".target", "%s/%s is already the target of services.%s: one workload, one service entry", s.Target.Kind, s.Target.Name, first)
			continue
		}
		owner[s.Target] = s.Name
	}
}

// compileBounds sets a service's min, max and fallback replicas; a pinned
// service (by its entry, or by the platform for its target workload) is
// held at exactly one. Pinning follows the workload, not the entry's name:
// an entry of any name targeting a single-instance workload is pinned.
func compileBounds(v *validator, p, name string, tg Target, sf ServiceFile, defs defaults, plat platform) policy.ServiceSpec {
	ps := policy.ServiceSpec{Name: name, Pinned: sf.Pinned, FallbackReplicas: sf.FallbackReplicas, MinReplicas: defs.min, MaxReplicas: defs.max}
	single, why := plat.singleInstance(tg.Name)
	if single {
		ps.Pinned = true
	}
	if ps.Pinned {
		ps.MinReplicas, ps.MaxReplicas = 1, 1
		if !single {
			why = "is pinned"
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
		return ps
	}
	if sf.MinReplicas != nil {
		ps.MinReplicas = *sf.MinReplicas
	}
	if sf.MaxReplicas != nil {
		ps.MaxReplicas = *sf.MaxReplicas
	}
	v.check(ps.MinReplicas >= 0, p+".minReplicas", "must be >= 0")
	v.check(ps.MaxReplicas >= 1, p+".maxReplicas", "must be >= 1")
	v.check(ps.MaxReplicas <= MaxReplicasLimit, p+".maxReplicas", "must be <= %d", MaxReplicasLimit)
	v.check(ps.MinReplicas <= ps.MaxReplicas, p, "minReplicas %d must be <= maxReplicas %d", ps.MinReplicas, ps.MaxReplicas)
	v.check(sf.FallbackReplicas >= 0 && sf.FallbackReplicas <= ps.MaxReplicas, p+".fallbackReplicas", "must be in [0, maxReplicas]")
	return ps
}

// MaxReplicasLimit caps every maxReplicas: a bound in the millions is a
// typo, not a plan, and would let one bad signal ask the API server for
// that many pods.
const MaxReplicasLimit = 10000

// dataStores are the name prefixes of the data stores an ELMA365
// installation runs beside its services.
var dataStores = []struct{ prefix, name string }{
	{"postgres", "PostgreSQL"}, {"mongo", "MongoDB"}, {"redis", "Redis"}, {"minio", "MinIO"}, {"rabbitmq", "RabbitMQ"},
}

// dataStore names the data store a workload's name says it is, or "".
func dataStore(workload string) string {
	w := strings.ToLower(workload)
	for _, d := range dataStores {
		if strings.HasPrefix(w, d.prefix) {
			return d.name
		}
	}
	return ""
}

// compileTarget names the workload a service scales: a Deployment of the
// service's name unless the entry says otherwise.
func compileTarget(v *validator, p, name string, tf *TargetFile) Target {
	t := Target{Kind: "Deployment", Name: name}
	if tf == nil {
		return t
	}
	if tf.Kind != "" {
		t.Kind = tf.Kind
	}
	if tf.Name != "" {
		t.Name = tf.Name
	}
	v.check(t.Kind == "Deployment" || t.Kind == "StatefulSet", p+".target.kind", "must be Deployment or StatefulSet")
	return t
}

func compileSignal(v *validator, p, service string, sg SignalFile, metricQuery func(string) (string, bool)) (policy.SignalSpec, SignalSource) {
	metricExists := func(n string) bool { _, ok := metricQuery(n); return ok }
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
		v.check(u.TargetPercent > 0 && u.TargetPercent <= 1000, p+".utilization.targetPercent", "must be a whole percent from 1 to 1000")
		spec.Utilization = &policy.UtilizationSpec{Resource: u.Resource, TargetPercent: u.TargetPercent}
		src.Resource = u.Resource
	}
	if q := sg.Queue; q != nil {
		set++
		spec.Kind, src.Kind = policy.KindQueue, policy.KindQueue
		v.check(q.DrainTime > 0, p+".queue.drainTime", "must be > 0")
		v.check(q.TargetUtilization == 0 || (q.TargetUtilization > 0 && q.TargetUtilization <= 1), p+".queue.targetUtilization", "must be in (0, 1]")
		v.check(q.ThroughputPerReplica >= 0 && !math.IsInf(q.ThroughputPerReplica, 0), p+".queue.throughputPerReplica", "must be >= 0")
		v.check(q.ConcurrencyPerReplica >= 0 && !math.IsInf(q.ConcurrencyPerReplica, 0), p+".queue.concurrencyPerReplica", "must be >= 0")
		spec.Queue = &policy.QueueSpec{DrainTime: q.DrainTime.D(), TargetUtilization: q.TargetUtilization, ThroughputPerReplica: q.ThroughputPerReplica, ConcurrencyPerReplica: q.ConcurrencyPerReplica}
		qs := &QueueSource{Key: key(q.Key)}
		switch {
		case q.RabbitMQ != nil && q.Backlog != "":
			v.add(p+".queue", "set either rabbitmq or backlogMetric, not both")
		case q.RabbitMQ != nil:
			v.check(len(q.RabbitMQ.Queues) > 0, p+".queue.rabbitmq.queues", "must list at least one queue or pattern")
			for j, e := range q.RabbitMQ.Queues {
				checkQueueEntry(v, fmt.Sprintf("%s.queue.rabbitmq.queues[%d]", p, j), e)
			}
			if q.Unacked != "" {
				v.add(p+".queue.unackedMetric", "needs backlogMetric (the management API counts unacknowledged messages itself)")
			}
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
			if q.Unacked != "" {
				metric(p+".queue.unackedMetric", q.Unacked)
			}
			qs.Backlog, qs.ArrivalRate, qs.CompletionRate, qs.Unacked = q.Backlog, q.ArrivalRate, q.CompletionRate, q.Unacked
		case q.Unacked != "":
			v.add(p+".queue.unackedMetric", "needs backlogMetric (the management API counts unacknowledged messages itself)")
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
		query, _ := metricQuery(l.Metric)
		spec.Latency = &policy.LatencySpec{Quantile: latencyQuantile(v, p+".latency.quantile", l, query), SLO: l.SLO.D()}
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
		spec.Object = &policy.ObjectSpec{Target: o.Target, RefuseAgainstLoad: o.RefuseAgainstLoad}
		src.Metric, src.Key = o.Metric, key(o.Key)
	}
	if pd := sg.Pods; pd != nil {
		set++
		spec.Kind, src.Kind = policy.KindPods, policy.KindPods
		metric(p+".pods.metric", pd.Metric)
		v.check(pd.TargetPerPod > 0 && !math.IsInf(pd.TargetPerPod, 0), p+".pods.targetPerPod", "must be > 0")
		spec.Pods = &policy.PodsSpec{TargetPerPod: pd.TargetPerPod}
		src.Metric = pd.Metric
	}
	if set != 1 {
		v.add(p, "must set exactly one of utilization, queue, latency, perReplica, object, pods (has %d)", set)
	}
	return spec, src
}

func compileBehavior(v *validator, p string, b *BehaviorFile, base policy.Behavior) policy.Behavior {
	out := base
	if b == nil {
		return out
	}
	if b.Legacy {
		// The HPA controller's path without spec.behavior: only the
		// downscale window and the tolerance carry meaning.
		legacy := policy.LegacyBehavior()
		legacy.Tolerance = out.Tolerance
		if b.ScaleUp != nil {
			v.add(p+".scaleUp", "must not be set with legacy: an HPA without behavior has no scale-up rules")
		}
		if b.ScaleDown != nil {
			v.check(b.ScaleDown.SelectPolicy == "" && b.ScaleDown.Policies == nil && b.ScaleDown.Tolerance == nil, p+".scaleDown",
				"only stabilizationWindow may be set with legacy")
		}
		out = legacy
	}
	if b.Tolerance != nil {
		v.check(*b.Tolerance >= 0 && *b.Tolerance < 1, p+".tolerance", "must be in [0, 1)")
		out.Tolerance = *b.Tolerance
	}
	if b.Legacy {
		if b.ScaleDown != nil && b.ScaleDown.StabilizationWindow != nil {
			out.ScaleDown = compileRules(v, p+".scaleDown", &ScalingRulesFile{StabilizationWindow: b.ScaleDown.StabilizationWindow}, out.ScaleDown)
		}
		return out
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
	if r.Tolerance != nil {
		v.check(*r.Tolerance >= 0 && *r.Tolerance < 1, p+".tolerance", "must be in [0, 1)")
		t := *r.Tolerance
		out.Tolerance = &t
	}
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

type validator struct {
	errs      Errors
	poolsOnly bool
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) check(ok bool, path, format string, args ...any) {
	if !ok {
		v.add(path, format, args...)
	}
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
