package engine

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

func challengeResp(src, account string, at time.Time) *event.Response {
	return &event.Response{Meta: event.Meta{Time: at, Source: netip.MustParseAddrPort(src)},
		SIP: event.SIP{Method: "REGISTER", FromUser: account, ToUser: account}, Code: 401}
}

func register(src, account string, creds bool, at time.Time) *event.Request {
	r := &event.Request{Meta: event.Meta{Time: at, Source: netip.MustParseAddrPort(src)},
		SIP: event.SIP{Method: "REGISTER", FromUser: account, ToUser: account}}
	if creds {
		r.AuthUser, r.HasCredentials = account, true
	}
	return r
}

// TestRequestDoesNotAllocate checks that Check(Request) stays free of
// allocations on the common paths: a source with nothing pending (while
// other sources have challenges pending), and a source whose pending
// challenges are judged without a ban.
func TestRequestDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		src  string
		ev   *event.Request
	}{
		{"nothing pending", "198.51.100.7:5060", register("198.51.100.7:5060", "1001", true, t0.Add(time.Second))},
		{"pending, not yet abandoned", "203.0.113.9:5060", register("203.0.113.9:5060", "555", false, t0.Add(time.Second))},
		{"pending, answered", "203.0.113.10:5060", register("203.0.113.10:5060", "100", true, t0.Add(time.Second))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _, rec := newEngine(t, "")
			for i := range 64 {
				e.Check(ctx, challengeResp(netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, 0, byte(i)}), 5060).String(), "1001", t0))
			}
			e.Check(ctx, challengeResp("203.0.113.9:5060", "100", t0))
			e.Check(ctx, challengeResp("203.0.113.10:5060", "100", t0))
			if n := testing.AllocsPerRun(100, func() { e.Check(ctx, tc.ev) }); n != 0 {
				t.Fatalf("Check(Request) allocates %v times", n)
			}
			if len(rec.got) != 0 {
				t.Fatalf("unexpected decisions: %v", rec.got)
			}
		})
	}
}

// TestAbandonedChallenges checks the engine's wiring of the detector:
// which responses and requests count, and that allowed sources are never
// tracked.
func TestAbandonedChallenges(t *testing.T) {
	const src = "203.0.113.9:5060"
	cases := []struct {
		name    string
		yaml    string
		events  func() []event.Event
		wantBan bool
	}{
		{"five abandoned REGISTER challenges", "", func() []event.Event {
			var evs []event.Event
			for i := range 5 {
				evs = append(evs, challengeResp(src, strconv.Itoa(100+i), t0.Add(time.Duration(i)*time.Millisecond)))
			}
			return append(evs, register(src, "200", false, t0.Add(6*time.Second)))
		}, true},
		{"INVITE 407 challenges count too", "", func() []event.Event {
			var evs []event.Event
			for i := range 5 {
				r := challengeResp(src, strconv.Itoa(100+i), t0)
				r.Method, r.Code = "INVITE", 407
				evs = append(evs, r)
			}
			return append(evs, challengeResp(src, "200", t0.Add(6*time.Second)))
		}, true},
		{"OPTIONS challenges do not count", "", func() []event.Event {
			var evs []event.Event
			for i := range 5 {
				r := challengeResp(src, strconv.Itoa(100+i), t0)
				r.Method = "OPTIONS"
				evs = append(evs, r)
			}
			return append(evs, register(src, "200", false, t0.Add(6*time.Second)))
		}, false},
		{"challenges to credentials (refusals, the jail's business) do not count", "", func() []event.Event {
			var evs []event.Event
			for i := range 5 {
				r := challengeResp(src, strconv.Itoa(100+i), t0)
				r.AuthUser, r.HasCredentials = r.ToUser, true
				evs = append(evs, r)
			}
			return append(evs, register(src, "200", false, t0.Add(6*time.Second)))
		}, false},
		{"answered by a credentialed request with another digest username", "", func() []event.Event {
			var evs []event.Event
			for i := range 5 {
				a := strconv.Itoa(100 + i)
				r := register(src, a, true, t0.Add(time.Duration(i)*time.Millisecond+500*time.Millisecond))
				r.AuthUser = "auth" + a
				evs = append(evs, challengeResp(src, a, t0.Add(time.Duration(i)*time.Millisecond)), r)
			}
			return append(evs, register(src, "200", false, t0.Add(6*time.Second)))
		}, false},
		{"answered by a successful registration", "", func() []event.Event {
			var evs []event.Event
			for i := range 5 {
				a := strconv.Itoa(100 + i)
				evs = append(evs, challengeResp(src, a, t0),
					&event.Register{Meta: event.Meta{Time: t0.Add(time.Second), Source: netip.MustParseAddrPort(src)}, Account: a})
			}
			return append(evs, register(src, "200", false, t0.Add(6*time.Second)))
		}, false},
		{"allowed sources are never tracked", "allow: [203.0.113.0/24]\n", func() []event.Event {
			var evs []event.Event
			for i := range 5 {
				evs = append(evs, challengeResp(src, strconv.Itoa(100+i), t0))
			}
			return append(evs, register(src, "200", false, t0.Add(6*time.Second)))
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, set, rec := newEngine(t, tc.yaml)
			var last Verdict
			for _, ev := range tc.events() {
				last = e.Check(context.Background(), ev)
			}
			_, banned := set.Banned(netip.MustParseAddr("203.0.113.9"), t0.Add(7*time.Second))
			if banned != tc.wantBan {
				t.Fatalf("banned = %v, want %v (decisions %v)", banned, tc.wantBan, rec.got)
			}
			if tc.wantBan {
				if last.Action != Drop || last.Rule != RuleEnumeration {
					t.Fatalf("last verdict = %+v, want drop by enumeration", last)
				}
				if d := rec.got[0]; d.Rule != RuleEnumeration || d.Reason != "5 accounts challenged and never answered" {
					t.Fatalf("decision = %+v", d)
				}
			}
		})
	}
}
