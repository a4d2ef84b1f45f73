package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/engine/anomaly/evaluate"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/sim/fraudgen"
	"github.com/tollguard/tollguard/internal/store"
)

// lockedBuffer is a log destination safe for the guard's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAnomalyTrainsFlagsAndReloads: a guard started on a store holding
// three generated weeks of calls trains the model, saves it 0600, flags a
// night burst to +882 (shadow: the calls go through) and not an account's
// usual call; restarted, it loads the saved model instead of training; a
// model file others may read is refused.
func TestAnomalyTrainsFlagsAndReloads(t *testing.T) {
	ctx := t.Context()
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday
	var train bytes.Buffer
	if _, err := fraudgen.Generate(fraudgen.Options{Seed: 3, Accounts: 40, TrainDays: 21, TestDays: 1, FraudPerPattern: 1, Start: start, NoNoise: true}, &train, io.Discard); err != nil {
		t.Fatal(err)
	}
	evs, err := evaluate.ReadEvents(&train)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen, cfg.SIP.Upstream = nil, ""
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Anomaly.Country = "GB"
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The usual call: an attempt of the busiest account on the third
	// Monday, replayed a week later (same hour, number, phone).
	perAccount := map[string][]*event.CallAttempt{}
	for i, l := range evs {
		st.Record(l.Event)
		if i%10000 == 9999 { // Record drops what its queue cannot hold
			if err := st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if ca, ok := l.Event.(*event.CallAttempt); ok && ca.Time.Weekday() == time.Monday && ca.Time.After(start.AddDate(0, 0, 14)) {
			perAccount[ca.Account] = append(perAccount[ca.Account], ca)
		}
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var usual *event.CallAttempt
	for _, cas := range perAccount {
		if usual == nil || len(cas) > len(perAccount[usual.Account]) {
			usual = cas[len(cas)/2]
		}
	}
	victim := ""
	for a := range perAccount {
		if a != usual.Account && (victim == "" || a < victim) {
			victim = a
		}
	}

	now := start.AddDate(0, 0, 21).Add(3 * time.Hour) // Monday 03:00 after the three weeks
	var logs lockedBuffer
	run := func() (*Guard, func()) {
		t.Helper()
		gctx, cancel := context.WithCancel(ctx)
		g, err := New(gctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- g.Run(gctx) }()
		<-g.Ready()
		return g, func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}

	g, stop := run()
	path := filepath.Join(cfg.DataDir, anomalyModelFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("model not saved: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("model file mode %04o, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "anomaly model trained") || g.eng.Anomaly().Model() == nil {
		t.Fatalf("no model trained:\n%s", logs.String())
	}
	// A retrain swaps a new model in and saves it; scoring goes on.
	first := g.eng.Anomaly().Model()
	if err := g.retrainOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if m := g.eng.Anomaly().Model(); m == nil || m == first || !m.Trained().Equal(first.Trained()) {
		t.Fatalf("retrain: model %p (trained %v), before %p (trained %v)", m, m.Trained(), first, first.Trained())
	}
	if fi, err = os.Stat(path); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("185.220.100.7:5060")
	var flagged engine.Verdict
	for i := range 5 {
		ca := &event.CallAttempt{Meta: event.Meta{Time: now.Add(time.Duration(i) * time.Minute), Source: src, Transport: "udp"},
			SIP:     event.SIP{Method: "INVITE", FromUser: victim, AuthUser: victim, HasCredentials: true, UserAgent: "Zoiper rv2.10.20"},
			Account: victim, Destination: fmt.Sprintf("+88216000%04d", i)}
		v := g.eng.Check(ctx, ca)
		if v.Action != engine.Pass {
			t.Fatalf("shadow mode refused a call: %+v", v)
		}
		if v.Rule == anomaly.Name {
			flagged = v
			break
		}
	}
	if flagged.Rule != anomaly.Name || !strings.Contains(flagged.Reason, "+882") {
		t.Fatalf("night burst to +882 of %s not flagged with reasons: %+v", victim, flagged)
	}
	again := *usual
	again.Time = usual.Time.AddDate(0, 0, 7)
	if v := g.eng.Check(ctx, &again); v.Rule != "" {
		t.Errorf("usual call of %s to %s flagged: %+v", usual.Account, usual.Destination, v)
	}
	stop()

	// Restart: the saved model is fresh (trained on events up to 21 days
	// in, retrain 24h), so it is loaded, not rebuilt.
	_, stop = run()
	stop()
	if !strings.Contains(logs.String(), "anomaly model loaded") {
		t.Errorf("restart did not load the model:\n%s", logs.String())
	}
	if fi2, err := os.Stat(path); err != nil || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("model file rewritten on restart: %v", err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a model file others may read was not refused: %v", err)
	}
}

// TestLearnWindowPages reads the window a page at a time, oldest first,
// and only the window: an attempt older than the window is not learnt.
func TestLearnWindowPages(t *testing.T) {
	ctx := t.Context()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 7 {
		at := now.Add(-time.Duration(i)*20*time.Hour - time.Minute)
		if i == 6 {
			at = now.Add(-30 * 24 * time.Hour) // beyond the window
		}
		st.Record(&event.CallAttempt{Meta: event.Meta{Time: at, Source: netip.MustParseAddrPort("198.51.100.1:5060")},
			Account: fmt.Sprint(1000 + i), Destination: "+442079460001"})
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	g := &Guard{st: st, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	defer func(p int) { anomalyPage = p }(anomalyPage)
	anomalyPage = 2
	b, _, err := g.learnWindow(ctx, anomaly.Config{Country: "GB"}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if b.Accounts() != 6 {
		t.Errorf("learnt %d accounts, want the 6 in the window", b.Accounts())
	}
}
