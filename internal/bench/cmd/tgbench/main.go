// Command tgbench runs tollguard's end-to-end benchmarks: the real guard
// binary in front of a stateless responder, driven by the interleaving load
// generator and a banned-source flood, all on 127.0.0.0/8. It prints a
// Markdown table of the results against the project's targets. See
// BENCHMARKS.md at the repository root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tgbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o bench.Options
	guard := flag.String("guard", "", "tollguard binary to benchmark (default: build ./cmd/tollguard into a temp dir)")
	scen := flag.String("scenarios", strings.Join(bench.AllScenarios, ","), "comma-separated scenarios to run")
	rates := flag.String("rates", "1000,5000", "latency scenario rates, req/s")
	sweep := flag.String("sweep", "5000,10000,15000,20000,25000,30000,40000", "throughput scenario offered rates, req/s")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each latency and logging run")
	flag.IntVar(&o.Sources, "sources", 512, "loopback source addresses of the latency load")
	flag.DurationVar(&o.SweepStep, "step", 3*time.Second, "length of each throughput step")
	flag.IntVar(&o.RSSRequests, "rss-requests", 1_000_000, "requests sent before reading the guard's RSS")
	flag.IntVar(&o.RSSRate, "rss-rate", 0, "rate of the RSS run (default 60% of the sustained throughput)")
	flag.DurationVar(&o.FloodDuration, "flood-duration", 5*time.Second, "length of each flood phase")
	flag.IntVar(&o.GuardCPU, "guard-cpu", 1, "core the pinned guard runs on; -1 disables pinning")
	flag.IntVar(&o.DriverCPU, "driver-cpu", 0, "core the driver runs on while the guard is pinned")
	out := flag.String("o", "", "also write the Markdown report to this file")
	timeout := flag.Duration("timeout", 8*time.Minute, "abort the whole run after this long")
	flag.Parse()

	var err error
	o.Scenarios = strings.Split(*scen, ",")
	if o.Rates, err = ints(*rates); err != nil {
		return fmt.Errorf("-rates: %w", err)
	}
	if o.SweepRates, err = ints(*sweep); err != nil {
		return fmt.Errorf("-sweep: %w", err)
	}
	o.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	o.Guard = *guard
	if o.Guard == "" {
		dir, err := os.MkdirTemp("", "tgbench-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.Guard = filepath.Join(dir, "tollguard")
		b := exec.CommandContext(ctx, "go", "build", "-o", o.Guard, "github.com/tollguard/tollguard/cmd/tollguard")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("building the guard: %w", err)
		}
	}

	rep, rerr := bench.Run(ctx, o)
	if rep != nil {
		if err := rep.WriteMarkdown(os.Stdout); err != nil {
			return err
		}
		if *out != "" {
			f, err := os.Create(*out)
			if err != nil {
				return err
			}
			werr := rep.WriteMarkdown(f)
			if err := errors.Join(werr, f.Close()); err != nil {
				return err
			}
		}
	}
	return rerr
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}
