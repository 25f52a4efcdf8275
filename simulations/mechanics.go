package simulations

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/elmascale/elmascale/config"
)

// This file holds the scenario format of the mechanics beyond plain
// request serving: slot holding, CPU limits and memory requests, service
// time phases, data stores, worker pool templates, nodes, caller timeouts
// and retries, and bursts. doc.go describes each.

type phaseFile struct {
	From   config.Duration `yaml:"from"`
	To     config.Duration `yaml:"to"`
	Factor float64         `yaml:"factor"`
}

type storeFile struct {
	Kind        string          `yaml:"kind"`
	Replicas    *int32          `yaml:"replicas"`
	Connections int32           `yaml:"connections"`
	ServiceTime distFile        `yaml:"serviceTime"`
	Phases      []phaseFile     `yaml:"phases"`
	Startup     config.Duration `yaml:"startup"`
}

type poolFile struct {
	Template string   `yaml:"template"`
	Names    []string `yaml:"names"`
	Count    int      `yaml:"count"`
}

type nodesFile struct {
	Count    int             `yaml:"count"`
	MaxCount int             `yaml:"maxCount"`
	CPU      Millicores      `yaml:"cpu"`
	Memory   Bytes           `yaml:"memory"`
	AddDelay config.Duration `yaml:"addDelay"`
}

type burstsFile struct {
	Every    config.Duration `yaml:"every"`
	Factor   factorFile      `yaml:"factor"`
	Duration distFile        `yaml:"duration"`
}

type factorFile struct {
	Mean float64 `yaml:"mean"`
	CV   float64 `yaml:"cv"`
}

// Bytes is a memory quantity written as Kubernetes does: "512Mi", "2Gi",
// "1G" or a plain number of bytes.
type Bytes int64

// UnmarshalYAML parses a Kubernetes memory quantity.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: memory quantity %q must look like 512Mi or 2Gi", n.Line, n.Value)
	}
	*b = Bytes(v * mult)
	return nil
}

// Bursts are extra load drawn per seed: bursts begin as a Poisson process
// with mean gap Every, each multiplies the source's rate by a factor drawn
// from a lognormal of mean Factor and coefficient of variation FactorCV
// (never below one), for a time drawn from Duration. Every seed draws its
// own bursts; every policy of a seed faces the same ones.
type Bursts struct {
	Every    time.Duration
	Factor   float64
	FactorCV float64
	Duration Dist
}

func (c *scenarioCompiler) compileBursts(p string, f *burstsFile) *Bursts {
	b := &Bursts{Every: f.Every.D(), Factor: f.Factor.Mean, FactorCV: f.Factor.CV}
	if b.Every < time.Minute {
		c.errs.add("%s.every: must be at least 1m", p)
	}
	if b.Factor <= 1 || b.Factor > 100 {
		c.errs.add("%s.factor.mean: must be in (1, 100]", p)
	}
	if b.FactorCV < 0 || b.FactorCV > 5 {
		c.errs.add("%s.factor.cv: must be in [0, 5]", p)
	}
	var err error
	if b.Duration, err = compileDist(f.Duration); err != nil {
		c.errs.add("%s.duration: %v", p, err)
	}
	return b
}

func (c *scenarioCompiler) compileCalls(p string, calls []callFile) []Call {
	var out []Call
	for i, call := range calls {
		if !c.services[call.Service] {
			c.errs.add("%s.calls[%d]: unknown service %q", p, i, call.Service)
		}
		if call.Mean <= 0 || call.Mean > 100 {
			c.errs.add("%s.calls[%d].mean: must be in (0, 100]", p, i)
		}
		if call.Timeout.D() < 0 || call.Retries < 0 || call.Retries > 10 || (call.Retries > 0 && call.Timeout.D() == 0) {
			c.errs.add("%s.calls[%d]: timeout must be >= 0 and retries in [0, 10], with a timeout", p, i)
		}
		out = append(out, Call{Service: call.Service, Mean: call.Mean, Timeout: call.Timeout.D(), Retries: call.Retries})
	}
	return out
}

func (c *scenarioCompiler) compilePublishes(p string, pubs []publishFile) []Publish {
	var out []Publish
	for i, pub := range pubs {
		if !c.queues[pub.Queue] {
			c.errs.add("%s.publishes[%d]: unknown queue %q", p, i, pub.Queue)
		}
		if pub.Mean <= 0 || pub.Mean > 1000 {
			c.errs.add("%s.publishes[%d].mean: must be in (0, 1000]", p, i)
		}
		out = append(out, Publish(pub))
	}
	return out
}

func (c *scenarioCompiler) compilePhases(p string, phases []phaseFile) []Phase {
	var out []Phase
	for i, ph := range phases {
		x := Phase{From: ph.From.D(), To: ph.To.D(), Factor: ph.Factor}
		if x.To <= x.From || x.Factor <= 0 || x.Factor > 1000 {
			c.errs.add("%s.phases[%d]: want from < to and a factor in (0, 1000]", p, i)
		}
		if i > 0 && x.From < out[i-1].To {
			c.errs.add("%s.phases[%d]: phases must be in time order and not overlap", p, i)
		}
		out = append(out, x)
	}
	return out
}

// compileServiceMechanics compiles a service's concurrency, CPU limit,
// memory request and phases.
func (c *scenarioCompiler) compileServiceMechanics(p string, s *serviceFile, m *ServiceModel) {
	m.Concurrency = Concurrency(s.Concurrency)
	switch m.Concurrency {
	case "":
		m.Concurrency = ConcurrencyAsync
	case ConcurrencyAsync, ConcurrencySync:
	default:
		c.errs.add("%s.concurrency: must be sync or async", p)
	}
	m.CPULimitMilli = int64(s.CPULimit)
	if m.CPULimitMilli != 0 && m.CPULimitMilli < m.CPURequestMilli {
		c.errs.add("%s.cpuLimit: must be at least the cpuRequest", p)
	}
	m.MemoryRequestBytes = int64(s.MemoryRequest)
	m.Phases = c.compilePhases(p, s.Phases)
	m.Store = s.store
}

// compileStores turns the data stores into service entries of their own
// kind: fixed replicas, connections as slots, no CPU accounting.
func (c *scenarioCompiler) compileStores() {
	f := c.f
	for _, name := range slices.Sorted(maps.Keys(f.Cluster.Stores)) {
		st := f.Cluster.Stores[name]
		p := "cluster.stores." + name
		if _, dup := f.Cluster.Services[name]; dup {
			c.errs.add("%s: a service has the same name", p)
			continue
		}
		switch st.Kind {
		case StorePostgreSQL, StoreMongoDB, StoreRedis, StoreMinIO, StoreRabbitMQ:
		default:
			c.errs.add("%s.kind: must be one of postgresql, mongodb, redis, minio, rabbitmq", p)
		}
		if st.Connections < 1 {
			c.errs.add("%s.connections: must be >= 1", p)
		}
		if f.Cluster.Services == nil {
			f.Cluster.Services = map[string]serviceFile{}
		}
		if st.Replicas == nil {
			one := int32(1)
			st.Replicas = &one
		}
		f.Cluster.Services[name] = serviceFile{
			Replicas: st.Replicas, Slots: st.Connections, ServiceTime: st.ServiceTime,
			CPURequest: 1000, Startup: st.Startup, Phases: st.Phases, store: st.Kind,
		}
	}
}

// compileNodes compiles the node pool and checks the initial pods fit.
func (c *scenarioCompiler) compileNodes() {
	n := c.f.Cluster.Nodes
	if n == nil {
		return
	}
	np := &NodePool{Count: n.Count, MaxCount: max(n.MaxCount, n.Count), CPUMilli: int64(n.CPU), MemoryBytes: int64(n.Memory), AddDelay: n.AddDelay.D()}
	if np.Count < 1 || np.MaxCount > 1000 {
		c.errs.add("cluster.nodes.count: must be in [1, 1000] (maxCount too)")
		return
	}
	if np.CPUMilli <= 0 {
		c.errs.add("cluster.nodes.cpu: must be > 0")
		return
	}
	if np.MemoryBytes <= 0 {
		np.MemoryBytes = math.MaxInt64 / 2
	}
	if np.AddDelay <= 0 {
		np.AddDelay = 3 * time.Minute
	}
	c.sc.Nodes = np
	nodes := newNodes(np)
	for i := range c.sc.Services {
		m := &c.sc.Services[i]
		if m.Store != "" {
			continue
		}
		if m.CPURequestMilli > np.CPUMilli || m.MemoryRequestBytes > np.MemoryBytes {
			c.errs.add("cluster.services.%s: one pod's requests exceed a node's allocatable resources", m.Name)
			continue
		}
		for k := int32(0); k < m.Replicas; k++ {
			if nodes.place(m.CPURequestMilli, m.MemoryRequestBytes) < 0 {
				c.errs.add("cluster.nodes: the initial replicas do not fit on %d nodes (first short at %s)", np.Count, m.Name)
				return
			}
		}
	}
}

// expandPools replaces cluster.pools in a raw scenario with the services
// and queues they stand for, and copies the template's entry in the raw
// elmascale configuration for each pool. A pool template names a service
// that consumes one queue; each pool NAME (or pool1…poolN for count N)
// becomes the service TEMPLATE-NAME consuming the queue TEMPLATE.NAME,
// both copies of the template's, and a configuration entry that is a copy
// of the template's with the template's queue name replaced by the pool's.
func expandPools(cluster, cfgServices map[string]any) error {
	raw, ok := cluster["pools"]
	if !ok {
		return nil
	}
	delete(cluster, "pools")
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("cluster.pools: must be a list")
	}
	services, _ := cluster["services"].(map[string]any)
	queues, _ := cluster["queues"].(map[string]any)
	for i, item := range list {
		p := fmt.Sprintf("cluster.pools[%d]", i)
		pm, ok := item.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: must be a mapping", p)
		}
		tmpl, _ := pm["template"].(string)
		ts, ok := services[tmpl].(map[string]any)
		if !ok {
			return fmt.Errorf("%s.template: no service %q", p, tmpl)
		}
		consumes, _ := ts["consumes"].([]any)
		if len(consumes) != 1 {
			return fmt.Errorf("%s.template: %s must consume exactly one queue", p, tmpl)
		}
		tq, _ := consumes[0].(string)
		qm, ok := queues[tq].(map[string]any)
		if !ok {
			return fmt.Errorf("%s.template: no queue %q", p, tq)
		}
		var names []string
		if ns, ok := pm["names"].([]any); ok {
			for _, n := range ns {
				s, _ := n.(string)
				names = append(names, s)
			}
		}
		if cnt, ok := pm["count"].(int); ok {
			for k := 1; k <= cnt; k++ {
				names = append(names, "pool"+strconv.Itoa(k))
			}
		}
		if len(names) == 0 {
			return fmt.Errorf("%s: give names or a count", p)
		}
		for k := range pm {
			if k != "template" && k != "names" && k != "count" {
				return fmt.Errorf("%s.%s: unknown field (want template, names, count)", p, k)
			}
		}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, " ./") {
				return fmt.Errorf("%s.names: %q is not a pool name", p, n)
			}
			svc, q := tmpl+"-"+n, tmpl+"."+n
			if _, dup := services[svc]; dup {
				return fmt.Errorf("%s: service %s already exists", p, svc)
			}
			if _, dup := queues[q]; dup {
				return fmt.Errorf("%s: queue %s already exists", p, q)
			}
			copied := deepCopy(ts).(map[string]any)
			copied["consumes"] = []any{q}
			services[svc] = copied
			queues[q] = deepCopy(qm)
			if ce, ok := cfgServices[tmpl]; ok && cfgServices[svc] == nil {
				cfgServices[svc] = replaceString(deepCopy(ce), tq, q)
			}
		}
	}
	return nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func replaceString(v any, from, to string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = replaceString(e, from, to)
		}
	case []any:
		for i, e := range x {
			x[i] = replaceString(e, from, to)
		}
	case string:
		if x == from {
			return to
		}
	}
	return v
}
