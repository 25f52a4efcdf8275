package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// Verifies the typed decoder fills a File exactly as yaml.v3 does for
// every well-formed config the project ships: the preset, the examples
// and the scenarios' embedded configs.
func TestDecodeMatchesYAML(t *testing.T) {
	files := []string{"../deploy/base/elma365.yaml"}
	more, _ := filepath.Glob("../examples/*.yaml")
	files = append(files, more...)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want File
		if err := yaml.Unmarshal(data, &want); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, errs, err := decode(data)
		if err != nil || len(errs) > 0 {
			t.Fatalf("%s: %v %v", path, err, errs)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("%s decodes differently (-yaml.v3 +decode):\n%s", path, diff)
		}
	}
}

const decodeHead = `apiVersion: elmascale.io/v1alpha1
kind: Config
namespace: shop
services:
  api:
    minReplicas: 2
`

// Verifies each type, range and duration problem is reported once, with
// its path and line, together with every other problem, and without the
// follow-on errors a zero value left behind used to cause.
func TestDecodeErrorsOnceWithPath(t *testing.T) {
	cases := []struct {
		name string
		body string // appended to decodeHead
		want []string
	}{
		{"fraction in an integer", "    maxReplicas: 2.9\n",
			[]string{"services.api.maxReplicas: must be a whole number, not 2.9 (line 7)"}},
		{"text in an integer", "    maxReplicas: \"lots\"\n",
			[]string{`services.api.maxReplicas: must be a whole number, not "lots" (line 7)`}},
		{"integer out of range", "    maxReplicas: 99999999999\n",
			[]string{"services.api.maxReplicas: 99999999999 is out of range (at most 2147483647) (line 7)"}},
		{"integer far out of range", "    maxReplicas: 999999999999999999999999\n",
			[]string{"services.api.maxReplicas: 999999999999999999999999 is out of range (at most 2147483647) (line 7)"}},
		{"a whole float is an integer", "    maxReplicas: 4.0\n", nil},
		{"fractional percent", "    signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 0.5}}]\n",
			[]string{"services.api.signals[0].utilization.targetPercent: must be a whole number, not 0.5 (line 7)"}},
		{"percent out of range", "    signals: [{name: cpu, utilization: {resource: cpu, targetPercent: 0}}, {name: mem, utilization: {resource: memory, targetPercent: 1001}}]\n",
			[]string{
				"services.api.signals[0].utilization.targetPercent: must be a whole percent from 1 to 1000",
				"services.api.signals[1].utilization.targetPercent: must be a whole percent from 1 to 1000",
			}},
		{"bad duration with other problems", "    maxReplicas: 1\ninterval: fifteen\nstaleAfter: 30\n",
			[]string{
				`interval: must be a duration like 30s, 500ms or 5m, not "fifteen" (line 8)`,
				"staleAfter: duration 30 has no unit: write 30s, 30ms or 30m (line 9)",
				"services.api: minReplicas 2 must be <= maxReplicas 1",
			}},
		{"bad drain time", "    signals: [{name: q, queue: {rabbitmq: {queues: [w]}, drainTime: soon}}]\n",
			[]string{`services.api.signals[0].queue.drainTime: must be a duration like 30s, 500ms or 5m, not "soon" (line 7)`}},
		{"a scalar where a mapping goes", "    signals: [{name: cpu, utilization: cpu}]\n",
			[]string{`services.api.signals[0].utilization: must be a mapping of fields, not "cpu" (line 7)`}},
		{"a partly bad signal keeps its other checks", "    signals: [{name: cpu, utilization: {resource: gpu, targetPercent: lots}}]\n",
			[]string{
				`services.api.signals[0].utilization.targetPercent: must be a whole number, not "lots" (line 7)`,
				"services.api.signals[0].utilization.resource: must be cpu or memory",
			}},
		{"not a boolean", "    pinned: yes\n",
			[]string{`services.api.pinned: must be true or false, not "yes" (line 7)`}},
		{"not a list", "    dependsOn: main\n",
			[]string{`services.api.dependsOn: must be a list, not "main" (line 7)`}},
		{"NaN", "    signals: [{name: q, tolerance: .nan, queue: {rabbitmq: {queues: [w]}, drainTime: 1m}}]\n",
			[]string{"services.api.signals[0].tolerance: must be a finite number, not .nan (line 7)"}},
		{"key set twice", "    maxReplicas: 4\n    maxReplicas: 5\n",
			[]string{"services.api.maxReplicas: set twice (lines 7 and 8) (line 8)"}},
		{"misspelt field", "    maxReplica: 4\n",
			[]string{"services.api.maxReplica: unknown field; did you mean maxReplicas? (line 7)"}},
		{"wrong case", "    MaxReplicas: 4\n",
			[]string{"services.api.MaxReplicas: unknown field; did you mean maxReplicas? (line 7)"}},
		{"anchors and merges", "    behavior: &b {tolerance: 0.2}\n  web:\n    <<: {minReplicas: 1, maxReplicas: 3}\n    maxReplicas: 4\n    behavior: *b\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(decodeHead + tc.body))
			var got []string
			var list Errors
			if errors.As(err, &list) {
				for _, e := range list {
					got = append(got, e.Error())
				}
			} else if err != nil {
				got = []string{err.Error()}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// Verifies values decode to what they say: 4.0 is 4, a merged mapping's
// keys apply unless the mapping sets them itself, an alias repeats its
// anchor.
func TestDecodeValues(t *testing.T) {
	cfg, err := Parse([]byte(decodeHead + "    maxReplicas: 4.0\n    behavior: &b {tolerance: 0.2}\n  web:\n    <<: {minReplicas: 1, maxReplicas: 3}\n    maxReplicas: 5\n    behavior: *b\n"))
	if err != nil {
		t.Fatal(err)
	}
	api, web := cfg.Policy.Services[0], cfg.Policy.Services[1]
	if api.MaxReplicas != 4 || web.MinReplicas != 1 || web.MaxReplicas != 5 || web.Behavior.Tolerance != 0.2 {
		t.Errorf("api max %d; web min %d max %d tolerance %g; want 4; 1, 5, 0.2", api.MaxReplicas, web.MinReplicas, web.MaxReplicas, web.Behavior.Tolerance)
	}
}

// Verifies a document that is not a mapping of fields is refused as a
// whole, saying what it is.
func TestDecodeRefusesNonMappings(t *testing.T) {
	for in, want := range map[string]string{
		"- a\n- b\n":  "config must be a mapping of fields",
		"hello\n":     "config must be a mapping of fields",
		"~\n":         "config is empty",
		"# nothing\n": "config is empty",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", in, err, want)
		}
	}
}
