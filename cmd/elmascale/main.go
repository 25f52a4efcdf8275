// Command elmascale is the load-driven autoscaler for ELMA365 and similar
// Kubernetes microservice platforms.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/elmascale/elmascale/internal/version"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists every subcommand; each lives in its own file.
var commands = map[string]command{
	"validate":  {"check a configuration file and print every problem", runValidate},
	"recommend": {"compute decisions once from a snapshot file or live sources, change nothing", runRecommend},
	"version":   {"print the version", runVersion},
	"run":       {"run the autoscaling daemon against a cluster (apply or dry-run)", runRun},
	"import":    {"write an elmascale config equivalent to a namespace's HPAs and KEDA ScaledObjects", runImport},
	"dashboard": {"print the Grafana dashboard of scaling decisions (JSON)", runDashboard},
	"simulate":  {"score elmascale against HPA-, KEDA-style and static baselines and an oracle on a simulated ELMA365 cluster", runSimulate},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "elmascale: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: elmascale <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'elmascale <command> -h' for a command's flags.")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, version.Version)
	return 0
}
