package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/elmascale/elmascale/daemon"
	"github.com/elmascale/elmascale/internal/kubetest"
	"github.com/elmascale/elmascale/internal/testcluster"
	"github.com/elmascale/elmascale/record"
	"github.com/elmascale/elmascale/scaler"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// configYAML holds worker between minReplicas and 6. With no collector
// every signal is missing, so the bounds alone move replicas: a Deployment
// below minReplicas is raised to it.
func configYAML(ns string, minReplicas int) string {
	return fmt.Sprintf(`apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: %s
interval: 1s
defaults: {minReplicas: %d, maxReplicas: 6}
services:
  worker: {}
`, ns, minReplicas)
}

type runningDaemon struct {
	t       *testing.T
	name    string
	cancel  context.CancelFunc
	done    chan error
	reg     *prometheus.Registry
	metrics string
	health  string
}

// startDaemon runs daemon.Run in-process as user elmascale.
func startDaemon(t *testing.T, c *testcluster.Cluster, name, cfgPath string, mod func(*daemon.Options)) *runningDaemon {
	t.Helper()
	d := &runningDaemon{t: t, name: name, done: make(chan error, 1), reg: prometheus.NewRegistry()}
	addrs := make(chan [2]string, 1)
	o := daemon.Options{
		RESTConfig:  c.UserConfig(testcluster.UserElmascale),
		ConfigPath:  cfgPath,
		Mode:        scaler.ModeApply,
		MetricsAddr: "127.0.0.1:0",
		HealthAddr:  "127.0.0.1:0",
		OnListen:    func(m, h string) { addrs <- [2]string{m, h} },
		Registry:    d.reg,
		ReloadEvery: 200 * time.Millisecond,
		Identity:    name,
		Version:     "test",
	}
	if mod != nil {
		mod(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { d.done <- daemon.Run(ctx, o) }()
	select {
	case a := <-addrs:
		d.metrics, d.health = a[0], a[1]
	case err := <-d.done:
		t.Fatalf("daemon %s exited at start: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon %s did not listen", name)
	}
	t.Cleanup(func() { d.stop() })
	return d
}

func (d *runningDaemon) stop() {
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("daemon %s: %v", d.name, err)
		}
		d.done <- nil // later stops return at once
	case <-time.After(30 * time.Second):
		d.t.Errorf("daemon %s did not shut down within 30s", d.name)
	}
}

func (d *runningDaemon) running() bool {
	select {
	case err := <-d.done:
		d.done <- err
		return false
	default:
		return true
	}
}

// metric sums the samples of a metric family whose labels include match.
func (d *runningDaemon) metric(name string, match map[string]string) float64 {
	d.t.Helper()
	fams, err := d.reg.Gather()
	if err != nil {
		d.t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	sample:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue sample
				}
			}
			switch {
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeConfig(t *testing.T, path, data string) {
	t.Helper()
	// Write then rename, as a ConfigMap update swaps files, so the poller
	// never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func setReplicas(t *testing.T, admin kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
	if _, err := admin.AppsV1().Deployments(ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Verifies the daemon end to end as user elmascale: it scales, serves its
// endpoints, and a reload with an invalid config is rejected with a metric
// while the old config stays in force; a valid reload then takes effect.
func TestRunReloadAndEndpoints(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil))
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, configYAML(ns, 2))
	d := startDaemon(t, c, "solo", path, nil)
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)
	kubetest.WaitEvent(t, admin, ns, "worker", "Normal ScaledUp", "replicas 1 → 2")

	kubetest.WaitFor(t, 10*time.Second, "ready", func() error {
		if code, body := get(t, "http://"+d.health+"/readyz"); code != 200 {
			return fmt.Errorf("readyz %d %s", code, body)
		}
		return nil
	})
	if code, body := get(t, "http://"+d.health+"/healthz"); code != 200 {
		t.Errorf("healthz %d %s", code, body)
	}
	_, body := get(t, "http://"+d.metrics+"/metrics")
	for _, want := range []string{`elmascale_build_info{version="test"} 1`, `elmascale_replicas_desired{service="worker"} 2`,
		`elmascale_leader 1`, `elmascale_dry_run 0`, `elmascale_scale_actions_total{direction="up",limited_by="min",service="worker"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var decisions struct {
		Mode      string                  `json:"mode"`
		Decisions []record.DecisionRecord `json:"decisions"`
	}
	_, body = get(t, "http://"+d.metrics+"/api/v1/decisions?service=worker")
	if err := json.Unmarshal([]byte(body), &decisions); err != nil || decisions.Mode != "apply" || len(decisions.Decisions) == 0 {
		t.Errorf("/api/v1/decisions = %s (%v)", body, err)
	}
	_, body = get(t, "http://"+d.metrics+"/api/v1/recommendations")
	if !strings.Contains(body, `"service": "worker"`) {
		t.Errorf("/api/v1/recommendations = %s", body)
	}

	writeConfig(t, path, strings.Replace(configYAML(ns, 3), "minReplicas", "minReplica", 1))
	kubetest.WaitFor(t, 10*time.Second, "the invalid config to be counted", func() error {
		if v := d.metric("elmascale_config_reloads_total", map[string]string{"result": "failure"}); v != 1 {
			return fmt.Errorf("failures = %v", v)
		}
		return nil
	})
	// The old config (minReplicas 2) still rules: a drift to 1 is undone.
	setReplicas(t, admin, ns, "worker", 1)
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)

	writeConfig(t, path, configYAML(ns, 3))
	kubetest.WaitReplicas(t, admin, ns, "worker", 3, 30*time.Second)
	if v := d.metric("elmascale_config_reloads_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf("successful reloads = %v, want 1", v)
	}
}

// Verifies that of two daemons with leader election exactly one writes,
// and that when the leader dies without releasing its lease the other takes
// over within the lease duration and writes.
func TestLeaderElection(t *testing.T) {
	c := testcluster.ForTest(t)
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil))
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, configYAML(ns, 2))
	const lease, renew, retry = 4 * time.Second, 3 * time.Second, 500 * time.Millisecond
	elect := func(keep bool) func(*daemon.Options) {
		return func(o *daemon.Options) {
			o.LeaderElect, o.LeaseNamespace = true, ns
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = lease, renew, retry
			o.KeepLeaseOnExit = keep
		}
	}
	a := startDaemon(t, c, "daemon-a", path, elect(true))
	kubetest.WaitFor(t, 15*time.Second, "a to lead", func() error {
		if a.metric("elmascale_leader", nil) != 1 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	b := startDaemon(t, c, "daemon-b", path, elect(false))
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)

	// Drift twice; both daemons see it, only the leader writes.
	for i := 0; i < 2; i++ {
		setReplicas(t, admin, ns, "worker", 1)
		kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)
	}
	time.Sleep(2 * time.Second)
	if wa, wb := a.metric("elmascale_scale_actions_total", nil), b.metric("elmascale_scale_actions_total", nil); wa != 3 || wb != 0 {
		t.Errorf("writes: leader %v, follower %v; want 3 and 0", wa, wb)
	}
	if b.metric("elmascale_leader", nil) != 0 || b.metric("elmascale_loop_ticks_total", nil) == 0 {
		t.Errorf("follower should tick without leading")
	}

	// Kill the leader: it stops without releasing the lease, like a crash.
	killed := time.Now()
	a.stop()
	kubetest.WaitFor(t, lease+5*time.Second, "b to lead", func() error {
		if b.metric("elmascale_leader", nil) != 1 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	took := time.Since(killed)
	t.Logf("follower took over %s after the leader died (lease %s)", took.Round(10*time.Millisecond), lease)
	if took > lease+2*retry+2*time.Second {
		t.Errorf("takeover took %s, want within the lease duration %s (plus retry slack)", took, lease)
	}
	setReplicas(t, admin, ns, "worker", 1)
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)
	if wb := b.metric("elmascale_scale_actions_total", nil); wb != 1 {
		t.Errorf("new leader writes = %v, want 1", wb)
	}

	// A graceful stop releases the lease at once.
	b.stop()
	l, err := admin.CoordinationV1().Leases(ns).Get(context.Background(), "elmascale", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease still held by %q after a graceful stop", *h)
	}
}

// Verifies that the daemon rides out an API server outage: it neither
// crashes nor writes anything wrong, counts the failed steps, keeps
// /healthz up, and acts again once the API server is back.
func TestAPIServerOutage(t *testing.T) {
	c, err := testcluster.Start(context.Background(), testcluster.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", c.LogTails(30))
		}
		_ = c.Stop()
	})
	admin := kubernetes.NewForConfigOrDie(c.AdminConfig)
	ns := kubetest.Namespace(t, c)
	kubetest.CreateDeployments(t, admin, kubetest.Deployment(ns, "worker", 1, nil))
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeConfig(t, path, configYAML(ns, 2))
	d := startDaemon(t, c, "outage", path, nil)
	kubetest.WaitReplicas(t, admin, ns, "worker", 2, 30*time.Second)

	if err := c.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	ticks := d.metric("elmascale_loop_ticks_total", nil)
	writeConfig(t, path, configYAML(ns, 3)) // asks for a write while the API is down
	time.Sleep(8 * time.Second)
	if !d.running() {
		t.Fatal("daemon exited during the outage")
	}
	if d.metric("elmascale_loop_ticks_total", nil) <= ticks {
		t.Errorf("loop stopped ticking during the outage")
	}
	if v := d.metric("elmascale_loop_errors_total", map[string]string{"step": "apply"}); v == 0 {
		t.Errorf("no apply errors counted during the outage")
	}
	if code, body := get(t, "http://"+d.health+"/healthz"); code != 200 {
		t.Errorf("healthz during the outage: %d %s", code, body)
	}
	if err := c.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitReplicas(t, admin, ns, "worker", 3, 60*time.Second)
	if spec, _ := kubetest.Replicas(t, admin, ns, "worker"); spec != 3 {
		t.Errorf("replicas %d after recovery, want 3", spec)
	}
}

// getNoFail is get without a testing.T, for polling.
func getNoFail(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
