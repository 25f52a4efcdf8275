package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
	if err := json.Unmarshal([]byte(get("/api/v1/decisions?service=worker")), &body); err != nil || len(body.Decisions) == 0 || body.Mode != "apply" {
		t.Fatalf("decisions API: %v (%d records, mode %q)", err, len(body.Decisions), body.Mode)
	}
	if body.Decisions[0]["service"] != "worker" || body.Decisions[0]["reason"] == "" {
		t.Errorf("decision record %v", body.Decisions[0])
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
