package simulations

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"pgregory.net/rapid"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// Verifies Little's law on the simulated queue's in-progress count: a pool
// with slots to spare holds, on average over the window, arrivals × the
// time a message takes; the windowed series is that average and the
// queue observation reads it beside the messages waiting, the two adding
// up to the backlog.
func TestPropertyUnackedIsLittlesLaw(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rate := rapid.Float64Range(5, 40).Draw(t, "rate")
		work := rapid.Float64Range(0.1, 1).Draw(t, "seconds")
		seed := rapid.Uint64().Draw(t, "seed")
		sc := parse(t, fmt.Sprintf(`
name: little
duration: 30m
observation: {queueStatsInterval: 5s}
cluster:
  services:
    worker: {slots: 400, serviceTime: {mean: 10ms}, cpuRequest: 1000m, consumes: [jobs]}
  queues:
    jobs: {serviceTime: {dist: constant, mean: %gs}}
load:
  - {queue: jobs, constant: %g}
metricBindings:
  unacked_avg: {series: queueUnacked, window: 5m}
`, work, rate))
		c := NewCluster(sc, seed)
		c.Advance(10 * time.Minute)
		avg, o := c.metric("unacked_avg", "jobs")
		if o.Status != policy.StatusOK {
			t.Fatalf("unacked_avg: %+v", o)
		}
		want := rate * work
		// Poisson arrivals: the count in progress is Poisson with mean
		// rate × work; its mean over 60 samples 5 s apart is within a
		// few standard errors of it.
		if tol := 5*math.Sqrt(want/60) + 0.5; math.Abs(avg-want) > tol {
			t.Fatalf("mean in progress %.2f, want %.2f (%.1f/s × %.2fs) within %.2f", avg, want, rate, work, tol)
		}
		obs := c.observeQueue(&config.QueueSource{Backlog: "rabbitmq_queue_messages_ready", Unacked: "unacked_avg", Key: "jobs"}, c.Now())
		ready, _ := c.metric("rabbitmq_queue_messages_ready", "jobs")
		if obs.Status != policy.StatusOK || obs.Queue.Unacked != avg || obs.Queue.Backlog != ready+avg || obs.Queue.UnackedTime.IsZero() {
			t.Fatalf("observation %+v %+v, want %v in progress beside %v waiting", obs, obs.Queue, avg, ready)
		}
		// A binding the scenario does not have is left out, as the
		// collector leaves out a missing series.
		obs = c.observeQueue(&config.QueueSource{Backlog: "rabbitmq_queue_messages_ready", Unacked: "nowhere", Key: "jobs"}, c.Now())
		if obs.Status != policy.StatusOK || obs.Queue.Unacked != 0 || obs.Queue.Backlog != ready {
			t.Fatalf("observation without the in-progress series %+v %+v, want ok with %v waiting and nothing in progress", obs, obs.Queue, ready)
		}
	})
}

// Verifies that only an unacked series takes a window among the queue
// gauges.
func TestUnackedWindowOnly(t *testing.T) {
	for binding, want := range map[string]string{
		`{series: queueReady, window: 30s}`:    "a queueReady series has no window",
		`{series: queueMessages, window: 30s}`: "a queueMessages series has no window",
		`{series: queueUnacked, window: 30s}`:  "",
	} {
		_, err := ParseScenario([]byte(`
duration: 10m
cluster:
  services:
    worker: {slots: 4, serviceTime: {mean: 10ms}, cpuRequest: 1000m, consumes: [jobs]}
  queues:
    jobs: {serviceTime: {mean: 100ms}}
load: [{queue: jobs, constant: 1}]
metricBindings:
  m: `+binding+`
elmascale: {preset: elma365}
`), fstest.MapFS{}, ".")
		if (want == "" && err != nil) || (want != "" && (err == nil || !strings.Contains(err.Error(), want))) {
			t.Errorf("%s: error %v, want %q", binding, err, want)
		}
	}
}
