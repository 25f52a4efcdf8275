package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/elmascale/elmascale/dashboard"
)

func runDashboard(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the dashboard JSON to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	data, err := dashboard.Build()
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: %v\n", err)
		return 1
	}
	if *out == "" {
		_, err = stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: %v\n", err)
		return 1
	}
	return 0
}
