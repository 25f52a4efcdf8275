package simulations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/elmascale/elmascale/config"
)

// Default queries of a capture. Requests from outside the cluster are the
// Linkerd proxy's outbound requests of the ingress controller, by the
// deployment they go to; messages are RabbitMQ's publish rate by queue
// (its Prometheus plugin with per-object metrics).
const (
	DefaultCaptureServiceQuery = `sum by (dst_deployment) (rate(request_total{direction="outbound", deployment=~"ingress.*"}[5m]))`
	DefaultCaptureServiceLabel = "dst_deployment"
	DefaultCaptureQueueQuery   = `sum by (queue) (rate(rabbitmq_queue_messages_published_total[5m]))`
	DefaultCaptureQueueLabel   = "queue"
)

// CaptureOptions says where a recorded load is and how to read it.
type CaptureOptions struct {
	// URL is the Prometheus server's base URL.
	URL string
	// End is the end of the recorded range (default: now); Range its
	// length, which becomes the scenario's duration.
	End   time.Time
	Range time.Duration
	// Step is the resolution of the recorded profiles (default 5m, at
	// least the range over 11000 so a query stays within Prometheus'
	// limit of points).
	Step time.Duration
	// ServiceQuery answers, one series per entry service labelled
	// ServiceLabel, the requests per second arriving from outside;
	// QueueQuery, one series per queue labelled QueueLabel, the messages
	// per second published to the queues the scenario feeds from outside.
	// Empty means the defaults above.
	ServiceQuery, ServiceLabel string
	QueueQuery, QueueLabel     string
	// Client is the HTTP client (default http.DefaultClient).
	Client *http.Client
}

// Capture turns a recorded range of a cluster's Prometheus into a what-if
// scenario: the template scenario's cluster, SLOs and elmascale
// configuration, with every load source of the template replaced by the
// recorded rate of its service or queue (a points profile at opts.Step,
// no noise: the record has its own), the duration by the range, and the
// template's marks dropped (their times belong to its load). The result
// is a self-contained scenario file: the cluster's base and the
// configuration's preset, file and overlays are resolved into it, so it
// runs from anywhere.
//
// Every source of the template must have a recorded series with at least
// one sample in the range, or Capture fails naming those that do not;
// samples that are not finite or are negative are left out of the
// profile, which interpolates across them.
func Capture(ctx context.Context, template []byte, fsys fs.FS, dir string, opts CaptureOptions) ([]byte, error) {
	if opts.URL == "" {
		return nil, errors.New("capture: no Prometheus URL")
	}
	if opts.Range <= 0 {
		return nil, fmt.Errorf("capture: range %s must be positive", opts.Range)
	}
	if opts.End.IsZero() {
		opts.End = time.Now()
	}
	if opts.Step <= 0 {
		opts.Step = 5 * time.Minute
	}
	if min := opts.Range / 11000; opts.Step < min {
		opts.Step = min.Truncate(time.Second) + time.Second
	}
	if opts.ServiceQuery == "" {
		opts.ServiceQuery, opts.ServiceLabel = DefaultCaptureServiceQuery, DefaultCaptureServiceLabel
	}
	if opts.QueueQuery == "" {
		opts.QueueQuery, opts.QueueLabel = DefaultCaptureQueueQuery, DefaultCaptureQueueLabel
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	sc, err := ParseScenario(template, fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("capture: template: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(template, &raw); err != nil {
		return nil, err
	}

	start := opts.End.Add(-opts.Range)
	var services, queues map[string][]pointFile
	for _, l := range sc.Load {
		if l.Service != "" && services == nil {
			if services, err = opts.queryRange(ctx, opts.ServiceQuery, opts.ServiceLabel, start); err != nil {
				return nil, err
			}
		}
		if l.Queue != "" && queues == nil {
			if queues, err = opts.queryRange(ctx, opts.QueueQuery, opts.QueueLabel, start); err != nil {
				return nil, err
			}
		}
	}
	var load []any
	var missing []string
	seen := map[string]bool{}
	for _, l := range sc.Load {
		key, pts := "service", services[l.Service]
		name := l.Service
		if l.Queue != "" {
			key, pts, name = "queue", queues[l.Queue], l.Queue
		}
		if seen[key+"/"+name] {
			continue // one recorded series per service or queue
		}
		seen[key+"/"+name] = true
		if len(pts) == 0 {
			missing = append(missing, key+" "+name)
			continue
		}
		list := make([]any, len(pts))
		for i, p := range pts {
			list[i] = map[string]any{"at": time.Duration(p.At).String(), "rps": p.RPS}
		}
		load = append(load, map[string]any{key: name, "points": list})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("capture: no recorded rate in %s … %s for %s (queries %q by %s, %q by %s)",
			start.UTC().Format(time.RFC3339), opts.End.UTC().Format(time.RFC3339), strings.Join(missing, ", "),
			opts.ServiceQuery, opts.ServiceLabel, opts.QueueQuery, opts.QueueLabel)
	}

	if c, ok := raw["cluster"].(map[string]any); ok {
		if base, ok := c["base"].(string); ok {
			b, err := fs.ReadFile(fsys, path.Join(dir, base))
			if err != nil {
				return nil, fmt.Errorf("cluster.base: %w", err)
			}
			var bm map[string]any
			if err := yaml.Unmarshal(b, &bm); err != nil {
				return nil, fmt.Errorf("cluster.base %s: %w", base, err)
			}
			delete(c, "base")
			raw["cluster"] = mergeYAML(bm, c)
		}
	}
	// The configuration has the pools' entries already; expanding the
	// pools again leaves them as they are.
	var cfg map[string]any
	if err := yaml.Unmarshal(sc.ElmascaleYAML, &cfg); err != nil {
		return nil, err
	}
	raw["elmascale"] = map[string]any{"overrides": cfg}
	raw["name"] = sc.Name + "-captured"
	raw["description"] = fmt.Sprintf("%s's cluster under the load recorded at %s, %s … %s",
		sc.Name, opts.URL, start.UTC().Format(time.RFC3339), opts.End.UTC().Format(time.RFC3339))
	raw["duration"] = opts.Range.String()
	if sc.Warmup >= opts.Range/2 {
		raw["warmup"] = "0s"
	}
	delete(raw, "marks")
	raw["load"] = load
	out, err := yaml.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Captured by elmascale simulate --from-prometheus; the load is a record, not a model.\n"), out...), nil
}

// queryRange runs a range query from start to opts.End and returns each
// series' finite, non-negative samples as points from start, by the value
// of its label.
func (o *CaptureOptions) queryRange(ctx context.Context, q, label string, start time.Time) (map[string][]pointFile, error) {
	v := url.Values{}
	v.Set("query", q)
	v.Set("start", strconv.FormatFloat(float64(start.UnixMilli())/1e3, 'f', 3, 64))
	v.Set("end", strconv.FormatFloat(float64(o.End.UnixMilli())/1e3, 'f', 3, 64))
	v.Set("step", strconv.FormatFloat(o.Step.Seconds(), 'f', -1, 64))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.URL, "/")+"/api/v1/query_range", strings.NewReader(v.Encode()))
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := o.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("capture: %s: %w", q, err)
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("capture: %s: HTTP %d, not a Prometheus answer: %.200s", q, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("capture: %s: %s: %s", q, r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("capture: %s: a %s answer, want a matrix", q, r.Data.ResultType)
	}
	out := map[string][]pointFile{}
	for _, s := range r.Data.Result {
		name, ok := s.Metric[label]
		if !ok {
			return nil, fmt.Errorf("capture: %s: a series without label %s: %v", q, label, s.Metric)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("capture: %s: two series with %s=%q; aggregate by %s", q, label, name, label)
		}
		pts := []pointFile{}
		for _, sv := range s.Values {
			ts, _ := sv[0].(float64)
			vs, _ := sv[1].(string)
			x, err := strconv.ParseFloat(vs, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
				continue
			}
			at := time.Duration((ts - float64(start.UnixMilli())/1e3) * 1e9).Round(time.Second)
			if at < 0 {
				continue
			}
			pts = append(pts, pointFile{At: config.Duration(at), RPS: x})
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].At < pts[j].At })
		out[name] = pts
	}
	return out, nil
}
