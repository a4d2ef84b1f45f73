package evaluate

import (
	"bytes"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/sim/fraudgen"
)

// generated returns a small labelled set: 30 accounts, three weeks to train
// on, three days to test with one account per fraud pattern.
func generated(t testing.TB, noise bool) (train, test []Labelled) {
	t.Helper()
	var tr, te bytes.Buffer
	if _, err := fraudgen.Generate(fraudgen.Options{Seed: 1, Accounts: 30, TrainDays: 21, TestDays: 3, FraudPerPattern: 1, NoNoise: !noise}, &tr, &te); err != nil {
		t.Fatal(err)
	}
	train, err := ReadEvents(&tr)
	if err != nil {
		t.Fatal(err)
	}
	test, err = ReadEvents(&te)
	if err != nil {
		t.Fatal(err)
	}
	return train, test
}

func TestEveryPatternCaught(t *testing.T) {
	train, test := generated(t, false) // no harmless surprises: BENCHMARKS.md measures those
	rep, m, err := Run(train, test, Options{Config: anomaly.Config{Country: "GB", Window: 14 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if m == nil || !rep.Labelled || rep.Threshold != anomaly.DefaultWarn {
		t.Fatalf("model %v, labelled %v, threshold %v", m, rep.Labelled, rep.Threshold)
	}
	a := rep.Anomaly
	if a.NormalAccounts < 20 || a.FraudAccounts != len(fraudgen.Patterns) {
		t.Fatalf("%d normal and %d fraud accounts in the test set", a.NormalAccounts, a.FraudAccounts)
	}
	for _, p := range fraudgen.Patterns {
		if a.Patterns[p] != 1 {
			t.Errorf("pattern %s: %d accounts in the test set, want 1", p, a.Patterns[p])
		}
		if a.ByPattern[p] != 1 {
			t.Errorf("pattern %s not caught at %.2f", p, rep.Threshold)
		}
	}
	if a.FalseAlarms != 0 {
		t.Errorf("normal accounts flagged: %v", a.FalseNames)
	}
	if a.MedianCalls > 3 {
		t.Errorf("median calls until detection %.1f, want at most 3", a.MedianCalls)
	}
	for _, f := range rep.Flagged {
		if len(f.Calls) == 0 || len(f.Calls[0].Reasons) == 0 {
			t.Errorf("account %s flagged without reasons", f.Account)
		}
	}
	// The static thresholds miss the quiet patterns.
	if rep.Static.ByPattern["premium_drip"] != 0 || rep.Static.ByPattern["new_country"] != 0 {
		t.Errorf("static thresholds caught quiet patterns: %v", rep.Static.ByPattern)
	}
}
