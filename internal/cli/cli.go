// Package cli is tollguard's command line: the command table, help, flag
// parsing that allows flags after positional arguments, output helpers for
// tables and --json, and the client commands that talk to the daemon's
// admin API.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/safetext"
)

// Exit codes of Main.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed
	ExitUsage = 2 // bad command line
)

// Command is one subcommand.
type Command struct {
	// Name is the word after "tollguard".
	Name string
	// Args is the synopsis after the name: "IP [ACCOUNT] [--json]".
	Args string
	// Summary is one line for `tollguard help`.
	Summary string
	// Run parses args (everything after the name) and runs the command.
	// A *UsageError exits 2 and prints the command's synopsis; any other
	// error exits 1. Given -h, Run must print its usage and return
	// flag.ErrHelp without acting (Env.Parse does both); `tollguard help
	// NAME` relies on it.
	Run func(ctx context.Context, e *Env, args []string) error
}

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	// Stdin is read by commands that take input (user add
	// --password-stdin); nil reads as empty.
	Stdin io.Reader
	// Now is the clock; Loc is the zone times are shown in.
	Now func() time.Time
	Loc *time.Location
	// DefaultConfig overrides config.DefaultPath for client commands
	// (tests); empty means config.DefaultPath.
	DefaultConfig string
	// cmd is the command being run, for usage messages.
	cmd *Command
}

// UsageError is a bad command line.
type UsageError struct{ Msg string }

// Error returns the message.
func (e *UsageError) Error() string { return e.Msg }

// usagef returns a *UsageError.
func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// Main runs the tollguard command line args (without the program name),
// writing to stdout and stderr, and returns the exit code. extra adds
// commands the caller implements (serve, demo); they are listed in help and
// take precedence over built-in commands of the same name.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, extra ...Command) int {
	return run(ctx, &Env{Stdout: stdout, Stderr: stderr, Stdin: os.Stdin, Now: time.Now, Loc: time.Local}, args, extra)
}

// run is Main with an explicit Env (tests set the clock, zone and default
// config path).
func run(ctx context.Context, e *Env, args []string, extra []Command) int {
	cmds := commands(extra)
	if len(args) == 0 {
		printHelp(e.Stderr, cmds)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		printHelp(e.Stdout, cmds)
		return ExitOK
	case "help":
		if len(args) > 1 {
			if c := find(cmds, args[1]); c != nil {
				return run(ctx, e, []string{c.Name, "-h"}, extra)
			}
			fmt.Fprintf(e.Stderr, "tollguard: unknown command %q\n", args[1])
			return ExitUsage
		}
		printHelp(e.Stdout, cmds)
		return ExitOK
	}
	c := find(cmds, name)
	if c == nil {
		fmt.Fprintf(e.Stderr, "tollguard: unknown command %q (see `tollguard help`)\n", capString(name, 40))
		return ExitUsage
	}
	e.cmd = c
	err := c.Run(ctx, e, args[1:])
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.Stderr, "tollguard %s: %s\n", c.Name, safeMessage(ue.Msg))
		fmt.Fprintf(e.Stderr, "usage: tollguard %s %s\n", c.Name, c.Args)
		return ExitUsage
	default:
		// The daemon's answer may quote what a client sent: escaped.
		fmt.Fprintf(e.Stderr, "tollguard %s: %s\n", c.Name, safeMessage(err.Error()))
		return ExitError
	}
}

// commands returns the table with extra merged in (extra wins on a name).
func commands(extra []Command) []Command {
	out := append([]Command(nil), extra...)
	for _, c := range builtin() {
		if find(extra, c.Name) == nil {
			out = append(out, c)
		}
	}
	return out
}

func find(cmds []Command, name string) *Command {
	for i := range cmds {
		if cmds[i].Name == name {
			return &cmds[i]
		}
	}
	return nil
}

func printHelp(w io.Writer, cmds []Command) {
	fmt.Fprintln(w, "tollguard protects SIP servers against toll fraud.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: tollguard COMMAND [ARGS] [FLAGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.Name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `tollguard help COMMAND` or `tollguard COMMAND -h` for a command's flags.")
}

// printUsage prints a command's synopsis and its flags.
func printUsage(w io.Writer, c *Command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: tollguard %s %s\n\n%s\n", c.Name, c.Args, c.Summary)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// ParseNoArgs is Parse for a command that takes flags only: a positional
// argument is a usage error.
func (e *Env) ParseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", capString(pos[0], 40))
	}
	return nil
}

// Parse parses args with fs, allowing flags before, between and after
// positional arguments ("unban 1.2.3.4 --json"); "--" ends flag parsing.
// It returns the positional arguments. -h prints the command's usage to
// e.Stdout and returns flag.ErrHelp; a bad flag returns a *UsageError.
func (e *Env) Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if e.cmd != nil {
					printUsage(e.Stdout, e.cmd, fs)
				}
				return nil, flag.ErrHelp
			}
			return nil, &UsageError{Msg: err.Error()}
		}
		rest := fs.Args()
		// fs.Parse stops at "--" and consumes it; everything after is
		// positional. Detect it by comparing with what was left.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// safeMessage returns an error message as it is unless it holds a control
// or bidi character other than a newline (a daemon's answer may quote what
// a client sent); then each line is escaped (safetext.Escape).
func safeMessage(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r != '\n' && safetext.Unsafe(r) }) < 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safetext.Escape(l)
	}
	return strings.Join(lines, "\n")
}
