package promtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// InstallHint is what to run when the binary is missing.
const InstallHint = "make setup-prometheus-rabbitmq (or: sudo apt-get install -y --no-install-recommends prometheus)"

// Target is one scrape target.
type Target struct {
	// Job is the job name (default "test").
	Job string
	// Addr is host:port of the exporter.
	Addr string
	// Labels are added to every series scraped from it, the way a
	// Kubernetes relabeling would add namespace.
	Labels map[string]string
	// HonorLabels keeps a scraped series' own label where it collides
	// with one of Labels, instead of renaming it exported_<name>.
	HonorLabels bool
	// BearerTokenFile is presented as the scrape's bearer token.
	BearerTokenFile string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the query API's base URL, http://127.0.0.1:port.
	URL string
	// StartupTime is how long the last start took until /-/ready answered.
	StartupTime time.Duration

	t       testing.TB
	bin     string
	dir     string
	addr    string
	targets []Target
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	// retention is the TSDB's retention time (default 1h).
	retention string
}

// Binary finds the prometheus binary: $ELMASCALE_PROMETHEUS, else PATH.
func Binary() (string, error) {
	if p := os.Getenv("ELMASCALE_PROMETHEUS"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return "", fmt.Errorf("prometheus binary not found on PATH; install it with: %s", InstallHint)
	}
	return p, nil
}

// Start runs Prometheus scraping the targets every second, waits until it
// is ready and has scraped every target once, and stops it at the end of
// the test. A missing binary fails the test: it is never skipped.
func Start(t testing.TB, targets ...Target) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), targets: targets}
	s.addr = freeAddr(t)
	s.URL = "http://" + s.addr
	s.logPath = filepath.Join(s.dir, "prometheus.log")
	if err := os.WriteFile(filepath.Join(s.dir, "prometheus.yml"), s.config(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Restart()
	s.WaitForTargets()
	return s
}

// StartBackfilled writes a recorded history, OpenMetrics text with a
// timestamp on every sample and a final "# EOF", into TSDB blocks with
// promtool tsdb create-blocks-from openmetrics, then runs Prometheus on
// them (no scrape targets) with a retention long enough to keep them all.
// promtool is found beside the prometheus binary or on PATH.
func StartBackfilled(t testing.TB, openMetrics []byte) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(filepath.Dir(bin), "promtool")
	if _, err := os.Stat(tool); err != nil {
		if tool, err = exec.LookPath("promtool"); err != nil {
			t.Fatalf("promtool not found beside %s or on PATH; install it with: %s", bin, InstallHint)
		}
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), retention: "100y"}
	s.addr = freeAddr(t)
	s.URL = "http://" + s.addr
	s.logPath = filepath.Join(s.dir, "prometheus.log")
	in := filepath.Join(s.dir, "history.om")
	if err := os.WriteFile(in, openMetrics, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "tsdb", "create-blocks-from", "openmetrics", in, filepath.Join(s.dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "prometheus.yml"), s.config(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// config renders the scrape config: 1s scrape and evaluation intervals.
func (s *Server) config() []byte {
	var b bytes.Buffer
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	jobs := map[string][]Target{}
	var names []string
	for _, tg := range s.targets {
		job := tg.Job
		if job == "" {
			job = "test"
		}
		if _, ok := jobs[job]; !ok {
			names = append(names, job)
		}
		jobs[job] = append(jobs[job], tg)
	}
	sort.Strings(names)
	for _, job := range names {
		fmt.Fprintf(&b, "  - job_name: %q\n", job)
		// Options are per job: the first target's stand for its job.
		if first := jobs[job][0]; first.HonorLabels || first.BearerTokenFile != "" {
			fmt.Fprintf(&b, "    honor_labels: %v\n", first.HonorLabels)
			if first.BearerTokenFile != "" {
				fmt.Fprintf(&b, "    authorization:\n      credentials_file: %q\n", first.BearerTokenFile)
			}
		}
		b.WriteString("    static_configs:\n")
		for _, tg := range jobs[job] {
			fmt.Fprintf(&b, "      - targets: [%q]\n", tg.Addr)
			if len(tg.Labels) > 0 {
				b.WriteString("        labels:\n")
				keys := make([]string, 0, len(tg.Labels))
				for k := range tg.Labels {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(&b, "          %s: %q\n", k, tg.Labels[k])
				}
			}
		}
	}
	return b.Bytes()
}

// Restart starts the process again (after Stop) on the same address and
// TSDB, and waits for /-/ready.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("promtest: Restart while running; call Stop first")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin,
		"--config.file="+filepath.Join(s.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(s.dir, "data"),
		"--storage.tsdb.retention.time="+cmp.Or(s.retention, "1h"),
		"--web.listen-address="+s.addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("promtest: start %s: %v", s.bin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(s.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			s.cmd = nil
			s.t.Fatalf("promtest: prometheus exited during start-up; log:\n%s", s.logTail())
		default:
		}
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("promtest: prometheus not ready after 60s; log:\n%s", s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.StartupTime = time.Since(start)
}

// Stop ends the process (SIGTERM, then SIGKILL after 10s). Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// WaitForTargets waits until every target has been scraped successfully
// (up == 1), so queries see data.
func (s *Server) WaitForTargets() {
	s.t.Helper()
	want := len(s.targets)
	if want == 0 {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := s.Query(context.Background(), "up == 1")
		if err == nil && len(v) >= want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("promtest: %d of %d targets up after 30s (err %v); log:\n%s", len(v), want, err, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sample is one series of an instant query's answer.
type Sample struct {
	Labels map[string]string
	Value  float64
	Time   time.Time
}

// Query runs an instant query now, for test assertions and waits. It is
// deliberately independent of the collector's client.
func (s *Server) Query(ctx context.Context, q string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, errors.New(body.Error)
	}
	out := make([]Sample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		ts, _ := r.Value[0].(float64)
		vs, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", vs, err)
		}
		out = append(out, Sample{Labels: r.Metric, Value: v, Time: time.Unix(0, int64(ts*1e9))})
	}
	return out, nil
}

// ServeRegistry serves reg's metrics at /metrics on a loopback port for
// the test's duration and returns host:port, ready to be a Target.
func ServeRegistry(t testing.TB, g prometheus.Gatherer) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
