package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/tollguard/tollguard/internal/api"
)

// runLockdown is `tollguard lockdown on|off|status [--hangup] [--json]`.
func runLockdown(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("lockdown", flag.ContinueOnError)
	cf := addClientFlags(fs)
	hangup := fs.Bool("hangup", false, "with on: also end the running calls of accounts not on lockdown.allow_accounts")
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "on" && pos[0] != "off" && pos[0] != "status") {
		return usagef("want on, off or status")
	}
	if *hangup && pos[0] != "on" {
		return usagef("--hangup goes with on")
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	var st api.LockdownState
	if pos[0] == "status" {
		st, err = c.Lockdown(ctx)
	} else {
		st, err = c.SetLockdown(ctx, pos[0] == "on", *hangup)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, st)
	}
	state := "off: every account may place calls"
	if st.On {
		state = "ON: only lockdown.allow_accounts may place calls"
	}
	fmt.Fprintf(e.Stdout, "lockdown %s\n", state)
	if !st.Since.IsZero() {
		fmt.Fprintf(e.Stdout, "since %s\n", fmtTime(st.Since, e.Loc))
	}
	cells := make([]string, len(st.AllowAccounts))
	for i, a := range st.AllowAccounts {
		cells[i] = safeCell(a)
	}
	fmt.Fprintf(e.Stdout, "allowed accounts: %s\n", strings.Join(cells, ", "))
	if *hangup {
		fmt.Fprintf(e.Stdout, "running calls being ended: %d\n", st.Hangups)
	}
	return nil
}

// runToken is `tollguard token new ACCOUNT [--json]`.
func runToken(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "new" {
		return usagef("want: token new ACCOUNT")
	}
	if err := api.CheckText("account", pos[1], 128); err != nil || pos[1] == "" {
		return usagef("not an account: %q", capString(pos[1], 40))
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	rep, err := c.NewToken(ctx, pos[1])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	fmt.Fprintf(e.Stdout, "account: %s\nsecret:  %s\nuri:     %s\n", safeCell(rep.Account), rep.Secret, rep.URI)
	fmt.Fprintln(e.Stdout, "Add the secret to the caller's authenticator (or its dialler); each call carries the current code in the call token header, and each code works once.")
	if !rep.Listed {
		fmt.Fprintln(e.Stdout, "note: the account is not in call_tokens.accounts yet: its calls need no token until it is added")
	}
	return nil
}
