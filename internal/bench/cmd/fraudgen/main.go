// Command fraudgen writes labelled event files for the anomaly detector:
// a training period of normal traffic and a test period with fraud
// patterns, in the replay format `tollguard anomaly evaluate` reads.
//
//	go run ./internal/bench/cmd/fraudgen -out /tmp/fraud -seed 1
//	tollguard anomaly evaluate --train /tmp/fraud/train.jsonl --test /tmp/fraud/test.jsonl
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tollguard/tollguard/internal/sim/fraudgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fraudgen:", err)
		os.Exit(1)
	}
}

func run() error {
	var o fraudgen.Options
	out := flag.String("out", ".", "directory for train.jsonl and test.jsonl")
	flag.Uint64Var(&o.Seed, "seed", 1, "random seed")
	flag.IntVar(&o.Accounts, "accounts", 300, "accounts")
	flag.IntVar(&o.TrainDays, "train-days", 28, "days of normal traffic to train on")
	flag.IntVar(&o.TestDays, "test-days", 7, "days of test traffic, with fraud")
	flag.IntVar(&o.FraudPerPattern, "fraud", 5, "accounts per fraud pattern")
	flag.BoolVar(&o.NoNoise, "no-noise", false, "no harmless surprises (new country, new network) in the test period")
	flag.BoolVar(&o.Evasion, "evasion", false, "add an attacker who knows the model: mimic, warmup, spread")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	tf, err := os.Create(filepath.Join(*out, "train.jsonl"))
	if err != nil {
		return err
	}
	defer tf.Close()
	sf, err := os.Create(filepath.Join(*out, "test.jsonl"))
	if err != nil {
		return err
	}
	defer sf.Close()
	sum, err := fraudgen.Generate(o, tf, sf)
	if err != nil {
		return err
	}
	if err := tf.Close(); err != nil {
		return err
	}
	if err := sf.Close(); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sum)
}
