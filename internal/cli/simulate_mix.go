package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/tollguard/tollguard/internal/sim"
)

// LabStarter starts an embedded guard (protect) or none in front of the
// demo PBX, for `simulate --scenario` without --target. main sets it (the
// guard package imports this one); nil means the command needs --target.
var LabStarter func(ctx context.Context, protect bool, log *slog.Logger) (sim.Lab, func() error, error)

// runMix runs a named mix against an embedded lab, or against target when
// it is set, and prints the protection report.
func runMix(ctx context.Context, e *Env, name, target, domain string, accounts []sim.Account, unprotected, asJSON bool) error {
	m, err := sim.MixByName(name)
	if err != nil {
		return usagef("--scenario: %v", err)
	}
	var lab sim.Lab
	if target != "" {
		t, err := sim.ParseTarget(target)
		if err != nil {
			return usagef("--target: %v", err)
		}
		if len(accounts) == 0 {
			accounts = sim.StandardAccounts()
		}
		lab = sim.Lab{Target: t, Domain: domain, Accounts: accounts}
	} else {
		if LabStarter == nil {
			return usagef("--scenario without --target needs the embedded guard, which this build lacks")
		}
		l, stop, err := LabStarter(ctx, !unprotected, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("simulate: starting the lab: %w", err)
		}
		defer stop()
		lab = l
	}
	if os.Geteuid() != 0 {
		for i, p := range m.Plays {
			if p.Name == "forged_scanner_datagram" {
				m.Plays[i].Skip = "needs root (a raw socket forges the source address); run as root to include it"
			}
		}
	}
	// The SIP stack logs stray retransmissions through the default
	// logger; they are noise in a report.
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	rep, err := sim.RunMix(ctx, lab, m)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	PrintMixReport(e.Stdout, rep)
	return nil
}

// PrintMixReport writes rep as a table for a terminal.
func PrintMixReport(w io.Writer, rep *sim.MixReport) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "mix %s against %s, %.1f s\n\n", rep.Mix, rep.Target, rep.ElapsedMs/1000)
	fmt.Fprintln(tw, "SCENARIO\tSENT\tREACHED PBX\tSTOPPED\tSILENCED\tTIME TO BAN\tCALLS\tFAILED\tNOTES")
	for _, name := range rep.Order {
		o := rep.Scenarios[name]
		if o.Skipped != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\tnot run: %s\n", name, o.Skipped)
			continue
		}
		reached, stopped := "?", "?"
		if o.ReachedPBX >= 0 {
			reached = fmt.Sprint(o.ReachedPBX)
			if o.Attack && o.Requests && o.Sent > 0 {
				stopped = fmt.Sprintf("%.1f %%", 100*float64(o.Sent-o.ReachedPBX)/float64(o.Sent))
			}
		}
		if !o.Attack || !o.Requests {
			stopped = "-"
		}
		silenced, ttb := "-", "-"
		if o.Attack && o.Sources > 0 {
			silenced = fmt.Sprintf("%d/%d", o.SourcesSilenced, o.Sources)
		}
		if o.TimeToBanMs != nil {
			ttb = fmt.Sprintf("%.0f ms", *o.TimeToBanMs)
		}
		calls := "-"
		if o.CallsAttempted > 0 || o.CallsConnected > 0 {
			calls = fmt.Sprintf("%d/%d", o.CallsConnected, o.CallsAttempted)
		}
		kind := "ops"
		if o.Requests {
			kind = "req"
		}
		fmt.Fprintf(tw, "%s\t%d %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, o.Sent, kind, reached, stopped, silenced, ttb, calls, o.Failed, strings.Join(o.Notes, "; "))
	}
	tw.Flush()
	fmt.Fprintln(w)
	if rep.Attack.ReachedPBX >= 0 {
		fmt.Fprintf(w, "attack requests: %d sent, %d reached the PBX, %.2f %% stopped (target ≥ 99.9 %%)\n",
			rep.Attack.Sent, rep.Attack.ReachedPBX, rep.Attack.StoppedPct)
	} else {
		fmt.Fprintf(w, "attack requests: %d sent, %d answered (the PBX behind the target cannot be seen from outside)\n",
			rep.Attack.Sent, rep.Attack.Answered)
	}
	fmt.Fprintf(w, "fraud calls connected: %d (target 0)\n", rep.FraudCallsConnected)
	fmt.Fprintf(w, "legitimate operations: %d, failed %d (target 0)\n", rep.Legit.Sent, rep.Legit.Failed)
	if l := rep.LatencyAddedMs; l != nil {
		fmt.Fprintf(w, "added latency: p50 %.3f ms, p99 %.3f ms (target p99 < 1 ms; through %.3f/%.3f ms, direct %.3f/%.3f ms, %d requests, %d lost)\n",
			l.P50, l.P99, l.TargetP50, l.TargetP99, l.DirectP50, l.DirectP99, l.Requests, l.Lost)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
