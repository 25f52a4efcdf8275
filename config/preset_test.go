package config

import (
	"bytes"
	"os"
	"testing"

	"github.com/elmascale/elmascale/policy"
)

// Verifies that the preset the binary embeds is the file deploy/ ships, and
// that it is valid.
func TestPresetIsShippedFileAndValid(t *testing.T) {
	onDisk, err := os.ReadFile("../deploy/base/elma365.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, ELMA365PresetYAML()) {
		t.Fatal("embedded preset differs from deploy/base/elma365.yaml")
	}
	cfg, err := ELMA365Preset()
	if err != nil {
		t.Fatalf("preset invalid:\n%v", err)
	}
	seed := []string{"auth", "balancer", "calculator", "chat", "collector", "convertik", "deploy",
		"diskjockey", "docflow", "event-bus", "feeder", "front", "integrations", "mailer", "main",
		"messengers", "notifier", "processor", "picasso", "scheduler", "settings", "templater",
		"vahter", "web-forms", "widget", "worker"}
	if len(cfg.Policy.Services) != len(seed) {
		t.Errorf("preset has %d services, want %d", len(cfg.Policy.Services), len(seed))
	}
	byName := map[string]policy.ServiceSpec{}
	for _, s := range cfg.Policy.Services {
		byName[s.Name] = s
	}
	for _, name := range seed {
		s, ok := byName[name]
		if !ok {
			t.Errorf("preset lacks %s", name)
			continue
		}
		switch name {
		case "scheduler", "notifier", "messengers":
			if !s.Pinned || s.MinReplicas != 1 || s.MaxReplicas != 1 {
				t.Errorf("%s: want pinned at 1, got pinned=%v [%d,%d]", name, s.Pinned, s.MinReplicas, s.MaxReplicas)
			}
		default:
			if s.Pinned || s.MinReplicas != 2 {
				t.Errorf("%s: want Enterprise default of 2 replicas, got min %d pinned=%v", name, s.MinReplicas, s.Pinned)
			}
		}
	}
	w := byName["worker"]
	kinds := map[policy.SignalKind]bool{}
	for _, sg := range w.Signals {
		kinds[sg.Kind] = true
	}
	if !kinds[policy.KindQueue] || !kinds[policy.KindUtilization] {
		t.Errorf("worker should scale on its queue and CPU, has %v", kinds)
	}
	m := byName["main"]
	if len(m.DependsOn) == 0 {
		t.Error("main should declare the services it calls")
	}
}
