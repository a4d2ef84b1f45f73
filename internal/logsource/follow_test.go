package logsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/event"
)

func failLine(n int) string {
	return fmt.Sprintf("2026-08-22 10:15:02.000001 97.63%% [WARNING] sofia_reg.c:1786 SIP auth failure (REGISTER) on sofia profile 'internal' for [%d@203.0.113.10] from ip 198.51.100.7\n", n)
}

type harness struct {
	t      *testing.T
	dir    string
	path   string
	state  string
	m      *Metrics
	out    chan event.Event
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, path: filepath.Join(dir, "freeswitch.log"), state: filepath.Join(dir, "state"), m: NewMetrics()}
	if err := os.Mkdir(h.state, 0o700); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) append(s string) {
	h.t.Helper()
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		h.t.Fatal(err)
	}
	f.Close()
}

func (h *harness) start(fromStart bool) {
	h.t.Helper()
	fl, err := New(Config{Type: TypeFreeSWITCH, Path: h.path, StateDir: h.state, Poll: 5 * time.Millisecond,
		FromStart: fromStart, Metrics: h.m, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.out, h.cancel, h.done = make(chan event.Event), cancel, make(chan error, 1)
	go func() { h.done <- fl.Stream(ctx, h.out) }()
	h.t.Cleanup(cancel)
}

func (h *harness) stop() error {
	h.cancel()
	return <-h.done
}

// next returns the account of the next event.
func (h *harness) next() string {
	h.t.Helper()
	select {
	case ev := <-h.out:
		return ev.(*event.AuthFailure).Account
	case err := <-h.done:
		h.t.Fatalf("stream ended: %v", err)
	case <-time.After(10 * time.Second):
		h.t.Fatal("no event")
	}
	return ""
}

func (h *harness) expect(accounts ...string) {
	h.t.Helper()
	for _, want := range accounts {
		if got := h.next(); got != want {
			h.t.Fatalf("account %s, want %s", got, want)
		}
	}
}

// waitOffset waits until the follower's saved offset reaches n bytes.
func (h *harness) waitOffset(n int64) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s, ok, _ := loadState(stateFile(h.state, h.path)); ok && s.Offset == n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("offset never reached %d", n)
}

func TestFollowAppendRotateTruncate(t *testing.T) {
	h := newHarness(t)
	h.append(failLine(1)) // before the start: not read (no state, not FromStart)
	h.start(false)
	h.waitOffset(int64(len(failLine(1))))
	h.append(failLine(2))
	h.expect("2")
	// A line written in two parts is read once, whole.
	l := failLine(3)
	h.append(l[:20])
	time.Sleep(20 * time.Millisecond)
	h.append(l[20:])
	h.expect("3")
	// Rotation: rename, more lines to the old file, then a new file.
	if err := os.Rename(h.path, h.path+".1"); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(h.path+".1", os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(failLine(4))
	f.Close()
	h.append(failLine(5))
	h.expect("4", "5")
	// Truncation (copytruncate): the file is emptied and written again.
	if err := os.Truncate(h.path, 0); err != nil {
		t.Fatal(err)
	}
	h.waitOffset(0)
	h.append(failLine(6))
	h.expect("6")
	if err := h.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream = %v", err)
	}
	if r := testutil.ToFloat64(h.m.reopens.WithLabelValues(TypeFreeSWITCH, "rotated")); r != 1 {
		t.Errorf("rotations = %v", r)
	}
	if r := testutil.ToFloat64(h.m.reopens.WithLabelValues(TypeFreeSWITCH, "truncated")); r != 1 {
		t.Errorf("truncations = %v", r)
	}
}

// After a restart no line is read twice and none written meanwhile is
// missed.
func TestFollowRestart(t *testing.T) {
	h := newHarness(t)
	h.append(failLine(1) + failLine(2))
	h.start(true)
	h.expect("1", "2")
	h.waitOffset(int64(2 * len(failLine(1))))
	h.stop()
	h.append(failLine(3))
	h.start(true)
	h.expect("3")
	select {
	case ev := <-h.out:
		t.Fatalf("extra event %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}
	h.stop()
	// Rotated while stopped: the new file is read from its start.
	os.Rename(h.path, h.path+".1")
	h.append(failLine(4))
	h.start(false)
	h.expect("4")
	h.stop()
}

// Cancelled in the middle of a batch, the follower saves the offset past
// the last line it delivered, so the rest is read after the restart.
func TestFollowCancelMidBatch(t *testing.T) {
	h := newHarness(t)
	h.append(failLine(1) + failLine(2) + failLine(3))
	h.start(true)
	h.expect("1")
	h.waitOffset(int64(3 * len(failLine(1)))) // saved before delivery
	h.stop()
	h.start(true)
	h.expect("2", "3")
	h.stop()
}

func TestFollowHostileFiles(t *testing.T) {
	h := newHarness(t)
	target := filepath.Join(h.dir, "secret")
	os.WriteFile(target, []byte(failLine(9)), 0o600)
	if err := os.Symlink(target, h.path); err != nil {
		t.Fatal(err)
	}
	h.start(true)
	if err := <-h.done; !errors.Is(err, ErrSymlink) {
		t.Errorf("symlinked log: %v, want ErrSymlink", err)
	}
	// A log replaced by a link while followed.
	os.Remove(h.path)
	h.append(failLine(1))
	h.start(true)
	h.expect("1")
	os.Rename(h.path, h.path+".1")
	os.Symlink(target, h.path)
	if err := <-h.done; !errors.Is(err, ErrSymlink) {
		t.Errorf("log replaced by a link: %v, want ErrSymlink", err)
	}
	// A huge line is skipped and counted; the lines around it are read.
	os.Remove(h.path)
	h.append(failLine(2) + strings.Repeat("A", 3*MaxLine) + "\n" + failLine(3))
	h.start(true)
	h.expect("2", "3")
	h.stop()
	if d := testutil.ToFloat64(h.m.dropped.WithLabelValues(TypeFreeSWITCH, dropTooLong)); d != 1 {
		t.Errorf("too_long drops = %v", d)
	}
	// A missing file is an error for the supervisor to retry.
	os.Remove(h.path)
	h.start(true)
	if err := <-h.done; err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("missing file: %v", err)
	}
}

func TestFollowDamagedState(t *testing.T) {
	h := newHarness(t)
	h.append(failLine(1))
	os.WriteFile(stateFile(h.state, h.path), []byte("{not json"), 0o600)
	h.start(true)
	h.expect("1")
	h.stop()
}

// A restart in the middle of an over-long line starts again at that line,
// so its tail, written to look like a security line, is never parsed.
func TestFollowRestartInsideLongLine(t *testing.T) {
	h := newHarness(t)
	h.append(failLine(1) + strings.Repeat("A", 2*MaxLine))
	h.start(true)
	h.expect("1")
	for testutil.ToFloat64(h.m.dropped.WithLabelValues(TypeFreeSWITCH, dropTooLong)) < 1 {
		time.Sleep(2 * time.Millisecond) // until it has read into the long line
	}
	h.stop()
	if s, _, _ := loadState(stateFile(h.state, h.path)); s.Offset != int64(len(failLine(1))) {
		t.Fatalf("offset %d saved inside the long line, want %d", s.Offset, len(failLine(1)))
	}
	forged := " [WARNING] sofia_reg.c:1786 SIP auth failure (REGISTER) on sofia profile 'internal' for [66@h] from ip 192.0.2.66\n"
	h.append(forged + failLine(2))
	h.start(true)
	h.expect("2")
	h.stop()
}
