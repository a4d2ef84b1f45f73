package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tollguard/tollguard/internal/api"
)

// runCalls is `tollguard calls [--json] [--unmask]`.
func runCalls(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	cf := addClientFlags(fs)
	unmask := fs.Bool("unmask", false, "show phone numbers in full (recorded as an admin action)")
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	if err := e.ParseNoArgs(fs, args); err != nil {
		return err
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	rep, err := c.Calls(ctx, *unmask)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	return printCalls(e, rep)
}

// printCalls prints the running calls as a table.
func printCalls(e *Env, rep api.CallsReply) error {
	fmt.Fprintf(e.Stdout, "Running calls: %d\n", len(rep.Calls))
	if len(rep.Calls) == 0 {
		return nil
	}
	t := newTable(e.Stdout, "CALL-ID", "DIRECTION", "ACCOUNT", "FROM", "TO", "SOURCE", "START", "ANSWER", "DURATION", "CUT AT")
	for _, c := range rep.Calls {
		cut := "-"
		if !c.Deadline.IsZero() {
			cut = fmtTime(c.Deadline, e.Loc)
		}
		t.Row(c.ID, c.Direction, c.Account, c.From, c.To, addrString(c.Source.String()), fmtTime(c.Start, e.Loc),
			fmtTime(c.Answer, e.Loc), fmtDuration(time.Duration(c.Duration)*time.Second), cut)
	}
	return t.Flush()
}

// runHangup is `tollguard hangup CALL-ID [--json]`.
func runHangup(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("hangup", flag.ContinueOnError)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one CALL-ID (see `tollguard calls`), got %d arguments", len(pos))
	}
	if err := api.CheckText("call id", pos[0], api.MaxCallIDLen); err != nil || pos[0] == "" {
		return usagef("not a call id: %q", capString(pos[0], 40))
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	rep, err := c.Hangup(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	fmt.Fprintf(e.Stdout, "hung up %s: both sides confirmed the BYE\n", safeCell(rep.ID))
	return nil
}
