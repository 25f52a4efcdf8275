package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elmascale/elmascale/policy"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// Verifies validate accepts the shipped preset and reports every problem of
// a bad file with exit code 1.
func TestValidate(t *testing.T) {
	code, out, _ := run(t, "validate", "--config", "../../deploy/base/elma365.yaml")
	if code != 0 || !strings.Contains(out, "valid: 26 services (3 pinned at one)") {
		t.Fatalf("preset: exit %d, %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: elmascale.io/v1alpha1\nkind: Config\nservices:\n  a:\n    minReplicas: -1\n    colour: red\n"), 0o644)
	code, _, errOut := run(t, "validate", "--config", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{"services.a.colour: unknown field", "2 problem(s)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// Verifies recommend prints the decision table for the script storm with
// worker scaled up as the bottleneck, and valid JSON with -o json.
func TestRecommendScriptStorm(t *testing.T) {
	code, out, errOut := run(t, "recommend", "--snapshot", "../../examples/snapshots/script-storm.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "SERVICE") || !strings.HasPrefix(lines[1], "worker") {
		t.Fatalf("worker should lead the table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[1] != "2" || f[3] != "8" || f[4] != "yes" || f[5] != "rate" {
		t.Errorf("worker line %q: want 2 → 8, bottleneck, rate limited", lines[1])
	}

	code, out, _ = run(t, "recommend", "--snapshot", "../../examples/snapshots/latency-cascade.json", "-o", "json")
	if code != 0 {
		t.Fatalf("json exit %d", code)
	}
	var plan policy.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("output is not a plan: %v", err)
	}
	m, _ := plan.Decision("main")
	w, _ := plan.Decision("worker")
	n, _ := plan.Decision("notifier")
	if m.Desired != m.Current || !w.Bottleneck || w.Desired <= w.Current || n.Desired != 1 || !n.Bottleneck {
		t.Errorf("cascade: main %d→%d, worker %d→%d bottleneck=%v, notifier %d bottleneck=%v",
			m.Current, m.Desired, w.Current, w.Desired, w.Bottleneck, n.Desired, n.Bottleneck)
	}
}

// Verifies usage errors exit 2 and name the problem.
func TestUsageErrors(t *testing.T) {
	if code, _, errOut := run(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
	if code, _, _ := run(t, "recommend"); code != 2 {
		t.Errorf("recommend without input: exit %d, want 2", code)
	}
	if code, _, _ := run(t, "recommend", "--snapshot", "nope.json"); code != 1 {
		t.Errorf("missing snapshot file: exit %d, want 1", code)
	}
}

// Verifies dashboard prints the shipped Grafana dashboard.
func TestDashboardCommand(t *testing.T) {
	code, out, _ := run(t, "dashboard")
	var d struct {
		UID    string `json:"uid"`
		Panels []any  `json:"panels"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || d.UID != "elmascale-decisions" || len(d.Panels) < 10 {
		t.Fatalf("exit %d, uid %q, %d panels", code, d.UID, len(d.Panels))
	}
}
