package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/elmascale/elmascale/deploy"
)

// runDashboard prints the shipped dashboard. It is embedded rather than
// generated here so the daemon's binary does not carry the Grafana SDK; a
// test keeps the embedded file equal to what package dashboard generates.
func runDashboard(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the dashboard JSON to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if *out == "" {
		_, err = stdout.Write(deploy.Dashboard)
	} else {
		err = os.WriteFile(*out, deploy.Dashboard, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: %v\n", err)
		return 1
	}
	return 0
}
