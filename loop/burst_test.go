package loop

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

const burstTestConfig = `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: shop
interval: 15s
metrics:
  inflight: {prometheus: {query: "sum by (service) (inflight)"}}
services:
  worker:
    minReplicas: 1
    maxReplicas: 20
    burst: {enabled: true, interval: 1s}
    signals:
      - name: queue
        queue: {rabbitmq: {queues: [jobs]}, drainTime: 10s, throughputPerReplica: 1}
  main:
    minReplicas: 1
    maxReplicas: 10
    signals:
      - name: inflight
        perReplica: {metric: inflight, targetPerReplica: 10}
`

// fakeBurstCollector returns a queue observation or an error and counts
// its calls.
type fakeBurstCollector struct {
	mu    sync.Mutex
	queue *policy.QueueObservation
	err   error
	calls int
}

func (f *fakeBurstCollector) CollectBurst(_ context.Context, _ *config.Config, services []string, now time.Time) (Signals, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := Signals{}
	for _, s := range services {
		if s == "worker" && f.queue != nil {
			q := *f.queue
			out[s] = map[string]policy.Observation{"queue": {Status: policy.StatusOK, Time: now, Queue: &q}}
		}
	}
	return out, nil
}

// recordingRecorder keeps every tick.
type recordingRecorder struct {
	mu    sync.Mutex
	ticks []Tick
}

func (r *recordingRecorder) Record(t Tick) {
	r.mu.Lock()
	r.ticks = append(r.ticks, t)
	r.mu.Unlock()
}

type burstRig struct {
	burst  *Burst
	coll   *fakeBurstCollector
	scaler *fakeScaler
	rec    *recordingRecorder
}

func newBurstRig(t *testing.T) *burstRig {
	t.Helper()
	cfg, err := config.Parse([]byte(burstTestConfig))
	if err != nil {
		t.Fatal(err)
	}
	r := &burstRig{
		coll:   &fakeBurstCollector{},
		scaler: &fakeScaler{targets: map[string]TargetStatus{"worker": {Found: true, Current: 1, Ready: 1}, "main": {Found: true, Current: 2, Ready: 2}}},
		rec:    &recordingRecorder{},
	}
	l := &Loop{
		Config: func() *config.Config { return cfg },
		Collector: fakeCollector{signals: Signals{
			"worker": {"queue": {Status: policy.StatusOK, Time: epoch, Queue: &policy.QueueObservation{}}},
			"main":   inflight(20),
		}},
		Scaler:   r.scaler,
		Recorder: r.rec,
	}
	r.burst = &Burst{Loop: l, Collector: r.coll}
	return r
}

// storm: 100 messages waiting, 10/s arriving: (10 + 100/10) / 0.8 = 25
// replicas asked for.
var storm = &policy.QueueObservation{Backlog: 100, ArrivalRate: 10}

// Verifies that a queue jump between ticks is acted on at once: only the
// worker is applied, scaled up within its rate policies with a burst
// reason, and the recorded tick shows every service, the others as the
// last tick left them; the next tick counts the burst's scale-up.
func TestBurstActsBetweenTicks(t *testing.T) {
	r := newBurstRig(t)
	r.burst.RunOnce(context.Background(), epoch)
	r.coll.queue = storm
	tk, acted := r.burst.Check(context.Background(), epoch.Add(3*time.Second))
	if !acted || tk.Err != nil {
		t.Fatalf("acted %v, err %v", acted, tk.Err)
	}
	applied := r.scaler.applied[len(r.scaler.applied)-1]
	if len(applied.Decisions) != 1 || applied.Decisions[0].Service != "worker" {
		t.Fatalf("applied %+v, want the worker only", applied.Decisions)
	}
	// Default scale-up: +100% or +4 per 15s from 1: 5.
	if d := applied.Decisions[0]; d.Desired != 5 || !strings.HasPrefix(d.Reason, "burst: scale up 1 → 5") {
		t.Fatalf("worker %d → %d: %s", d.Current, d.Desired, d.Reason)
	}
	recorded := r.rec.ticks[len(r.rec.ticks)-1]
	if len(recorded.Plan.Decisions) != 2 || decision(t, recorded, "main").Reason != decision(t, r.burst.last, "main").Reason {
		t.Fatalf("recorded plan %+v, want the worker's burst beside main's last decision", recorded.Plan.Decisions)
	}
	for _, o := range recorded.Outcomes {
		if o.Service == "main" && o.Skipped != SkipHeldBetweenTicks {
			t.Errorf("main's outcome %+v", o)
		}
	}

	// The scale-up shows; the next tick sees a bigger storm but the
	// period's +4 is used up.
	r.scaler.targets["worker"] = TargetStatus{Found: true, Current: 5, Ready: 5}
	r.burst.Loop.Collector = fakeCollector{signals: Signals{
		"worker": {"queue": {Status: policy.StatusOK, Time: epoch.Add(5 * time.Second), Queue: &policy.QueueObservation{Backlog: 400, ArrivalRate: 20}}},
		"main":   inflight(20),
	}}
	next := r.burst.RunOnce(context.Background(), epoch.Add(5*time.Second))
	if d := decision(t, next, "worker"); d.Desired != 5 || d.LimitedBy != policy.LimitRate {
		t.Fatalf("tick after the burst: %d → %d by %q, want 5 held by the rate policy: %s", d.Current, d.Desired, d.LimitedBy, d.Reason)
	}
}

// Verifies that the burst path changes nothing when it has nothing to go
// on: a failed sampling, no jump, a handed-off or single-instance target,
// an observation that fails.
func TestBurstChangesNothingWithoutAClearJump(t *testing.T) {
	cases := map[string]func(*burstRig){
		"collect fails": func(r *burstRig) { r.coll.queue, r.coll.err = storm, errors.New("rabbitmq down") },
		"no jump":       func(r *burstRig) { r.coll.queue = &policy.QueueObservation{Backlog: 1, ArrivalRate: 0.5} },
		"handed off": func(r *burstRig) {
			r.coll.queue = storm
			r.scaler.targets["worker"] = TargetStatus{Found: true, Current: 1, Ready: 1, HandedOff: "HorizontalPodAutoscaler/worker"}
		},
		"pinned": func(r *burstRig) {
			r.coll.queue = storm
			r.scaler.targets["worker"] = TargetStatus{Found: true, Current: 1, Ready: 1, Pinned: true}
		},
		"observe fails": func(r *burstRig) { r.coll.queue, r.scaler.err = storm, errors.New("caches not synced") },
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			r := newBurstRig(t)
			r.burst.RunOnce(context.Background(), epoch)
			before, ticks := len(r.scaler.applied), len(r.rec.ticks)
			state := r.burst.Loop.State()
			setup(r)
			if _, acted := r.burst.Check(context.Background(), epoch.Add(time.Second)); acted {
				t.Fatal("burst acted")
			}
			if len(r.scaler.applied) != before || len(r.rec.ticks) != ticks {
				t.Errorf("applied %d plans and recorded %d ticks, want none", len(r.scaler.applied)-before, len(r.rec.ticks)-ticks)
			}
			if got := r.burst.Loop.State(); got.Services["worker"].Pending != state.Services["worker"].Pending ||
				len(got.Services["worker"].Recommendations) != len(state.Services["worker"].Recommendations) {
				t.Error("state changed")
			}
		})
	}
}

// Verifies that each service is sampled at its own interval, whatever
// how often Check is called, and that a config without the burst path
// samples nothing.
func TestBurstSamplesAtTheServiceInterval(t *testing.T) {
	r := newBurstRig(t)
	for _, at := range []time.Duration{0, 300 * time.Millisecond, 950 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Second} {
		r.burst.Check(context.Background(), epoch.Add(at))
	}
	// Due at 0, 0.95 (within a tenth of 1s), and 2s.
	if r.coll.calls != 3 {
		t.Errorf("%d samplings, want 3", r.coll.calls)
	}
	if iv := BurstInterval(r.burst.Loop.Config()); iv != time.Second {
		t.Errorf("interval %s, want 1s", iv)
	}
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	if iv := BurstInterval(cfg); iv != 0 {
		t.Errorf("interval %s without burst path, want 0", iv)
	}
}

// Verifies that ticks and burst checks running at once share the state
// without losing either's changes (run with -race).
func TestBurstAndTicksShareState(t *testing.T) {
	r := newBurstRig(t)
	r.coll.queue = storm
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 20 {
			r.burst.RunOnce(context.Background(), epoch.Add(time.Duration(i)*time.Second))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 40 {
			r.burst.Check(context.Background(), epoch.Add(time.Duration(i)*500*time.Millisecond))
		}
	}()
	wg.Wait()
	if len(r.burst.Loop.State().Services) != 2 {
		t.Fatalf("state %+v", r.burst.Loop.State())
	}
}

// Verifies that a burst check that decides nothing (nearly every check)
// keeps the state DecideBurst returned, whose burst cache spares the next
// check indexing every service again: over 200 services with the burst
// path on, a quiet check allocates a bounded handful, not a few per
// service as a check starting from no cache does.
func TestBurstQuietCheckKeepsItsCache(t *testing.T) {
	const n = 200
	var b strings.Builder
	b.WriteString("apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: shop\ninterval: 15s\nservices:\n")
	targets := map[string]TargetStatus{}
	for i := range n {
		name := "worker" + strconv.Itoa(i)
		b.WriteString("  " + name + ":\n    minReplicas: 1\n    maxReplicas: 20\n    burst: {enabled: true, interval: 1s}\n" +
			"    signals:\n      - name: queue\n        queue: {rabbitmq: {queues: [jobs" + strconv.Itoa(i) + "]}, drainTime: 10s, throughputPerReplica: 1}\n")
		targets[name] = TargetStatus{Found: true, Current: 1, Ready: 1}
	}
	cfg, err := config.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	quiet := map[string]policy.Observation{"queue": {Status: policy.StatusOK, Time: epoch, Queue: &policy.QueueObservation{Backlog: 1, ArrivalRate: 0.5}}}
	signals := Signals{}
	for name := range targets {
		signals[name] = quiet
	}
	l := &Loop{Config: func() *config.Config { return cfg }, Collector: fakeCollector{signals: signals}, Scaler: &fakeScaler{targets: targets}}
	burst := &Burst{Loop: l, Collector: fixedBurstCollector(signals)}
	burst.RunOnce(context.Background(), epoch)
	now := epoch
	check := func() {
		now = now.Add(time.Second)
		if _, acted := burst.Check(context.Background(), now); acted {
			t.Fatal("a quiet queue burst")
		}
	}
	check()
	if a := testing.AllocsPerRun(10, check); a > n/4 {
		t.Errorf("a quiet burst check over %d services allocates %.0f times; want a bounded handful", n, a)
	}
}

// fixedBurstCollector returns the same signals every time.
type fixedBurstCollector Signals

func (f fixedBurstCollector) CollectBurst(context.Context, *config.Config, []string, time.Time) (Signals, error) {
	return Signals(f), nil
}
