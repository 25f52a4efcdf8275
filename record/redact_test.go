package record

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// Verifies that the decisions API keeps a failure's cause but not the
// upstream body, the RabbitMQ user or URL credentials, in every field a
// source's message reaches (outcome detail, tick error, reason, notes).
func TestDecisionsAPIRedacts(t *testing.T) {
	cases := []struct{ in, want string }{
		{`rabbitmq: management API at http://guest:s3cret@rabbit:15672 refused user "elmascale" (HTTP 401): check the RabbitMQ user and password`,
			`rabbitmq: management API at http://rabbit:15672 refused user (redacted) (HTTP 401): check the RabbitMQ user and password`},
		{`management API at http://rabbit:15672 answered HTTP 502: <html><body>upstream (10.0.0.7) down</body></html>`,
			`management API at http://rabbit:15672 answered HTTP 502`},
		{`query rps: server error: 503 (<html>backend prometheus-0.internal unavailable</html>)`, `query rps: server error: 503`},
		{`query rps: cannot decode answer: readObjectStart: expect { or n, but found <, error found in #1 byte of ...|<html>secret|...`,
			`query rps: cannot decode answer`},
		{`scale worker Deployment/worker to 3: no answer within the write timeout 10s: context deadline exceeded`,
			`scale worker Deployment/worker to 3: no answer within the write timeout 10s: context deadline exceeded`},
	}
	for _, tc := range cases {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}

	h := NewHistory("apply", 10)
	secret := `management API at http://u:pw@rabbit:15672 refused user "elmascale" (HTTP 401): answered HTTP 500: {"error":"internal","reason":"vhost_down"}`
	d := policy.Decision{Service: "worker", Current: 2, Desired: 2, Reason: "held: " + secret,
		Signals: []policy.SignalResult{{Name: "queue", Note: secret}}}
	h.Record(loop.Tick{Plan: policy.Plan{Decisions: []policy.Decision{d, {Service: "main"}}},
		Outcomes: []loop.Outcome{{Service: "worker", Err: errors.New(secret)}}, Err: errors.New(secret)})
	b, err := json.Marshal(h.Decisions(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"elmascale", "u:pw", "vhost_down", "internal"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("decisions API shows %q: %s", leak, b)
		}
	}
	if !strings.Contains(string(b), "refused user (redacted) (HTTP 401)") {
		t.Errorf("decisions API lost the cause: %s", b)
	}
	if d.Signals[0].Note != secret {
		t.Error("redaction changed the plan the loop acts on")
	}
	b, _ = json.Marshal(h.Recommendations())
	if strings.Contains(string(b), "u:pw") || strings.Contains(string(b), `"elmascale"`) {
		t.Errorf("recommendations API leaks: %s", b)
	}
}
