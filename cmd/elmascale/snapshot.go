package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/elmascale/elmascale/config"
	"github.com/elmascale/elmascale/policy"
)

// observationStatuses are the statuses a snapshot may give.
var observationStatuses = []policy.ObservationStatus{
	policy.StatusOK, policy.StatusMissing, policy.StatusFailed, policy.StatusStale, policy.StatusInvalid,
}

// readSnapshot reads a snapshot file strictly and checks it against the
// config: a snapshot the policy would quietly misread (an unknown status, a
// service or signal under a name the config does not have, no services at
// all) is refused with every problem listed, rather than decided on as if
// those services ran no replicas.
func readSnapshot(path string, cfg *config.Config) (policy.Snapshot, error) {
	var snap policy.Snapshot
	data, err := os.ReadFile(path)
	if err != nil {
		return snap, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return snap, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if dec.More() {
		return snap, fmt.Errorf("snapshot %s: more than one JSON value", path)
	}
	if problems := checkSnapshot(snap, cfg); len(problems) > 0 {
		return snap, fmt.Errorf("snapshot %s: %d problem(s):\n  %s", path, len(problems), strings.Join(problems, "\n  "))
	}
	return snap, nil
}

// checkSnapshot lists what is wrong with a snapshot for this config.
func checkSnapshot(snap policy.Snapshot, cfg *config.Config) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	known := make([]string, 0, len(cfg.Policy.Services))
	for _, s := range cfg.Policy.Services {
		known = append(known, s.Name)
	}
	if len(snap.Services) == 0 {
		add("services: none observed; the config has %d (%s), each needs found, currentReplicas, readyReplicas and its signals",
			len(known), strings.Join(known, ", "))
		return problems
	}
	for _, name := range sortedKeys(snap.Services) {
		obs := snap.Services[name]
		p := "services." + name
		spec, ok := serviceSpec(cfg, name)
		if !ok {
			add("%s: no such service in the config%s", p, didYouMean(name, known))
			continue
		}
		if obs.CurrentReplicas < 0 || obs.ReadyReplicas < 0 {
			add("%s: replicas must be >= 0 (currentReplicas %d, readyReplicas %d)", p, obs.CurrentReplicas, obs.ReadyReplicas)
		}
		signals := make([]string, 0, len(spec.Signals))
		for _, sg := range spec.Signals {
			signals = append(signals, sg.Name)
		}
		for _, sn := range sortedKeys(obs.Signals) {
			o := obs.Signals[sn]
			sp := p + ".signals." + sn
			if !slices.Contains(signals, sn) {
				add("%s: service %s has no such signal%s", sp, name, didYouMean(sn, signals))
				continue
			}
			if !slices.Contains(observationStatuses, o.Status) {
				add("%s.status: %q is not one of %s", sp, o.Status, joinStatuses())
			}
		}
	}
	for _, name := range known {
		if _, ok := snap.Services[name]; !ok {
			add("services.%s: not in the snapshot (the config has it; give found: false for a target that could not be read)", name)
		}
	}
	return problems
}

func serviceSpec(cfg *config.Config, name string) (policy.ServiceSpec, bool) {
	for _, s := range cfg.Policy.Services {
		if s.Name == name {
			return s, true
		}
	}
	return policy.ServiceSpec{}, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinStatuses() string {
	s := make([]string, len(observationStatuses))
	for i, st := range observationStatuses {
		s[i] = string(st)
	}
	return orList(s)
}

// didYouMean names the known name closest to a misspelt one, if any is
// close.
func didYouMean(name string, known []string) string {
	best := config.Suggest(name, known)
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// longNumber is a number too long to read at a glance.
var longNumber = regexp.MustCompile(`\d{10,}(?:\.\d+)?`)

// readableNumbers rewrites numbers of ten digits or more in a reason as
// four significant digits (1e+308 rather than 309 digits), so one absurd
// input cannot flood the table.
func readableNumbers(s string) string {
	return longNumber.ReplaceAllStringFunc(s, func(m string) string {
		f, err := strconv.ParseFloat(m, 64)
		if err != nil || math.IsInf(f, 0) {
			return m
		}
		return strconv.FormatFloat(f, 'g', 4, 64)
	})
}
