package simulations

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/elmascale/elmascale/config"
)

// Verifies that every shipped scenario loads and that its elmascale
// configuration keeps the ELMA365 rules (single-instance services pinned).
func TestShippedScenariosLoad(t *testing.T) {
	names := ScenarioNames()
	want := []string{"double-crowd", "elma365-day", "feeder-crowd", "file-service-day", "flash-crowd", "heavy-batch", "heavy-scripts", "integrations-ramp", "latency-cascade", "light-scripts", "many-pools", "mixed-causes", "night-morning", "node-pressure", "pool-exhaustion", "retry-storm", "sawtooth-edge", "script-pools", "script-storm", "singleton-overload", "slow-files-retries", "slow-mongo-feed", "slow-store", "slowing-scripts", "tenant-pool", "throttled-collector", "user-bursts", "widget-cache"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("shipped scenarios (-want,+got):\n%s", diff)
	}
	for _, name := range names {
		sc, err := LoadShipped(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sc.Elmascale.Policy.Services {
			switch s.Name {
			case "scheduler", "notifier", "messengers":
				if !s.Pinned {
					t.Errorf("%s: %s not pinned", name, s.Name)
				}
			}
		}
		for _, pn := range PolicyNames() {
			if _, err := BuildPolicy(sc, pn, 1); err != nil {
				t.Errorf("%s/%s: %v", name, pn, err)
			}
		}
	}
}

func TestScenarioErrors(t *testing.T) {
	parts := map[string]string{
		"duration": "duration: 1h\n",
		"cluster": `cluster:
  services:
    a: {slots: 1, serviceTime: {mean: 10ms}, cpuRequest: 100m, calls: [{service: b, mean: 1}]}
    b: {slots: 1, serviceTime: {mean: 10ms}, cpuRequest: 100m}
`,
		"load":      "load:\n  - {service: a, constant: 1}\n",
		"elmascale": "elmascale: {preset: elma365}\n",
	}
	for _, tc := range []struct {
		name, key, text, want string
	}{
		{"unknown field", "extra", "bogus: 1\n", "bogus"},
		{"call cycle", "cluster", "cluster:\n  services:\n    a: {slots: 1, serviceTime: {mean: 10ms}, cpuRequest: 100m, calls: [{service: b, mean: 1}]}\n    b: {slots: 1, serviceTime: {mean: 10ms}, cpuRequest: 100m, calls: [{service: a, mean: 1}]}\n", "call cycle"},
		{"unknown queue", "load", "load:\n  - {queue: nope, constant: 1}\n", "unknown queue"},
		{"two profiles", "load", "load:\n  - {service: a, constant: 1, sine: {mean: 1, amplitude: 1, period: 1m}}\n", "exactly one"},
		{"bad slo", "extra", "slo:\n  services: {zzz: 1s}\n", "unknown service"},
		{"bad config", "elmascale", "elmascale:\n  preset: elma365\n  overrides: {interval: 1ms}\n", "interval"},
		{"warmup too long", "extra", "warmup: 2h\n", "warmup"},
		{"no elmascale", "elmascale", "", "elmascale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			for _, k := range []string{"duration", "cluster", "load", "elmascale", "extra"} {
				if k == tc.key {
					b.WriteString(tc.text)
				} else {
					b.WriteString(parts[k])
				}
			}
			_, err := ParseScenario([]byte(b.String()), fstest.MapFS{}, ".")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error mentioning %q, got %v", tc.want, err)
			}
		})
	}
}

// Verifies the merge rules of overlays: mappings merge key by key, lists
// are replaced, and null deletes.
func TestMergeYAML(t *testing.T) {
	base := map[string]any{"a": map[string]any{"x": 1, "y": []any{1, 2}}, "b": 2, "c": 3}
	over := map[string]any{"a": map[string]any{"y": []any{3}, "z": 4}, "b": nil}
	got := mergeYAML(base, over)
	want := map[string]any{"a": map[string]any{"x": 1, "y": []any{3}, "z": 4}, "c": 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want,+got):\n%s", diff)
	}
}

func TestProfiles(t *testing.T) {
	p := &Piecewise{At: []time.Duration{0, time.Minute, time.Minute, 2 * time.Minute}, RPS: []float64{10, 20, 50, 50}, Scale: 1}
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{{0, 10}, {30 * time.Second, 15}, {time.Minute, 50}, {time.Hour, 50}} {
		if got := p.Rate(tc.at); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("rate at %s = %g, want %g", tc.at, got, tc.want)
		}
	}
	// Noise has mean one: average many knots.
	n := Noise{CV: 0.3, Period: time.Minute}
	var sum float64
	for k := int64(0); k < 20000; k++ {
		sum += n.knot(42, 3, k)
	}
	if m := sum / 20000; math.Abs(m-1) > 0.01 {
		t.Errorf("noise mean %g, want 1 within 1%%", m)
	}
}

// Verifies histogramQuantile against Prometheus's interpolation: with
// bucket counts 10 (le 0.1), 10 (le 0.2), 0 (+Inf) the median is 0.1 and
// the 75th percentile 0.15; a rank in +Inf returns the highest bound.
func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{0.1, 0.2}
	first := []uint64{0, 0, 0}
	for _, tc := range []struct {
		last []uint64
		q    float64
		want float64
	}{
		{[]uint64{10, 10, 0}, 0.5, 0.1},
		{[]uint64{10, 10, 0}, 0.75, 0.15},
		{[]uint64{10, 10, 0}, 0.25, 0.05},
		{[]uint64{1, 1, 18}, 0.95, 0.2},
	} {
		if got := histogramQuantile(tc.q, bounds, first, tc.last); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%g of %v = %g, want %g", tc.q, tc.last, got, tc.want)
		}
	}
	if got := histogramQuantile(0.5, bounds, first, first); !math.IsNaN(got) {
		t.Errorf("no observations: got %g, want NaN", got)
	}
}

// Verifies the event heap pops in time order.
func TestEventHeapOrder(t *testing.T) {
	var h eventHeap
	ts := []float64{5, 1, 4, 1, 9, 2, 6, 5, 3, 0.5, 7, 8}
	for i, x := range ts {
		h.push(x, evDone, int32(i), 0)
	}
	prev := -1.0
	for len(h.ev) > 0 {
		e := h.pop()
		if e.t < prev {
			t.Fatalf("popped %g after %g", e.t, prev)
		}
		prev = e.t
	}
}

// Verifies the latency histogram's resolution: quantiles within 2.2%.
func TestLogHistResolution(t *testing.T) {
	var h logHist
	for i := 1; i <= 1000; i++ {
		h.add(float64(i) / 1000)
	}
	if got := h.quantile(0.95); math.Abs(got-0.95)/0.95 > 0.022 {
		t.Errorf("p95 %g, want 0.95 within 2.2%%", got)
	}
}

// Verifies the lognormal drawn through the quantile table: its mean and
// its 95th and 99.9th percentiles match the exact distribution's within
// 2% (500,000 draws leave well under 1% of sampling error in the mean at
// cv 1.5; the table's interpolation adds less than that).
func TestLognormalByTable(t *testing.T) {
	cv := 1.5
	d, err := compileDist(distFile{Kind: "lognormal", Mean: config.Duration(100 * time.Millisecond), CV: &cv})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var h logHist
	var sum float64
	const n = 500000
	for i := 0; i < n; i++ {
		x := d.draw(r)
		sum += x
		h.add(x)
	}
	if m := sum / n; math.Abs(m-0.1)/0.1 > 0.02 {
		t.Errorf("mean %.4fs, want 0.1s within 2%%", m)
	}
	for _, q := range []float64{0.95, 0.999} {
		if got, want := h.quantile(q), d.quantile(q); math.Abs(got-want)/want > 0.03 {
			t.Errorf("p%g %.4fs, exact %.4fs", q*100, got, want)
		}
	}
}
