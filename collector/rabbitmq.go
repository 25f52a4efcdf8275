package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// queueRef names a RabbitMQ queue.
type queueRef struct{ vhost, name string }

func (q queueRef) String() string { return fmt.Sprintf("%q in vhost %q", q.name, q.vhost) }

// queueStats is one queue's row from the management API. Pointers are nil
// when the broker left the field out (statistics not emitted yet, or no
// traffic of that kind since the queue was declared).
type queueStats struct {
	Name                   string   `json:"name"`
	VHost                  string   `json:"vhost"`
	MessagesReady          *float64 `json:"messages_ready"`
	MessagesUnacknowledged *float64 `json:"messages_unacknowledged"`
	Consumers              *int32   `json:"consumers"`
	MessageStats           *struct {
		Publish      *rateDetails `json:"publish_details"`
		Ack          *rateDetails `json:"ack_details"`
		DeliverNoAck *rateDetails `json:"deliver_no_ack_details"`
		GetNoAck     *rateDetails `json:"get_no_ack_details"`
	} `json:"message_stats"`
}

type rateDetails struct {
	Rate float64 `json:"rate"`
}

// queueColumns keeps the answer small: a broker with thousands of queues
// otherwise sends tens of fields per queue we never read.
var queueColumns = strings.Join([]string{
	"name", "vhost", "messages_ready", "messages_unacknowledged", "consumers",
	"message_stats.publish_details.rate", "message_stats.ack_details.rate",
	"message_stats.deliver_no_ack_details.rate", "message_stats.get_no_ack_details.rate",
}, ",")

// rabbitSource reads every queue of interest with one management API call.
type rabbitSource struct {
	base     *url.URL // without user info
	user     string
	password func() (string, error)
	client   *http.Client
	timeout  time.Duration
	m        *metrics
	// maxBody and maxQueues bound one answer.
	maxBody   int64
	maxQueues int
}

// passwordFrom returns a reader of the RabbitMQ password: the file when one
// is named (read on every call, so a rotated Secret is picked up), else the
// environment variable when it is set, else the fallback (the URL's). The
// password itself is never logged or put in an error.
func passwordFrom(file, env, fallback string) func() (string, error) {
	return func() (string, error) {
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("read password file: %w", err)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if env != "" {
			if v, ok := os.LookupEnv(env); ok && v != "" {
				return v, nil
			}
		}
		return fallback, nil
	}
}

// collect fetches the queues of the given vhosts: /api/queues/{vhost} when
// there is one, /api/queues otherwise. It is one request either way.
func (s *rabbitSource) collect(ctx context.Context, vhosts []string) (map[queueRef]queueStats, error) {
	fail := func(reason string, err error) error {
		s.m.errors.WithLabelValues(SourceRabbitMQ, reason).Inc()
		return &SourceError{Source: SourceRabbitMQ, Reason: reason, Err: err}
	}
	password, err := s.password()
	if err != nil {
		return nil, fail(ReasonConfig, err)
	}
	u := *s.base
	basePath := strings.TrimRight(u.Path, "/")
	baseRaw := strings.TrimRight(u.EscapedPath(), "/")
	if len(vhosts) == 1 {
		u.Path = basePath + "/api/queues/" + vhosts[0]
		// The default vhost is "/", which must travel as %2F.
		u.RawPath = baseRaw + "/api/queues/" + url.PathEscape(vhosts[0])
	} else {
		u.Path, u.RawPath = basePath+"/api/queues", ""
	}
	u.RawQuery = url.Values{"columns": {queueColumns}}.Encode()

	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(qctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fail(ReasonConfig, err)
	}
	req.SetBasicAuth(s.user, password)
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		s.observe(start)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer from %s within %s", s.base, s.timeout)
		}
		return nil, fail(classifyTransportError(err), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		s.observe(start)
		switch {
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return nil, fail(ReasonAuth, fmt.Errorf("management API at %s refused user %q (HTTP %d): check the RabbitMQ user and password, and that the user has the monitoring tag",
				s.base, s.user, resp.StatusCode))
		case resp.StatusCode == http.StatusNotFound && len(vhosts) == 1:
			return nil, fail(ReasonHTTPStatus, fmt.Errorf("management API at %s: vhost %q not found (HTTP 404)", s.base, vhosts[0]))
		}
		return nil, fail(ReasonHTTPStatus, fmt.Errorf("management API at %s answered HTTP %d: %s", s.base, resp.StatusCode, snippet(body)))
	}
	out, err := s.decode(resp.Body)
	s.observe(start)
	switch {
	case errors.Is(err, ErrAnswerTooLarge), errors.Is(err, errTooManyQueues):
		return nil, fail(ReasonBadResponse, fmt.Errorf("management API at %s: %w", s.base, err))
	case err != nil && ctx.Err() == nil && qctx.Err() != nil:
		return nil, fail(ReasonTimeout, fmt.Errorf("no whole answer from %s within %s", s.base, s.timeout))
	case err != nil:
		return nil, fail(ReasonBadResponse, fmt.Errorf("management API at %s: cannot decode queue list: %w", s.base, err))
	}
	return out, nil
}

// errTooManyQueues stops decoding a queue list longer than maxQueues.
var errTooManyQueues = errors.New("too many queues")

// decode reads the queue list row by row, so an answer costs the rows kept,
// never the whole body: the body is cut at maxBody and the list at
// maxQueues.
func (s *rabbitSource) decode(body io.Reader) (map[queueRef]queueStats, error) {
	dec := json.NewDecoder(&boundedBody{rc: io.NopCloser(body), left: s.maxBody, max: s.maxBody})
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("want a JSON array of queues, got %v", tok)
	}
	out := map[queueRef]queueStats{}
	n := 0
	for dec.More() {
		n++
		if s.maxQueues > 0 && n > s.maxQueues {
			return nil, fmt.Errorf("%w: more than %d queues in the answer; name a vhost holding fewer", errTooManyQueues, s.maxQueues)
		}
		var r queueStats
		if err := dec.Decode(&r); err != nil {
			return nil, err
		}
		out[queueRef{vhost: r.VHost, name: r.Name}] = r
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *rabbitSource) observe(start time.Time) {
	s.m.queries.WithLabelValues(SourceRabbitMQ).Inc()
	s.m.duration.WithLabelValues(SourceRabbitMQ).Observe(time.Since(start).Seconds())
}

// snippet is the start of a body, for an error message.
func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// queueObservation sums a signal's queues. ok is false, with the reason,
// when any queue is absent or has no statistics yet: a partial sum would
// understate the backlog.
//
// Completions are acknowledgements plus deliveries without acknowledgement
// (auto-ack consumers and basic.get with no ack): such messages leave the
// queue on delivery, and counting only acks would make an auto-ack pool
// look as if it completed nothing.
func queueObservation(stats map[queueRef]queueStats, refs []queueRef) (q policy.QueueObservation, reason string) {
	for _, ref := range refs {
		st, found := stats[ref]
		if !found {
			return policy.QueueObservation{}, fmt.Sprintf("rabbitmq: queue %s not found", ref)
		}
		if st.MessagesReady == nil || st.MessagesUnacknowledged == nil {
			return policy.QueueObservation{}, fmt.Sprintf("rabbitmq: queue %s has no statistics yet", ref)
		}
		q.Backlog += *st.MessagesReady + *st.MessagesUnacknowledged
		q.Unacked += *st.MessagesUnacknowledged
		if st.Consumers != nil {
			q.Consumers += *st.Consumers
		}
		if ms := st.MessageStats; ms != nil {
			q.ArrivalRate += rateOf(ms.Publish)
			q.CompletionRate += rateOf(ms.Ack) + rateOf(ms.DeliverNoAck) + rateOf(ms.GetNoAck)
		}
	}
	return q, ""
}

func rateOf(d *rateDetails) float64 {
	if d == nil {
		return 0
	}
	return d.Rate
}

// ListQueues names the queues of the given vhosts, by vhost, with the same
// one management API call (and the same breaker, bounds and credentials) a
// tick makes. The daemon expands its worker pool templates from it.
func (c *Collector) ListQueues(ctx context.Context, vhosts []string) (config.QueueNames, error) {
	if c.rabbit == nil {
		return nil, &SourceError{Source: SourceRabbitMQ, Reason: ReasonConfig, Err: errors.New("no management API URL configured")}
	}
	if len(vhosts) == 0 {
		return config.QueueNames{}, nil
	}
	var rows map[queueRef]queueStats
	err := c.rabbitGuard.run(ctx, func(ctx context.Context) error {
		var err error
		rows, err = c.rabbit.collect(ctx, vhosts)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := config.QueueNames{}
	for ref := range rows {
		if slices.Contains(vhosts, ref.vhost) {
			out[ref.vhost] = append(out[ref.vhost], ref.name)
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out, nil
}
