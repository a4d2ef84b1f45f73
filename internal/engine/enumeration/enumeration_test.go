package enumeration

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const findTime = time.Minute

func newDetector(t testing.TB, maxAccounts, maxSources int) *Detector {
	t.Helper()
	d, err := New(findTime, Grace, maxAccounts, maxSources)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}) }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// step is one event from the source under test; the Trip of the last step
// is checked.
type step struct {
	at      time.Duration
	op      string // "challenge", "answer", "fail", "check"
	account string
}

func run(d *Detector, a netip.Addr, steps []step) Trip {
	var t Trip
	for _, s := range steps {
		now := t0.Add(s.at)
		switch s.op {
		case "challenge":
			t = d.Challenged(a, s.account, now)
		case "answer":
			d.Answered(a, s.account, "")
			t = d.Check(a, now)
		case "fail":
			t = d.Fail(a, s.account, now)
		case "check":
			t = d.Check(a, now)
		}
		if t.Tripped() {
			return t
		}
	}
	return t
}

func challenges(n int, every time.Duration) []step {
	var out []step
	for i := range n {
		out = append(out, step{at: time.Duration(i) * every, op: "challenge", account: strconv.Itoa(100 + i)})
	}
	return out
}

func TestTrip(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		want  Trip
	}{
		{"challenges within the grace do not count yet", append(challenges(10, ms(50)), step{at: Grace, op: "check"}), Trip{}},
		{"abandoned challenges count after the grace", append(challenges(10, ms(50)), step{at: Grace + ms(201), op: "check"}), Trip{Abandoned: 5}},
		{"answered challenges never count", func() []step {
			var s []step
			for i := range 10 {
				a := strconv.Itoa(100 + i)
				s = append(s, step{at: ms(10 * i), op: "challenge", account: a}, step{at: ms(10*i + 900), op: "answer", account: a})
			}
			return append(s, step{at: time.Hour, op: "check"}, step{at: 2 * Grace, op: "check"})
		}(), Trip{}},
		{"a late answer takes an abandoned challenge back", append(challenges(4, ms(50)),
			step{at: 6 * time.Second, op: "check"}, step{at: 6 * time.Second, op: "answer", account: "100"},
			step{at: 6 * time.Second, op: "challenge", account: "200"}, step{at: 12 * time.Second, op: "check"}), Trip{}},
		{"the same account challenged twice counts once", []step{
			{0, "challenge", "100"}, {ms(10), "challenge", "100"}, {ms(20), "challenge", "100"},
			{ms(30), "challenge", "100"}, {ms(40), "challenge", "100"}, {10 * time.Second, "check", ""}}, Trip{}},
		{"failures and abandoned challenges add up", []step{
			{0, "fail", "1"}, {ms(10), "fail", "2"}, {ms(20), "challenge", "3"}, {ms(30), "challenge", "4"},
			{ms(40), "challenge", "5"}, {ms(40) + Grace + 1, "check", ""}}, Trip{Failed: 2, Abandoned: 3}},
		{"an account that failed and was left challenged counts once", []step{
			{0, "challenge", "1"}, {ms(5), "fail", "1"}, {ms(10), "challenge", "2"}, {ms(20), "challenge", "3"},
			{ms(30), "challenge", "4"}, {time.Second, "challenge", "1"}, {10 * time.Second, "check", ""}}, Trip{}},
		{"one more account trips it", []step{
			{0, "challenge", "1"}, {ms(5), "fail", "1"}, {ms(10), "challenge", "2"}, {ms(20), "challenge", "3"},
			{ms(30), "challenge", "4"}, {ms(40), "challenge", "5"}, {time.Second, "challenge", "1"},
			{10 * time.Second, "check", ""}}, Trip{Failed: 1, Abandoned: 4}},
		{"five failures trip at once", []step{
			{0, "fail", "1"}, {0, "fail", "2"}, {0, "fail", "3"}, {0, "fail", "4"}, {0, "fail", "5"}}, Trip{Failed: 5}},
		{"abandoned challenges older than findtime do not count", append(challenges(4, ms(50)),
			step{at: findTime + Grace, op: "challenge", account: "999"}, step{at: findTime + 2*Grace, op: "check"}), Trip{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector(t, 5, 100)
			got := run(d, addr(1), tc.steps)
			if got != tc.want {
				t.Fatalf("trip = %+v, want %+v", got, tc.want)
			}
			if got.Tripped() && d.Len() != 0 {
				t.Fatalf("a tripped source is kept: %d sources", d.Len())
			}
		})
	}
}

func TestPendingBound(t *testing.T) {
	d := newDetector(t, 1000, 100)
	a := addr(1)
	for i := range 100 {
		d.Challenged(a, strconv.Itoa(i), t0.Add(ms(i)))
	}
	if n := d.Pending(a); n != MaxPending {
		t.Fatalf("pending = %d after 100 challenges, want the cap %d", n, MaxPending)
	}
	// The first MaxPending are kept: after the grace they count, freeing
	// room for new ones.
	d.Check(a, t0.Add(Grace+ms(MaxPending)))
	if n := d.Pending(a); n != 0 {
		t.Fatalf("pending = %d after the grace, want 0", n)
	}
	if got := d.m[a].seen; len(got) != MaxPending || got[0].account != "0" {
		t.Fatalf("counted %d accounts (first %q), want the first %d challenged", len(got), got[0].account, MaxPending)
	}
	if d.MayHavePending(a) {
		t.Fatal("filter still reports pending challenges")
	}
}

func TestSourceBound(t *testing.T) {
	const maxSources = 64
	d := newDetector(t, 5, maxSources)
	for i := range 10 * maxSources {
		d.Challenged(addr(i), "100", t0.Add(ms(i)))
		if d.Len() > maxSources {
			t.Fatalf("%d sources tracked, cap %d", d.Len(), maxSources)
		}
	}
	// The newest sources are still tracked (the idlest were evicted).
	last := addr(10*maxSources - 1)
	if d.Pending(last) != 1 || !d.MayHavePending(last) {
		t.Fatal("the newest source is not tracked")
	}
	// The filter counts exactly the sources with pending challenges.
	total := int32(0)
	for i := range d.filter {
		total += d.filter[i].Load()
	}
	if int(total) != d.Len() {
		t.Fatalf("filter counts %d sources with pending challenges, %d tracked", total, d.Len())
	}
}

func TestFilterClearsOnAnswerAndForget(t *testing.T) {
	cases := []struct {
		name  string
		clear func(d *Detector, a netip.Addr)
	}{
		{"answered", func(d *Detector, a netip.Addr) { d.Answered(a, "", "100") }},
		{"forgotten", func(d *Detector, a netip.Addr) { d.Forget(a) }},
		{"judged", func(d *Detector, a netip.Addr) { d.Check(a, t0.Add(findTime)) }},
		{"failed", func(d *Detector, a netip.Addr) { d.Fail(a, "100", t0.Add(time.Second)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector(t, 5, 100)
			a := addr(7)
			d.Challenged(a, "100", t0)
			if !d.MayHavePending(a) {
				t.Fatal("filter misses a pending challenge")
			}
			tc.clear(d, a)
			if d.MayHavePending(a) || d.Pending(a) != 0 {
				t.Fatal("filter or pending set not cleared")
			}
		})
	}
}

func TestReason(t *testing.T) {
	cases := []struct {
		trip Trip
		want string
	}{
		{Trip{Failed: 5}, "auth failures on 5 accounts"},
		{Trip{Abandoned: 5}, "5 accounts challenged and never answered"},
		{Trip{Failed: 3, Abandoned: 2}, "5 accounts: 3 auth failures, 2 challenged and never answered"},
	}
	for _, tc := range cases {
		if got := tc.trip.Reason(); got != tc.want {
			t.Errorf("Reason(%+v) = %q, want %q", tc.trip, got, tc.want)
		}
	}
}

func BenchmarkChallenged(b *testing.B) {
	d := newDetector(b, 5, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// a phone: challenged, then answered at once
		a := addr(i & 0xffff)
		now := t0.Add(time.Duration(i) * time.Microsecond)
		d.Challenged(a, "1001", now)
		d.Answered(a, "1001", "")
		d.Check(a, now)
		i++
	}
}
