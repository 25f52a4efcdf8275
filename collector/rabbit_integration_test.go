package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/elmascale/elmascale/internal/rabbittest"
	"github.com/elmascale/elmascale/policy"
)

// rabbitQueueYAML is a worker whose signal sums two pool queues.
func rabbitQueueYAML(queues ...string) string {
	return fmt.Sprintf(`
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
services:
  worker:
    signals:
      - name: script-queue
        queue:
          rabbitmq: {vhost: /, queues: [%s]}
          drainTime: 1m
          throughputPerReplica: 4
`, strings.Join(queues, ", "))
}

// monitorUser creates a least-privilege user for the collector, as an
// operator would: the monitoring tag reads every queue's statistics.
func monitorUser(t *testing.T, b *rabbittest.Broker, name string) (user, password string) {
	t.Helper()
	user, password = name, "pw-"+name
	if err := b.CreateUser(user, password, "monitoring", "/"); err != nil {
		t.Fatal(err)
	}
	return user, password
}

// Verifies against a real broker that the backlog the collector reads is
// exactly what was published minus what was consumed, summed over a
// signal's queues.
func TestRealRabbitMQBacklog(t *testing.T) {
	b := rabbittest.Shared(t)
	user, pw := monitorUser(t, b, "monitor-backlog")
	qDefault, qPool := "backlog.worker.default", "backlog.worker.pool-a"
	for _, q := range []string{qDefault, qPool} {
		if err := b.DeclareQueue("/", q); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.DeleteQueue("/", q) })
	}
	if err := b.Publish("/", qDefault, 30); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("/", qPool, 12); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Consume("/", qDefault, 5); err != nil || n != 5 {
		t.Fatalf("consumed %d (%v), want 5", n, err)
	}
	const want = 30 + 12 - 5

	cfg := parseConfig(t, rabbitQueueYAML(qDefault, qPool))
	t.Setenv("TEST_RABBIT_PW", pw)
	c, _ := newCollector(t, Options{RabbitMQURL: b.URL, RabbitMQUser: user, RabbitMQPasswordEnv: "TEST_RABBIT_PW"})
	// Queue counters are published with the statistics, once a second.
	var got policy.Observation
	deadline := time.Now().Add(15 * time.Second)
	for {
		got = collect(t, c, cfg, time.Now())["worker"]["script-queue"]
		if got.Status == policy.StatusOK && got.Queue.Backlog == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog never reached %d: %+v %+v", want, got, got.Queue)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got.Queue.Consumers != 0 {
		t.Errorf("consumers %d, want 0", got.Queue.Consumers)
	}
}

// Verifies against a real broker that the messages a consumer holds
// unacknowledged are read as in progress: part of the backlog, counted
// apart from the messages waiting, with the consumer counted.
func TestRealRabbitMQUnacked(t *testing.T) {
	b := rabbittest.Shared(t)
	user, pw := monitorUser(t, b, "monitor-unacked")
	q := "unacked.worker.default"
	if err := b.DeclareQueue("/", q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.DeleteQueue("/", q) })
	if err := b.Publish("/", q, 10); err != nil {
		t.Fatal(err)
	}
	// A consumer with a prefetch of one that acknowledges nothing: one
	// message in progress, nine waiting.
	stop, err := b.Subscribe(q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	cfg := parseConfig(t, rabbitQueueYAML(q))
	t.Setenv("TEST_RABBIT_PW", pw)
	c, _ := newCollector(t, Options{RabbitMQURL: b.URL, RabbitMQUser: user, RabbitMQPasswordEnv: "TEST_RABBIT_PW"})
	var got policy.Observation
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = collect(t, c, cfg, time.Now())["worker"]["script-queue"]
		if got.Status == policy.StatusOK && got.Queue.Unacked == 1 && got.Queue.Consumers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never read 1 unacknowledged message and 1 consumer: %+v %+v", got, got.Queue)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got.Queue.Backlog != 10 {
		t.Errorf("backlog %v with 1 of 10 messages in progress, want 10 (waiting plus in progress)", got.Queue.Backlog)
	}
}

// Verifies the rates against a real broker: messages published at 20/s and
// completed at 10/s read back as such. RabbitMQ derives rates from
// counters sampled every second (rabbittest sets that interval), and each
// publish is an HTTP call on a shared 2-core machine, so the mean of three
// readings must be within 25%.
func TestRealRabbitMQRates(t *testing.T) {
	b := rabbittest.Shared(t)
	user, pw := monitorUser(t, b, "monitor-rates")
	q := "rates.worker.default"
	if err := b.DeclareQueue("/", q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.DeleteQueue("/", q) })
	if err := b.Publish("/", q, 50); err != nil { // a backlog to consume from
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	paced := func(every time.Duration, step func() error) {
		start, n := time.Now(), 0
		for ctx.Err() == nil {
			for due := int(time.Since(start) / every); n < due; n++ {
				if err := step(); err != nil {
					done <- err
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		done <- nil
	}
	go paced(50*time.Millisecond, func() error { return b.Publish("/", q, 1) })
	go paced(100*time.Millisecond, func() error { _, err := b.Consume("/", q, 1); return err })
	defer func() {
		cancel()
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil {
				t.Errorf("load: %v", err)
			}
		}
	}()

	cfg := parseConfig(t, rabbitQueueYAML(q))
	c, _ := newCollector(t, Options{RabbitMQURL: b.URL, RabbitMQUser: user, RabbitMQPasswordFile: passwordFile(t, pw)})
	// A new queue's first statistics take a few seconds to appear; then
	// let a few samples see steady load.
	deadline := time.Now().Add(20 * time.Second)
	for collect(t, c, cfg, time.Now())["worker"]["script-queue"].Status != policy.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("queue statistics never appeared")
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	var arrival, completion float64
	const readings = 3
	for i := 0; i < readings; i++ {
		o := collect(t, c, cfg, time.Now())["worker"]["script-queue"]
		if o.Status != policy.StatusOK {
			t.Fatalf("reading %d: %+v", i, o)
		}
		t.Logf("reading %d: arrival %.2f/s completion %.2f/s backlog %.0f", i, o.Queue.ArrivalRate, o.Queue.CompletionRate, o.Queue.Backlog)
		arrival += o.Queue.ArrivalRate / readings
		completion += o.Queue.CompletionRate / readings
		time.Sleep(time.Second)
	}
	if !within(arrival, 20, 0.25) || !within(completion, 10, 0.25) {
		t.Errorf("mean arrival %.2f/s, completion %.2f/s; want 20 and 10 within 25%%", arrival, completion)
	}
}

// Verifies that wrong credentials against a real broker fail the queue
// signal with an error naming RabbitMQ and the user (not the password),
// count as an auth error, hold the service, and do not crash.
func TestRealRabbitMQWrongCredentials(t *testing.T) {
	b := rabbittest.Shared(t)
	user, _ := monitorUser(t, b, "monitor-wrong")
	cfg := parseConfig(t, rabbitQueueYAML("worker.default"))
	c, _ := newCollector(t, Options{RabbitMQURL: b.URL, RabbitMQUser: user, RabbitMQPasswordFile: passwordFile(t, "not-the-password")})
	now := time.Now()
	sigs := collect(t, c, cfg, now)
	o := sigs["worker"]["script-queue"]
	want := fmt.Sprintf(`rabbitmq: management API at %s refused user %q (HTTP 401)`, b.URL, user)
	if o.Status != policy.StatusFailed || !strings.Contains(o.Error, want) {
		t.Fatalf("got %+v; want failed with %q", o, want)
	}
	if strings.Contains(o.Error, "not-the-password") {
		t.Errorf("error reveals the password: %q", o.Error)
	}
	if v := counterValue(t, c.m.errors.WithLabelValues(SourceRabbitMQ, ReasonAuth)); v != 1 {
		t.Errorf("errors_total{rabbitmq,auth} = %v, want 1", v)
	}
	assertHeld(t, cfg, sigs, 4, now, "worker")
}

// Verifies against a real broker that a pattern entry reads every pool's
// queue of the vhost: worker pools declared after the config was written
// are summed without an edit, a queue also named literally counts once,
// queues the pattern does not match are left out, and a pattern that
// matches nothing is missing, not zero.
func TestRealRabbitMQQueuePattern(t *testing.T) {
	b := rabbittest.Shared(t)
	user, pw := monitorUser(t, b, "monitor-pattern")
	queues := map[string]int{"pattern.worker.default": 7, "pattern.worker.pool-a": 5, "pattern.worker.pool-b": 3, "pattern.calculator": 100}
	for q, n := range queues {
		if err := b.DeclareQueue("/", q); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.DeleteQueue("/", q) })
		if err := b.Publish("/", q, n); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TEST_RABBIT_PW", pw)
	c, _ := newCollector(t, Options{RabbitMQURL: b.URL, RabbitMQUser: user, RabbitMQPasswordEnv: "TEST_RABBIT_PW"})
	cfg := parseConfig(t, rabbitQueueYAML("pattern.worker.default", `"pattern.worker.*"`))
	const want = 7 + 5 + 3
	var got policy.Observation
	deadline := time.Now().Add(15 * time.Second)
	for {
		got = collect(t, c, cfg, time.Now())["worker"]["script-queue"]
		if got.Status == policy.StatusOK && got.Queue.Backlog == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog never reached %d: %+v %+v", want, got, got.Queue)
		}
		time.Sleep(250 * time.Millisecond)
	}
	none := parseConfig(t, rabbitQueueYAML(`"pattern.nothing.*"`))
	if o := collect(t, c, none, time.Now())["worker"]["script-queue"]; o.Status != policy.StatusMissing || !strings.Contains(o.Error, `no queue in vhost "/" matches "pattern.nothing.*"`) {
		t.Errorf("a pattern matching nothing: %s %q", o.Status, o.Error)
	}
}
