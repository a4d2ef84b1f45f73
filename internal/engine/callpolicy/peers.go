package callpolicy

import (
	"time"
)

// Sharing an account's counters with other guard nodes.
//
// The detector stays pure: it never waits on the network. Each counted
// call, each cost added and each change of an account's running calls is
// handed to Options.Share (a non-blocking sink the wiring carries to the
// other nodes); what the other nodes counted comes back through
// Detector.Peer and lands in the same windows as this node's own calls, so
// calls_per_minute, calls_per_day, spend_per_hour and spend_per_day hold
// per account whichever node a call crosses. Running calls of other nodes
// are kept apart, per node, as absolute counts with a lease: a node
// re-announces its running calls every few seconds (Detector.RunningCounts), and
// a node that stops announcing (it died mid-call, or the link is down)
// stops counting after PeerLease, so a dead node's calls never hold an
// account's concurrent slots for ever.
//
// Why no Redis round trip at the INVITE: a call is counted when the PBX
// lets it past authentication (ringing or answer), hundreds of
// milliseconds after its INVITE was judged, so even a synchronous read at
// the INVITE could not make a limit exact under concurrency; the stream's
// lag (about a millisecond on a LAN) is far below that gap. Not shared:
// sequential_same_number and distinct_destinations_per_hour (they need the
// destination; each node judges them on its own calls).

// Event kinds.
const (
	// EventCall is one call counted at At (calls_per_minute, calls_per_day).
	EventCall = "call"
	// EventSpend is N minor units spent by a call that ended at At.
	EventSpend = "spend"
	// EventRunning says the node has N calls of Account in progress
	// under Rule (absolute; 0 releases them).
	EventRunning = "running"
)

// PeerLease is how long another node's running-call count stays valid
// without being announced again. Nodes announce every PeerLease/3.
const PeerLease = 30 * time.Second

// maxPeerEventAge bounds how old a shared call or spend may be: the
// longest window (a day). Older ones count nowhere.
const maxPeerEventAge = 24 * time.Hour

// Event is one change of an account's counters under a rule, as shared
// between nodes. Its JSON form is the wire format.
type Event struct {
	Kind    string    `json:"k"`
	Rule    string    `json:"r"`
	Account string    `json:"a"`
	At      time.Time `json:"t"`
	N       int64     `json:"n,omitempty"`
}

// peerRun is another node's running calls of one account under one rule.
type peerRun struct {
	n    int64
	seen time.Time
}

// share hands ev to the sink, when there is one.
func (d *Detector) share(ev Event) {
	if d.sink != nil {
		d.sink(ev)
	}
}

// Peer applies one event another node shared: a call or a cost goes into
// the account's windows at its own time (older than the window: ignored),
// a running count replaces that node's count for the account. Unknown
// rules, rules without the matching limit, hostile values and events from
// the future (beyond a minute of clock skew, clamped) are ignored; it
// reports whether the event was applied. Peer never shares anything back.
func (d *Detector) Peer(node string, ev Event, now time.Time) bool {
	r := d.byName[ev.Rule]
	if r == nil || !r.counts || ev.Account == "" || len(ev.Account) > 256 || node == "" {
		return false
	}
	at := ev.At
	switch {
	case at.IsZero() || at.After(now.Add(time.Minute)):
		return false
	case at.After(now):
		at = now
	case now.Sub(at) > maxPeerEventAge:
		return false
	}
	w, b := &r.warn, &r.block
	switch ev.Kind {
	case EventCall:
		if w.perMinute == 0 && b.perMinute == 0 && w.perDay == 0 && b.perDay == 0 {
			return false
		}
	case EventSpend:
		if ev.N <= 0 || ev.N > 1<<50 || w.spendHour == 0 && b.spendHour == 0 && w.spendDay == 0 && b.spendDay == 0 {
			return false
		}
	case EventRunning:
		if ev.N < 0 || ev.N > 1<<20 || w.concurrent == 0 && b.concurrent == 0 {
			return false
		}
	default:
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ct := r.accts[ev.Account]
	if ct == nil {
		if ev.Kind == EventRunning && ev.N == 0 {
			return true // nothing running there, nothing known here
		}
		r.makeRoom(d)
		ct = r.newCounters()
		r.accts[ev.Account] = ct
	}
	switch ev.Kind {
	case EventCall:
		if ct.minute != nil {
			ct.minute.add(at, 1)
		}
		if ct.day != nil {
			ct.day.add(at, 1)
		}
	case EventSpend:
		if ct.spendHour != nil {
			ct.spendHour.add(at, ev.N)
		}
		if ct.spendDay != nil {
			ct.spendDay.add(at, ev.N)
		}
	case EventRunning:
		switch _, known := ct.peers[node]; {
		case ev.N == 0:
			delete(ct.peers, node)
		case known || len(ct.peers) < maxPeerNodes:
			if ct.peers == nil {
				ct.peers = map[string]peerRun{}
			}
			ct.peers[node] = peerRun{n: ev.N, seen: at}
		}
	}
	return true
}

// maxPeerNodes bounds the nodes whose running calls one account keeps.
const maxPeerNodes = 64

// peerRunning returns the other nodes' running calls of ct whose lease
// has not run out at now. Called with the rule's mu held.
func (ct *counters) peerRunning(now time.Time) int64 {
	var n int64
	for node, p := range ct.peers {
		if now.Sub(p.seen) >= PeerLease {
			delete(ct.peers, node)
			continue
		}
		n += p.n
	}
	return n
}

// RunningCounts returns this node's running calls per rule and account, as
// EventRunning events stamped now: what the wiring announces every
// PeerLease/3 so the other nodes' leases do not run out.
func (d *Detector) RunningCounts(now time.Time) []Event {
	var out []Event
	for _, r := range d.rules {
		if r.warn.concurrent == 0 && r.block.concurrent == 0 {
			continue
		}
		r.mu.Lock()
		for a, ct := range r.accts {
			if ct.concurrent > 0 {
				out = append(out, Event{Kind: EventRunning, Rule: r.name, Account: a, At: now, N: ct.concurrent})
			}
		}
		r.mu.Unlock()
	}
	return out
}

// makeRoom evicts one account when the rule is full (fail open),
// preferring one with no call in progress here or elsewhere. Called with
// mu held.
func (r *rule) makeRoom(d *Detector) {
	if len(r.accts) < d.maxAccts {
		return
	}
	for k, v := range r.accts {
		if v.concurrent == 0 && len(v.peers) == 0 {
			delete(r.accts, k)
			return
		}
	}
	for k := range r.accts {
		delete(r.accts, k)
		return
	}
}
