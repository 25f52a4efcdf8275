package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elmascale/elmascale/internal/rabbittest"
	"github.com/elmascale/elmascale/policy"
)

// burstYAML has a worker with a RabbitMQ queue and a CPU signal, and an
// API scaled on CPU.
func burstYAML(queue string) string {
	return `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
services:
  api:
    signals:
      - {name: cpu, utilization: {resource: cpu, targetPercent: 70}}
  worker:
    burst: {enabled: true}
    signals:
      - name: script-queue
        queue: {rabbitmq: {vhost: /, queues: [` + queue + `]}, drainTime: 1m, throughputPerReplica: 4}
      - {name: cpu, utilization: {resource: cpu, targetPercent: 70}}
`
}

// Verifies against a real broker that the burst sampling reads the named
// services' RabbitMQ queue signals (and nothing else) with the backlog the
// broker holds, and that a queue that does not exist is missing, not zero.
func TestRealRabbitMQBurstSampling(t *testing.T) {
	b := rabbittest.Shared(t)
	user, pw := monitorUser(t, b, "monitor-burst")
	q := "burst.worker.default"
	if err := b.DeclareQueue("/", q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.DeleteQueue("/", q) })
	if err := b.Publish("/", q, 25); err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, burstYAML(q))
	t.Setenv("TEST_RABBIT_PW", pw)
	c, _ := newCollector(t, Options{RabbitMQURL: b.URL, RabbitMQUser: user, RabbitMQPasswordEnv: "TEST_RABBIT_PW"})

	deadline := time.Now().Add(15 * time.Second)
	for {
		sigs, err := c.CollectBurst(context.Background(), cfg, []string{"api", "worker"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sigs["api"]; ok || len(sigs["worker"]) != 1 {
			t.Fatalf("sampled %v, want the worker's queue only", sigs)
		}
		got := sigs["worker"]["script-queue"]
		if got.Status == policy.StatusOK && got.Queue.Backlog == 25 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog never reached 25: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}

	gone := parseConfig(t, burstYAML("burst.no-such-queue"))
	sigs, err := c.CollectBurst(context.Background(), gone, []string{"worker"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if o := sigs["worker"]["script-queue"]; o.Status != policy.StatusMissing || !strings.Contains(o.Error, "not found") {
		t.Fatalf("absent queue: %+v, want missing", o)
	}
}

// Verifies that all watched queues come from one management API call, and
// that a broker answering errors gives failed observations and no error:
// the burst path then changes nothing.
func TestBurstSamplingIsOneCallAndFailsSafe(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	cfg := parseConfig(t, burstYAML("jobs"))
	c, _ := newCollector(t, Options{RabbitMQURL: srv.URL, RabbitMQUser: "u"})
	sigs, err := c.CollectBurst(context.Background(), cfg, []string{"worker", "api"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if o := sigs["worker"]["script-queue"]; o.Status != policy.StatusFailed {
		t.Fatalf("observation %+v, want failed", o)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls to the management API, want 1", n)
	}
	if _, err := c.CollectBurst(context.Background(), cfg, []string{"api"}, time.Now()); err == nil {
		t.Error("no error sampling a service without a RabbitMQ queue")
	}
	noRabbit, _ := newCollector(t, Options{})
	if _, err := noRabbit.CollectBurst(context.Background(), cfg, []string{"worker"}, time.Now()); err == nil {
		t.Error("no error without RabbitMQ configured")
	}
}
