package config

import (
	"strings"
	"testing"
)

// Verifies queue patterns: names match themselves only, patterns match
// what they say, and the config refuses a malformed pattern or an empty
// entry, naming the entry's path.
func TestQueuePatterns(t *testing.T) {
	for _, tc := range []struct {
		entry, name string
		want        bool
	}{
		{"worker.default", "worker.default", true},
		{"worker.default", "worker.defaults", false},
		{"worker.*", "worker.default", true},
		{"worker.*", "worker.pool-a", true},
		{"worker.*", "worker", false},
		{"worker.*", "calculator.default", false},
		{"worker.pool-?", "worker.pool-b", true},
		{"worker.[a-c]*", "worker.billing", true},
		{"worker.[a-c]*", "worker.default", false},
		{`worker.\*`, "worker.*", true},
		{`worker.\*`, "worker.a", false},
		{"worker.[", "worker.[", false},
	} {
		if got := MatchQueue(tc.entry, tc.name); got != tc.want {
			t.Errorf("MatchQueue(%q, %q) = %v, want %v", tc.entry, tc.name, got, tc.want)
		}
	}
	cfg := func(queues string) string {
		return "apiVersion: elmascale.io/v1alpha1\nkind: Config\nnamespace: elma365\nservices:\n  worker:\n    signals:\n" +
			"      - {name: q, queue: {rabbitmq: {queues: " + queues + "}, drainTime: 1m}}\n"
	}
	if c, err := Parse([]byte(cfg(`[worker.*, "worker.pool-[ab]"]`))); err != nil || len(c.Services[0].Signals[0].Queue.Queues) != 2 {
		t.Fatalf("patterns refused: %v", err)
	}
	for _, tc := range []struct{ queues, want string }{
		{`["worker.["]`, `services.worker.signals[0].queue.rabbitmq.queues[0]: "worker.[" is not a valid pattern`},
		{`[worker.default, ""]`, "services.worker.signals[0].queue.rabbitmq.queues[1]: must name a queue or a pattern"},
		{`[]`, "services.worker.signals[0].queue.rabbitmq.queues: must list at least one queue or pattern"},
	} {
		_, err := Parse([]byte(cfg(tc.queues)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("queues %s: error %v, want it to say %q", tc.queues, err, tc.want)
		}
	}
}
