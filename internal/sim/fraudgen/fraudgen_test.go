package fraudgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func generate(t *testing.T, o Options) (train, test []byte, s *Summary) {
	t.Helper()
	var tr, te bytes.Buffer
	s, err := Generate(o, &tr, &te)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Bytes(), te.Bytes(), s
}

func TestGenerateDeterministic(t *testing.T) {
	o := Options{Seed: 3, Accounts: 20, TrainDays: 7, TestDays: 2, FraudPerPattern: 1}
	a1, b1, _ := generate(t, o)
	a2, b2, _ := generate(t, o)
	if !bytes.Equal(a1, a2) || !bytes.Equal(b1, b2) {
		t.Error("the same options gave different files")
	}
	o.Seed = 4
	a3, _, _ := generate(t, o)
	if bytes.Equal(a1, a3) {
		t.Error("another seed gave the same file")
	}
}

func TestGenerateContent(t *testing.T) {
	train, test, s := generate(t, Options{Seed: 1, Accounts: 40, TrainDays: 7, TestDays: 4, FraudPerPattern: 1})
	if s.Accounts != 40 || s.Profiles["office"] == 0 || len(s.FraudAccounts) != len(Patterns) {
		t.Errorf("summary %+v", s)
	}
	type line struct {
		Kind    string    `json:"kind"`
		Time    time.Time `json:"time"`
		Account string    `json:"account"`
		Label   string    `json:"label"`
		Pattern string    `json:"pattern"`
	}
	read := func(data []byte) []line {
		var out []line
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%v: %s", err, sc.Text())
			}
			out = append(out, l)
		}
		return out
	}
	tr, te := read(train), read(test)
	if len(tr) != s.TrainEvents || len(te) != s.TestEvents {
		t.Errorf("%d/%d lines, summary says %d/%d", len(tr), len(te), s.TrainEvents, s.TestEvents)
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	split := start.AddDate(0, 0, 7)
	for i, l := range tr {
		if l.Label != "" {
			t.Fatalf("training line %d is labelled %q", i, l.Label)
		}
		if l.Time.Before(start) || !l.Time.Before(split) || (i > 0 && l.Time.Before(tr[i-1].Time)) {
			t.Fatalf("training line %d at %v out of order or range", i, l.Time)
		}
	}
	patterns := map[string]map[string]bool{}
	for i, l := range te {
		if l.Time.Before(split) || (i > 0 && l.Time.Before(te[i-1].Time)) {
			t.Fatalf("test line %d at %v out of order or range", i, l.Time)
		}
		if l.Label == "fraud" {
			if patterns[l.Pattern] == nil {
				patterns[l.Pattern] = map[string]bool{}
			}
			patterns[l.Pattern][l.Account] = true
		}
	}
	for _, p := range Patterns {
		if len(patterns[p]) != 1 {
			t.Errorf("pattern %s on %d accounts, want 1", p, len(patterns[p]))
		}
	}
	if !strings.Contains(string(test), `"kind":"call_attempt"`) || !strings.Contains(string(train), `"kind":"register"`) {
		t.Error("missing kinds")
	}
}

func TestGenerateErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"too few accounts": {Accounts: 10, FraudPerPattern: 5},
		"negative days":    {TrainDays: -1},
		"too many days":    {TrainDays: 400, TestDays: 7},
		"too many":         {Accounts: 70000},
	} {
		var a, b bytes.Buffer
		if _, err := Generate(o, &a, &b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestGenerateEvasion(t *testing.T) {
	train, _, s := generate(t, Options{Seed: 2, Accounts: 30, TrainDays: 22, TestDays: 3, FraudPerPattern: 1, Evasion: true})
	for p, want := range map[string]int{"mimic": 1, "warmup": 1, "spread": 4, "hijack": 1} {
		if s.FraudAccounts[p] != want {
			t.Errorf("%s on %d accounts, want %d", p, s.FraudAccounts[p], want)
		}
	}
	// The warm-up's premium calls are in the training file, unlabelled.
	if !bytes.Contains(train, []byte(`"destination":"+44909`)) {
		t.Error("no warm-up call in training")
	}
}
