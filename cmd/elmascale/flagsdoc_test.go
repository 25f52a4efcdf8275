package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite the flag reference in README.md from the registered flags")

const (
	readmePath     = "../../README.md"
	flagsBegin     = "<!-- BEGIN FLAGS: generated from the registered flags by `go test ./cmd/elmascale -run TestREADMEFlags -update`; edit the flags' usage in cmd/elmascale, not here -->"
	flagsEnd       = "<!-- END FLAGS -->"
	documentedDocs = "../../docs/config.md"
)

// documentedCommands are the commands the README's flag reference covers,
// in its order; completion and help are cobra's own.
var documentedCommands = []string{"run", "recommend", "validate", "doctor", "import", "simulate", "dashboard", "version"}

// flagReference renders every command's flags as the README shows them.
func flagReference(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString(flagsBegin + "\n")
	b.WriteString("Every command also takes `-h`, `--help`; `elmascale --version` prints the version, " +
		"`elmascale completion bash|zsh|fish|powershell` prints a shell completion script.\n")
	for _, name := range documentedCommands {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			panic(fmt.Sprintf("no command %s", name))
		}
		fmt.Fprintf(&b, "\n#### `elmascale %s`\n\n%s.\n", name, cmd.Short)
		var rows []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			names := "`--" + f.Name + "`"
			if f.Shorthand != "" {
				names = "`-" + f.Shorthand + "`, " + names
			}
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && !(f.Value.Type() != "string" && f.DefValue == "0") {
				def = "`" + f.DefValue + "`"
			}
			usage := strings.ReplaceAll(f.Usage, "|", `\|`)
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |", names, f.Value.Type(), def, usage))
		})
		if len(rows) == 0 {
			b.WriteString("\nNo flags.\n")
			continue
		}
		b.WriteString("\n| flag | type | default | meaning |\n| --- | --- | --- | --- |\n")
		b.WriteString(strings.Join(rows, "\n") + "\n")
	}
	b.WriteString(flagsEnd)
	return b.String()
}

// Verifies that the README's flag reference is exactly the registered
// flags, command by command, with their types, defaults and usage: no flag
// undocumented, none documented that does not exist.
func TestREADMEFlags(t *testing.T) {
	root := newRootCommand(io.Discard, io.Discard)
	want := flagReference(root)
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i, j := strings.Index(text, flagsBegin), strings.Index(text, flagsEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no flag reference between %q and %q", flagsBegin, flagsEnd)
	}
	got := text[i : j+len(flagsEnd)]
	if *update {
		if err := os.WriteFile(readmePath, []byte(text[:i]+want+text[j+len(flagsEnd):]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README.md's flag reference differs from the registered flags (-registered +README); run with -update:\n%s", diff)
	}
}

// Verifies that every --flag the README and docs/config.md mention, in
// prose and examples, is a flag some command registers (so renaming one
// cannot leave the docs behind), and that the docs write flags with two
// dashes, as the help prints them.
func TestDocumentedFlagsExist(t *testing.T) {
	root := newRootCommand(io.Discard, io.Discard)
	known := map[string]bool{"help": true, "version": true}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	flagRE := regexp.MustCompile(`(^|[\s\x60(\[])--([a-z][a-z0-9-]*)`)
	oneDash := regexp.MustCompile(`elmascale [a-z]+[^\n]*\s-([a-z][a-z-]{2,})\b`)
	for _, path := range []string{readmePath, documentedDocs} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var unknown []string
		for _, line := range ownLines(string(data)) {
			for _, m := range flagRE.FindAllStringSubmatch(line, -1) {
				if !known[m[2]] && !slices.Contains(unknown, m[2]) {
					unknown = append(unknown, m[2])
				}
			}
		}
		if len(unknown) > 0 {
			t.Errorf("%s mentions flags no command has: --%s", path, strings.Join(unknown, ", --"))
		}
		for _, m := range oneDash.FindAllStringSubmatch(string(data), -1) {
			if known[m[1]] {
				t.Errorf("%s writes -%s; the flag is --%s", path, m[1], m[1])
			}
		}
	}
}

// otherTool matches a command line of another tool (helm, kubectl, …), whose
// flags are not elmascale's.
var otherTool = regexp.MustCompile(`^\s*(\$ )?(helm|kubectl|microk8s|ctr|docker|make|go) `)

// ownLines drops the command lines of other tools, with their backslash
// continuations, so only elmascale's own flags are checked.
func ownLines(text string) []string {
	var out []string
	foreign := false
	for _, line := range strings.Split(text, "\n") {
		if !foreign {
			foreign = otherTool.MatchString(line)
		}
		if !foreign {
			out = append(out, line)
		}
		foreign = foreign && strings.HasSuffix(strings.TrimRight(line, " "), "\\")
	}
	return out
}
