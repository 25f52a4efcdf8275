package rabbittest

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Verifies that the shared broker boots, and that messages published and
// consumed through the management API show up in the queue's counters.
func TestPublishAndConsume(t *testing.T) {
	b := Shared(t)
	t.Logf("broker ready in %s", b.StartupTime)
	if err := b.DeclareQueue("/", "probe"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("/", "probe", 7); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Consume("/", "probe", 3); err != nil || n != 3 {
		t.Fatalf("consumed %d, %v; want 3", n, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		q, err := b.Queue("/", "probe")
		if err == nil && q.MessagesReady != nil && *q.MessagesReady == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue never showed 4 ready messages: %+v %v", q, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Verifies that a STOMP subscription shows as the queue's consumer in the
// management API, and that stopping it removes the consumer.
func TestSubscribeIsAConsumer(t *testing.T) {
	b, err := StartWith(Options{STOMP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	if err := b.DeclareQueue("/", "consumed"); err != nil {
		t.Fatal(err)
	}
	stop, err := b.Subscribe("consumed")
	if err != nil {
		t.Fatal(err)
	}
	waitConsumers := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var q struct {
				Consumers *float64 `json:"consumers"`
			}
			err := b.do("GET", queuePath("/", "consumed"), nil, &q)
			if err == nil && q.Consumers != nil && *q.Consumers == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("consumers never %v: %v %v", want, q.Consumers, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitConsumers(1)
	stop()
	waitConsumers(0)
}
