package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/elmascale/elmascale/deploy"
)

// newDashboardCommand prints the shipped dashboard. It is embedded rather
// than generated here so the daemon's binary does not carry the Grafana
// SDK; a test keeps the embedded file equal to what package dashboard
// generates.
func newDashboardCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print the Grafana dashboard of scaling decisions (JSON)",
		Long: `Print the Grafana dashboard of scaling decisions (uid elmascale-decisions), the same file
as deploy/grafana/elmascale.json. Import it into Grafana with a Prometheus data source that
scrapes elmascale.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if out == "" {
				_, err = cmd.OutOrStdout().Write(deploy.Dashboard)
			} else {
				err = os.WriteFile(out, deploy.Dashboard, 0o644)
			}
			if err != nil {
				return failed(fmt.Errorf("write dashboard: %w", err))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the dashboard JSON to this file instead of standard output")
	_ = cmd.MarkFlagFilename("output", "json")
	return cmd
}
