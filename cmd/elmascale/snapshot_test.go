package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// stormWith writes the script-storm example snapshot after edit changes
// its decoded JSON.
func stormWith(t *testing.T, edit func(services map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/snapshots/script-storm.json")
	if err != nil {
		t.Fatal(err)
	}
	var snap map[string]any
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	edit(snap["services"].(map[string]any))
	out, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snap.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func obsOf(services map[string]any, service, name string) map[string]any {
	return services[service].(map[string]any)["signals"].(map[string]any)[name].(map[string]any)
}

// Verifies a snapshot the policy would misread is refused with every
// problem named (exit 1, no table): an unknown status, a misspelt service
// or signal, no services at all. It used to be decided on, showing the
// real service at 0 → 0 and exiting 0.
func TestRecommendChecksTheSnapshot(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(empty, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
		want []string
	}{
		{"unknown status", stormWith(t, func(s map[string]any) { obsOf(s, "auth", "cpu")["status"] = "okay" }),
			[]string{`services.auth.signals.cpu.status: "okay" is not one of ok, missing, failed, stale or invalid`}},
		{"misspelt service", stormWith(t, func(s map[string]any) { s["wroker"] = s["worker"]; delete(s, "worker") }),
			[]string{"services.wroker: no such service in the config (did you mean worker?)", "services.worker: not in the snapshot"}},
		{"misspelt signal", stormWith(t, func(s map[string]any) {
			sg := s["worker"].(map[string]any)["signals"].(map[string]any)
			sg["script-queu"] = sg["script-queue"]
			delete(sg, "script-queue")
		}), []string{"services.worker.signals.script-queu: service worker has no such signal (did you mean script-queue?)"}},
		{"no services", empty, []string{"services: none observed; the config has 26"}},
		{"two problems at once", stormWith(t, func(s map[string]any) {
			obsOf(s, "auth", "cpu")["status"] = "okay"
			delete(s, "main")
		}), []string{"2 problem(s)", `"okay"`, "services.main: not in the snapshot"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "recommend", "--snapshot", tc.path)
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q; want exit 1 and no table", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// Verifies an absurd but valid number (a backlog of 1e308) reads as such in
// the table's reasons, not as a 309-digit number.
func TestRecommendKeepsNumbersReadable(t *testing.T) {
	path := stormWith(t, func(s map[string]any) {
		obsOf(s, "worker", "script-queue")["queue"].(map[string]any)["backlog"] = 1e308
	})
	code, out, errOut := run(t, "recommend", "--snapshot", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if long := regexp.MustCompile(`\d{11,}`).FindString(out); long != "" {
		t.Errorf("the table carries a %d-digit number:\n%s", len(long), out)
	}
	if !strings.Contains(out, "backlog 1e+308") {
		t.Errorf("the backlog is not shown as 1e+308:\n%s", out)
	}
}
