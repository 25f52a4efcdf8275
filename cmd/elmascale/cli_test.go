package main

import (
	"strings"
	"testing"

	"github.com/elmascale/elmascale/internal/version"
)

// Verifies help, version and completion: each exits 0 and prints what was
// asked for, on stdout.
func TestHelpVersionCompletion(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"top-level help", []string{"--help"}, []string{"Available Commands:", "recommend", "simulate", "completion"}},
		{"no arguments", nil, []string{"Available Commands:"}},
		{"help run", []string{"help", "run"}, []string{"elmascale run [flags]", "--demo-speed", "--health-probe-bind-address"}},
		{"run --help", []string{"run", "--help"}, []string{"elmascale run [flags]", "--interval duration", "--mode string"}},
		{"recommend -h", []string{"recommend", "-h"}, []string{"-o, --output string"}},
		{"simulate help names the policies", []string{"help", "simulate"}, []string{"latency-hpa", "oracle", "--out string"}},
		{"--version", []string{"--version"}, []string{version.Version}},
		{"version", []string{"version"}, []string{version.Version}},
		{"bash completion", []string{"completion", "bash"}, []string{"bash completion", "__elmascale"}},
		{"flag values complete", []string{"__complete", "run", "--log-level", ""}, []string{"debug", "warn"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// Verifies that a wrong command line exits 2, names the flag or argument
// at fault and points at --help; values that used to be taken silently
// (a negative interval or speed, an unknown log level) are among them.
func TestCommandLineErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"run", "--frobnicate"}, "unknown flag: --frobnicate"},
		{"one-dash long flag", []string{"validate", "-config", "x.yaml"}, "unknown shorthand flag: 'c' in -config (long flags take two dashes: --config)"},
		{"positional argument", []string{"validate", "x.yaml"}, `unexpected argument "x.yaml"`},
		{"negative interval", []string{"run", "--interval=-1s"}, `invalid argument "-1s" for "--interval" flag: must be at least 1s`},
		{"sub-second interval", []string{"run", "--interval=500ms"}, `"--interval" flag: must be at least 1s`},
		{"negative demo speed", []string{"run", "--demo-speed=-5"}, `invalid argument "-5" for "--demo-speed" flag: must be a number above 0`},
		{"zero demo speed", []string{"run", "--demo-speed=0"}, `"--demo-speed" flag: must be a number above 0`},
		{"unknown log level", []string{"run", "--log-level=loud"}, `"--log-level" flag: must be debug, info, warn or error`},
		{"unknown log format", []string{"run", "--log-format=xml"}, `"--log-format" flag: must be auto, json or console`},
		{"negative demo duration", []string{"run", "--demo-duration=-1h"}, `"--demo-duration" flag: must be at least 1s`},
		{"not a duration", []string{"run", "--config-poll-interval=often"}, `"--config-poll-interval" flag: must be a duration`},
		{"renew deadline beyond the lease", []string{"run", "--leader-elect-renew-deadline=20s"}, "--leader-elect-renew-deadline (20s) must be shorter than --leader-elect-lease-duration (15s)"},
		{"unknown output format", []string{"recommend", "-o", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: must be table or json`},
		{"recommend without input", []string{"recommend"}, "--snapshot or a live source"},
		{"simulate without --out", []string{"simulate", "--scenario", "script-storm"}, "--out is required"},
		{"simulate without --scenario", []string{"simulate", "--out", "/tmp/x"}, "--scenario is required"},
		{"simulate without either", []string{"simulate"}, "--scenario and --out are required"},
		{"simulate with no seeds", []string{"simulate", "--scenario", "script-storm", "--out", "/tmp/x", "--seeds", "0"}, "--seeds must be at least 1"},
	}
	t.Setenv("KUBECONFIG", "")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "--help' for usage") {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q with a pointer to --help", code, errOut, tc.want)
			}
			if out != "" {
				t.Errorf("a usage error printed to stdout: %q", out)
			}
		})
	}
}
