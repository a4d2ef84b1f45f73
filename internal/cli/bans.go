package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/decision"
)

// runBans is `tollguard bans [--json]`.
func runBans(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("bans", flag.ContinueOnError)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	if err := e.ParseNoArgs(fs, args); err != nil {
		return err
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	sum, err := c.Bans(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, sum)
	}
	return printBanSummary(e, sum)
}

// printBanSummary prints the three sections of `tollguard bans`.
func printBanSummary(e *Env, s api.BanSummary) error {
	w := e.Stdout
	fmt.Fprintln(w, "Jail (register_failure):")
	if len(s.Jail) == 0 {
		fmt.Fprintln(w, "  no rules: failures are not counted")
	} else {
		t := newTable(w, "RULE", "FINDTIME", "MAXRETRY", "BANMODE", "BANTIME")
		for _, r := range s.Jail {
			t.Row(r.Name, fmtDuration(r.FindTime.D()), strconv.Itoa(r.MaxRetry), r.BanMode, fmtDuration(r.BanTime.D()))
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nRecent failures: %d\n", len(s.Failures))
	if len(s.Failures) > 0 {
		t := newTable(w, "TIME", "ADDRESS", "ACCOUNT", "CODE")
		for _, f := range s.Failures {
			code := ""
			if f.Code != 0 {
				code = strconv.Itoa(f.Code)
			}
			t.Row(fmtTime(f.Time, e.Loc), addrString(f.Address.String()), f.Account, code)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}

	if s.Cluster != "" {
		fmt.Fprintf(w, "\nCluster: %s\n", s.Cluster)
	}
	fmt.Fprintf(w, "\nActive bans: %d\n", len(s.Bans))
	if len(s.Bans) > 0 {
		t := newTable(w, "TARGET", "SCOPE", "RULE", "SINCE", "EXPIRES", "LEFT", "REASON")
		for _, d := range s.Bans {
			t.Row(d.Target(), string(d.Scope), d.Rule, fmtTime(d.At, e.Loc), fmtTime(d.Until, e.Loc), fmtLeft(d.Until, s.Now), d.Reason)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// addrString shows an invalid (absent) address as empty.
func addrString(s string) string {
	if s == "invalid IP" {
		return ""
	}
	return s
}

// runBan is `tollguard ban IP [--account A] [--for D] [--reason R]`.
func runBan(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("ban", flag.ContinueOnError)
	cf := addClientFlags(fs)
	account := fs.String("account", "", "ban only this `ACCOUNT` from IP (ip_account scope)")
	dur := fs.String("for", "", "ban length `D`: 90m, 24h, 7d (default 24h)")
	reason := fs.String("reason", "", "`TEXT` recorded with the ban")
	asJSON := fs.Bool("json", false, "print the ban placed as JSON")
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one IP, got %d arguments", len(pos))
	}
	body := api.BanBody{IP: pos[0], Account: *account, For: *dur, Reason: *reason}
	// Check locally first, so a typo is reported without a round trip;
	// the daemon checks again.
	if _, err := body.Request(); err != nil {
		return usagef("%v", err)
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	rep, err := c.Ban(ctx, body)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	d := rep.Ban
	until := "never expires"
	if !d.Until.IsZero() {
		until = "until " + fmtTime(d.Until, e.Loc) + " (" + fmtLeft(d.Until, d.At) + ")"
	}
	fmt.Fprintf(e.Stdout, "banned %s (%s) %s\n", safeCell(d.Target()), d.Scope, until)
	return nil
}

// runUnban is `tollguard unban IP [ACCOUNT]`.
func runUnban(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("unban", flag.ContinueOnError)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the bans lifted as JSON")
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("want IP and an optional ACCOUNT, got %d arguments", len(pos))
	}
	ip, account := pos[0], ""
	if len(pos) == 2 {
		account = pos[1]
	}
	if _, err := api.ParseIP(ip); err != nil {
		return usagef("%v", err)
	}
	if err := api.CheckText("account", account, api.MaxAccountLen); err != nil {
		return usagef("%v", err)
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	rep, err := c.Unban(ctx, ip, account)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	return printLifted(e.Stdout, rep.Lifted)
}

// printLifted prints "lifted N ban(s):" and one line per decision.
func printLifted(w io.Writer, ds []decision.Decision) error {
	noun := "bans"
	if len(ds) == 1 {
		noun = "ban"
	}
	fmt.Fprintf(w, "lifted %d %s:\n", len(ds), noun)
	t := newTable(w, "TARGET", "SCOPE", "RULE", "REASON")
	for _, d := range ds {
		t.Row(d.Target(), string(d.Scope), d.Rule, d.Reason)
	}
	return t.Flush()
}
