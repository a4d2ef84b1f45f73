package greylist

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTable(t *testing.T, max int) *Table {
	t.Helper()
	tb, err := New(Config{MinDelay: 200 * time.Millisecond, MaxDelay: 32 * time.Second, Remember: 24 * time.Hour, IPv6Prefix: 64, MaxSources: max})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestRetransmissionPasses(t *testing.T) {
	tb := newTable(t, 1024)
	a := netip.MustParseAddr("192.0.2.10")
	if r := tb.Check(a, 7, t0); r != Held {
		t.Fatalf("first copy: %v, want held", r)
	}
	if r := tb.Check(a, 7, t0.Add(500*time.Millisecond)); r != Released {
		t.Fatalf("retransmission after T1: %v, want released", r)
	}
	// The address passed: a new transaction goes through at once, and
	// keeps doing so while it keeps sending.
	for i := range 3 {
		at := t0.Add(time.Duration(i+1) * 20 * time.Hour)
		if r := tb.Check(a, uint64(100+i), at); r != Passed {
			t.Fatalf("request %d after %v: %v, want passed", i, at.Sub(t0), r)
		}
	}
	// Silent for longer than remember: held once more.
	if r := tb.Check(a, 200, t0.Add(90*time.Hour)); r != Held {
		t.Fatalf("after remember: %v, want held", r)
	}
}

// TestFailWithdrawsRetransmittedPass: an attacker who retransmits only
// his first request passes; his first failure makes him a stranger again,
// so every later guess must be retransmitted too. A source Pass marked
// (authenticated) keeps passing through failures (a phone's typo).
func TestFailWithdrawsRetransmittedPass(t *testing.T) {
	tb := newTable(t, 1024)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	a := netip.MustParseAddr("192.0.2.20")
	tb.Check(a, 1, at(0))
	if r := tb.Check(a, 1, at(500)); r != Released {
		t.Fatalf("retransmission: %v, want released", r)
	}
	if r := tb.Check(a, 2, at(600)); r != Passed {
		t.Fatalf("next request: %v, want passed", r)
	}
	tb.Fail(a)
	if r := tb.Check(a, 3, at(700)); r != Held {
		t.Fatalf("a new request after a failure: %v, want held", r)
	}
	if r := tb.Check(a, 3, at(1200)); r != Released {
		t.Fatalf("its retransmission: %v, want released", r)
	}

	phone := netip.MustParseAddr("192.0.2.21")
	tb.Pass(phone, at(0))
	tb.Fail(phone)
	if r := tb.Check(phone, 1, at(100)); r != Passed {
		t.Fatalf("an authenticated source after a failure: %v, want passed", r)
	}
	tb.Fail(netip.MustParseAddr("192.0.2.22")) // unknown: nothing to withdraw, no slot taken
	if tb.Passes(netip.MustParseAddr("192.0.2.22"), at(0)) {
		t.Fatal("Fail passed an unknown source")
	}
}

func TestDuplicateIsNotARetransmission(t *testing.T) {
	tb := newTable(t, 1024)
	a := netip.MustParseAddr("192.0.2.11")
	tb.Check(a, 7, t0)
	for _, d := range []time.Duration{0, time.Millisecond, 199 * time.Millisecond} {
		if r := tb.Check(a, 7, t0.Add(d)); r != Held {
			t.Fatalf("copy after %v: %v, want held", d, r)
		}
	}
	// The duplicates did not move the first copy's time: the real
	// retransmission still passes.
	if r := tb.Check(a, 7, t0.Add(300*time.Millisecond)); r != Released {
		t.Fatalf("retransmission: %v, want released", r)
	}
}

func TestOtherTransactionOrTooLateIsHeld(t *testing.T) {
	tb := newTable(t, 1024)
	a := netip.MustParseAddr("192.0.2.12")
	tb.Check(a, 1, t0)
	if r := tb.Check(a, 2, t0.Add(time.Second)); r != Held {
		t.Fatalf("another transaction: %v, want held", r)
	}
	if r := tb.Check(a, 1, t0.Add(33*time.Second)); r != Held {
		t.Fatalf("copy after max delay: %v, want held", r)
	}
	// Too late starts over: a copy within the delays of that one passes.
	if r := tb.Check(a, 1, t0.Add(34*time.Second)); r != Released {
		t.Fatalf("copy after the restart: %v, want released", r)
	}
	// Another address never benefits.
	if r := tb.Check(netip.MustParseAddr("192.0.2.13"), 99, t0.Add(35*time.Second)); r != Held {
		t.Fatalf("neighbour: %v, want held", r)
	}
}

func TestIPv6GroupedByPrefix(t *testing.T) {
	tb := newTable(t, 1024)
	tb.Check(netip.MustParseAddr("2001:db8:1:2::1"), 5, t0)
	tb.Check(netip.MustParseAddr("2001:db8:1:2::1"), 5, t0.Add(time.Second))
	if !tb.Passes(netip.MustParseAddr("2001:db8:1:2::ffff"), t0.Add(2*time.Second)) {
		t.Fatal("an address in the same /64 is held")
	}
	if tb.Passes(netip.MustParseAddr("2001:db8:1:3::1"), t0.Add(2*time.Second)) {
		t.Fatal("another /64 passes")
	}
}

// A NAT with 20 phones booting at once: each sends its first REGISTER,
// then retransmits T1 later in the same order. The pending slots keep the
// first phones' transactions, so the first retransmission passes the
// address and every other phone with it.
func TestBusyOffice(t *testing.T) {
	tb := newTable(t, 1024)
	a := netip.MustParseAddr("198.51.100.7")
	for i := range 20 {
		if r := tb.Check(a, uint64(1000+i), t0.Add(time.Duration(i)*time.Millisecond)); r != Held {
			t.Fatalf("phone %d first copy: %v", i, r)
		}
	}
	passed := 0
	for i := range 20 {
		if r := tb.Check(a, uint64(1000+i), t0.Add(500*time.Millisecond+time.Duration(i)*time.Millisecond)); r != Held {
			passed++
		}
	}
	if passed != 20 {
		t.Fatalf("%d of 20 retransmissions forwarded, want all", passed)
	}
}

func TestMemoryBounded(t *testing.T) {
	tb := newTable(t, 4096)
	before := tb.Bytes()
	if c := tb.Capacity(); c < 4096 || c > 2*4096 {
		t.Fatalf("capacity %d for 4096 sources", c)
	}
	for i := range 200_000 {
		tb.Check(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint64(i), t0)
	}
	if tb.Bytes() != before {
		t.Fatalf("table grew from %d to %d bytes", before, tb.Bytes())
	}
}

// A spoofed flood of random sources, each datagram sent once, evicts a
// source that passed only when all 8 slots it probes are taken by sources
// that passed (rare at this density: at most 2 of 64 here), never an
// authenticated one; one repeating each datagram (the cheapest way to make
// its forged sources pass) evicts sources that passed by retransmitting,
// never authenticated ones, and an evicted source is only held once more.
func TestSpoofedFloodEviction(t *testing.T) {
	tb := newTable(t, 1024)
	cap := tb.Capacity()
	var authed, greyed []netip.Addr
	for i := range cap / 16 {
		a := netip.AddrFrom4([4]byte{192, 0, byte(2 + i>>8), byte(i)})
		tb.Pass(a, t0)
		authed = append(authed, a)
		g := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		tb.Check(g, 1, t0)
		tb.Check(g, 1, t0.Add(time.Second))
		greyed = append(greyed, g)
	}
	now := t0.Add(2 * time.Second)
	spoof := func(n int, repeat bool) {
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			tb.Check(a, uint64(i), now)
			if repeat {
				tb.Check(a, uint64(i), now.Add(time.Second))
			}
		}
	}
	count := func(as []netip.Addr, at time.Time) (n int) {
		for _, a := range as {
			if tb.Passes(a, at) {
				n++
			}
		}
		return n
	}
	spoof(50*cap, false)
	if n := count(authed, now); n != len(authed) {
		t.Fatalf("single datagrams evicted %d of %d authenticated sources", len(authed)-n, len(authed))
	}
	if n := count(greyed, now); n < len(greyed)-2 {
		t.Fatalf("single datagrams evicted %d of %d passed sources", len(greyed)-n, len(greyed))
	}
	spoof(50*cap, true)
	if n := count(authed, now.Add(2*time.Second)); n != len(authed) {
		t.Fatalf("repeated datagrams evicted %d of %d authenticated sources", len(authed)-n, len(authed))
	}
	// An evicted source costs one hold, then passes again.
	for _, g := range greyed {
		if tb.Passes(g, now.Add(3*time.Second)) {
			continue
		}
		at := now.Add(3 * time.Second)
		if r := tb.Check(g, 2, at); r != Held {
			t.Fatalf("evicted source: %v, want held", r)
		}
		if r := tb.Check(g, 2, at.Add(500*time.Millisecond)); r != Released {
			t.Fatalf("evicted source's retransmission: %v, want released", r)
		}
		return
	}
	t.Fatal("repeated datagrams evicted no source that passed by retransmitting: the test proves nothing")
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{MinDelay: time.Second, MaxDelay: time.Second, Remember: time.Hour, IPv6Prefix: 64, MaxSources: 10},
		{MinDelay: 0, MaxDelay: time.Second, Remember: 0, IPv6Prefix: 64, MaxSources: 10},
		{MinDelay: 0, MaxDelay: time.Second, Remember: time.Hour, IPv6Prefix: 0, MaxSources: 10},
		{MinDelay: 0, MaxDelay: time.Second, Remember: time.Hour, IPv6Prefix: 64, MaxSources: 0},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
