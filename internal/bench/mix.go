package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/tollguard/tollguard/internal/demo"
	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// Setups are the protections the side-by-side run compares, in order.
var Setups = []string{"none", "kamailio", "tollguard"}

// KamailioEdgeAddr is where the Kamailio edge listens during the run.
var KamailioEdgeAddr = netip.MustParseAddrPort("127.0.0.5:5060")

// RunMixes plays the mix against the demo PBX behind each set-up in turn:
// nothing, Kamailio as the usual edge firewall, and the embedded guard.
// progress receives one line per set-up.
func RunMixes(ctx context.Context, m sim.Mix, progress io.Writer) (map[string]*sim.MixReport, error) {
	out := map[string]*sim.MixReport{}
	for _, setup := range Setups {
		fmt.Fprintf(progress, "mix %s: %s ...\n", m.Name, setup)
		rep, err := runSetup(ctx, setup, m)
		if err != nil {
			return out, fmt.Errorf("bench: %s: %w", setup, err)
		}
		out[setup] = rep
	}
	return out, nil
}

func runSetup(ctx context.Context, setup string, m sim.Mix) (*sim.MixReport, error) {
	log := slog.New(slog.DiscardHandler)
	lab, stop, err := demo.StartLab(ctx, setup == "tollguard", log)
	if err != nil {
		return nil, err
	}
	defer stop()
	switch setup {
	case "none":
		lab.Direct = lab.Target // latency: the PBX against itself
	case "kamailio":
		k, err := testpeer.StartKamailioEdge(ctx, KamailioEdgeAddr, lab.Target, 2)
		if err != nil {
			return nil, err
		}
		defer k.Stop()
		lab.Direct, lab.Target = lab.Target, k.Addr
	}
	return sim.RunMix(ctx, lab, m)
}

// WriteMixTable writes the side-by-side Markdown table of RunMixes.
func WriteMixTable(w io.Writer, reps map[string]*sim.MixReport) error {
	var b strings.Builder
	b.WriteString("| | " + strings.Join(Setups, " | ") + " |\n|---|" + strings.Repeat("---|", len(Setups)) + "\n")
	row := func(name string, f func(r *sim.MixReport) string) {
		b.WriteString("| " + name + " |")
		for _, s := range Setups {
			v := "—"
			if r := reps[s]; r != nil {
				v = f(r)
			}
			b.WriteString(" " + v + " |")
		}
		b.WriteString("\n")
	}
	row("attack requests reaching the PBX", func(r *sim.MixReport) string {
		return fmt.Sprintf("%d of %d (%.2f %% stopped)", r.Attack.ReachedPBX, r.Attack.Sent, r.Attack.StoppedPct)
	})
	row("fraud calls connected", func(r *sim.MixReport) string { return fmt.Sprint(r.FraudCallsConnected) })
	row("legitimate operations failed", func(r *sim.MixReport) string { return fmt.Sprintf("%d of %d", r.Legit.Failed, r.Legit.Sent) })
	row("added latency p50 / p99", func(r *sim.MixReport) string {
		if r.LatencyAddedMs == nil || r.LatencyAddedMs.Lost == r.LatencyAddedMs.Requests {
			return "—"
		}
		return fmt.Sprintf("%.3f / %.3f ms", r.LatencyAddedMs.P50, r.LatencyAddedMs.P99)
	})
	row("through p50 / p99 (direct), latency requests lost", func(r *sim.MixReport) string {
		if r.LatencyAddedMs == nil {
			return "—"
		}
		l := r.LatencyAddedMs
		return fmt.Sprintf("%.3f / %.3f ms (%.3f / %.3f), %d of %d lost", l.TargetP50, l.TargetP99, l.DirectP50, l.DirectP99, l.Lost, l.Requests)
	})
	row("errors", func(r *sim.MixReport) string { return strings.Join(r.Errors, "; ") })
	if r := reps["none"]; r != nil {
		for _, name := range r.Order {
			row(name, func(r *sim.MixReport) string { return cell(r.Scenarios[name]) })
		}
	}
	// Ratios against the unprotected PBX.
	if base := reps["none"]; base != nil && base.Attack.ReachedPBX > 0 {
		row("attack reaching the PBX, ratio to none", func(r *sim.MixReport) string {
			return fmt.Sprintf("%.4f", float64(r.Attack.ReachedPBX)/float64(base.Attack.ReachedPBX))
		})
	}
	if k, t := reps["kamailio"], reps["tollguard"]; k != nil && t != nil && k.LatencyAddedMs != nil && t.LatencyAddedMs != nil && k.LatencyAddedMs.TargetP99 > 0 {
		fmt.Fprintf(&b, "\np99 through tollguard / through Kamailio: %.2f.\n", t.LatencyAddedMs.TargetP99/k.LatencyAddedMs.TargetP99)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell summarises one scenario: what reached the PBX of what was sent,
// and for the legitimate plays the failures.
func cell(o *sim.Outcome) string {
	switch {
	case o == nil:
		return "—"
	case o.Skipped != "":
		return "not run"
	case !o.Attack:
		return fmt.Sprintf("%d of %d failed", o.Failed, o.Sent)
	case !o.Requests:
		return fmt.Sprintf("%d calls connected", o.PBXCallsAnswered)
	case o.Failed > 0:
		return fmt.Sprintf("%d of %d reached, victim failed %d", o.ReachedPBX, o.Sent, o.Failed)
	}
	return fmt.Sprintf("%d of %d reached", o.ReachedPBX, o.Sent)
}
