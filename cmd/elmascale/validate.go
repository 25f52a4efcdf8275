package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/elmascale/elmascale/config"
)

func newValidateCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration file and print every problem",
		Long: `Check a configuration file: strict YAML (an unknown field, a wrong type or a bad duration
is an error), then every rule. All problems are printed at once, each with its path, and the
exit code is 1 when there is any. Without --config the embedded ELMA365 preset is checked.`,
		Example: `  elmascale validate --config elmascale.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runValidate(path, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file to check (default: the embedded ELMA365 preset)")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

func runValidate(path string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		var list config.Errors
		if errors.As(err, &list) {
			fmt.Fprintf(stderr, "%s: %d problem(s):\n", displayName(path), len(list))
			for _, e := range list {
				fmt.Fprintf(stderr, "  %v\n", e)
			}
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", displayName(path), err)
		}
		return failedSilently()
	}
	pinned := 0
	for _, s := range cfg.Policy.Services {
		if s.Pinned {
			pinned++
		}
	}
	fmt.Fprintf(stdout, "%s: valid: %d services (%d pinned at one), %d metric definitions, interval %s\n",
		displayName(path), len(cfg.Services), pinned, len(cfg.Metrics), cfg.Interval)
	printTemplates(stdout, cfg)
	return nil
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
