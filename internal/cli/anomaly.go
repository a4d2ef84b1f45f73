package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/engine/anomaly/evaluate"
)

// runAnomaly is `tollguard anomaly evaluate --train F --test F [--json]`.
func runAnomaly(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("anomaly", flag.ContinueOnError)
	train := fs.String("train", "", "event `FILE` to learn normal from (one event per line, or `tollguard events --json --unmask` output)")
	test := fs.String("test", "", "event `FILE` to score, events after the training ones; \"label\": \"fraud\" marks fraud")
	asJSON := fs.Bool("json", false, "print JSON")
	threshold := fs.Float64("threshold", 0, "flag calls scoring at least `S` (default: --warn)")
	country := fs.String("country", "", "the PBX's own `COUNTRY` (ISO code) for what is international (default US)")
	warn := fs.Float64("warn", anomaly.DefaultWarn, "warn score, as the anomaly.warn key")
	block := fs.Float64("block", anomaly.DefaultBlock, "block score, as the anomaly.block key")
	window := fs.Duration("window", anomaly.DefaultWindow, "baseline window, as the anomaly.window key")
	seed := fs.Uint64("seed", 1, "forest seed")
	saveModel := fs.String("save-model", "", "write the trained model to `FILE`")
	show := fs.Int("show", 20, "list at most `N` flagged accounts (all in --json)")
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "evaluate" {
		return usagef("the only anomaly subcommand is evaluate")
	}
	if len(pos) > 1 {
		return usagef("unexpected argument %q", capString(pos[1], 40))
	}
	if *train == "" || *test == "" {
		return usagef("--train and --test are required")
	}
	if *threshold != 0 && !(*threshold > 0 && *threshold <= 1) {
		return usagef("--threshold must be between 0 and 1")
	}
	if *show < 0 {
		return usagef("--show must not be negative")
	}
	cfg := anomaly.Config{Warn: *warn, Block: *block, Window: *window, Seed: *seed, Country: strings.ToUpper(*country)}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return usagef("%v", err)
	}
	trainEv, err := readEventFile(*train)
	if err != nil {
		return err
	}
	testEv, err := readEventFile(*test)
	if err != nil {
		return err
	}
	rep, model, err := evaluate.Run(trainEv, testEv, evaluate.Options{Config: cfg, Threshold: *threshold})
	if err != nil {
		return fmt.Errorf("evaluating: %w", err)
	}
	if *saveModel != "" {
		if err := writeModelFile(*saveModel, model); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	printEvaluation(e, rep, *show)
	return nil
}

func readEventFile(path string) ([]evaluate.Labelled, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening events: %w", err)
	}
	defer f.Close()
	evs, err := evaluate.ReadEvents(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return evs, nil
}

func writeModelFile(path string, m *anomaly.Model) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	if err := anomaly.WriteModel(f, m); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	return nil
}

func printEvaluation(e *Env, rep *evaluate.Report, show int) {
	w := e.Stdout
	fmt.Fprintf(w, "trained on %d events (%d call attempts, %d accounts) in %.1fs; scored %d call attempts (%d accounts), %.1f µs each\n",
		rep.Train.Events, rep.Train.Attempts, rep.Train.Accounts, rep.Train.Seconds, rep.Test.Attempts, rep.Test.Accounts, rep.ScoreMicros)
	fmt.Fprintf(w, "%d accounts with a call scoring %.3f or more\n\n", len(rep.Flagged), rep.Threshold)
	for i, a := range rep.Flagged {
		if i == show {
			fmt.Fprintf(w, "… %d more (--show or --json for all)\n", len(rep.Flagged)-show)
			break
		}
		label := ""
		if rep.Labelled {
			label = "  normal"
			if a.Fraud {
				label = "  fraud: " + a.Pattern
			}
		}
		fmt.Fprintf(w, "%s  max %.3f  %d calls flagged%s\n", safeCell(capString(a.Account, 64)), a.MaxScore, a.Flagged, label)
		for _, c := range a.Calls {
			fmt.Fprintf(w, "  %s  %s  %.3f\n", fmtTime(c.Time, e.Loc), safeCell(capString(c.Destination, 32)), c.Score)
			for _, r := range c.Reasons {
				fmt.Fprintf(w, "      %s\n", safeText(r))
			}
		}
	}
	if !rep.Labelled {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w, "DETECTOR", "RECALL", "FPR", "PRECISION", "DETECTED", "FALSE+", "CALL-RECALL", "MEDIAN-CALLS", "MAX-CALLS")
	row := func(name string, m *evaluate.Metrics) {
		t.Row(name, f3(m.Recall), f3(m.FPR), f3(m.Precision), fmt.Sprintf("%d/%d", m.Detected, m.FraudAccounts),
			fmt.Sprintf("%d/%d", m.FalseAlarms, m.NormalAccounts), f3(m.CallRecall), strconv.FormatFloat(m.MedianCalls, 'f', 1, 64), strconv.Itoa(m.MaxCalls))
	}
	row(fmt.Sprintf("anomaly ≥ %.3f", rep.Threshold), rep.Anomaly)
	row("static (OpenSIPS-style)", rep.Static)
	t.Flush()
	if len(rep.Anomaly.Missed) > 0 {
		fmt.Fprintf(w, "missed by the anomaly detector: %s\n", strings.Join(rep.Anomaly.Missed, ", "))
	}
	fmt.Fprintln(w, "\nby pattern (anomaly / static):")
	for _, p := range sortedKeys(rep.Anomaly.Patterns) {
		fmt.Fprintf(w, "  %-18s %d/%d  %d/%d\n", p, rep.Anomaly.ByPattern[p], rep.Anomaly.Patterns[p], rep.Static.ByPattern[p], rep.Static.Patterns[p])
	}
	fmt.Fprintln(w, "\nthreshold sweep:")
	st := newTable(w, "THRESHOLD", "RECALL", "FPR", "PRECISION", "MEDIAN-CALLS")
	for _, m := range rep.Sweep {
		st.Row(f3(m.Threshold), f3(m.Recall), f3(m.FPR), f3(m.Precision), strconv.FormatFloat(m.MedianCalls, 'f', 1, 64))
	}
	st.Flush()
}

func f3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// safeText renders a reason for a terminal: whole (reasons quote what came
// from the network themselves), quoted when not printable, capped.
func safeText(s string) string {
	if !printable(s) {
		s = strconv.QuoteToASCII(s)
	}
	return capString(s, 400)
}
