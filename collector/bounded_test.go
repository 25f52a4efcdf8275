package collector

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elmascale/elmascale/policy"
)

// hugeVector streams an instant-vector answer of n series, as an
// unaggregated query against a big Prometheus returns, counting the bytes
// it managed to send before the client hung up.
func hugeVector(n int, sent *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		bw := bufio.NewWriterSize(w, 64<<10)
		count := func(s string) bool {
			k, err := bw.WriteString(s)
			sent.Add(int64(k))
			return err == nil
		}
		ts := float64(time.Now().UnixMilli()) / 1000
		count(`{"status":"success","data":{"resultType":"vector","result":[`)
		for i := 0; i < n; i++ {
			sep := ","
			if i == 0 {
				sep = ""
			}
			if !count(fmt.Sprintf(`%s{"metric":{"service":"svc-%d","pod":"pod-%d-abcdef"},"value":[%.3f,"1"]}`, sep, i, i, ts)) {
				return
			}
		}
		count(`]}}`)
		_ = bw.Flush()
	}
}

// oneLoadQuery is a config with one Prometheus query, load, read as
// worker's per-replica signal.
const oneLoadQuery = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
metrics:
  load: {prometheus: {query: "load"}}
services:
  worker: {signals: [{name: load, perReplica: {metric: load, targetPerReplica: 10}}]}
`

// Verifies that an answer larger than the body limit fails its query with
// an error naming the query and the limit, and that the collector stops
// reading at the limit instead of buffering the whole answer; the breaker
// does not count it (the query's fault, not the source's).
func TestPrometheusAnswerTooLarge(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(hugeVector(1_200_000, &sent))
	t.Cleanup(srv.Close)
	cfg := parseConfig(t, oneLoadQuery)
	c, _ := newCollector(t, Options{PrometheusURL: srv.URL, MaxResponseBytes: 1 << 20})
	for i := 0; i < 4; i++ {
		o := collect(t, c, cfg, time.Now())["worker"]["load"]
		if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "query load: answer too large: more than 1 MiB") || !strings.Contains(o.Error, "must aggregate by (service)") {
			t.Fatalf("observation %s: %s", o.Status, o.Error)
		}
	}
	if st := c.promGuard.state().String(); st != "closed" {
		t.Errorf("breaker %s after oversized answers, want closed", st)
	}
	// The server fills socket buffers beyond what is read; it must not
	// have delivered anywhere near the 100 MB answer.
	if got := sent.Load(); got > 4*(16<<20) {
		t.Errorf("server sent %d bytes over four ticks; the collector read far beyond its limit", got)
	}
}

// Verifies that an answer with more series than the limit fails its query
// with the count that came back.
func TestPrometheusTooManySeries(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(hugeVector(300, &sent))
	t.Cleanup(srv.Close)
	cfg := parseConfig(t, oneLoadQuery)
	c, _ := newCollector(t, Options{PrometheusURL: srv.URL, MaxSeries: 100})
	o := collect(t, c, cfg, time.Now())["worker"]["load"]
	if o.Status != policy.StatusFailed || !strings.Contains(o.Error, "query load: returned 300 series, more than the limit of 100") {
		t.Errorf("observation %s: %s", o.Status, o.Error)
	}
}

// Verifies that an oversized RabbitMQ answer is cut while it streams, with
// a clear error, and a list longer than the queue limit is refused.
func TestRabbitMQAnswerBounded(t *testing.T) {
	var sent atomic.Int64
	rows := func(n int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			bw := bufio.NewWriterSize(w, 64<<10)
			bw.WriteString("[")
			for i := 0; i < n; i++ {
				if i > 0 {
					bw.WriteString(",")
				}
				k, err := fmt.Fprintf(bw, `{"name":"q-%d","vhost":"/","messages_ready":1,"messages_unacknowledged":0,"consumers":1}`, i)
				sent.Add(int64(k))
				if err != nil {
					return
				}
			}
			bw.WriteString("]")
			_ = bw.Flush()
		}
	}
	cfg := parseConfig(t, `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: elma365
services:
  worker: {signals: [{name: q, queue: {rabbitmq: {queues: [q-1]}, drainTime: 30s}}]}
`)
	for _, tc := range []struct {
		name string
		n    int
		opts Options
		want string
	}{
		{"bytes", 1_000_000, Options{MaxResponseBytes: 1 << 20, MaxSeries: 1 << 30}, "answer too large: more than 1 MiB"},
		{"queues", 500, Options{MaxSeries: 100}, "more than 100 queues in the answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent.Store(0)
			srv := httptest.NewServer(rows(tc.n))
			t.Cleanup(srv.Close)
			opts := tc.opts
			opts.RabbitMQURL, opts.RabbitMQUser = srv.URL, "monitor"
			c, _ := newCollector(t, opts)
			o := collect(t, c, cfg, time.Now())["worker"]["q"]
			if o.Status != policy.StatusFailed || !strings.Contains(o.Error, tc.want) {
				t.Errorf("observation %s: %s", o.Status, o.Error)
			}
			if got := sent.Load(); got > 16<<20 {
				t.Errorf("server sent %d bytes", got)
			}
		})
	}
}
