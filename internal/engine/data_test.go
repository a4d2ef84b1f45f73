package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/sim/fraudgen"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.json from the engine's output")

// want is the expected outcome of one data case: every decision, in order,
// and every verdict that is not a plain Pass (refusals, and passes flagged
// with a rule); any line not listed must pass unflagged.
type want struct {
	Decisions []decision.Decision `json:"decisions"`
	Verdicts  []lineVerdict       `json:"verdicts"`
}

type lineVerdict struct {
	Line   int    `json:"line"`
	Action string `json:"action"`
	Code   int    `json:"code,omitempty"`
	Rule   string `json:"rule"`
	// Policy and Mode: the call rule and enforce/warn/shadow.
	Policy string `json:"policy,omitempty"`
	Mode   string `json:"mode,omitempty"`
	// Counters and Loss: the counter values and the loss estimate.
	Counters string `json:"counters,omitempty"`
	Loss     string `json:"loss,omitempty"`
	// N is how many of a repeated datagram got this verdict (0 means 1).
	N int `json:"n,omitempty"`
}

type recorder struct {
	mu  sync.Mutex
	got []decision.Decision
}

func (r *recorder) Apply(d decision.Decision) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
}

// runCase replays dir/events.jsonl through an engine built from
// dir/config.yaml and returns what happened.
func runCase(t *testing.T, dir string) want {
	t.Helper()
	cfgData, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("config.yaml", cfgData)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadReplay(f)
	if err != nil {
		t.Fatal(err)
	}
	set := decision.NewSet()
	rec := &recorder{}
	opts := Options{Set: set, Apply: decision.Fanout{set, rec}, Now: func() time.Time { t.Fatal("engine read the wall clock"); return time.Time{} }}
	if fp, err := os.ReadFile(filepath.Join(dir, "fingerprints.yaml")); err == nil {
		opts.Fingerprints = fp
	}
	if b, err := os.ReadFile(filepath.Join(dir, "rates.yaml")); err == nil {
		opts.Rates = b
	}
	if b, err := os.ReadFile(filepath.Join(dir, "secrets.json")); err == nil {
		if err := json.Unmarshal(b, &opts.CallTokenSecrets); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "train.json")); err == nil {
		trainAnomaly(t, e, cfg, b)
	}
	var got want
	add := func(line int, v Verdict) {
		if v.Action == Pass && v.Rule == "" {
			return
		}
		if n := len(got.Verdicts); n > 0 {
			last := &got.Verdicts[n-1]
			if last.Line == line && last.Action == v.Action.String() && last.Rule == v.Rule && last.Code == v.Code && last.Policy == v.Policy {
				last.N = max(last.N, 1) + 1
				return
			}
		}
		got.Verdicts = append(got.Verdicts, lineVerdict{Line: line, Action: v.Action.String(), Code: v.Code, Rule: v.Rule, Policy: v.Policy, Mode: v.Mode, Counters: v.Counters, Loss: v.Loss})
	}
	for _, r := range recs {
		if r.Lockdown != nil {
			e.SetLockdown(*r.Lockdown)
			continue
		}
		if d := r.Datagram; d != nil {
			every, _ := time.ParseDuration(d.Every)
			for i := range d.Repeat {
				add(r.Line, e.Admit(d.Source.Addr(), d.Time.Add(time.Duration(i)*every)))
			}
			continue
		}
		add(r.Line, e.Check(context.Background(), r.Event))
	}
	got.Decisions = rec.got
	for i := range got.Decisions {
		got.Decisions[i].Reason = ""
	}
	return got
}

// trainAnomaly does what the daemon does at start: it learns a baseline
// and fits the anomaly model from the window's events, here the training
// period fraudgen generates for the options in train.json, and hands both
// to the engine.
func trainAnomaly(t testing.TB, e *Engine, cfg *config.Config, opts []byte) {
	t.Helper()
	var o fraudgen.Options
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatalf("train.json: %v", err)
	}
	var train bytes.Buffer
	if _, err := fraudgen.Generate(o, &train, io.Discard); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadReplay(&train)
	if err != nil {
		t.Fatal(err)
	}
	b, err := anomaly.NewBaseline(anomaly.Options{Config: cfg.Anomaly.Model()})
	if err != nil {
		t.Fatal(err)
	}
	tr := anomaly.NewTrainer(b)
	for _, r := range recs {
		tr.Observe(r.Event)
	}
	m, err := tr.Fit()
	if err != nil {
		t.Fatal(err)
	}
	e.Anomaly().Replace(b, m)
}

func TestData(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/events.jsonl")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no data cases: %v", err)
	}
	for _, p := range dirs {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := runCase(t, dir)
			wantPath := filepath.Join(dir, "want.json")
			if *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(wantPath, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatal(err)
			}
			var w want
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatalf("want.json: %v", err)
			}
			if !slices.EqualFunc(got.Decisions, w.Decisions, sameDecision) {
				gb, _ := json.MarshalIndent(got.Decisions, "", "  ")
				t.Errorf("decisions:\n%s\nwant:\n%s", gb, mustJSON(w.Decisions))
			}
			if !slices.Equal(got.Verdicts, w.Verdicts) {
				t.Errorf("verdicts:\n%s\nwant:\n%s", mustJSON(got.Verdicts), mustJSON(w.Verdicts))
			}
		})
	}
}

func sameDecision(a, b decision.Decision) bool {
	return a.Type == b.Type && a.Scope == b.Scope && a.Prefix == b.Prefix && a.Account == b.Account &&
		a.Origin == b.Origin && a.Rule == b.Rule && a.At.Equal(b.At) && a.Until.Equal(b.Until) && a.Count == b.Count
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
