package collector

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// anyTime is a fixed evaluation time for tests that do not talk to a real
// server; 1.7e9 s is in November 2023.
var anyTime = time.Unix(1_700_000_000, 0).UTC()

func parseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(strings.TrimSpace(yaml) + "\n"))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

func newCollector(t testing.TB, opts Options) (*Collector, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func collect(t testing.TB, c *Collector, cfg *config.Config, now time.Time) loop.Signals {
	t.Helper()
	sigs, err := c.Collect(context.Background(), cfg, now)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return sigs
}

// cannedProm answers /api/v1/query with a fixed response per PromQL text
// and counts the queries it received.
type cannedProm struct {
	mu      sync.Mutex
	answers map[string]cannedAnswer
	queries atomic.Int64
	srv     *httptest.Server
}

type cannedAnswer struct {
	status int
	body   string
	// delay holds the answer back (or until the client gives up).
	delay time.Duration
}

func newCannedProm(t testing.TB, answers map[string]cannedAnswer) *cannedProm {
	t.Helper()
	p := &cannedProm{answers: answers}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *cannedProm) set(q string, a cannedAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[q] = a
}

func (p *cannedProm) setAll(a cannedAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for q := range p.answers {
		p.answers[q] = a
	}
}

func (p *cannedProm) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	_ = r.ParseForm()
	p.queries.Add(1)
	p.mu.Lock()
	a, ok := p.answers[metricQuery(r.Form.Get("query"))]
	p.mu.Unlock()
	if !ok {
		a = cannedAnswer{status: 400, body: `{"status":"error","errorType":"bad_data","error":"unknown test query"}`}
	}
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// metricQuery is the metric definition's query inside q, as sent with
// its sample-time part (see freshnessQueries).
func metricQuery(q string) string {
	if i := strings.LastIndex(q, ") or label_replace("); strings.HasPrefix(q, "(") && i > 0 && strings.Contains(q[i:], sampleTimeLabel) {
		return q[1:i]
	}
	return q
}

// vector renders a successful instant-vector answer; each series is
// key label value → sample value text, at ts.
func vector(keyLabel string, ts time.Time, series ...[2]string) string {
	var parts []string
	for _, s := range series {
		parts = append(parts, fmt.Sprintf(`{"metric":{%q:%q},"value":[%.3f,%q]}`, keyLabel, s[0], float64(ts.UnixMilli())/1000, s[1]))
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") + `]}}`
}

func ok(body string) cannedAnswer { return cannedAnswer{status: 200, body: body} }

// snapshotOf builds the snapshot the loop would: every service found at
// current replicas, all ready.
func snapshotOf(cfg *config.Config, sigs loop.Signals, current int32, now time.Time) policy.Snapshot {
	snap := policy.Snapshot{Time: now, Services: map[string]policy.ServiceObservation{}}
	for _, s := range cfg.Services {
		snap.Services[s.Name] = policy.ServiceObservation{Found: true, CurrentReplicas: current, ReadyReplicas: current, Signals: sigs[s.Name]}
	}
	return snap
}

// assertHeld verifies that a decision over the snapshot keeps every listed
// service at its current replicas because of the hold rule.
func assertHeld(t testing.TB, cfg *config.Config, sigs loop.Signals, current int32, now time.Time, services ...string) {
	t.Helper()
	plan, _ := policy.Decide(cfg.Policy, snapshotOf(cfg, sigs, current, now), policy.State{}, now)
	for _, name := range services {
		d, found := plan.Decision(name)
		if !found {
			t.Fatalf("no decision for %s", name)
		}
		if d.Desired != current || d.LimitedBy != policy.LimitHold {
			t.Errorf("%s: desired %d limited by %q (%s); want held at %d", name, d.Desired, d.LimitedBy, d.Reason, current)
		}
	}
}

func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// timeNow is the evaluation time of tests and benchmarks that talk to a
// real Prometheus, which only has data near the wall clock.
func timeNow() time.Time { return time.Now() }
