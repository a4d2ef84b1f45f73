package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/engine/anomaly/evaluate"
	"github.com/tollguard/tollguard/internal/sim/fraudgen"
)

// fraudFiles writes a small labelled train/test pair.
func fraudFiles(t *testing.T) (train, test string) {
	t.Helper()
	dir := t.TempDir()
	var tr, te bytes.Buffer
	if _, err := fraudgen.Generate(fraudgen.Options{Seed: 1, Accounts: 30, TrainDays: 21, TestDays: 3, FraudPerPattern: 1, NoNoise: true}, &tr, &te); err != nil {
		t.Fatal(err)
	}
	train, test = filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "test.jsonl")
	if err := os.WriteFile(train, tr.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(test, te.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return train, test
}

func TestAnomalyEvaluate(t *testing.T) {
	train, test := fraudFiles(t)
	model := filepath.Join(t.TempDir(), "anomaly.model")
	e, out, errb := testEnv(t)
	if code := run(context.Background(), e, []string{"anomaly", "evaluate", "--train", train, "--test", test,
		"--country", "GB", "--window", "336h", "--save-model", model}, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	s := out.String()
	for _, want := range []string{"trained on", "fraud: night_burst", "never seen for this account",
		"anomaly ≥ 0.725", "static (OpenSIPS-style)", "6/6", "0/24", "threshold sweep", "premium_drip"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	f, err := os.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := anomaly.ReadModel(f); err != nil {
		t.Errorf("saved model: %v", err)
	}

	e, out, _ = testEnv(t)
	if code := run(context.Background(), e, []string{"anomaly", "evaluate", "--train", train, "--test", test, "--country", "GB", "--window", "336h", "--json"}, nil); code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var rep evaluate.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Labelled || rep.Anomaly.Recall != 1 || rep.Anomaly.FPR != 0 || rep.Static == nil || len(rep.Flagged) != 6 {
		t.Errorf("report: labelled %v, anomaly %+v, flagged %d", rep.Labelled, rep.Anomaly, len(rep.Flagged))
	}
}

func TestAnomalyEvaluateErrors(t *testing.T) {
	dir := t.TempDir()
	masked := filepath.Join(dir, "masked.json")
	os.WriteFile(masked, []byte(`{"masked":true,"records":[]}`), 0o600)
	short := filepath.Join(dir, "short.jsonl")
	os.WriteFile(short, []byte(`{"kind":"call_attempt","time":"2026-01-05T10:00:00Z","account":"1","destination":"+442079460001"}`), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"anomaly"}, ExitUsage, "only anomaly subcommand is evaluate"},
		{[]string{"anomaly", "train"}, ExitUsage, "only anomaly subcommand is evaluate"},
		{[]string{"anomaly", "evaluate", "--test", short}, ExitUsage, "--train and --test are required"},
		{[]string{"anomaly", "evaluate", "--train", short, "--test", short, "--warn", "2"}, ExitUsage, "anomaly.warn"},
		{[]string{"anomaly", "evaluate", "--train", short, "--test", short, "--threshold", "1.5"}, ExitUsage, "--threshold"},
		{[]string{"anomaly", "evaluate", "--train", short, "--test", short, "--show", "-1"}, ExitUsage, "--show"},
		{[]string{"anomaly", "evaluate", "--train", filepath.Join(dir, "absent"), "--test", short}, ExitError, "opening events"},
		{[]string{"anomaly", "evaluate", "--train", masked, "--test", short}, ExitError, "--unmask"},
		{[]string{"anomaly", "evaluate", "--train", short, "--test", short}, ExitError, "need at least 32"},
	} {
		e, _, errb := testEnv(t)
		if code := run(context.Background(), e, tc.args, nil); code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errb, tc.code, tc.msg)
		}
	}
}

// The synopsis names every flag `tollguard help anomaly` prints, and the
// reverse.
func TestAnomalyHelpMatchesFlags(t *testing.T) {
	e, out, _ := testEnv(t)
	if code := run(context.Background(), e, []string{"help", "anomaly"}, nil); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var flags []string
	for _, l := range strings.Split(out.String(), "\n") {
		if f, ok := strings.CutPrefix(l, "  -"); ok {
			flags = append(flags, strings.Fields(f)[0])
		}
	}
	c := find(builtin(), "anomaly")
	var named []string
	for _, m := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(c.Args, -1) {
		named = append(named, m[1])
	}
	slices.Sort(flags)
	slices.Sort(named)
	if len(flags) < 5 || !slices.Equal(flags, named) {
		t.Errorf("help prints flags %q, synopsis %q names %q", flags, c.Args, named)
	}
}
