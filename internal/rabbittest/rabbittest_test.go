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
