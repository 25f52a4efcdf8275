package simulations

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"pgregory.net/rapid"
)

// parse is a scenario from text, with the ELMA365 preset as its elmascale
// configuration unless the text gives one (its services need not exist in
// the cluster; those that do not are simply not found).
func parse(t fataler, text string) *Scenario {
	t.Helper()
	if !strings.Contains(text, "\nelmascale:") {
		text += "\nelmascale: {preset: elma365}\n"
	}
	sc, err := ParseScenario([]byte(text), fstest.MapFS{}, ".")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// twoTier is front (slots 2, 5 ms own work) calling back (100 slots,
// a constant backTime) at rps, front's concurrency as given.
func twoTier(t fataler, concurrency string, rps float64, backTime time.Duration) *Scenario {
	return parse(t, fmt.Sprintf(`
name: two-tier
duration: 10m
cluster:
  services:
    front:
      replicas: 1
      slots: 2
      concurrency: %s
      serviceTime: {dist: exponential, mean: 5ms}
      cpuRequest: 1000m
      calls: [{service: back, mean: 1}]
    back:
      replicas: 1
      slots: 100
      serviceTime: {dist: constant, mean: %s}
      cpuRequest: 1000m
load:
  - {service: front, constant: %g}
`, concurrency, backTime, rps))
}

// Verifies the law of a synchronous pool: a pod that holds its slot while
// it waits on its calls never has more calls outstanding downstream than
// it has slots, so when the downstream is slow the pool runs out and the
// requests queue upstream; with async slots the same load passes through
// and queues nowhere.
func TestPropertySyncPoolCapsDownstreamAndQueuesUpstream(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		back := time.Duration(rapid.IntRange(50, 400).Draw(t, "backMillis")) * time.Millisecond
		// Offered concurrency at back, λ·W, is 2–8 times front's 2 slots.
		rps := rapid.Float64Range(4, 16).Draw(t, "ratio") / back.Seconds()
		seed := rapid.Uint64().Draw(t, "seed")
		for _, mode := range []string{"sync", "async"} {
			c := NewCluster(twoTier(t, mode, rps, back), seed)
			maxBack, maxWait := int32(0), 0
			for k := 0; k < 120; k++ {
				c.Advance(time.Second)
				maxBack = max(maxBack, c.sim.svcs[c.sc.ServiceIndex("back")].inFlight)
				maxWait = max(maxWait, c.sim.svcs[c.sc.ServiceIndex("front")].wait.size)
			}
			switch mode {
			case "sync":
				if maxBack > 2 {
					t.Fatalf("sync front with 2 slots had %d calls outstanding at back", maxBack)
				}
				if maxWait < 10 {
					t.Fatalf("sync front's pool never ran out: at most %d requests waiting at %.1f/s against back's %s", maxWait, rps, back)
				}
			case "async":
				if maxBack <= 2 {
					t.Fatalf("async front kept back at %d outstanding calls; its slots should not limit them", maxBack)
				}
			}
		}
	})
}

// Verifies that retries multiply load: when the callee always answers
// after the caller's timeout, every call becomes 1+retries attempts at the
// callee, and every request fails.
func TestPropertyRetriesMultiplyLoad(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		retries := rapid.IntRange(0, 3).Draw(t, "retries")
		seed := rapid.Uint64().Draw(t, "seed")
		sc := parse(t, fmt.Sprintf(`
name: retries
duration: 5m
cluster:
  services:
    front:
      slots: 1000
      serviceTime: {dist: constant, mean: 1ms}
      cpuRequest: 1000m
      calls: [{service: back, mean: 1, timeout: 100ms, retries: %d}]
    back:
      slots: 1000
      serviceTime: {dist: constant, mean: 150ms}
      cpuRequest: 1000m
load:
  - {service: front, constant: 20}
`, retries))
		c := NewCluster(sc, seed)
		c.Advance(sc.Duration)
		front, back := &c.sim.svcs[0], &c.sim.svcs[1]
		if front.m.Name != "back" {
			front, back = back, front
		} else {
			front, back = &c.sim.svcs[1], &c.sim.svcs[0]
		}
		done := front.latCount
		want := float64(done) * float64(1+retries)
		// Requests still in progress at the end may have made some attempts.
		if got := float64(back.requests); got < want || got > want+float64(front.inFlight)*float64(1+retries) {
			t.Fatalf("back saw %.0f attempts for %d completed requests with %d retries, want %.0f", got, done, retries, want)
		}
		if front.failedEntry != done {
			t.Fatalf("%d of %d requests failed, want all", front.failedEntry, done)
		}
		if back.timeouts != uint64(back.requests)-uint64(0) && back.timeouts < uint64(want) {
			t.Fatalf("%d timeouts for %.0f attempts", back.timeouts, want)
		}
	})
}

// Verifies that a call answered within its timeout is neither retried nor
// failed: the timeout only acts on slow answers.
func TestTimeoutsLeaveFastCallsAlone(t *testing.T) {
	sc := parse(t, `
name: fast
duration: 5m
cluster:
  services:
    front: {slots: 100, serviceTime: {dist: constant, mean: 1ms}, cpuRequest: 1000m, calls: [{service: back, mean: 1, timeout: 1s, retries: 3}]}
    back: {slots: 100, serviceTime: {dist: constant, mean: 50ms}, cpuRequest: 1000m}
load:
  - {service: front, constant: 20}
`)
	c := NewCluster(sc, 3)
	c.Advance(sc.Duration)
	for i := range c.sim.svcs {
		v := &c.sim.svcs[i]
		if v.failedEntry != 0 || v.timeouts != 0 {
			t.Fatalf("%s: %d failed, %d timeouts", v.m.Name, v.failedEntry, v.timeouts)
		}
	}
	if f, b := c.sim.svcs[sc.ServiceIndex("front")].requests, c.sim.svcs[sc.ServiceIndex("back")].requests; f != b {
		t.Fatalf("front %d requests, back %d: want equal", f, b)
	}
}

// Verifies a phase: own work started within it takes factor times as
// long (with ample slots the mean latency is the mean service time), and
// outside it the service is as before.
func TestPhaseSlowsServiceTime(t *testing.T) {
	sc := parse(t, `
name: phase
duration: 30m
cluster:
  services:
    db:
      slots: 1000
      serviceTime: {dist: exponential, mean: 20ms}
      cpuRequest: 1000m
      phases: [{from: 10m, to: 20m, factor: 4}]
load:
  - {service: db, constant: 50}
`)
	c := NewCluster(sc, 5)
	mean := func(d time.Duration) float64 {
		v := &c.sim.svcs[0]
		s0, n0 := v.latSum, v.latCount
		c.Advance(d)
		return (v.latSum - s0) / float64(v.latCount-n0)
	}
	before := mean(10 * time.Minute)
	during := mean(10 * time.Minute)
	after := mean(10 * time.Minute)
	if math.Abs(before-0.020)/0.020 > 0.05 || math.Abs(after-0.020)/0.020 > 0.05 {
		t.Fatalf("mean latency outside the phase %.4fs / %.4fs, want 0.020s within 5%%", before, after)
	}
	if math.Abs(during-0.080)/0.080 > 0.05 {
		t.Fatalf("mean latency in the ×4 phase %.4fs, want 0.080s within 5%%", during)
	}
}

// Verifies CPU limits: a pod whose work in progress would burn more CPU
// than its limit is throttled, so metrics-server reads it at its limit
// (within 5%: the stretch is fixed when each piece of work starts, so work
// that starts later does not slow what is already running) and its work
// takes longer; without the limit the same load reads above it.
func TestCPULimitThrottles(t *testing.T) {
	run := func(limit string) (usage int64, meanLat float64) {
		sc := parse(t, `
name: limit
duration: 10m
cluster:
  services:
    hot:
      replicas: 1
      slots: 4
      serviceTime: {dist: exponential, mean: 100ms}
      cpuPerRequest: 100ms
      cpuRequest: 1000m
`+limit+`
load:
  - {service: hot, constant: 25}
`)
		c := NewCluster(sc, 9)
		for k := 0; k < 40; k++ {
			c.Advance(15 * time.Second)
			usage = max(usage, c.sim.svcs[0].pods[0].usageMilli)
		}
		v := &c.sim.svcs[0]
		return usage, v.latSum / float64(v.latCount)
	}
	freeUse, freeLat := run("")
	capUse, capLat := run("      cpuLimit: 1500m")
	if freeUse <= 1500 {
		t.Fatalf("unlimited pod peaked at %dm; the test needs it above the 1500m limit", freeUse)
	}
	if capUse > 1500*1.05 {
		t.Fatalf("limited pod read %dm, above its 1500m limit", capUse)
	}
	if capLat <= freeLat*1.1 {
		t.Fatalf("throttling did not slow the work: %.3fs limited vs %.3fs free", capLat, freeLat)
	}
}

// Verifies nodes: pods that fit on no node stay Pending (and are not
// ready), the cluster autoscaler adds the nodes they need after its delay,
// and then they start.
func TestNodesFullLeavePodsPending(t *testing.T) {
	sc := parse(t, `
name: nodes
duration: 30m
cluster:
  nodes: {count: 1, maxCount: 3, cpu: 4000m, memory: 8Gi, addDelay: 2m}
  services:
    app: {replicas: 2, slots: 1, serviceTime: {mean: 10ms}, cpuRequest: 1000m, memoryRequest: 1Gi, startup: 10s}
load:
  - {service: app, constant: 1}
`)
	c := NewCluster(sc, 1)
	if err := c.SetReplicas("app", 8); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if _, ready, _ := c.Replicas("app"); ready != 4 {
		t.Fatalf("%d ready on one 4-core node, want 4", ready)
	}
	pending := 0
	for _, p := range c.podSamples(0) {
		if p.Phase == "Pending" {
			pending++
		}
	}
	if pending != 4 {
		t.Fatalf("%d pods Pending, want 4", pending)
	}
	c.Advance(2 * time.Minute)
	if _, ready, _ := c.Replicas("app"); ready != 8 {
		t.Fatalf("%d ready after the node was added, want 8", ready)
	}
	if n := len(c.sim.nodes.freeCPU); n != 2 {
		t.Fatalf("%d nodes, want 2 (one added for four 1-core pods)", n)
	}
	if _, err := ParseScenario([]byte(`
duration: 10m
cluster:
  nodes: {count: 1, cpu: 1000m}
  services:
    app: {replicas: 2, slots: 1, serviceTime: {mean: 10ms}, cpuRequest: 1000m}
load: [{service: app, constant: 1}]
elmascale: {preset: elma365}
`), fstest.MapFS{}, "."); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("initial replicas beyond the nodes: want an error, got %v", err)
	}
}

// Verifies scripts that call services: every message makes its calls, so
// the called service serves the queue's message rate times calls per
// message (flow conservation), and what it publishes arrives at the next
// queue.
func TestPropertyScriptsCallAndPublish(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mean := rapid.Float64Range(0.2, 3).Draw(t, "callsPerScript")
		seed := rapid.Uint64().Draw(t, "seed")
		sc := parse(t, fmt.Sprintf(`
name: scripts
duration: 20m
cluster:
  services:
    worker: {slots: 50, concurrency: sync, serviceTime: {mean: 10ms}, cpuRequest: 1000m, consumes: [scripts, followups]}
    api: {slots: 50, serviceTime: {mean: 5ms}, cpuRequest: 1000m}
  queues:
    scripts:
      serviceTime: {mean: 20ms}
      calls: [{service: api, mean: %g}]
      publishes: [{queue: followups, mean: 0.5}]
    followups:
      serviceTime: {mean: 20ms}
load:
  - {queue: scripts, constant: 10}
`, mean))
		c := NewCluster(sc, seed)
		c.Advance(sc.Duration)
		api := &c.sim.svcs[sc.ServiceIndex("api")]
		scripts := &c.sim.qs[sc.QueueIndex("scripts")]
		follow := &c.sim.qs[sc.QueueIndex("followups")]
		n := float64(scripts.acked)
		// Each script draws its calls independently: allow 5 standard deviations.
		if got, want := float64(api.requests), n*mean; math.Abs(got-want) > 5*math.Sqrt(n*0.25)+float64(scripts.unacked)*math.Ceil(mean) {
			t.Fatalf("api served %.0f calls for %.0f scripts at %.2f calls each, want %.0f", got, n, mean, want)
		}
		if got, want := float64(follow.published), n*0.5; math.Abs(got-want) > 5*math.Sqrt(n*0.25)+float64(scripts.unacked) {
			t.Fatalf("%.0f follow-up messages for %.0f scripts, want %.0f", got, n, want)
		}
	})
}

// Verifies the pool template: each pool becomes a service consuming its
// own queue, copies of the template's, and the elmascale configuration
// gains a copy of the template's entry reading the pool's queue.
func TestPoolTemplate(t *testing.T) {
	sc := parse(t, `
name: pools
duration: 10m
cluster:
  services:
    worker: {slots: 4, serviceTime: {mean: 100ms}, cpuRequest: 1000m, consumes: [worker.default]}
  queues:
    worker.default: {serviceTime: {mean: 1s}}
  pools:
    - {template: worker, names: [sales, hr]}
    - {template: worker, count: 2}
load:
  - {queue: worker.hr, constant: 1}
elmascale:
  overrides:
    apiVersion: elmascale.io/v1alpha1
    kind: Config
    metrics:
      rabbitmq_queue_messages:
        prometheus: {query: 'sum by (queue) (rabbitmq_queue_messages)', keyLabel: queue}
    services:
      worker:
        signals:
          - name: q
            perReplica: {metric: rabbitmq_queue_messages, key: worker.default, targetPerReplica: 5}
`)
	for _, name := range []string{"worker", "worker-sales", "worker-hr", "worker-pool1", "worker-pool2"} {
		i := sc.ServiceIndex(name)
		if i < 0 {
			t.Fatalf("no service %s", name)
		}
		q := "worker." + strings.TrimPrefix(strings.TrimPrefix(name, "worker"), "-")
		if name == "worker" {
			q = "worker.default"
		}
		if got := sc.Services[i].Consumes; len(got) != 1 || got[0] != q {
			t.Errorf("%s consumes %v, want [%s]", name, got, q)
		}
		cs, ok := sc.Elmascale.Service(name)
		if !ok {
			t.Errorf("no configuration entry for %s", name)
			continue
		}
		if cs.Signals[0].Key != q {
			t.Errorf("%s's signal reads %q, want %q", name, cs.Signals[0].Key, q)
		}
	}
}

// Verifies data stores: nothing scales them, and a saturated one is
// reported as such.
func TestDataStoreSaturatesAndIsNotScaled(t *testing.T) {
	sc := parse(t, `
name: store
duration: 20m
cluster:
  services:
    app: {slots: 100, serviceTime: {mean: 2ms}, cpuRequest: 1000m, calls: [{service: pg, mean: 1}]}
  stores:
    pg:
      kind: postgresql
      connections: 4
      serviceTime: {dist: exponential, mean: 20ms}
      phases: [{from: 10m, to: 20m, factor: 3}]
load:
  - {service: app, constant: 100}
slo:
  endToEnd: {app: 200ms}
`)
	i := sc.ServiceIndex("pg")
	if sc.Services[i].Store != StorePostgreSQL {
		t.Fatalf("pg is not a store: %+v", sc.Services[i])
	}
	c := NewCluster(sc, 1)
	if err := c.SetReplicas("pg", 3); err == nil {
		t.Fatal("a data store was scaled")
	}
	p, err := BuildPolicy(sc, PolicyHPA, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, p, 1)
	if err != nil {
		t.Fatal(err)
	}
	// At 100/s, 4 connections of 20 ms run at 50%; ×3 from 10m they are
	// overloaded (150%).
	if s := r.Scores.Saturated["pg"]; s < 500 || s > 610 {
		t.Fatalf("pg saturated %.0fs, want about the 600s of its slow phase", s)
	}
}

// Verifies bursts: each seed draws its own (as many as the duration over
// the mean gap, roughly), the same for every query of that seed, and the
// rate within a burst is the profile times its factor.
func TestBurstsDrawnPerSeed(t *testing.T) {
	sc := parse(t, `
name: bursts
duration: 168h
cluster:
  services:
    app: {slots: 100, serviceTime: {mean: 2ms}, cpuRequest: 1000m}
load:
  - service: app
    constant: 10
    bursts: {every: 2h, factor: {mean: 3, cv: 0.5}, duration: {dist: exponential, mean: 10m}}
`)
	a, b := sc.NewLoad(1), sc.NewLoad(2)
	fa, _, xa := a.Bursts(0)
	fb, _, _ := b.Bursts(0)
	if len(fa) < 50 || len(fa) > 120 || len(fb) < 50 || len(fb) > 120 {
		t.Fatalf("%d and %d bursts in a week at one per 2h, want about 84", len(fa), len(fb))
	}
	if fa[0] == fb[0] {
		t.Fatalf("two seeds drew the same first burst at %s", fa[0])
	}
	again, _, _ := sc.NewLoad(1).Bursts(0)
	if again[0] != fa[0] {
		t.Fatal("one seed drew two different burst sets")
	}
	mid := fa[0] + time.Second
	if got := a.Rate(0, mid); math.Abs(got-10*xa[0]) > 1e-9 && len(fa) > 1 && fa[1] > mid {
		t.Fatalf("rate in the first burst %g, want %g", got, 10*xa[0])
	}
}

// Verifies correlated noise: two sources of one group with correlation ρ
// have log-factors correlated about ρ² (each is ρ·shared + √(1−ρ²)·own),
// and sources of different groups about zero.
func TestNoiseCorrelation(t *testing.T) {
	corr := func(a, b Noise, sa, sb int) float64 {
		var sx, sy, sxx, syy, sxy float64
		n := 20000.0
		for k := int64(0); k < int64(n); k++ {
			x, y := math.Log(a.knot(7, sa, k)), math.Log(b.knot(7, sb, k))
			sx, sy, sxx, syy, sxy = sx+x, sy+y, sxx+x*x, syy+y*y, sxy+x*y
		}
		cov := sxy/n - sx/n*sy/n
		return cov / math.Sqrt((sxx/n-sx*sx/n/n)*(syy/n-sy*sy/n/n))
	}
	g := Noise{CV: 0.2, Period: time.Minute, Group: "office", Correlation: 0.9}
	if r := corr(g, g, 0, 1); math.Abs(r-0.81) > 0.03 {
		t.Errorf("same group ρ=0.9: correlation %.3f, want 0.81", r)
	}
	h := Noise{CV: 0.2, Period: time.Minute, Group: "night", Correlation: 0.9}
	if r := corr(g, h, 0, 1); math.Abs(r) > 0.03 {
		t.Errorf("different groups: correlation %.3f, want 0", r)
	}
}

// Verifies, on a scenario that is not shipped (testdata/slow-mongo-retries:
// MongoDB twelve times slower behind collector's threads, main retrying),
// that elmascale lets go of the replicas collector's first queue asked for
// while MongoDB stays slow: over the slowdown's last ten minutes collector
// runs clearly fewer replicas than the most it had in the slowdown.
func TestOutsideSlowdownReleasesQueueReplicas(t *testing.T) {
	sc, err := LoadScenarioFS(os.DirFS("."), "testdata/slow-mongo-retries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := runPolicy(t, sc, PolicyElmascale, sc.Seed)
	reps := r.Series.Values["replicas/collector"]
	step := r.Series.Step
	from, to := int(35*time.Minute/step), int(55*time.Minute/step)
	if len(reps) < to {
		t.Fatalf("%d windows, want %d", len(reps), to)
	}
	peak, late := 0.0, 0.0
	for k := from; k < to; k++ {
		peak = max(peak, reps[k])
	}
	lateFrom := int(45 * time.Minute / step)
	for k := lateFrom; k < to; k++ {
		late += reps[k]
	}
	late /= float64(to - lateFrom)
	if peak < 4 {
		t.Fatalf("collector peaked at %.0f replicas in the slowdown: the scenario no longer queues it", peak)
	}
	if late > 0.75*peak {
		t.Errorf("collector at %.1f replicas on average over the slowdown's last ten minutes, %.0f at its peak: the queue's replicas were held for the slow store", late, peak)
	}
}
