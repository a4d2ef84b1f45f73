package callpolicy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// cluster compiles one detector per node whose Share hands every event to
// the others' Peer at once (as the Redis stream would, a millisecond
// later).
func cluster(t *testing.T, nodes int, share bool, block config.CallLimits) []*Detector {
	t.Helper()
	ds := make([]*Detector, nodes)
	for i := range ds {
		o := Options{}
		if share {
			o.Share = func(ev Event) {
				for j, p := range ds {
					if j != i {
						p.Peer(fmt.Sprintf("n%d", i), ev, ev.At)
					}
				}
			}
		}
		d, err := Compile(Config{Policy: config.CallPolicy{DefaultCountry: "CN",
			Rules: []config.CallRule{{Name: "acct", Match: config.CallMatch{Accounts: []string{"1001"}}, Block: block}}}}, o)
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = d
	}
	return ds
}

// callEvent runs one call record (ringing, answered or ended) through d.
func callEvent(d *Detector, kind event.Kind, id string, code int, now time.Time) {
	s := &event.SIP{Method: "INVITE", CallID: id, FromUser: "1001", AuthUser: "1001", RURIUser: "13800138000"}
	in := &detector.Input{Kind: kind, Now: now, Src: netip.MustParseAddr("192.0.2.1"), SIP: s, Account: "1001",
		Destination: "13800138000", Code: code}
	in.Names.Add("1001")
	var out detector.Out
	d.Call(&detector.Shared{}, in, &out)
}

// Three nodes each carrying a third of an account's calls refuse the
// (N+1)th call within the minute as one node would, whichever node it
// crosses; alone, each node would let 3 through.
func TestPeersCallsPerMinute(t *testing.T) {
	for _, share := range []bool{true, false} {
		ds := cluster(t, 3, share, config.CallLimits{CallsPerMinute: 3})
		for i := range 3 {
			now := t0.Add(time.Duration(i) * time.Second)
			if v := attempt(ds[i], "192.0.2.1", "1001", "13800138000", now); v.Action != detector.Pass {
				t.Fatalf("share=%v: call %d refused: %+v", share, i, v)
			}
			callEvent(ds[i], event.KindCallEnded, fmt.Sprint("c", i), 200, now)
		}
		for i, d := range ds {
			v := attempt(d, "192.0.2.1", "1001", "13800138000", t0.Add(10*time.Second))
			if refused := v.Action == detector.Reject; refused != share {
				t.Errorf("share=%v: 4th call on node %d: %+v", share, i, v)
			}
		}
		// A minute later the window has moved on everywhere.
		if v := attempt(ds[0], "192.0.2.1", "1001", "13800138000", t0.Add(61*time.Second)); v.Action != detector.Pass {
			t.Errorf("share=%v: a call a minute later refused: %+v", share, v)
		}
	}
}

// Running calls of other nodes count against concurrent; a call's end
// gives its slot back everywhere, and a node that stops announcing its
// calls (it died mid-call) stops holding slots after PeerLease.
func TestPeersConcurrentLease(t *testing.T) {
	ds := cluster(t, 3, true, config.CallLimits{Concurrent: 2})
	callEvent(ds[0], event.KindCallAnswered, "a1", 200, t0)
	callEvent(ds[1], event.KindCallAnswered, "b1", 200, t0)
	if v := attempt(ds[2], "192.0.2.1", "1001", "13800138000", t0.Add(time.Second)); v.Action != detector.Reject {
		t.Fatalf("3rd concurrent call passed on the third node: %+v", v)
	}
	callEvent(ds[1], event.KindCallEnded, "b1", 200, t0.Add(2*time.Second))
	if v := attempt(ds[2], "192.0.2.1", "1001", "13800138000", t0.Add(3*time.Second)); v.Action != detector.Pass {
		t.Fatalf("a call ended on b still holds its slot on c: %+v", v)
	}
	callEvent(ds[1], event.KindCallAnswered, "b2", 200, t0.Add(4*time.Second))
	// a announces its call again (heartbeat); b "dies": no more
	// announcements.
	for _, ev := range ds[0].RunningCounts(t0.Add(PeerLease - time.Second)) {
		ds[2].Peer("n0", ev, ev.At)
	}
	if v := attempt(ds[2], "192.0.2.1", "1001", "13800138000", t0.Add(PeerLease)); v.Action != detector.Reject {
		t.Fatalf("within the lease, 2 running calls elsewhere did not count: %+v", v)
	}
	if v := attempt(ds[2], "192.0.2.1", "1001", "13800138000", t0.Add(4*time.Second+PeerLease)); v.Action != detector.Pass {
		t.Fatalf("a silent node's call still counted after its lease: %+v", v)
	}
}

// What another node sends is hostile: unknown rules, empty or huge
// accounts, times from the future or older than a day, negative or absurd
// values are ignored; a call older than the window counts nowhere.
func TestPeersHostile(t *testing.T) {
	ds := cluster(t, 1, false, config.CallLimits{CallsPerMinute: 1, Concurrent: 1})
	d := ds[0]
	now := t0.Add(time.Hour)
	bad := []Event{
		{Kind: EventCall, Rule: "nope", Account: "1001", At: now},
		{Kind: EventCall, Rule: "acct", Account: "", At: now},
		{Kind: EventCall, Rule: "acct", Account: string(make([]byte, 300)), At: now},
		{Kind: EventCall, Rule: "acct", Account: "1001", At: now.Add(2 * time.Minute)},
		{Kind: EventCall, Rule: "acct", Account: "1001", At: now.Add(-25 * time.Hour)},
		{Kind: EventCall, Rule: "acct", Account: "1001"},
		{Kind: EventRunning, Rule: "acct", Account: "1001", At: now, N: -1},
		{Kind: EventRunning, Rule: "acct", Account: "1001", At: now, N: 1 << 40},
		{Kind: EventSpend, Rule: "acct", Account: "1001", At: now, N: 5},
		{Kind: "bogus", Rule: "acct", Account: "1001", At: now},
	}
	for _, ev := range bad {
		if d.Peer("evil", ev, now) {
			t.Errorf("applied %+v", ev)
		}
	}
	if !d.Peer("evil", Event{Kind: EventCall, Rule: "acct", Account: "1001", At: now.Add(-2 * time.Minute)}, now) {
		t.Error("an old call of a rule's account was refused outright (its window ignores it)")
	}
	if v := attempt(d, "192.0.2.1", "1001", "13800138000", now); v.Action != detector.Pass {
		t.Errorf("garbage or an old call moved a counter: %+v", v)
	}
	if !d.Peer("evil", Event{Kind: EventCall, Rule: "acct", Account: "1001", At: now.Add(30 * time.Second)}, now) {
		t.Error("a call 30 s in the future (clock skew) was refused")
	}
	if v := attempt(d, "192.0.2.1", "1001", "13800138000", now); v.Action != detector.Reject {
		t.Errorf("a call within the minute did not count: %+v", v)
	}
}
