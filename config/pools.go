package config

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A service entry with pools is a template: one service per worker pool,
// each pool found by its RabbitMQ queue. ELMA365 (2025.6 and later) gives
// every worker pool its own queue, named by the pool's routing key (the
// pool id, or default for the shared pool). The daemon lists the queues of
// the vhost, takes every one whose name fits the template's queue pattern,
// and expands the template into one concrete service per pool: same bounds,
// behavior, signals and burst settings, {pool} replaced by the pool id in
// the target's name, in the signals' queues and in their keys.

// PoolPlaceholder stands for the pool id in a template.
const PoolPlaceholder = "{pool}"

// Defaults and limits of a template.
const (
	DefaultMaxPools    = 50
	MaxPoolsLimit      = 500
	DefaultPoolGrace   = 10 * time.Minute
	MaxPoolGracePeriod = 24 * time.Hour
	// MaxServices caps the services of an expanded config: a ScalingPolicy's
	// status holds a decision for each, and holds no more than this.
	MaxServices = 2000
)

// PoolsFile makes a service entry a template for one service per pool.
type PoolsFile struct {
	// Queue is the name of a pool's queue with {pool} where the pool id
	// stands, e.g. worker.{pool}. The rest of the name is literal.
	// +kubebuilder:validation:MinLength=1
	Queue string `yaml:"queue" json:"queue,omitempty"`
	// VHost of the pools' queues (default /).
	VHost string `yaml:"vhost" json:"vhost,omitempty"`
	// Targets names the workload of given pools by pool id, e.g.
	// {default: worker}; every other pool's workload is the entry's
	// target.name with {pool} replaced (default <service>-{pool}).
	// +kubebuilder:validation:MaxProperties=500
	Targets map[string]string `yaml:"targets" json:"targets,omitempty"`
	// MaxPools caps the services the template expands to (default 50, at
	// most 500); the pools beyond it, in pool id order, are refused.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=500
	MaxPools int32 `yaml:"maxPools" json:"maxPools,omitempty"`
	// GracePeriod is how long a pool whose queue is gone stays managed
	// (held: its queue signal is missing, so it never scales down for it)
	// before its service is dropped (default 10m, at most 24h).
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('24h')",message="must be in (0s, 24h]"
	GracePeriod Duration `yaml:"gracePeriod" json:"gracePeriod,omitempty"`
}

// PoolTemplate is a compiled template.
type PoolTemplate struct {
	// Service is the template entry's name; a pool's service is named
	// Service-<pool id>.
	Service string
	VHost   string
	// Queue is the pattern as written; a queue fits it when it starts with
	// Prefix and ends with Suffix, the pool id being what lies between.
	Queue          string
	Prefix, Suffix string
	MaxPools       int
	GracePeriod    time.Duration
}

// PoolID returns the pool id a queue name carries, if it fits the template.
func (t PoolTemplate) PoolID(queue string) (string, bool) {
	if len(queue) <= len(t.Prefix)+len(t.Suffix) || !strings.HasPrefix(queue, t.Prefix) || !strings.HasSuffix(queue, t.Suffix) {
		return "", false
	}
	return queue[len(t.Prefix) : len(queue)-len(t.Suffix)], true
}

// PoolService is one service a template expanded to.
type PoolService struct {
	Service, Template, Pool, Queue string
	Target                         Target
}

// PoolRefusal is a queue that fits a template but did not become a service,
// and why.
type PoolRefusal struct {
	Template, Queue, Pool, Reason string
}

// Pools is what the templates of a config expanded to. Nil in a config
// without templates.
type Pools struct {
	Templates []PoolTemplate
	// Services and Refused are sorted by template, then pool id.
	Services []PoolService
	Refused  []PoolRefusal
	file     *File
}

// QueueNames are queue names by vhost, as RabbitMQ lists them.
type QueueNames map[string][]string

// HasPoolTemplates reports whether a file has a service entry with pools.
func HasPoolTemplates(f *File) bool {
	for _, s := range f.Services {
		if s.Pools != nil {
			return true
		}
	}
	return false
}

// CompilePools validates a file with templates and expands them over the
// given queues: one service per pool, then the whole result is compiled as
// any config is (bounds, pins, data stores, the budget, dependsOn). With no
// queues a template contributes no service, only its validation.
func CompilePools(f *File, queues QueueNames) (*Config, error) {
	v := &validator{}
	templates := compileTemplates(v, f)
	// The template's own fields are checked as one concrete service under
	// the template's name, so problems are reported at the paths written;
	// with the rest of the file's, all at once.
	if _, err := compileFile(probeFile(f, templates), false); err != nil {
		var list Errors
		if !errors.As(err, &list) {
			list = Errors{err}
		}
		v.errs = append(v.errs, list...)
	}
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	expanded, pools := ExpandPools(f, templates, queues)
	c, err := compileFile(expanded, true)
	if err != nil {
		return nil, err
	}
	pools.file = f
	c.Pools = pools
	return c, nil
}

// Expand re-expands the config's templates over newly listed queues; a
// config without templates is returned as it is. Namespace and interval
// are kept from c, so overrides applied to it still hold.
func (c *Config) Expand(queues QueueNames) (*Config, error) {
	if c.Pools == nil {
		return c, nil
	}
	out, err := CompilePools(c.Pools.file, queues)
	if err != nil {
		return nil, err
	}
	out.Namespace, out.Interval = c.Namespace, c.Interval
	return out, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// compileTemplates checks every template's pools block, sorted by name.
func compileTemplates(v *validator, f *File) []PoolTemplate {
	plat := compilePlatform(&validator{}, f) // its errors are reported by the full compile
	var out []PoolTemplate
	for _, name := range slices.Sorted(maps.Keys(f.Services)) {
		sf := f.Services[name]
		if sf.Pools == nil {
			continue
		}
		p := "services." + name + ".pools"
		pf := sf.Pools
		t := PoolTemplate{Service: name, VHost: pf.VHost, Queue: pf.Queue, MaxPools: DefaultMaxPools, GracePeriod: DefaultPoolGrace}
		if t.VHost == "" {
			t.VHost = "/"
		}
		switch n := strings.Count(pf.Queue, PoolPlaceholder); {
		case n != 1:
			v.add(p+".queue", "must contain %s exactly once, where the pool id stands (e.g. worker.%s), has %d", PoolPlaceholder, PoolPlaceholder, n)
		case IsQueuePattern(pf.Queue) || strings.ContainsAny(strings.ReplaceAll(pf.Queue, PoolPlaceholder, ""), "{}"):
			v.add(p+".queue", "%q: only %s may vary; the rest of the name is literal (no *, ?, [ ], \\ or other braces)", pf.Queue, PoolPlaceholder)
		default:
			t.Prefix, t.Suffix, _ = strings.Cut(pf.Queue, PoolPlaceholder)
		}
		if pf.MaxPools != 0 {
			t.MaxPools = int(pf.MaxPools)
			v.check(pf.MaxPools >= 1 && pf.MaxPools <= MaxPoolsLimit, p+".maxPools", "must be in [1, %d]", MaxPoolsLimit)
		}
		if pf.GracePeriod != 0 {
			t.GracePeriod = pf.GracePeriod.D()
			v.check(t.GracePeriod > 0 && t.GracePeriod <= MaxPoolGracePeriod, p+".gracePeriod", "must be in (0s, 24h]")
		}
		// A single-instance workload runs one replica; one per pool would
		// be several instances of it.
		if sf.Pinned {
			v.add(p, "a pinned (single-instance) service cannot be a template for one service per pool")
		}
		tmpl := targetTemplate(name, sf)
		if !strings.Contains(tmpl, PoolPlaceholder) {
			v.add("services."+name+".target.name", "must contain %s in a template, so each pool has its own workload (e.g. %s-%s)", PoolPlaceholder, name, PoolPlaceholder)
		} else if single, why := plat.singleInstance(strings.ReplaceAll(tmpl, PoolPlaceholder, "")); single {
			v.add("services."+name+".target.name", "a template's workloads cannot be single-instance: it %s", why)
		} else if store := dataStore(strings.ReplaceAll(tmpl, PoolPlaceholder, "")); store != "" && !sf.AllowDataStore {
			v.add("services."+name+".target.name", "%s looks like %s, a data store elmascale does not scale; set allowDataStore: true on the service if these workloads are stateless", tmpl, store)
		}
		for _, id := range slices.Sorted(maps.Keys(pf.Targets)) {
			tp := p + ".targets." + id
			v.check(dnsLabel.MatchString(id) && len(id) <= 63, tp, "pool id %q is not a DNS label (lowercase letters, digits and '-', at most 63)", id)
			w := pf.Targets[id]
			v.check(w != "" && !strings.Contains(w, "{"), tp, "must name a workload")
			if single, why := plat.singleInstance(w); single {
				v.add(tp, "a template's workloads cannot be single-instance: it %s", why)
			}
		}
		if !readsPoolQueue(sf) {
			v.add("services."+name+".signals", "a template needs a queue signal whose rabbitmq.queues has an entry with %s (the pool's own queue)", PoolPlaceholder)
		}
		out = append(out, t)
	}
	return out
}

func targetTemplate(name string, sf ServiceFile) string {
	if sf.Target != nil && sf.Target.Name != "" {
		return sf.Target.Name
	}
	return name + "-" + PoolPlaceholder
}

func readsPoolQueue(sf ServiceFile) bool {
	for _, sg := range sf.Signals {
		if sg.Queue != nil && sg.Queue.RabbitMQ != nil {
			for _, q := range sg.Queue.RabbitMQ.Queues {
				if strings.Contains(q, PoolPlaceholder) {
					return true
				}
			}
		}
	}
	return false
}

// probeFile replaces each template by one concrete entry of the same name
// for the pool "default", so its fields are compiled where they are written.
// Other entries' dependsOn on a template stay valid (the name exists).
func probeFile(f *File, templates []PoolTemplate) *File {
	out := *f
	out.Services = maps.Clone(f.Services)
	for _, t := range templates {
		sf := instantiate(f.Services[t.Service], "default")
		// The probe's target must not collide with a real pool's target
		// or another entry's: it only carries the template's fields.
		sf.Target.Name = t.Service + "-template-probe"
		out.Services[t.Service] = sf
	}
	return &out
}

// instantiate is the template's entry for one pool: {pool} replaced, no
// pools block.
func instantiate(sf ServiceFile, pool string) ServiceFile {
	sub := func(s string) string { return strings.ReplaceAll(s, PoolPlaceholder, pool) }
	out := sf
	var tg TargetFile
	if sf.Target != nil {
		tg = *sf.Target
	}
	tg.Name = sub(tg.Name) // empty: the caller names it after the service
	if w, ok := poolTarget(sf, pool); ok {
		tg.Name = w
	}
	out.Target = &tg
	out.Pools = nil
	out.DependsOn = slices.Clone(sf.DependsOn)
	out.Signals = make([]SignalFile, len(sf.Signals))
	for i, sg := range sf.Signals {
		if sg.Queue != nil {
			q := *sg.Queue
			q.Key = sub(q.Key)
			if q.RabbitMQ != nil {
				r := *q.RabbitMQ
				r.Queues = make([]string, len(q.RabbitMQ.Queues))
				for j, e := range q.RabbitMQ.Queues {
					r.Queues[j] = sub(e)
				}
				q.RabbitMQ = &r
			}
			sg.Queue = &q
		}
		if sg.Latency != nil {
			l := *sg.Latency
			l.Key = sub(l.Key)
			sg.Latency = &l
		}
		if sg.PerReplica != nil {
			r := *sg.PerReplica
			r.Key = sub(r.Key)
			sg.PerReplica = &r
		}
		if sg.Object != nil {
			o := *sg.Object
			o.Key = sub(o.Key)
			sg.Object = &o
		}
		out.Signals[i] = sg
	}
	return out
}

func poolTarget(sf ServiceFile, pool string) (string, bool) {
	if sf.Pools == nil {
		return "", false
	}
	w, ok := sf.Pools.Targets[pool]
	return w, ok
}

// ExpandPools is the expansion itself, a pure function: the file with each
// template replaced by one entry per pool found among the queues, and what
// was expanded or refused. It is deterministic: templates by name, pools by
// id. A pool is refused, with its reason, when its id is not a DNS label,
// when its service name or workload is already another entry's, when its
// workload is single-instance, beyond the template's maxPools, or beyond
// MaxServices in all. Another
// entry's dependsOn naming a template depends on every pool of it.
func ExpandPools(f *File, templates []PoolTemplate, queues QueueNames) (*File, *Pools) {
	out := *f
	out.Services = make(map[string]ServiceFile, len(f.Services))
	pools := &Pools{Templates: templates}
	plat := compilePlatform(&validator{}, f)
	taken := map[string]string{} // service names and "Kind/name" targets → owner
	isTemplate := map[string]bool{}
	for _, t := range templates {
		isTemplate[t.Service] = true
	}
	for name, sf := range f.Services {
		if isTemplate[name] {
			continue
		}
		out.Services[name] = sf
		taken["service "+name] = name
		tg := compileTarget(&validator{}, "", name, sf.Target)
		taken[tg.Kind+"/"+tg.Name] = name
	}
	expandedOf := map[string][]string{}
	for _, t := range templates {
		sf := f.Services[t.Service]
		byPool := map[string]string{}
		for _, q := range queues[t.VHost] {
			if id, ok := t.PoolID(q); ok {
				byPool[id] = q
			}
		}
		n := 0
		for _, id := range slices.Sorted(maps.Keys(byPool)) {
			q := byPool[id]
			refuse := func(format string, args ...any) {
				pools.Refused = append(pools.Refused, PoolRefusal{Template: t.Service, Queue: q, Pool: id, Reason: fmt.Sprintf(format, args...)})
			}
			if !dnsLabel.MatchString(id) || len(id) > 63 {
				refuse("pool id %q is not a DNS label (lowercase letters, digits and '-', at most 63 characters)", id)
				continue
			}
			inst := instantiate(sf, id)
			if inst.Target.Name == "" {
				inst.Target.Name = t.Service + "-" + id
			}
			svcName := t.Service + "-" + id
			kind := inst.Target.Kind
			if kind == "" {
				kind = "Deployment"
			}
			key := kind + "/" + inst.Target.Name
			switch {
			case len(svcName) > 253 || len(inst.Target.Name) > 253:
				refuse("the service or workload name would be longer than 253 characters")
				continue
			case taken["service "+svcName] != "":
				refuse("service %s already exists (services.%s)", svcName, taken["service "+svcName])
				continue
			case taken[key] != "":
				refuse("%s is already the target of services.%s", key, taken[key])
				continue
			}
			if single, why := plat.singleInstance(inst.Target.Name); single {
				refuse("a pool's workload cannot be single-instance: it %s", why)
				continue
			}
			if n >= t.MaxPools {
				refuse("over maxPools %d of services.%s", t.MaxPools, t.Service)
				continue
			}
			if len(out.Services) >= MaxServices {
				refuse("the config would manage more than %d services", MaxServices)
				continue
			}
			n++
			taken["service "+svcName], taken[key] = svcName, svcName
			out.Services[svcName] = inst
			expandedOf[t.Service] = append(expandedOf[t.Service], svcName)
			pools.Services = append(pools.Services, PoolService{Service: svcName, Template: t.Service, Pool: id, Queue: q, Target: Target{Kind: kind, Name: inst.Target.Name}})
		}
	}
	for name, sf := range out.Services {
		if !slices.ContainsFunc(sf.DependsOn, func(d string) bool { return isTemplate[d] }) {
			continue
		}
		var deps []string
		for _, d := range sf.DependsOn {
			if isTemplate[d] {
				deps = append(deps, expandedOf[d]...)
			} else {
				deps = append(deps, d)
			}
		}
		sf.DependsOn = deps
		out.Services[name] = sf
	}
	return &out, pools
}
