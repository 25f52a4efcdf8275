package record

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/elmascale/elmascale/loop"
	"github.com/elmascale/elmascale/policy"
)

// DecisionRecord is one decision as served by /api/v1/decisions.
type DecisionRecord struct {
	Time time.Time `json:"time"`
	policy.Decision
	// Mode is apply or dry-run.
	Mode string `json:"mode"`
	// Outcome of acting on it: applied, recommended, skipped or failed.
	Outcome string `json:"outcome"`
	// Detail says why it was skipped or how it failed.
	Detail    string `json:"detail,omitempty"`
	HandedOff string `json:"handedOff,omitempty"`
}

// Recommendation is the latest recommendation for one service, as served by
// /api/v1/recommendations.
type Recommendation struct {
	Service     string       `json:"service"`
	Time        time.Time    `json:"time"`
	Current     int32        `json:"current"`
	Ready       int32        `json:"ready"`
	Recommended int32        `json:"recommended"`
	LimitedBy   policy.Limit `json:"limitedBy,omitempty"`
	Bottleneck  bool         `json:"bottleneck,omitempty"`
	HandedOff   string       `json:"handedOff,omitempty"`
	Reason      string       `json:"reason"`
}

// History keeps the decisions of recent ticks in a ring buffer and the
// latest recommendation per service, and serves both as JSON. The ring is
// bounded by decisions, not ticks, so a config of 1,000 services keeps the
// last couple of ticks and one of 25 keeps the last 80.
type History struct {
	mode  string
	limit int

	mu    sync.RWMutex
	ticks [][]DecisionRecord // oldest first
	total int
	recs  []Recommendation

	// graph is the last tick's call graph (GET /api/v1/graph).
	graph graphStore
}

// NewHistory keeps at most maxDecisions decisions (at least the last tick's).
func NewHistory(mode string, maxDecisions int) *History {
	if maxDecisions < 1 {
		maxDecisions = 1
	}
	return &History{mode: mode, limit: maxDecisions}
}

// Record stores one tick's decisions.
func (h *History) Record(t loop.Tick) {
	outcomes := make(map[string]loop.Outcome, len(t.Outcomes))
	for _, o := range t.Outcomes {
		outcomes[o.Service] = o
	}
	recs := make([]DecisionRecord, 0, len(t.Plan.Decisions))
	latest := make([]Recommendation, 0, len(t.Plan.Decisions))
	for _, d := range t.Plan.Decisions {
		d = redactDecision(d)
		r := DecisionRecord{Time: t.Time, Decision: d, Mode: h.mode, HandedOff: t.HandedOff[d.Service]}
		o, ok := outcomes[d.Service]
		switch {
		case !ok:
			r.Outcome, r.Detail = "skipped", "not acted on this tick"
			if t.Err != nil {
				r.Detail = Redact(t.Err.Error())
			}
		case o.Err != nil:
			r.Outcome, r.Detail = "failed", Redact(o.Err.Error())
		case o.Applied:
			r.Outcome = "applied"
		case o.Recommended:
			r.Outcome = "recommended"
		default:
			r.Outcome, r.Detail = "skipped", o.Skipped
		}
		recs = append(recs, r)
		latest = append(latest, Recommendation{Service: d.Service, Time: t.Time, Current: d.Current, Ready: d.Ready,
			Recommended: d.Desired, LimitedBy: d.LimitedBy, Bottleneck: d.Bottleneck, HandedOff: r.HandedOff, Reason: d.Reason})
	}
	h.mu.Lock()
	h.ticks = append(h.ticks, recs)
	h.total += len(recs)
	for len(h.ticks) > 1 && h.total > h.limit {
		h.total -= len(h.ticks[0])
		h.ticks[0] = nil
		h.ticks = h.ticks[1:]
	}
	h.recs = latest
	h.mu.Unlock()
	h.graph.set(BuildGraph(t))
}

// Decisions returns the stored decisions, oldest tick first, optionally of
// one service only.
func (h *History) Decisions(service string) []DecisionRecord {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []DecisionRecord
	for _, tick := range h.ticks {
		for _, r := range tick {
			if service == "" || r.Service == service {
				out = append(out, r)
			}
		}
	}
	return out
}

// Recommendations returns the latest recommendation of every service.
func (h *History) Recommendations() []Recommendation {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return append([]Recommendation(nil), h.recs...)
}

// ServeDecisions serves GET /api/v1/decisions[?service=NAME].
func (h *History) ServeDecisions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"mode": h.mode, "decisions": nonNil(h.Decisions(r.URL.Query().Get("service")))})
}

// ServeRecommendations serves GET /api/v1/recommendations.
func (h *History) ServeRecommendations(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"mode": h.mode, "recommendations": nonNil(h.Recommendations())})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// The decisions API is read by more people than the logs: what a source
// answered and who elmascale is at it stay in the logs. Redact keeps a
// message's cause and drops
//   - the user info of URLs (http://user:password@host → http://host),
//   - the user named in a refusal (user "elmascale" → user (redacted)),
//   - an upstream answer's body, which follows its HTTP status
//     ("answered HTTP 502: <html>…" → "answered HTTP 502", "server
//     error: 502 (<html>…)" → "server error: 502"), or is quoted between
//     |…| by a JSON decoder.
var (
	redactUserInfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s"]+@`)
	redactUser     = regexp.MustCompile(`\b(user|username|login)(?: +"[^"]*"| +'[^']*'|=[^\s,;:()]+)`)
	redactBody     = regexp.MustCompile(`(?s)((?:HTTP|server error:|client error:) [1-5][0-9]{2})(?:: .*| \(.*)?`)
	redactQuoted   = regexp.MustCompile(`\|[^|]*\|`)
)

// Redact removes credentials' user names, URL user info and upstream
// bodies from a message served by the decisions API.
func Redact(msg string) string {
	if msg == "" {
		return msg
	}
	msg = redactUserInfo.ReplaceAllString(msg, "$1")
	msg = redactUser.ReplaceAllString(msg, "$1 (redacted)")
	msg = redactBody.ReplaceAllString(msg, "$1")
	msg = redactQuoted.ReplaceAllString(msg, "|…|")
	if i := strings.Index(msg, "cannot decode answer: "); i >= 0 {
		// A decoder's complaint quotes the bytes it choked on.
		msg = msg[:i] + "cannot decode answer"
	}
	return msg
}

// redactDecision redacts the free text of a decision (its reason, each
// signal's note) without touching the plan the loop acts on.
func redactDecision(d policy.Decision) policy.Decision {
	d.Reason = Redact(d.Reason)
	if len(d.Signals) > 0 {
		sigs := make([]policy.SignalResult, len(d.Signals))
		copy(sigs, d.Signals)
		for i := range sigs {
			sigs[i].Note = Redact(sigs[i].Note)
		}
		d.Signals = sigs
	}
	return d
}
