package collector

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/elmascale/elmascale/policy"
)

const rabbitYAML = `
apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: test
services:
  worker:
    signals:
      - name: script-queue
        queue:
          rabbitmq: {vhost: /, queues: [worker.default, worker.pool-a]}
          drainTime: 1m
  reports:
    signals:
      - name: jobs
        queue:
          rabbitmq: {vhost: /, queues: [reports]}
          drainTime: 1m
`

// Two queues of one signal and one more; reports has no statistics yet.
const rabbitBody = `[
 {"name":"worker.default","vhost":"/","messages_ready":30,"messages_unacknowledged":4,"consumers":3,
  "message_stats":{"publish_details":{"rate":12.5},"ack_details":{"rate":9.0},"get_no_ack_details":{"rate":1.0}}},
 {"name":"worker.pool-a","vhost":"/","messages_ready":3,"messages_unacknowledged":0,"consumers":1,
  "message_stats":{"publish_details":{"rate":0.5},"ack_details":{"rate":0.5},"deliver_no_ack_details":{"rate":2.0}}},
 {"name":"reports","vhost":"/"},
 {"name":"worker.default","vhost":"other","messages_ready":1000,"messages_unacknowledged":0}
]`

type fakeRabbit struct {
	srv    *httptest.Server
	calls  atomic.Int64
	status int
	body   string
}

func newFakeRabbit(t *testing.T, status int, body string) *fakeRabbit {
	t.Helper()
	f := &fakeRabbit{status: status, body: body}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		// The default vhost "/" must arrive escaped, or the API answers 404.
		if r.URL.EscapedPath() != "/api/queues/%2F" {
			http.Error(w, `{"error":"Object Not Found"}`, http.StatusNotFound)
			return
		}
		if cols := r.URL.Query().Get("columns"); !strings.Contains(cols, "message_stats.publish_details.rate") {
			t.Errorf("columns %q do not ask for the publish rate", cols)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "monitor" || p != "s3cret" {
			http.Error(w, `{"error":"not_authorized","reason":"Login failed"}`, http.StatusUnauthorized)
			return
		}
		w.WriteHeader(f.status)
		w.Write([]byte(f.body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func passwordFile(t testing.TB, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Verifies that one management API call yields every queue signal: backlog
// is ready plus unacknowledged (the unacknowledged part reported on its
// own as work in progress), rates and consumers add up over a signal's
// queues, and a queue without statistics is missing rather than empty.
func TestRabbitMQQueues(t *testing.T) {
	f := newFakeRabbit(t, 200, rabbitBody)
	cfg := parseConfig(t, rabbitYAML)
	c, _ := newCollector(t, Options{RabbitMQURL: f.srv.URL, RabbitMQUser: "monitor", RabbitMQPasswordFile: passwordFile(t, "s3cret")})
	sigs := collect(t, c, cfg, anyTime)
	got := sigs["worker"]["script-queue"]
	want := policy.QueueObservation{Backlog: 37, Unacked: 4, ArrivalRate: 13, CompletionRate: 12.5, Consumers: 4}
	if got.Status != policy.StatusOK || got.Queue == nil || *got.Queue != want || !got.Time.Equal(anyTime) {
		t.Errorf("worker: %+v queue %+v; want ok %+v at the tick time", got, got.Queue, want)
	}
	if r := sigs["reports"]["jobs"]; r.Status != policy.StatusMissing || !strings.Contains(r.Error, `rabbitmq: queue "reports" in vhost "/" has no statistics yet`) {
		t.Errorf("reports: %+v; want missing, no statistics", r)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d management API calls, want 1", n)
	}
}

// Verifies the answers that fail the source: wrong credentials give an
// error naming RabbitMQ and the user but never the password; a 500 and a
// body that is not JSON fail too; none of them panics.
func TestRabbitMQFailures(t *testing.T) {
	cfg := parseConfig(t, rabbitYAML)
	tests := []struct {
		name           string
		status         int
		body, password string
		errHas         string
		reason         string
	}{
		{"wrong password", 200, rabbitBody, "wrong-pw", `rabbitmq: management API at URL refused user "monitor" (HTTP 401)`, ReasonAuth},
		{"server error", 500, "boom", "s3cret", "rabbitmq: management API at URL answered HTTP 500: boom", ReasonHTTPStatus},
		{"garbage", 200, "<html>", "s3cret", "rabbitmq: management API at URL: cannot decode queue list", ReasonBadResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRabbit(t, tc.status, tc.body)
			t.Setenv("TEST_RABBIT_PW", tc.password)
			c, _ := newCollector(t, Options{RabbitMQURL: f.srv.URL, RabbitMQUser: "monitor", RabbitMQPasswordEnv: "TEST_RABBIT_PW"})
			sigs := collect(t, c, cfg, anyTime)
			got := sigs["worker"]["script-queue"]
			errHas := strings.ReplaceAll(tc.errHas, "URL", f.srv.URL)
			if got.Status != policy.StatusFailed || !strings.Contains(got.Error, errHas) {
				t.Errorf("got %+v; want failed containing %q", got, errHas)
			}
			if strings.Contains(got.Error, tc.password) {
				t.Errorf("error %q reveals the password", got.Error)
			}
			if v := counterValue(t, c.m.errors.WithLabelValues(SourceRabbitMQ, tc.reason)); v != 1 {
				t.Errorf("errors_total{reason=%s} = %v, want 1", tc.reason, v)
			}
			assertHeld(t, cfg, sigs, 3, anyTime, "worker")
		})
	}
}

// Verifies that credentials in the URL are used and stripped, so they do
// not show up in messages.
func TestRabbitMQCredentialsInURL(t *testing.T) {
	f := newFakeRabbit(t, 200, rabbitBody)
	cfg := parseConfig(t, rabbitYAML)
	u := strings.Replace(f.srv.URL, "http://", "http://monitor:s3cret@", 1)
	c, _ := newCollector(t, Options{RabbitMQURL: u})
	if got := collect(t, c, cfg, anyTime)["worker"]["script-queue"]; got.Status != policy.StatusOK {
		t.Fatalf("got %+v, want ok", got)
	}
	if strings.Contains(c.rabbit.base.String(), "s3cret") {
		t.Errorf("base URL %s keeps the password", c.rabbit.base)
	}
}

// Verifies that New refuses a missing password file up front, without
// echoing anything secret.
func TestRabbitMQMissingPasswordFile(t *testing.T) {
	_, err := New(Options{RabbitMQURL: "http://127.0.0.1:1", RabbitMQUser: "u", RabbitMQPasswordFile: "/nonexistent/pw"})
	if err == nil || !strings.Contains(err.Error(), "rabbitmq: read password file") {
		t.Fatalf("err %v, want a password file error", err)
	}
}
