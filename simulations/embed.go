package simulations

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed scenarios
var scenarioFiles embed.FS

// Scenarios holds the shipped scenario files (scenarios/*.yaml and what
// they reference), so the binary can run them from anywhere.
var Scenarios fs.FS = mustSub(scenarioFiles, "scenarios")

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}

// ScenarioNames lists the shipped scenarios by name, sorted.
func ScenarioNames() []string {
	entries, _ := fs.ReadDir(Scenarios, ".")
	var names []string
	for _, e := range entries {
		if !e.IsDir() && path.Ext(e.Name()) == ".yaml" {
			names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
		}
	}
	sort.Strings(names)
	return names
}

// LoadShipped loads a shipped scenario by name.
func LoadShipped(name string) (*Scenario, error) {
	return LoadScenarioFS(Scenarios, name+".yaml")
}
