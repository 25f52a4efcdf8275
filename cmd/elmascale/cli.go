package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/elmascale/elmascale/internal/version"
)

// newRootCommand builds the command tree. Each subcommand lives in its own
// file; its RunE returns nil, a usage error (exit 2) or a failure (exit 1).
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "elmascale",
		Short: "Load-driven autoscaler for ELMA365 and similar Kubernetes microservice platforms",
		Long: `elmascale finds the service that really is the bottleneck (worker script queues,
request latency, CPU and memory, custom PromQL) and sets replica counts within bounds,
keeping ELMA365's single-instance services at exactly one. Every decision carries its reason.

With no cluster and no --config, "elmascale run" drives the embedded simulated ELMA365
cluster, so the whole loop can be watched with one command.`,
		Version:       version.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newRunCommand(),
		newRecommendCommand(),
		newValidateCommand(),
		newDoctorCommand(),
		newImportCommand(),
		newSimulateCommand(),
		newDashboardCommand(),
		newVersionCommand(),
	)
	for _, c := range root.Commands() {
		if c.Args == nil {
			c.Args = noArgs
		}
	}
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.Version)
			return nil
		},
	}
}

// exitError ends a command with a code. A nil err means the command has
// already said what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a wrong command line: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// failed reports a command that could not do its work: exit code 1.
func failed(err error) error { return &exitError{code: 1, err: err} }

// failedSilently ends with exit code 1 after the command printed the problem.
func failedSilently() error { return &exitError{code: 1} }

// exitCode prints err for the person at the terminal and maps it to the
// process exit code. Errors cobra returns itself (an unknown command, flag
// or argument, a bad flag value) are usage errors.
func exitCode(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	name := "elmascale"
	if cmd != nil && cmd.HasParent() {
		name = cmd.Name()
	}
	code := 2
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	if code == 2 && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// oneDashLong finds a long flag written with one dash in pflag's error.
var oneDashLong = regexp.MustCompile(`unknown shorthand flag: '.' in -([a-z][a-z0-9-]+)`)

// flagError adds the likely fix to an unknown -flag that is a --flag.
func flagError(cmd *cobra.Command, err error) error {
	if m := oneDashLong.FindStringSubmatch(err.Error()); m != nil && cmd.Flags().Lookup(m[1]) != nil {
		return fmt.Errorf("%w (long flags take two dashes: --%s)", err, m[1])
	}
	return err
}

// noArgs refuses positional arguments: every input is a flag.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: this command takes flags only", args[0])
	}
	return nil
}

// enumValue is a string flag that accepts one of a fixed set of values.
type enumValue struct {
	p       *string
	allowed []string
}

func (e *enumValue) String() string { return *e.p }
func (e *enumValue) Type() string   { return "string" }
func (e *enumValue) Set(s string) error {
	for _, a := range e.allowed {
		if s == a {
			*e.p = s
			return nil
		}
	}
	return fmt.Errorf("must be %s", orList(e.allowed))
}

// enumFlag defines a flag that accepts only the allowed values and
// completes them in the shell.
//
// The usage lists the allowed values unless it already says where to find
// them (a list that grows, such as the shipped scenarios).
func enumFlag(cmd *cobra.Command, p *string, name, shorthand, def string, allowed []string, usage string) {
	*p = def
	if !strings.HasSuffix(usage, ")") {
		usage += " (" + strings.Join(allowed, ", ") + ")"
	}
	cmd.Flags().VarP(&enumValue{p: p, allowed: allowed}, name, shorthand, usage)
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(allowed, cobra.ShellCompDirectiveNoFileComp))
}

func orList(s []string) string {
	switch len(s) {
	case 0:
		return "nothing"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// durationValue is a duration flag with a lower bound; zeroMeans, when
// set, names what 0 (the unset value) stands for and allows it.
type durationValue struct {
	p         *time.Duration
	min       time.Duration
	zeroMeans string
}

func (d *durationValue) String() string {
	if *d.p == 0 && d.zeroMeans != "" {
		return ""
	}
	return d.p.String()
}
func (d *durationValue) Type() string { return "duration" }
func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("must be a duration like 30s, 5m or 1h30m")
	}
	if v == 0 && d.zeroMeans != "" {
		*d.p = 0
		return nil
	}
	if v < d.min || v <= 0 {
		if d.zeroMeans != "" {
			return fmt.Errorf("must be at least %s (or 0 for %s)", max(d.min, time.Nanosecond), d.zeroMeans)
		}
		return fmt.Errorf("must be at least %s", max(d.min, time.Nanosecond))
	}
	*d.p = v
	return nil
}

// durationFlag defines a duration flag of at least min (and more than 0).
// With zeroMeans, 0 is allowed and stands for it; it is the default then.
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name string, def, min time.Duration, zeroMeans, usage string) {
	*p = def
	if zeroMeans != "" {
		usage += " (0: " + zeroMeans + ")"
	}
	fs.Var(&durationValue{p: p, min: min, zeroMeans: zeroMeans}, name, usage)
}

// positiveFloat is a float flag that must be above zero and finite.
type positiveFloat struct{ p *float64 }

func (f positiveFloat) String() string { return strconv.FormatFloat(*f.p, 'g', -1, 64) }
func (f positiveFloat) Type() string   { return "float" }
func (f positiveFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1e12 {
		return errors.New("must be a number above 0")
	}
	*f.p = v
	return nil
}
