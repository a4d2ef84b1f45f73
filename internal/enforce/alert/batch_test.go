package alert

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

func banFrom(i int) Alert {
	return Alert{Kind: KindBan, Addr: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), Rule: "scanner", For: time.Hour}
}

// A 1,000-source attack within a second is one message at once and one
// summary with the count when the group interval ends.
func TestBatcherBurst(t *testing.T) {
	b := newBatcher(10*time.Minute, time.Minute, 20)
	var sent []*Message
	for i := range 1000 {
		if m := b.add(banFrom(i), t0.Add(time.Duration(i)*time.Millisecond)); m != nil {
			sent = append(sent, m)
		}
	}
	if len(sent) != 1 || sent[0].Count != 1 || sent[0].Alerts[0].Addr != banFrom(0).Addr {
		t.Fatalf("burst sent %d messages at once, want the first alone: %+v", len(sent), sent)
	}
	if due := b.due(t0.Add(30 * time.Second)); len(due) != 0 {
		t.Fatalf("summary before the interval ended: %+v", due)
	}
	due := b.due(t0.Add(61 * time.Second))
	if len(due) != 1 {
		t.Fatalf("got %d summaries, want 1", len(due))
	}
	s := due[0]
	if s.Count != 999 || len(s.Alerts) != maxExamples || s.Rules["scanner"] != 999 || s.Severity != Warning {
		t.Errorf("summary: count %d, %d examples, rules %v, severity %v", s.Count, len(s.Alerts), s.Rules, s.Severity)
	}
	if b.suppressed != 999 {
		t.Errorf("suppressed %d, want 999", b.suppressed)
	}
	if due := b.due(t0.Add(10 * time.Minute)); len(due) != 0 {
		t.Errorf("a second summary with nothing new: %+v", due)
	}
	// Quiet for an interval: the next ban goes out alone again.
	if m := b.add(banFrom(2000), t0.Add(11*time.Minute)); m == nil || m.Count != 1 {
		t.Errorf("after a quiet interval the next alert was held: %+v", m)
	}
}

func TestBatcherDedupe(t *testing.T) {
	b := newBatcher(10*time.Minute, time.Minute, 20)
	a := Alert{Kind: KindUpstreamDown, Target: "udp://127.0.0.1:5080"}
	if b.add(a, t0) == nil {
		t.Fatal("first alert held")
	}
	for i := range 100 {
		b.add(a, t0.Add(time.Duration(i)*time.Second))
	}
	if due := b.due(t0.Add(5 * time.Minute)); len(due) != 0 {
		t.Errorf("repeats of one alert made a summary: %+v", due)
	}
	back := a
	back.Resolved = true
	b.add(back, t0.Add(6*time.Minute))
	if m := b.add(a, t0.Add(11*time.Minute)); m == nil {
		t.Error("the same outage after the dedupe window was held")
	}
}

// Each kind is its own group; the rate limit caps messages and keeps the
// rest for later, most severe first.
func TestBatcherRateLimit(t *testing.T) {
	b := newBatcher(time.Minute, time.Minute, 2)
	var n int
	kinds := []Kind{KindBan, KindBlockedCall, KindCompromised, KindSpend, KindLockdown}
	for i, k := range kinds {
		if b.add(Alert{Kind: k, Account: fmt.Sprint(i)}, t0) != nil {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d messages at once, want the rate limit of 2", n)
	}
	due := b.due(t0.Add(61 * time.Second)) // 2 tokens refilled
	if len(due) != 2 || due[0].Severity != Critical {
		t.Fatalf("due: %d messages, first %+v", len(due), due)
	}
	if due := b.due(t0.Add(92 * time.Second)); len(due) != 1 {
		t.Errorf("the last held kind: %d messages, want 1", len(due))
	}
}
