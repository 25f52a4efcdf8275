package simulations

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"pgregory.net/rapid"
)

// fataler is what both *testing.T and *rapid.T offer.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// queueScenario is one service with replicas × slots exponential servers
// and Poisson arrivals: an M/M/c queue.
func queueScenario(t fataler, replicas, slots int, lambda float64, mean time.Duration, dur time.Duration) *Scenario {
	t.Helper()
	text := fmt.Sprintf(`
name: mmc
duration: %s
cluster:
  services:
    svc:
      replicas: %d
      slots: %d
      serviceTime: {dist: exponential, mean: %s}
      cpuPerRequest: 1ms
      cpuRequest: 1000m
load:
  - service: svc
    constant: %g
slo:
  services: {svc: 1s}
elmascale:
  preset: elma365
`, dur, replicas, slots, mean, lambda)
	sc, err := ParseScenario([]byte(text), fstest.MapFS{}, ".")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runFixed simulates a scenario with its replicas never changed.
func runFixed(sc *Scenario, seed uint64) *svcState {
	c := NewCluster(sc, seed)
	c.Advance(sc.Duration)
	v := &c.sim.svcs[0]
	v.area += float64(v.inFlight) * (c.sim.now - v.areaT)
	v.areaT = c.sim.now
	return v
}

// Verifies that a steady M/M/c service obeys Little's law, L = λW, within
// 3% (the only slack is requests still in the system at the end), and
// that its mean response time matches Erlang C within 10% (an hour of
// 20 to 60 arrivals a second at up to 80% utilization leaves a few percent
// of sampling error in the mean; near saturation a single server's mean
// converges too slowly for a test).
func TestPropertyMMcLittleAndErlang(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		replicas := rapid.IntRange(1, 4).Draw(t, "replicas")
		slots := rapid.IntRange(1, 4).Draw(t, "slots")
		rho := rapid.Float64Range(0.3, 0.8).Draw(t, "rho")
		lambda := rapid.Float64Range(20, 60).Draw(t, "lambda")
		seed := rapid.Uint64().Draw(t, "seed")
		c := replicas * slots
		// Choose the service time that gives the utilization.
		mean := time.Duration(rho * float64(c) / lambda * float64(time.Second))
		sc := queueScenario(t, replicas, slots, lambda, mean, time.Hour)
		v := runFixed(sc, seed)

		T := sc.Duration.Seconds()
		L := v.area / T
		W := v.latSum / float64(v.latCount)
		rate := float64(v.latCount) / T
		if rel := math.Abs(L-rate*W) / L; rel > 0.03 {
			t.Fatalf("Little's law: L=%.4f, λW=%.4f (λ=%.3f/s, W=%.4fs): off by %.1f%%", L, rate*W, rate, W, rel*100)
		}
		s := mean.Seconds()
		a := lambda * s
		want := s + erlangC(c, a)/(float64(c)/s-lambda)
		if rel := math.Abs(W-want) / want; rel > 0.10 {
			t.Fatalf("mean response %.4fs, Erlang C says %.4fs (c=%d, ρ=%.2f): off by %.1f%%", W, want, c, rho, rel*100)
		}
	})
}

// Verifies that adding a replica never raises latency. With the same seed
// the arrivals are identical and, the queue being first come first served,
// the k-th request draws the k-th service time in both runs; a
// first-come-first-served multi-server queue with one more server then
// delays no request more (sample-path monotonicity), so the mean and every
// quantile can only fall.
func TestPropertyMoreReplicasNeverRaiseLatency(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		replicas := rapid.IntRange(1, 5).Draw(t, "replicas")
		slots := rapid.IntRange(1, 3).Draw(t, "slots")
		rho := rapid.Float64Range(0.2, 1.3).Draw(t, "rho") // overload too
		lambda := rapid.Float64Range(5, 40).Draw(t, "lambda")
		seed := rapid.Uint64().Draw(t, "seed")
		mean := time.Duration(rho * float64(replicas*slots) / lambda * float64(time.Second))
		few := runFixed(queueScenario(t, replicas, slots, lambda, mean, 20*time.Minute), seed)
		more := runFixed(queueScenario(t, replicas+1, slots, lambda, mean, 20*time.Minute), seed)
		meanFew := few.latSum / float64(few.latCount)
		meanMore := more.latSum / float64(more.latCount)
		if more.latCount < few.latCount {
			t.Fatalf("fewer completions with more replicas: %d < %d", more.latCount, few.latCount)
		}
		// Compare the requests both runs completed: the more-replica run may
		// complete extra ones the other still holds, which only raises its
		// total, so compare means over the common prefix via the quantiles.
		for _, q := range []float64{0.5, 0.95, 0.99} {
			if pm, pf := more.all.quantile(q), few.all.quantile(q); pm > pf*(1+1e-9) && more.latCount == few.latCount {
				t.Fatalf("p%g rose from %.4fs to %.4fs with %d→%d replicas", q*100, pf, pm, replicas, replicas+1)
			}
		}
		if more.latCount == few.latCount && meanMore > meanFew*(1+1e-9) {
			t.Fatalf("mean rose from %.4fs to %.4fs with %d→%d replicas", meanFew, meanMore, replicas, replicas+1)
		}
		if more.inFlight > few.inFlight {
			t.Fatalf("more requests left in flight with more replicas: %d > %d", more.inFlight, few.inFlight)
		}
	})
}

func loadMini(t testing.TB) *Scenario {
	t.Helper()
	sc, err := LoadScenarioFS(os.DirFS("."), "testdata/mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runPolicy builds the named policy for the scenario and runs it for a
// seed, failing the test on either error.
func runPolicy(t fataler, sc *Scenario, policy string, seed uint64) *Result {
	t.Helper()
	p, err := BuildPolicy(sc, policy, seed)
	if err != nil {
		t.Fatal(policy + ": " + err.Error())
	}
	r, err := Run(context.Background(), sc, p, seed)
	if err != nil {
		t.Fatal(policy + ": " + err.Error())
	}
	return r
}

func runJSON(t fataler, sc *Scenario, policy string, seed uint64) []byte {
	t.Helper()
	r := runPolicy(t, sc, policy, seed)
	b, err := json.Marshal(struct {
		R *Result
		S Series
		E uint64
	}{r, r.Series, r.Events})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Verifies that a run is a pure function of scenario and seed: two runs
// give byte-identical results and series, whichever the policy.
func TestPropertyRunIsByteIdenticalForASeed(t *testing.T) {
	sc := loadMini(t)
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Uint64().Draw(t, "seed")
		policy := rapid.SampledFrom(PolicyNames()).Draw(t, "policy")
		a := runJSON(t, sc, policy, seed)
		b := runJSON(t, sc, policy, seed)
		if !bytes.Equal(a, b) {
			t.Fatalf("two runs of %s with seed %d differ", policy, seed)
		}
	})
}

// Verifies that every policy faces exactly the same external load for a
// seed: the arrival stream never depends on what the policy does.
func TestSameLoadForEveryPolicy(t *testing.T) {
	sc := loadMini(t)
	var want []float64
	for _, name := range PolicyNames() {
		p, err := BuildPolicy(sc, name, 7)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(context.Background(), sc, p, 7)
		if err != nil {
			t.Fatal(err)
		}
		got := append(append([]float64(nil), r.Series.Values["load/main"]...), r.Series.Values["load/worker.default"]...)
		if want == nil {
			want = got
			continue
		}
		for i := range want {
			// The queue's load includes what processor publishes, which does
			// not depend on scaling either (it is drawn per request).
			if got[i] != want[i] {
				t.Fatalf("%s: load differs at window %d: %g vs %g", name, i, got[i], want[i])
			}
		}
	}
}

// Verifies that recycling the cluster's observation maps from one tick or
// burst check to the next changes nothing: every score, every series
// value and the event count come out the same as with fresh maps, under
// the preset (burst path, queue and CPU signals) and the tuned
// configuration (mesh) and HPA-style, on scenarios where the burst path
// and the mesh both act. It fails if the loop, the policy or Run's
// recorder starts keeping an observation past the next call.
func TestRecycledObservationsDecideAlike(t *testing.T) {
	for _, name := range []string{"script-storm", "mixed-causes"} {
		sc, err := LoadShipped(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, pol := range []string{PolicyPreset, PolicyElmascale, PolicyHPA} {
			p, err := BuildPolicy(sc, pol, 2)
			if err != nil {
				t.Fatal(err)
			}
			var got [2][]byte
			for k, recycle := range []bool{false, true} {
				r, err := run(context.Background(), sc, p, 2, recycle)
				if err != nil {
					t.Fatal(err)
				}
				if got[k], err = json.Marshal(struct {
					R *Result
					S Series
					E uint64
				}{r, r.Series, r.Events}); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got[0], got[1]) {
				t.Errorf("%s under %s: recycled observations gave another run", name, pol)
			}
		}
	}
}
