package simulations

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden score files in testdata/golden")

// RunAll runs a scenario under every policy with its own seed.
func runAll(t *testing.T, sc *Scenario) []*Result {
	t.Helper()
	var out []*Result
	for _, name := range PolicyNames() {
		out = append(out, runPolicy(t, sc, name, sc.Seed))
	}
	ScoreRelievable(out)
	return out
}

var (
	shippedMu   sync.Mutex
	shippedRuns = map[string][]*Result{}
)

// runShipped runs a shipped scenario under every policy with its own
// seed, once per test binary: the golden and the reference tests share it.
func runShipped(t *testing.T, sc *Scenario) []*Result {
	t.Helper()
	shippedMu.Lock()
	defer shippedMu.Unlock()
	if r, ok := shippedRuns[sc.Name]; ok {
		return r
	}
	r := runAll(t, sc)
	shippedRuns[sc.Name] = r
	return r
}

// Verifies the reference's stated guarantee (Oracle) on every shipped
// scenario: no policy beats it on both violation seconds and elastic
// replica-seconds, and it never scales a service no SLO needs (such a
// service sits at its floor all run).
func TestReferenceGuarantee(t *testing.T) {
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			sc, err := LoadShipped(name)
			if err != nil {
				t.Fatal(err)
			}
			if testing.Short() && sc.Duration > 4*60*60*1e9 {
				t.Skip("long scenario in -short mode")
			}
			results := runShipped(t, sc)
			var ref *Result
			for _, r := range results {
				if r.Policy == PolicyOracle {
					ref = r
				}
			}
			if ref == nil {
				t.Fatal("no reference run")
			}
			for _, r := range results {
				if r.Scores.ViolationSeconds < ref.Scores.ViolationSeconds && r.Scores.ElasticReplicaSeconds < ref.Scores.ElasticReplicaSeconds {
					t.Errorf("%s beats the reference on both axes: %.0f < %.0f violation s, %.0f < %.0f elastic replica-s",
						r.Policy, r.Scores.ViolationSeconds, ref.Scores.ViolationSeconds, r.Scores.ElasticReplicaSeconds, ref.Scores.ElasticReplicaSeconds)
				}
			}
			needed := neededServices(sc)
			for i := range sc.Services {
				if needed[i] {
					continue
				}
				floor, _, _ := ServiceBounds(sc, i)
				for k, n := range ref.Series.Values["replicas/"+sc.Services[i].Name] {
					if n != float64(floor) {
						t.Fatalf("the reference runs %s, which no SLO needs, at %g pods in window %d (floor %d)", sc.Services[i].Name, n, k, floor)
					}
				}
			}
		})
	}
}

// Verifies that each shipped scenario's scores for its seed are the ones
// pinned in testdata/golden (go test ./simulations/... -update rewrites
// them). The 24-hour day takes a while, so -short skips it.
func TestGoldenScores(t *testing.T) {
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			sc, err := LoadShipped(name)
			if err != nil {
				t.Fatal(err)
			}
			if testing.Short() && sc.Duration > 4*60*60*1e9 {
				t.Skip("long scenario in -short mode")
			}
			got, err := json.MarshalIndent(runShipped(t, sc), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			file := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("scores of %s changed; if intended, run go test ./simulations/... -update and review the diff\n%s", name, lineDiff(want, got))
			}
		})
	}
}

// lineDiff lists the lines that differ, for a readable failure.
func lineDiff(want, got []byte) string {
	w := bytes.Split(want, []byte("\n"))
	g := bytes.Split(got, []byte("\n"))
	var b bytes.Buffer
	for i := 0; i < max(len(w), len(g)) && b.Len() < 4000; i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			b.WriteString("- " + string(wl) + "\n+ " + string(gl) + "\n")
		}
	}
	return b.String()
}

// Verifies the late reference: every service's count is the reference's
// with each rise delayed by the tick plus the pods' start-up lead and each
// fall at once (never above the reference, equal to it wherever the count
// has not risen for that long), and on flash-crowd, where the crowd comes
// at once, it violates SLOs the reference meets: the reference's lead
// there is foresight.
func TestLateReference(t *testing.T) {
	sc, err := LoadShipped("flash-crowd")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := BuildPolicy(sc, PolicyOracle, sc.Seed)
	if err != nil {
		t.Fatal(err)
	}
	late, err := BuildPolicy(sc, PolicyLateReference, sc.Seed)
	if err != nil {
		t.Fatal(err)
	}
	rises := 0
	for name, s := range ref.Oracle.Replicas {
		l := late.Oracle.Replicas[name]
		m := &sc.Services[sc.ServiceIndex(name)]
		d := int((m.Startup+m.StartupJitter)/ref.Oracle.Step) + 1 + int(sc.Elmascale.Interval/ref.Oracle.Step)
		for k := range s {
			want := min(s[k], s[max(k-d, 0)])
			if l[k] != want {
				t.Fatalf("%s step %d: late %d, want min(%d, %d) = %d", name, k, l[k], s[k], s[max(k-d, 0)], want)
			}
			if k > 0 && s[k] > s[k-1] {
				rises++
			}
		}
	}
	if rises == 0 {
		t.Fatal("the reference never scales up on flash-crowd: nothing to delay")
	}
	var rs []*Result
	for _, p := range []Policy{ref, late} {
		r, err := Run(context.Background(), sc, p, sc.Seed)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	ScoreRelievable(rs)
	if got := *rs[1].Scores.RelievableViolationSeconds; got <= 0 {
		t.Errorf("the late reference has %g relievable seconds on flash-crowd, want some: the crowd comes at once", got)
	}
}
