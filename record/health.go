package record

import (
	"net/http"
	"sync"
	"time"

	"github.com/elmascale/elmascale/loop"
)

// Health ties liveness to loop progress: /healthz fails when no tick has
// completed within Factor intervals, so a wedged loop gets the pod
// restarted. /readyz passes once the caches are synced and a tick ran.
type Health struct {
	// Factor × interval is how long the loop may go without a tick.
	Factor   int
	now      func() time.Time
	interval func() time.Duration

	mu       sync.Mutex
	last     time.Time
	ticked   bool
	notReady string
}

// NewHealth starts the progress clock at now().
func NewHealth(now func() time.Time, interval func() time.Duration) *Health {
	return &Health{Factor: 5, now: now, interval: interval, last: now(), notReady: "waiting for the first tick"}
}

// Record notes a completed tick.
func (h *Health) Record(loop.Tick) {
	h.mu.Lock()
	h.last, h.ticked, h.notReady = h.now(), true, ""
	h.mu.Unlock()
}

// Live reports whether the loop made progress recently, and if not why.
func (h *Health) Live() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	limit := time.Duration(h.Factor) * h.interval()
	if age := h.now().Sub(h.last); age > limit {
		return false, "no loop tick completed for " + age.Round(time.Second).String() + " (limit " + limit.String() + ")"
	}
	return true, "ok"
}

// Ready reports whether the daemon serves decisions.
func (h *Health) Ready() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ticked {
		return false, h.notReady
	}
	return true, "ok"
}

// SetNotReady explains why the daemon is not ready yet (before the first tick).
func (h *Health) SetNotReady(why string) {
	h.mu.Lock()
	if !h.ticked {
		h.notReady = why
	}
	h.mu.Unlock()
}

func probe(check func() (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		ok, msg := check()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(msg + "\n"))
	}
}
