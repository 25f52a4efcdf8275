package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elmascale/elmascale/collector"
	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
	"github.com/elmascale/elmascale/record"
	"github.com/elmascale/elmascale/simulations"
)

// Verifies the embedded demo drives the real loop against the simulated
// cluster: decisions are printed as they happen, worker scales during the
// script storm, and /metrics and the decisions API serve what happened.
func TestDemoScriptStorm(t *testing.T) {
	var out bytes.Buffer
	addr := make(chan string, 1)
	sum, err := Run(context.Background(), Options{
		Scenario: "script-storm", Seed: 1, Speedup: 1e6, Duration: 40 * time.Minute,
		MetricsAddr: "127.0.0.1:0", OnListen: func(a, _ string) { addr <- a }, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if sum.Ticks == 0 || sum.ScaleActions == 0 || sum.Bottlenecks["worker"] == 0 {
		t.Fatalf("summary %+v: want ticks, scale actions and worker as a bottleneck\n%s", sum, text)
	}
	if !strings.Contains(text, "TIME") || !strings.Contains(text, "worker") || !strings.Contains(text, "scale up") {
		t.Errorf("the live table lacks worker scaling up:\n%s", text)
	}
	if !strings.Contains(text, "scale actions, peak") {
		t.Error("no summary line")
	}
	select {
	case a := <-addr:
		if !strings.Contains(text, a) {
			t.Errorf("the address %s is not printed", a)
		}
	default:
		t.Error("OnListen was not called")
	}
}

// Verifies the HTTP endpoints while the demo runs: the same metrics,
// decisions API and probes the daemon serves.
func TestDemoServesMetricsAndDecisions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Scenario: "script-storm", Seed: 1, Speedup: 600, MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0",
			OnListen: func(m, h string) { addrs <- [2]string{m, h} }})
		done <- err
	}()
	bound := <-addrs
	base, probes := "http://"+bound[0], "http://"+bound[1]
	get := func(path string) string {
		t.Helper()
		url := base + path
		if strings.HasSuffix(path, "z") {
			url = probes + path
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(get("/metrics"), `elmascale_replicas_desired{service="worker"}`) {
		if time.Now().After(deadline) {
			t.Fatal("no worker replicas metric")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var body struct {
		Mode      string           `json:"mode"`
		Decisions []map[string]any `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(get("/api/v1/decisions?service=worker")), &body); err != nil || len(body.Decisions) == 0 || body.Mode != "demo" {
		t.Fatalf("decisions API: %v (%d records, mode %q)", err, len(body.Decisions), body.Mode)
	}
	if body.Decisions[0]["service"] != "worker" || body.Decisions[0]["reason"] == "" || body.Decisions[0]["mode"] != "demo" {
		t.Errorf("decision record %v", body.Decisions[0])
	}
	// The source series the dashboard's source panels read, for every
	// source the scenario's config uses.
	deadline = time.Now().Add(20 * time.Second)
	for {
		m := get("/metrics")
		missing := ""
		for _, want := range []string{
			`elmascale_source_up{source="prometheus"} 1`, `elmascale_source_up{source="kubernetes"} 1`,
			`elmascale_source_breaker_state{source="prometheus",state="closed"} 1`,
			`elmascale_source_query_duration_seconds_count{source="prometheus"}`, `elmascale_source_queries_total{source="kubernetes"}`,
			`elmascale_source_errors_total{reason="api",source="prometheus"} 0`,
		} {
			if !strings.Contains(m, want) {
				missing = want
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// get fails the test on anything but 200: the loop has ticked, so the
	// demo is live and ready.
	get("/healthz")
	get("/readyz")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("a cancelled demo is not an error: %v", err)
	}
}

// firstRow cancels a demo once it prints its first decision row.
type firstRow struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel func()
}

func (w *firstRow) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte(" → ")) {
		w.cancel()
	}
	return w.buf.Write(p)
}

// Verifies the demo acts within seconds of starting: the quiet night
// before the day's first change is fast-forwarded, and said to be, rather
// than shown as half a minute of unchanged totals (status lines every 3 s
// at 600×); and a run that ends while nothing has happened says so too.
func TestDemoActsWithinSeconds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &firstRow{cancel: cancel}
	start := time.Now()
	if _, err := Run(ctx, Options{Scenario: "elma365-day", Seed: 1, Speedup: 600, Out: out}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the first decision came after %s", took)
	}
	text := out.buf.String()
	lines := strings.Split(text, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "TIME") })
	if i < 0 || i+2 >= len(lines) || !strings.Contains(lines[i+1], "fast-forwarded") || !strings.Contains(lines[i+2], " → ") {
		t.Fatalf("want the header, the fast-forward note, then a decision:\n%s", text)
	}

	var quiet bytes.Buffer
	if _, err := Run(context.Background(), Options{Scenario: "elma365-day", Seed: 1, Speedup: 600, Duration: time.Hour, Out: &quiet}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(quiet.String(), "── fast-forwarded 1h0m0s of simulated time from 00:00: 240 ticks") {
		t.Errorf("a quiet hour is not said to be fast-forwarded:\n%s", quiet.String())
	}
}

// Verifies every decision row lines up under the header, however long
// apart the rows were printed.
func TestDemoRowsLineUp(t *testing.T) {
	var out bytes.Buffer
	if _, err := Run(context.Background(), Options{Scenario: "script-storm", Seed: 1, Speedup: 1e6, Duration: 90 * time.Minute, Out: &out}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "TIME") })
	if i < 0 {
		t.Fatalf("no header:\n%s", out.String())
	}
	header := []rune(lines[i])
	var cols []int
	for _, name := range []string{"SERVICE", "REPLICAS", "LIMITED BY", "REASON"} {
		cols = append(cols, len([]rune(lines[i][:strings.Index(lines[i], name)])))
	}
	rows := 0
	for _, l := range lines[i+1:] {
		r := []rune(l)
		if len(r) < 9 || r[2] != ':' || strings.Contains(l, "──") {
			continue
		}
		rows++
		for _, c := range cols {
			if c >= len(r) || r[c] == ' ' || r[c-1] != ' ' {
				t.Errorf("column at %d (%q) does not start a field in\n%s\n%s", c, string(header[c:min(c+8, len(header))]), lines[i], l)
				break
			}
		}
	}
	if rows < 3 {
		t.Errorf("only %d rows:\n%s", rows, out.String())
	}
}

// Verifies the source counts follow the config: the ELMA365 preset reads
// RabbitMQ queues, Prometheus metrics (one query per definition) and pod
// metrics.
func TestQueriesPerTick(t *testing.T) {
	cfg, err := config.ELMA365Preset()
	if err != nil {
		t.Fatal(err)
	}
	got := queriesPerTick(cfg)
	if got[collector.SourceKubernetes] != 1 || got[collector.SourcePrometheus] != len(cfg.Metrics) || got[collector.SourceRabbitMQ] < 1 {
		t.Errorf("queries per tick %v: want 1 pod metrics list, %d Prometheus queries and the worker queue", got, len(cfg.Metrics))
	}
}

// Verifies that the demo's decisions see the simulated mesh: the wrapper
// around the simulated cluster passes its Linkerd-shaped observation on,
// so the tick's snapshot holds the call graph instead of "no mesh source".
func TestDemoCollectsTheMesh(t *testing.T) {
	sc, err := simulations.LoadShipped("elma365-day")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Elmascale.Mesh == nil {
		t.Skip("the demo's configuration names no mesh")
	}
	cluster := simulations.NewCluster(sc, 1)
	col := newSourceMetrics(record.NewRegistry(), cluster, sc.Elmascale)
	l := &loop.Loop{Config: func() *config.Config { return sc.Elmascale }, Collector: col, Scaler: cluster, Recorder: loop.Recorders{}}
	var tk loop.Tick
	for range 8 {
		cluster.Advance(sc.Elmascale.Interval)
		tk = l.RunOnce(context.Background(), cluster.Now())
	}
	m := tk.Snapshot.Mesh
	if m == nil || m.Status != policy.StatusOK || len(m.Edges) == 0 || len(m.Inbound) == 0 {
		t.Fatalf("the demo's snapshot mesh is %+v, want the simulated call graph", m)
	}
}
