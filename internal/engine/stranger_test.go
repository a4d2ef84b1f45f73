package engine

import (
	"container/heap"
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// bootRun is what booting an office behind one address did.
type bootRun struct {
	registered int           // phones registered (the stale one never is)
	failed     int           // phones whose registration hit Timer F
	dropped    int           // requests Admit refused
	slowest    time.Duration // from boot to the last phone's registration
	bans       []decision.Decision
}

// send is one request leaving a phone: when, which phone, which step, and
// how many times it was sent before (for Timer E).
type send struct {
	at    time.Time
	phone int
	step  int // 0: REGISTER, 1: REGISTER with credentials, 2: BLF SUBSCRIBE/OPTIONS, 3: the answer to 1 at the guard
	tries int
}

type sendQueue []send

func (q sendQueue) Len() int           { return len(q) }
func (q sendQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q sendQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *sendQueue) Push(x any)        { *q = append(*q, x.(send)) }
func (q *sendQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// bootOffice plays n phones behind src booting in the same millisecond
// against e, with a PBX rtt away: REGISTER → 401 → REGISTER with
// credentials → 200, then after more requests each (BLF SUBSCRIBEs, an
// OPTIONS); the
// last phone's password is stale (its second REGISTER fails). What Admit
// drops is retransmitted (RFC 3261 §17.1.2.2: Timer E from 500 ms,
// doubling to 4 s) until Timer F (32 s) fails the phone.
func bootOffice(t *testing.T, e *Engine, rec *recorder, src netip.Addr, n, after int, rtt time.Duration) bootRun {
	t.Helper()
	ctx := context.Background()
	var run bootRun
	q := &sendQueue{}
	for i := range n {
		heap.Push(q, send{at: t0.Add(time.Duration(i) * 50 * time.Microsecond), phone: i, step: 0})
	}
	stale := n - 1
	var first [1 << 10]time.Time // first send of each phone's current step
	for q.Len() > 0 {
		s := heap.Pop(q).(send)
		user := fmt.Sprintf("20%02d", s.phone+1)
		from := netip.AddrPortFrom(src, uint16(5060+s.phone))
		if s.step == 3 { // the PBX's answer to the REGISTER with credentials
			sip := event.SIP{Method: "REGISTER", ToUser: user, FromUser: user, AuthUser: user, HasCredentials: true}
			if s.phone == stale {
				e.Check(ctx, &event.AuthFailure{Meta: event.Meta{Time: s.at, Source: from}, SIP: sip, Account: user, Code: 403})
				continue
			}
			e.Check(ctx, &event.Register{Meta: event.Meta{Time: s.at, Source: from}, SIP: sip, Account: user})
			run.registered++
			run.slowest = max(run.slowest, s.at.Sub(t0))
			for range after {
				heap.Push(q, send{at: s.at.Add(rtt / 2), phone: s.phone, step: 2})
			}
			continue
		}
		if s.tries == 0 {
			first[s.phone] = s.at
		}
		if v := e.Admit(src, s.at); v.Action != Pass {
			run.dropped++
			wait := min(500*time.Millisecond<<s.tries, 4*time.Second)
			if next := s.at.Add(wait); next.Sub(first[s.phone]) < 32*time.Second {
				heap.Push(q, send{at: next, phone: s.phone, step: s.step, tries: s.tries + 1})
			} else if s.step < 2 {
				run.failed++
			}
			continue
		}
		switch s.step {
		case 0: // 401 without a failure: the digest challenge, back after rtt
			heap.Push(q, send{at: s.at.Add(rtt), phone: s.phone, step: 1})
		case 1: // the PBX's answer passes the guard rtt/2 later
			heap.Push(q, send{at: s.at.Add(rtt / 2), phone: s.phone, step: 3})
		}
	}
	run.bans = rec.got
	return run
}

// TestStrangerOfficeBoot: an office behind one address whose phones all
// boot at once is a stranger until its first registration is answered;
// the stranger limit may drop part of its first burst, which the phones
// retransmit. No phone fails and nothing is banned for an office of 20;
// the table records what larger offices cost (they belong in allow).
func TestStrangerOfficeBoot(t *testing.T) {
	cases := []struct {
		name        string
		config      string
		phones      int
		after       int // requests each phone sends once registered
		rtt         time.Duration
		wantDropped int           // -1: any
		maxSlowest  time.Duration // every phone registered by then
		wantBan     bool
	}{
		// 20 REGISTERs and the first 10 answers with credentials pass;
		// the other 10 go 500 ms later, after the first 200 OK.
		{"20 phones, default", "", 20, 5, 20 * time.Millisecond, 10, 600 * time.Millisecond, false},
		{"20 phones, slow PBX", "", 20, 5, 300 * time.Millisecond, 10, time.Second, false},
		{"10 phones, nothing dropped", "", 10, 5, 20 * time.Millisecond, 0, 100 * time.Millisecond, false},
		// 29 REGISTERs and one answer pass: that registration trusts the
		// address, the other 28 answers follow at their retransmission.
		{"29 phones", "", 29, 2, 20 * time.Millisecond, 28, 600 * time.Millisecond, false},
		{"20 phones, stranger limit as high as limit", "flood: {stranger_limit: 200}\n", 20, 5, 20 * time.Millisecond, 0, 100 * time.Millisecond, false},
		// 30 REGISTERs leave no room for an answer with credentials: the
		// phones retransmit until the window slides, then register.
		{"30 phones at once: registered after retransmissions", "", 30, 2, 20 * time.Millisecond, -1, 8 * time.Second, false},
		// The trade-off: 60 phones whose first REGISTERs land in one
		// window before any is answered retransmit past flood.limit and
		// the address is banned (at most unproven.maxtime). Offices go in
		// allow, or raise both limits above what they send at boot.
		{"60 phones at once: banned", "", 60, 1, 20 * time.Millisecond, -1, time.Hour, true},
		{"60 phones at once, stranger limit as limit (before it existed)", "flood: {stranger_limit: 200}\n", 60, 1, 20 * time.Millisecond, 0, 100 * time.Millisecond, false},
		{"60 phones, limits raised", "flood: {limit: 400, stranger_limit: 70}\n", 60, 1, 20 * time.Millisecond, -1, 600 * time.Millisecond, false},
		{"60 phones, allowed", "allow: [203.0.113.0/24]\n", 60, 1, 20 * time.Millisecond, 0, 100 * time.Millisecond, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _, rec := newEngine(t, tc.config)
			run := bootOffice(t, e, rec, netip.MustParseAddr("203.0.113.20"), tc.phones, tc.after, tc.rtt)
			t.Logf("%d phones, rtt %v: %d registered, %d failed, %d dropped, slowest %v, bans %v",
				tc.phones, tc.rtt, run.registered, run.failed, run.dropped, run.slowest, run.bans)
			banned := false
			for _, d := range run.bans {
				if d.Scope == decision.ScopeIP || d.Rule == RuleFlood {
					banned = true
					if !d.Unproven || d.Until.Sub(d.At) > 10*time.Minute {
						t.Errorf("ban not capped as unproven: %+v", d)
					}
				}
			}
			if banned != tc.wantBan {
				t.Errorf("office banned %v, want %v: %v", banned, tc.wantBan, run.bans)
			}
			if tc.wantBan {
				return
			}
			if run.registered != tc.phones-1 || run.failed != 0 {
				t.Errorf("%d of %d phones registered, %d failed", run.registered, tc.phones-1, run.failed)
			}
			if tc.wantDropped >= 0 && run.dropped != tc.wantDropped {
				t.Errorf("dropped %d, want %d", run.dropped, tc.wantDropped)
			}
			if run.slowest > tc.maxSlowest {
				t.Errorf("last phone registered after %v, want at most %v", run.slowest, tc.maxSlowest)
			}
		})
	}
}

// TestStrangerLimit: what a source gets through Admit in one burst
// depending on what it proved; a forged datagram cannot lower a phone's
// limit or ban anyone below flood.limit.
func TestStrangerLimit(t *testing.T) {
	ctx := context.Background()
	src := netip.MustParseAddr("198.51.100.9")
	from := netip.AddrPortFrom(src, 5060)
	reg := func(e *Engine, at time.Time) {
		e.Check(ctx, &event.Register{Meta: event.Meta{Time: at, Source: from},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1001", AuthUser: "1001", HasCredentials: true}, Account: "1001"})
	}
	answered := func(e *Engine) {
		e.Check(ctx, &event.CallAnswered{Meta: event.Meta{Time: t0, Source: from},
			SIP: event.SIP{Method: "INVITE", FromUser: "1001", AuthUser: "1001", HasCredentials: true}, Account: "1001"})
	}
	evict := func(e *Engine) {
		for i := range 1 << 16 {
			e.Admit(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), t0.Add(500*time.Millisecond))
		}
	}
	cases := []struct {
		name     string
		config   string
		before   func(e *Engine)
		n        int // requests 1 ms apart
		wantPass int
		wantBan  bool
	}{
		{"stranger: 30 pass, the rest dropped until 200 bans", "", nil, 400, 30, true},
		{"stranger below the ban: 30 pass, no ban", "", nil, 200, 30, false},
		{"registered: 200 pass", "", func(e *Engine) { reg(e, t0) }, 400, 200, true},
		{"credentialed call answered: 200 pass", "", answered, 400, 200, true},
		{"call answered without credentials proves nothing", "", func(e *Engine) {
			e.Check(ctx, &event.CallAnswered{Meta: event.Meta{Time: t0, Source: from}, SIP: event.SIP{Method: "INVITE", FromUser: "1001"}})
		}, 400, 30, true},
		{"known from the store at start: 200 pass", "", func(e *Engine) { e.Known(src, "1001") }, 250, 200, true},
		{"a failed password proves nothing", "", func(e *Engine) { e.Check(ctx, authFail(from.String(), "1001", t0)) }, 100, 30, false},
		{"allowed: no limit", "allow: [198.51.100.0/24]\n", nil, 1000, 1000, false},
		{"registered, then its flood mark evicted by a spoofed flood: the registration still vouches", "flood: {max_sources: 1024}\n", func(e *Engine) {
			reg(e, t0)
			evict(e)
		}, 250, 200, true},
		// The control of the case above: the same spoofed flood does evict
		// the mark, and an answered call is not remembered elsewhere.
		{"trusted by an answered call only, then evicted: a stranger again", "flood: {max_sources: 1024}\n", func(e *Engine) {
			answered(e)
			evict(e)
		}, 250, 30, true},
		{"registered after the flood table was rebuilt by a reload", "", func(e *Engine) {
			reg(e, t0)
			if err := e.Reload(mustConfig(t, "flood: {limit: 150}\n")); err != nil {
				t.Fatal(err)
			}
		}, 400, 150, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _, rec := newEngine(t, tc.config)
			if tc.before != nil {
				tc.before(e)
			}
			pass := 0
			for i := range tc.n {
				if e.Admit(src, t0.Add(time.Second+time.Duration(i)*time.Millisecond)).Action == Pass {
					pass++
				}
			}
			banned := false
			for _, d := range rec.got {
				if d.Rule == RuleFlood {
					banned = true
					if !d.Unproven || d.Until.Sub(d.At) > 10*time.Minute {
						t.Errorf("flood ban not capped as unproven: %+v", d)
					}
				}
			}
			if pass != tc.wantPass || banned != tc.wantBan {
				t.Errorf("%d passed, banned %v; want %d, %v", pass, banned, tc.wantPass, tc.wantBan)
			}
		})
	}
}

// TestStrangerForgedDatagrams: a forger cannot make a registered phone
// a stranger, and the cost of holding an address down with forged
// datagrams is unchanged: more than flood.limit per window for a ban, at
// most unproven.maxtime long.
func TestStrangerForgedDatagrams(t *testing.T) {
	e, set, rec := newEngine(t, "")
	victim := netip.MustParseAddr("198.51.100.20")
	ctx := context.Background()
	e.Check(ctx, &event.Register{Meta: event.Meta{Time: t0, Source: netip.AddrPortFrom(victim, 5060)},
		SIP: event.SIP{Method: "REGISTER", ToUser: "1001", AuthUser: "1001", HasCredentials: true}, Account: "1001"})
	// 199 forged datagrams in one window, then the phone's own request.
	for i := range 199 {
		e.Admit(victim, t0.Add(time.Second+time.Duration(i)*time.Microsecond))
	}
	if v := e.Admit(victim, t0.Add(1100*time.Millisecond)); v.Action != Pass {
		t.Fatalf("the registered victim's 200th request: %+v", v)
	}
	if len(rec.got) != 0 {
		t.Fatalf("decisions: %+v", rec.got)
	}
	// The 201st bans, capped like every unproven ban.
	e.Admit(victim, t0.Add(1101*time.Millisecond))
	d, ok := set.Banned(victim, t0.Add(1200*time.Millisecond))
	if !ok || d.Rule != RuleFlood || d.Until.Sub(d.At) > 10*time.Minute {
		t.Fatalf("after 201: banned %v %+v", ok, d)
	}
}

func mustConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
