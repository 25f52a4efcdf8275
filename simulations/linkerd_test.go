package simulations

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"pgregory.net/rapid"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// Verifies the Linkerd-shaped outbound series: the requests a caller sends
// a callee, as its proxy counts them (every attempt, retries included),
// are exactly the requests the callee receives when it has no other
// caller and no outside load, at every scrape; the rate over a minute is
// the caller's rate times its calls per request; and the inbound request
// rate and latency p95 answer under their Linkerd names.
func TestPropertyLinkerdEdgeRate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mean := rapid.Float64Range(0.3, 3).Draw(t, "callsPerRequest")
		retries := rapid.IntRange(0, 2).Draw(t, "retries")
		rps := rapid.Float64Range(5, 40).Draw(t, "rps")
		seed := rapid.Uint64().Draw(t, "seed")
		sc := parse(t, fmt.Sprintf(`
name: edges
duration: 10m
cluster:
  services:
    front: {slots: 1000, serviceTime: {mean: 2ms}, cpuRequest: 1000m, calls: [{service: back, mean: %g, timeout: 30ms, retries: %d}]}
    back: {slots: 1000, serviceTime: {dist: exponential, mean: 20ms}, cpuRequest: 1000m}
load:
  - {service: front, constant: %g}
metricBindings:
  front_outbound_rate: {series: edgeRate, from: front, window: 1m}
`, mean, retries, rps))
		c := NewCluster(sc, seed)
		fi, bi := sc.ServiceIndex("front"), sc.ServiceIndex("back")
		for k := 0; k < 20; k++ {
			c.Advance(30 * time.Second)
			f, b := &c.sim.svcs[fi], &c.sim.svcs[bi]
			last := &f.scrapes[(f.nScrapes-1)%len(f.scrapes)]
			lastB := &b.scrapes[(b.nScrapes-1)%len(b.scrapes)]
			if last.out[bi].sent != lastB.requests {
				t.Fatalf("at %s front's proxy counted %d requests to back, back received %d", time.Duration(k+1)*30*time.Second, last.out[bi].sent, lastB.requests)
			}
			if last.out[fi].sent != 0 || lastB.out[fi].sent != 0 {
				t.Fatalf("requests counted on an edge that does not exist: front→front %d, back→front %d", last.out[fi].sent, lastB.out[fi].sent)
			}
		}
		edge, o := c.metric("front_outbound_rate", "back")
		in, o2 := c.metric("linkerd_request_rate", "back")
		if o.Status != policy.StatusOK || o2.Status != policy.StatusOK {
			t.Fatalf("edge %+v, inbound %+v", o, o2)
		}
		if math.Abs(edge-in) > 1e-9 {
			t.Fatalf("edge rate %.3f/s, back's inbound rate %.3f/s: want equal", edge, in)
		}
		// Without timeouts firing the rate is about rps·mean; with them it
		// is more (retries), never less.
		if want := rps * mean; edge < want-6*math.Sqrt(want/60)-0.5 {
			t.Fatalf("edge rate %.2f/s, want at least about %.2f/s (%.1f/s × %.2f calls)", edge, want, rps, mean)
		}
		if p95, o := c.metric("linkerd_response_latency_p95", "back"); o.Status != policy.StatusOK || p95 <= 0.02 || p95 > 0.1 {
			t.Fatalf("back's p95 %.4fs (%+v), want that of a 20 ms exponential (about 60 ms)", p95, o)
		}
	})
}

// Verifies that an edgeRate binding must name its caller, and only it
// may.
func TestLinkerdEdgeBindingRefused(t *testing.T) {
	for _, tc := range []struct{ binding, want string }{
		{`{series: edgeRate}`, "must name the calling service"},
		{`{series: edgeRate, from: nowhere}`, `must name the calling service (have "nowhere")`},
		{`{series: requestRate, from: front}`, "only an edgeRate series has a caller"},
	} {
		_, err := ParseScenario([]byte(`
duration: 10m
cluster:
  services:
    front: {slots: 10, serviceTime: {mean: 2ms}, cpuRequest: 1000m}
load: [{service: front, constant: 1}]
metricBindings:
  m: `+tc.binding+`
elmascale: {preset: elma365}
`), fstest.MapFS{}, ".")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", tc.binding, tc.want, err)
		}
	}
}

// Verifies Linkerd's failure classification: when the callee always
// answers after the caller's timeout, every attempt at the callee fails
// (abandoned) and so does every request at the caller (out of attempts),
// so each one's failure rate is its request rate; when the callee answers
// in time, nothing fails.
func TestPropertyLinkerdFailureRate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		retries := rapid.IntRange(0, 3).Draw(t, "retries")
		slow := rapid.Bool().Draw(t, "slow")
		seed := rapid.Uint64().Draw(t, "seed")
		back := "50ms"
		if slow {
			back = "150ms"
		}
		sc := parse(t, fmt.Sprintf(`
name: failures
duration: 10m
cluster:
  services:
    front: {slots: 1000, serviceTime: {dist: constant, mean: 1ms}, cpuRequest: 1000m, calls: [{service: back, mean: 1, timeout: 100ms, retries: %d}]}
    back: {slots: 1000, serviceTime: {dist: constant, mean: %s}, cpuRequest: 1000m}
load:
  - {service: front, constant: 20}
`, retries, back))
		c := NewCluster(sc, seed)
		c.Advance(5 * time.Minute)
		for _, name := range []string{"front", "back"} {
			req, o1 := c.metric("linkerd_request_rate", name)
			fail, o2 := c.metric("linkerd_failure_rate", name)
			if o1.Status != policy.StatusOK || o2.Status != policy.StatusOK {
				t.Fatalf("%s: %+v %+v", name, o1, o2)
			}
			switch {
			case !slow && fail != 0:
				t.Fatalf("%s failed %.2f/s with its callee answering in time", name, fail)
			case slow && math.Abs(fail-req) > 0.05*req:
				t.Fatalf("%s: %.2f failures/s for %.2f requests/s, want every one failed", name, fail, req)
			}
		}
		if b, _ := c.metric("linkerd_request_rate", "back"); slow && math.Abs(b-20*float64(1+retries)) > 0.15*20*float64(1+retries) {
			t.Fatalf("back received %.1f/s, want about %d/s (20/s × %d attempts)", b, 20*(1+retries), 1+retries)
		}
	})
}

// Verifies the mesh observation the simulated cluster gives through
// policy.NewMeshObservation: the caller's edge rate equals the callee's
// inbound request rate when it has no other caller; a leaf's own latency
// is its inbound mean; the caller's own latency (its inbound mean less
// calls per request × the edge's mean) is its own work, whatever the
// callee's latency; a data store is an edge outside the mesh and has no
// inbound entry.
func TestPropertyMeshObservation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mean := rapid.Float64Range(0.5, 3).Draw(t, "callsPerRequest")
		backMs := rapid.Float64Range(5, 200).Draw(t, "backMs")
		rps := rapid.Float64Range(10, 40).Draw(t, "rps")
		seed := rapid.Uint64().Draw(t, "seed")
		sc := parse(t, fmt.Sprintf(`
name: mesh
duration: 10m
cluster:
  services:
    front: {slots: 1000, serviceTime: {dist: exponential, mean: 10ms}, cpuRequest: 1000m, calls: [{service: back, mean: %g}, {service: db, mean: 1}]}
    back: {slots: 1000, serviceTime: {dist: exponential, mean: %gms}, cpuRequest: 1000m}
  stores:
    db: {kind: postgresql, connections: 1000, serviceTime: {mean: 3ms}}
load:
  - {service: front, constant: %g}
`, mean, backMs, rps))
		c := NewCluster(sc, seed)
		c.Advance(5 * time.Minute)
		cfg := &config.Config{Mesh: &config.MeshSource{Provider: config.MeshLinkerd, Window: time.Minute}}
		o := c.CollectMesh(context.Background(), cfg, c.Now())
		if o.Status != policy.StatusOK {
			t.Fatalf("mesh observation %+v", o)
		}
		if _, ok := o.Inbound["db"]; ok {
			t.Fatalf("a data store has an inbound entry: %+v", o.Inbound)
		}
		var toBack, toDB *policy.MeshEdge
		for k := range o.Edges {
			switch e := &o.Edges[k]; {
			case e.From == "front" && e.To == "back" && !e.External:
				toBack = e
			case e.From == "front" && e.To == "db" && e.External:
				toDB = e
			default:
				t.Fatalf("unexpected edge %+v", *e)
			}
		}
		if toBack == nil || toDB == nil {
			t.Fatalf("edges %+v, want front→back and front→db (outside)", o.Edges)
		}
		front, back := o.Inbound["front"], o.Inbound["back"]
		if math.Abs(toBack.Rate-back.RequestRate) > 1e-9 {
			t.Fatalf("edge rate %.3f/s, back's inbound %.3f/s", toBack.Rate, back.RequestRate)
		}
		// The edge's mean as the caller saw it is the callee's inbound
		// mean (no network time), up to the answers that straddle the
		// window's edges.
		if math.Abs(toBack.LatencyMean-back.LatencyMean) > 0.1*back.LatencyMean+0.002 {
			t.Fatalf("edge mean %.4fs, back's inbound mean %.4fs", toBack.LatencyMean, back.LatencyMean)
		}
		own := front.LatencyMean - toBack.Rate/front.RequestRate*toBack.LatencyMean - toDB.Rate/front.RequestRate*toDB.LatencyMean
		// front's own work: exponential, 10 ms mean, over ~rps·45 requests.
		if tol := 0.01*6/math.Sqrt(rps*45) + 0.1*(mean*backMs/1000+0.003); math.Abs(own-0.01) > tol {
			t.Fatalf("front's own latency %.4fs (inbound %.4fs), want about 10ms ± %.4f", own, front.LatencyMean, tol)
		}
		if front.SuccessShare != 1 || back.SuccessShare != 1 {
			t.Fatalf("success shares %.3f, %.3f with nothing failing", front.SuccessShare, back.SuccessShare)
		}
	})
}
