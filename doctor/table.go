package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report as one table, a fix under each line that
// has one, and a summary.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSERVICE\tNAME\tSTATUS\tDETAIL")
	for _, c := range r.Checks {
		svc := c.Service
		if svc == "" {
			svc = "-"
		}
		status := string(c.Severity)
		if c.Severity == SeverityProblem {
			status = "PROBLEM"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Kind, svc, c.Name, status, oneLine(c.Detail))
		if c.Fix != "" && c.Severity != SeverityOK {
			fmt.Fprintf(tw, "\t\t\t\t  fix: %s\n", oneLine(c.Fix))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", r.Summary())
	return err
}

// Summary is one sentence: how many problems and warnings, in which
// namespace.
func (r Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d checks in namespace %s: ", len(r.Checks), r.Namespace)
	switch {
	case r.Problems == 0 && r.Warnings == 0:
		b.WriteString("all fine")
	default:
		fmt.Fprintf(&b, "%d problems, %d warnings", r.Problems, r.Warnings)
	}
	return b.String()
}

// Table is WriteTable as a string, for a log line.
func (r Report) Table() string {
	var b strings.Builder
	_ = r.WriteTable(&b)
	return b.String()
}
