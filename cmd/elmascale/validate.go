package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/elmascale/elmascale/config"
)

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to check (default: the embedded ELMA365 preset)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		var list config.Errors
		if errors.As(err, &list) {
			fmt.Fprintf(stderr, "%s: %d problem(s):\n", displayName(*path), len(list))
			for _, e := range list {
				fmt.Fprintf(stderr, "  %v\n", e)
			}
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", displayName(*path), err)
		}
		return 1
	}
	pinned := 0
	for _, s := range cfg.Policy.Services {
		if s.Pinned {
			pinned++
		}
	}
	fmt.Fprintf(stdout, "%s: valid: %d services (%d pinned at one), %d metric definitions, interval %s\n",
		displayName(*path), len(cfg.Services), pinned, len(cfg.Metrics), cfg.Interval)
	return 0
}

// loadConfig reads a configuration file, or the embedded preset when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.ELMA365Preset()
	}
	return config.LoadFile(path)
}

func displayName(path string) string {
	if path == "" {
		return "embedded ELMA365 preset"
	}
	return path
}
