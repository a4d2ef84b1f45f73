package source

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/event"
)

type flaky struct {
	runs   int
	failN  int
	cancel context.CancelFunc
}

func (f *flaky) Stream(ctx context.Context, out chan<- event.Event) error {
	f.runs++
	out <- &event.Register{Account: "1001"}
	if f.runs > f.failN {
		f.cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("connection refused")
}

func TestRunRestartsWithBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &flaky{failN: 5, cancel: cancel}
	var waits []time.Duration
	reg := prometheus.NewRegistry()
	restarts, err := NewRestarts(reg)
	if err != nil {
		t.Fatal(err)
	}
	sv := &Supervisor{Name: "esl", Min: time.Second, Max: 4 * time.Second, Restarts: restarts,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	out := make(chan event.Event, 16)
	if err := sv.Run(ctx, f, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits = %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits = %v, want %v", waits, want)
		}
	}
	if f.runs != 6 || len(out) != 6 {
		t.Errorf("runs = %d, events = %d, want 6 and 6", f.runs, len(out))
	}
	if got := testutil.ToFloat64(restarts.WithLabelValues("esl")); got != 5 {
		t.Errorf("restarts = %v, want 5", got)
	}
}

func TestRunStopsDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flaky{failN: 100, cancel: func() {}}
	sv := &Supervisor{Name: "x", Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepCtx(ctx, d)
	}}
	if err := sv.Run(ctx, f, make(chan event.Event, 4)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if f.runs != 1 {
		t.Errorf("runs = %d, want 1", f.runs)
	}
}

// errSeq fails with each error in turn, then waits for ctx.
type errSeq struct {
	errs   []string
	cancel context.CancelFunc
}

func (e *errSeq) Stream(ctx context.Context, _ chan<- event.Event) error {
	if len(e.errs) == 0 {
		e.cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	msg := e.errs[0]
	e.errs = e.errs[1:]
	return errors.New(msg)
}

// A source that stays down is logged once per state change, not once per
// retry: refused three times, then a wrong password twice, gives two lines.
func TestRunLogsStateChangesOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := &errSeq{errs: []string{"connection refused", "connection refused", "connection refused",
		"authentication refused", "authentication refused"}, cancel: cancel}
	sv := &Supervisor{Name: "esl", Logger: log, Sleep: func(context.Context, time.Duration) error { return nil }}
	_ = sv.Run(ctx, s, make(chan event.Event))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "connection refused") || !strings.Contains(lines[1], "authentication refused") {
		t.Fatalf("log:\n%s\nwant one line per state change", buf.String())
	}
}
