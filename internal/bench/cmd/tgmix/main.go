// Command tgmix plays the standard attack and legitimate-traffic mix
// against the demo PBX behind no protection, behind Kamailio as the usual
// edge firewall and behind tollguard, and prints the side-by-side Markdown
// table for BENCHMARKS.md. It needs Kamailio (Debian's kamailio package)
// and root for the forged-datagram scenario.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/bench"
	"github.com/tollguard/tollguard/internal/sim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tgmix:", err)
		os.Exit(1)
	}
}

func run() error {
	mixName := flag.String("mix", "standard", "mix to play: standard or short")
	out := flag.String("o", "", "also write the Markdown table to this file")
	flag.Parse()
	m, err := sim.MixByName(*mixName)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		for i := range m.Plays {
			if m.Plays[i].Name == "forged_scanner_datagram" {
				m.Plays[i].Skip = "needs root"
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the SIP stack's stray-retransmission logs
	start := time.Now()
	reps, err := bench.RunMixes(ctx, m, os.Stderr)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s, %d CPUs visible, %s/%s, %s, took %v. Command: `go run ./internal/bench/cmd/tgmix -mix %s`.\n\n",
		start.UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		time.Since(start).Round(time.Second), *mixName)
	if err := bench.WriteMixTable(&b, reps); err != nil {
		return err
	}
	fmt.Print(b.String())
	if *out != "" {
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}
