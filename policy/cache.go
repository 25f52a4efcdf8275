package policy

import (
	"slices"
	"sync"
)

// decideCache is what Decide keeps between calls to spare work, carried in
// State and shared by the states that descend from one another. Nothing in
// it changes an outcome: the service index is checked against the spec
// every call, each remembered note or reason is reused only when every
// input it was written from is equal, and the scratch space is reset
// before use. The mutex keeps two Decide calls from sharing the scratch
// space; a call that finds it busy starts a cache of its own.
type decideCache struct {
	mu sync.Mutex

	// The spec the index was built for: service names, their resolved
	// dependencies (-1 for a name no service has) and signal counts.
	names    []string
	depNames [][]string
	deps     [][]int
	// sigStart[i] is where service i's signals start in the flat signal
	// numbering; sigStart[len(names)] is the total.
	sigStart []int

	notes   []noteMemo   // by flat signal number
	reasons []reasonMemo // by service

	// Scratch space, reset on every call.
	evals    []svcEval
	seen     []int32
	measured []float64
	states   []ServiceState
	wanting  []int
	// burstResults is the burst path's signal results until a plan
	// takes them.
	burstResults []SignalResult

	// The mesh: workload names to service indexes for meshFor, and
	// per-call scratch space.
	meshFor   *MeshSpec
	meshIdx   map[string]int
	meshAcc   []meshAcc
	meshDeps  []int
	meshPairs [][2]int
}

// acquire returns the cache to use for a call that starts from prev's
// cache c (nil: none), locked; the caller unlocks it.
func acquire(c *decideCache) *decideCache {
	if c != nil && c.mu.TryLock() {
		return c
	}
	fresh := &decideCache{}
	fresh.mu.Lock()
	return fresh
}

// index makes the service index match spec, rebuilding it (and forgetting
// the notes and reasons, which are numbered by it) when spec is not the
// one it was built for. The check compares names, which for the same
// config are the same strings, so it costs a pointer comparison each.
func (c *decideCache) index(spec Spec) {
	if c.matches(spec) {
		return
	}
	n := len(spec.Services)
	byName := make(map[string]int, n)
	for i := range spec.Services {
		byName[spec.Services[i].Name] = i
	}
	c.names = make([]string, n)
	c.depNames = make([][]string, n)
	c.deps = make([][]int, n)
	c.sigStart = make([]int, n+1)
	for i := range spec.Services {
		s := &spec.Services[i]
		c.names[i] = s.Name
		c.depNames[i] = slices.Clone(s.DependsOn)
		c.deps[i] = make([]int, len(s.DependsOn))
		for k, dep := range s.DependsOn {
			j, ok := byName[dep]
			if !ok {
				j = -1
			}
			c.deps[i][k] = j
		}
		c.sigStart[i+1] = c.sigStart[i] + len(s.Signals)
	}
	c.notes = make([]noteMemo, c.sigStart[n])
	c.reasons = make([]reasonMemo, n)
	c.meshIdx = nil
}

func (c *decideCache) matches(spec Spec) bool {
	if len(c.names) != len(spec.Services) || c.sigStart == nil {
		return false
	}
	for i := range spec.Services {
		s := &spec.Services[i]
		if c.names[i] != s.Name || c.sigStart[i+1]-c.sigStart[i] != len(s.Signals) || !slices.Equal(c.depNames[i], s.DependsOn) {
			return false
		}
	}
	return true
}

// scratch returns the per-call working space for n services and nsig
// signals, reset.
func (c *decideCache) scratch(n, nsig int) {
	if cap(c.evals) < n {
		c.evals = make([]svcEval, n)
		c.seen = make([]int32, n)
		c.states = make([]ServiceState, n)
	}
	// Decide writes every eval and state whole before reading it; only
	// the marks need clearing.
	c.evals, c.seen, c.states = c.evals[:n], c.seen[:n], c.states[:n]
	clear(c.seen)
	if cap(c.measured) < nsig {
		c.measured = make([]float64, nsig)
	}
	c.measured = c.measured[:nsig]
	clear(c.measured)
	c.wanting = c.wanting[:0]
}

// reasonMemo remembers one service's last reason and what it was written
// from.
type reasonMemo struct {
	key      reasonKey
	explains []string
	signals  []SignalResult
	text     string
	ok       bool
}

// reasonKey is the scalar part of what reason reads.
type reasonKey struct {
	bottleneck, anyBad, legacy, hasDriver bool
	current, desired, proposal            int32
	fallback, minR, maxR                  int32
	limit                                 Limit
	driverName, driverNote                string
	meshNote                              string
	quietHeld                             bool
}

func reasonKeyOf(e *svcEval) reasonKey {
	k := reasonKey{
		bottleneck: e.d.Bottleneck, anyBad: e.anyBad, legacy: e.spec.Behavior.Legacy,
		current: e.d.Current, desired: e.d.Desired, proposal: e.d.Proposal,
		fallback: e.spec.FallbackReplicas, minR: e.spec.MinReplicas, maxR: e.spec.MaxReplicas,
		limit: e.d.LimitedBy, meshNote: e.meshNote, quietHeld: e.quietHeld,
	}
	if d := drivingSignal(e); d != nil {
		k.hasDriver, k.driverName, k.driverNote = true, d.Name, d.Note
	}
	return k
}

// reasonOf is reason(e), reused from m when nothing it reads changed. m
// may be nil.
func reasonOf(e *svcEval, m *reasonMemo) string {
	if m == nil || !e.obs.Found {
		return reason(e)
	}
	k := reasonKeyOf(e)
	if m.ok && m.key == k && slices.Equal(m.explains, e.d.Explains) && sameReasonSignals(m.signals, e.signals) {
		return m.text
	}
	s := reason(e)
	*m = reasonMemo{key: k, explains: e.d.Explains, signals: e.signals, text: s, ok: true}
	return s
}

// sameReasonSignals compares what reason reads of the signals besides the
// driving one: names, statuses and attributions.
func sameReasonSignals(a, b []SignalResult) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Status != b[i].Status || !slices.Equal(a[i].AttributedTo, b[i].AttributedTo) {
			return false
		}
	}
	return true
}

// arena hands out the slices of one call's new state from a few shared
// allocations instead of one or two per service.
type arena struct {
	recs   []Recommendation
	events []ScaleEvent
}

func (a *arena) takeRecs(n int) []Recommendation {
	if a == nil || cap(a.recs)-len(a.recs) < n {
		return make([]Recommendation, 0, n)
	}
	l := len(a.recs)
	a.recs = a.recs[:l+n]
	return a.recs[l : l : l+n]
}

func (a *arena) takeEvents(n int) []ScaleEvent {
	if a == nil || cap(a.events)-len(a.events) < n {
		return make([]ScaleEvent, 0, n)
	}
	l := len(a.events)
	a.events = a.events[:l+n]
	return a.events[l : l : l+n]
}
