package flood

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newTable(t testing.TB, c Config) *Table {
	t.Helper()
	tb, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestHitLimit(t *testing.T) {
	cases := []struct {
		name     string
		n        int           // requests sent
		every    time.Duration // spacing
		wantOver int           // index (1-based) of the first over-limit request, 0 = none, -1 = any
	}{
		{"burst over limit", 30, time.Millisecond, 17},
		{"exactly limit", 16, time.Millisecond, 0},
		{"steady 4 per second", 600, 250 * time.Millisecond, 0},
		{"steady 7.5 per second", 600, 133 * time.Millisecond, 0},
		{"steady 10 per second", 600, 100 * time.Millisecond, -1}, // 20 per 2 s
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(t, Config{Window: 2 * time.Second, Limit: 16, IPv6Prefix: 64, MaxSources: 4096})
			a := netip.MustParseAddr("198.51.100.7")
			first := 0
			for i := 1; i <= tc.n; i++ {
				if (tb.Hit(a, t0.Add(time.Duration(i)*tc.every)) == Over) && first == 0 {
					first = i
				}
			}
			if tc.wantOver < 0 {
				if first == 0 {
					t.Fatal("never went over the limit")
				}
				return
			}
			if first != tc.wantOver {
				t.Fatalf("first over-limit request = %d, want %d", first, tc.wantOver)
			}
		})
	}
}

func TestGrouping(t *testing.T) {
	cases := []struct {
		name  string
		a, b  string
		share bool
	}{
		{"same /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"other /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"mapped ipv4", "::ffff:198.51.100.7", "198.51.100.7", true},
		{"ipv4 neighbours", "198.51.100.7", "198.51.100.8", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(t, Config{Window: 2 * time.Second, Limit: 10, IPv6Prefix: 64, MaxSources: 4096})
			a, b := netip.MustParseAddr(tc.a), netip.MustParseAddr(tc.b)
			over := false
			for i := range 6 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				over = (tb.Hit(a, now) == Over) || over
				over = (tb.Hit(b, now) == Over) || over
			}
			if over != tc.share {
				t.Fatalf("12 requests from %s and %s: over=%v, want %v (shared counter)", tc.a, tc.b, over, tc.share)
			}
			if (tb.Group(a) == tb.Group(b)) != tc.share {
				t.Fatalf("Group(%s)=%s Group(%s)=%s", tc.a, tb.Group(a), tc.b, tb.Group(b))
			}
		})
	}
}

func TestForget(t *testing.T) {
	tb := newTable(t, Config{Window: 2 * time.Second, Limit: 5, IPv6Prefix: 64, MaxSources: 4096})
	a := netip.MustParseAddr("203.0.113.9")
	for i := range 5 {
		if tb.Hit(a, t0.Add(time.Duration(i))) == Over {
			t.Fatalf("over at %d", i+1)
		}
	}
	tb.Forget(a)
	for i := range 5 {
		if tb.Hit(a, t0.Add(time.Duration(10+i))) == Over {
			t.Fatalf("over at %d after Forget", i+1)
		}
	}
	if tb.Hit(a, t0.Add(20)) != Over {
		t.Fatal("6th request after Forget not over a limit of 5")
	}
}

// TestOfficeSubnet is the workload that makes Kamailio's pike block about
// 9% of legitimate requests: 250 phones in one /16, each at 4 requests per
// second, with pike's default-config limit (16 per 2 s). Counting per exact
// source, nothing is blocked.
func TestOfficeSubnet(t *testing.T) {
	tb := newTable(t, Config{Window: 2 * time.Second, Limit: 16, IPv6Prefix: 64, MaxSources: 1 << 16})
	srcs := make([]netip.Addr, 250)
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{10, 20, byte(i / 200), byte(i%200 + 1)})
	}
	total, blocked := 0, 0
	const step = 250 * time.Millisecond
	for tick := range 4 * 300 { // 300 s
		for i, a := range srcs {
			// each phone's timer has its own phase within the 250 ms period
			now := t0.Add(time.Duration(tick)*step + time.Duration(i)*step/250)
			total++
			if tb.Hit(a, now) == Over {
				blocked++
			}
		}
	}
	if blocked != 0 {
		t.Fatalf("blocked %d of %d legitimate requests (%.2f%%), want 0", blocked, total, 100*float64(blocked)/float64(total))
	}
	// The same table still catches one source of the subnet flooding.
	flooder := netip.MustParseAddr("10.20.0.77")
	caught := false
	for i := range 40 {
		caught = (tb.Hit(flooder, t0.Add(301*time.Second+time.Duration(i)*time.Millisecond)) == Over) || caught
	}
	if !caught {
		t.Fatal("a 40-request burst from one office phone was not over a limit of 16")
	}
}

func TestBoundedUnderSpoofedSources(t *testing.T) {
	tb := newTable(t, Config{Window: 2 * time.Second, Limit: 16, IPv6Prefix: 64, MaxSources: 1 << 12})
	before := tb.Bytes()
	allocs := testing.AllocsPerRun(1, func() {
		for i := range 1 << 20 {
			a := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
			tb.Hit(a, t0.Add(time.Duration(i)*time.Microsecond))
		}
	})
	if allocs != 0 {
		t.Fatalf("1M distinct sources allocated %v times", allocs)
	}
	if tb.Bytes() != before || tb.Capacity() != 1<<12 {
		t.Fatalf("table grew: %d -> %d bytes, capacity %d", before, tb.Bytes(), tb.Capacity())
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []Config{
		{Window: 0, Limit: 1, IPv6Prefix: 64, MaxSources: 10},
		{Window: time.Second, Limit: 0, IPv6Prefix: 64, MaxSources: 10},
		{Window: time.Second, Limit: 1, IPv6Prefix: 0, MaxSources: 10},
		{Window: time.Second, Limit: 1, IPv6Prefix: 64, MaxSources: 0},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) = nil error", c)
		}
	}
}

func BenchmarkHit(b *testing.B) {
	for _, n := range []int{1, 1 << 20} {
		b.Run(fmt.Sprintf("sources=%d", n), func(b *testing.B) {
			tb := newTable(b, Config{Window: 2 * time.Second, Limit: 200, IPv6Prefix: 64, MaxSources: 1 << 20})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
				tb.Hit(a, t0.Add(time.Duration(i)*time.Microsecond))
				i = (i + 1) % n
			}
			b.ReportMetric(float64(tb.Bytes()), "table-bytes")
		})
	}
}

// TestStrangerLimit: a source not marked with Trust is told past
// StrangerLimit and its counters go on to Over at Limit; a trusted one is
// held to Limit only; the mark survives Forget and covers its IPv6 group,
// and an evicted slot forgets it.
func TestStrangerLimit(t *testing.T) {
	c := Config{Window: 2 * time.Second, Limit: 200, StrangerLimit: 30, IPv6Prefix: 64, MaxSources: 1 << 10}
	// results counts Hit's answers for n requests 1 ms apart from a.
	results := func(tb *Table, a netip.Addr, from time.Time, n int) (first [3]int, count [3]int) {
		for i := range n {
			r := tb.Hit(a, from.Add(time.Duration(i)*time.Millisecond))
			if count[r] == 0 {
				first[r] = i + 1
			}
			count[r]++
		}
		return first, count
	}
	stranger := netip.MustParseAddr("198.51.100.7")
	trusted := netip.MustParseAddr("198.51.100.8")
	v6 := netip.MustParseAddr("2001:db8:1:2::10")
	v6Neighbour := netip.MustParseAddr("2001:db8:1:2::99")
	cases := []struct {
		name        string
		setup       func(tb *Table)
		addr        netip.Addr
		n           int
		wantStrange int // first request answered OverStranger (0: none)
		wantOver    int // first request answered Over (0: none)
	}{
		{"stranger at 30 then 200", nil, stranger, 250, 31, 201},
		{"stranger within its limit", nil, stranger, 30, 0, 0},
		{"trusted: only limit", func(tb *Table) { tb.Trust(trusted, t0) }, trusted, 250, 0, 201},
		{"trust survives forget", func(tb *Table) { tb.Trust(trusted, t0); tb.Forget(trusted) }, trusted, 199, 0, 0},
		{"trust covers the /64", func(tb *Table) { tb.Trust(v6, t0) }, v6Neighbour, 199, 0, 0},
		{"trust of one address is not its neighbour's", func(tb *Table) { tb.Trust(trusted, t0) }, stranger, 31, 31, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(t, c)
			if tc.setup != nil {
				tc.setup(tb)
			}
			first, _ := results(tb, tc.addr, t0, tc.n)
			if first[OverStranger] != tc.wantStrange || first[Over] != tc.wantOver {
				t.Errorf("first OverStranger at %d, Over at %d; want %d, %d", first[OverStranger], first[Over], tc.wantStrange, tc.wantOver)
			}
		})
	}
	t.Run("the limit restarts after Over, the stranger limit goes on", func(t *testing.T) {
		tb := newTable(t, c)
		_, count := results(tb, stranger, t0, 400)
		// 30 under, 170 over the stranger limit, the 201st over; then 30
		// under again, 170 OverStranger (400 = 201 + 199).
		if count[Under] != 60 || count[Over] != 1 || count[OverStranger] != 339 {
			t.Errorf("counts under/stranger/over = %v", count)
		}
	})
	t.Run("trust mid-way lifts the stranger limit", func(t *testing.T) {
		tb := newTable(t, c)
		results(tb, stranger, t0, 40)
		tb.Trust(stranger, t0.Add(40*time.Millisecond))
		if !tb.trusted(stranger) {
			t.Fatal("not trusted after Trust")
		}
		first, _ := results(tb, stranger, t0.Add(41*time.Millisecond), 160)
		if first[OverStranger] != 0 || first[Over] != 0 {
			t.Errorf("after Trust: first OverStranger %d, Over %d", first[OverStranger], first[Over])
		}
	})
	t.Run("eviction forgets the mark", func(t *testing.T) {
		tb := newTable(t, Config{Window: 2 * time.Second, Limit: 200, StrangerLimit: 30, IPv6Prefix: 64, MaxSources: 1})
		tb.Trust(trusted, t0)
		for i := range 1 << 12 { // a spoofed flood of distinct sources
			tb.Hit(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), t0.Add(time.Minute))
		}
		if tb.trusted(trusted) {
			t.Fatal("the mark survived 4096 other sources in a one-slot table")
		}
	})
	t.Run("stranger limit above limit acts as limit", func(t *testing.T) {
		tb := newTable(t, Config{Window: 2 * time.Second, Limit: 20, StrangerLimit: 30, IPv6Prefix: 64, MaxSources: 16})
		first, _ := results(tb, stranger, t0, 25)
		if first[OverStranger] != 0 || first[Over] != 21 {
			t.Errorf("first OverStranger %d, Over %d; want 0, 21", first[OverStranger], first[Over])
		}
	})
}
