package sipfw

import (
	"container/heap"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/teardown"
)

// dialog is a call the proxy saw start. Until its initial INVITE is
// answered it only carries what the tap needs for CallEnded; the 2xx adds
// both legs, which is what a BYE from the middle needs (RFC 3261 §12.1,
// §15.1.1).
type dialog struct {
	meta     event.Meta
	sip      event.SIP
	start    time.Time
	answered time.Time
	// outbound: a phone called through the proxy (tapped, CallEnded is
	// emitted); false: the PBX called a phone.
	outbound bool
	callID   string
	// caller sent the initial INVITE; callee answered it.
	caller, callee leg
	deadline       time.Time
}

// leg is one side of a confirmed dialog as the proxy must address it to
// send that side a request.
type leg struct {
	flow   flow      // where requests to this side are written
	up     bool      // the PBX's side: always reached through the upstream
	target sip.Uri   // remote target: the side's Contact (RFC 3261 §12.1.1)
	route  []sip.Uri // route set toward the side, nearest hop first
	addr   sip.Uri   // the side's URI in From/To
	tag    string    // the side's tag
	cseq   uint32    // highest CSeq in a request from this side (§12.2.1.1)
}

// phoneLeg returns the leg on the phones' side of the proxy.
func (d *dialog) phoneLeg() *leg {
	if d.outbound {
		return &d.caller
	}
	return &d.callee
}

// outInvite is an INVITE from the PBX to a phone, waiting for its answer.
type outInvite struct {
	callID  string
	phone   flow    // where it was sent
	contact sip.Uri // the PBX side's Contact
	sip     event.SIP
	start   time.Time
}

// dialogTable holds calls in three bounded FIFO tables:
//   - early: calls from phones not answered yet, by Call-ID (for the tap);
//   - out: INVITEs from the PBX to phones not answered yet, by the branch
//     of the proxy's Via, so only an answer on that exact transaction, from
//     the flow it was sent to, confirms one;
//   - calls: answered calls, by Call-ID, ordered by answer time.
//
// They are bounded apart so a flood of INVITEs that are never answered
// (which costs an attacker nothing) can only evict other unanswered ones,
// never a running call. A running call exists only after a 2xx the PBX
// sent on a transaction the proxy forwarded, or a phone sent on one the PBX
// started.
type dialogTable struct {
	mu      sync.Mutex
	early   *fifo[string, *dialog]
	out     *fifo[string, *outInvite]
	calls   *fifo[string, *dialog]
	due     deadlines
	timeout time.Duration
}

func newDialogTable(max int, timeout time.Duration) *dialogTable {
	return &dialogTable{early: newFIFO[string, *dialog](max), out: newFIFO[string, *outInvite](max),
		calls: newFIFO[string, *dialog](max), timeout: timeout}
}

// begin records a call from a phone unless one with the same Call-ID is
// known (a retransmission, or the INVITE repeated with credentials after a
// challenge). It reports whether an older unanswered call was evicted.
func (t *dialogTable) begin(callID string, d *dialog) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.early.get(callID); ok {
		return false
	}
	if _, ok := t.calls.get(callID); ok {
		return false
	}
	return t.early.put(callID, d)
}

// beginInbound records an INVITE from the PBX to a phone under the branch
// the proxy gave it. It reports whether an older one was evicted.
func (t *dialogTable) beginInbound(branch string, o *outInvite) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.put(branch, o)
}

// confirm stores d, answered, as a running call. An existing call under
// the same Call-ID (a second 2xx of a forked INVITE) wins. It reports
// whether the oldest running call was evicted to make room.
func (t *dialogTable) confirm(d *dialog) (evicted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.early.take(d.callID); ok {
		d.meta, d.sip, d.start = e.meta, e.sip, e.start
	}
	if _, ok := t.calls.get(d.callID); ok {
		return false
	}
	return t.calls.put(d.callID, d)
}

// takeInbound removes the INVITE sent under branch if the answer came from
// the flow it was sent to; otherwise the table is left alone.
func (t *dialogTable) takeInbound(branch string, from flow) (*outInvite, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.out.get(branch)
	if !ok || !sameFlow(o.phone, from) {
		return nil, false
	}
	t.out.take(branch)
	return o, true
}

// end removes and returns an unanswered call from a phone (its INVITE
// failed or was cancelled). A running call is not touched: a late failure
// of one fork does not end the answered one.
func (t *dialogTable) end(callID string) (*dialog, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.early.take(callID)
}

// bye handles a BYE seen on its way through: an unanswered call from a
// phone ends; a running call ends only when the BYE comes from one of its
// legs (the PBX, or the phone's own flow) with the dialog's tags, so a
// forged BYE from elsewhere cannot take a call out of the table and out of
// reach of a hangup.
func (t *dialogTable) bye(req *sip.Request, up bool, from flow) (*dialog, bool) {
	callID := string(*req.CallID())
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.early.take(callID); ok {
		return d, true
	}
	d, ok := t.calls.get(callID)
	if !ok || d.sideOf(req, up, from) == nil {
		return nil, false
	}
	t.calls.take(callID)
	return d, true
}

// sideOf returns the leg that sent req: the one whose flow it came from and
// whose tag is its From tag, or nil.
func (d *dialog) sideOf(req *sip.Request, up bool, from flow) *leg {
	ft, _ := req.From().Params.Get("tag")
	tt, _ := req.To().Params.Get("tag")
	for _, l := range []*leg{&d.caller, &d.callee} {
		other := &d.callee
		if l == &d.callee {
			other = &d.caller
		}
		if ft != l.tag || tt != other.tag {
			continue
		}
		if l.up && up || !l.up && !up && sameFlow(l.flow, from) {
			return l
		}
	}
	return nil
}

// sawRequest raises the CSeq recorded for the leg that sent req, a request
// inside a running call, and takes a new remote target from the Contact of
// a target refresh request (RFC 3261 §12.2.1.2: re-INVITE; RFC 3311
// UPDATE).
func (t *dialogTable) sawRequest(req *sip.Request, up bool, from flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.calls.get(string(*req.CallID()))
	if !ok {
		return
	}
	l := d.sideOf(req, up, from)
	if l == nil {
		return
	}
	if req.CSeq().SeqNo > l.cseq {
		l.cseq = req.CSeq().SeqNo
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		if c := req.Contact(); c != nil && c.Address.Host != "" {
			l.target = *c.Address.Clone()
		}
	}
}

// take removes and returns a running call, for a hangup.
func (t *dialogTable) take(callID string) (*dialog, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls.take(callID)
}

// setDeadline sets when callID is cut; it reports false for an unknown
// call.
func (t *dialogTable) setDeadline(callID string, at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.calls.get(callID)
	if !ok {
		return false
	}
	d.deadline = at
	if !at.IsZero() {
		// Stale entries (a moved deadline, an ended call) are skipped when
		// popped; rebuild when they outnumber the calls.
		if t.due.Len() > 2*t.calls.len()+1024 {
			t.rebuildDue()
		}
		heap.Push(&t.due, deadlineEntry{at: at, callID: callID})
	}
	return true
}

// rebuildDue drops stale deadline entries; t.mu must be held.
func (t *dialogTable) rebuildDue() {
	t.due = t.due[:0]
	for n := t.calls.head; n != nil; n = n.next {
		if !n.v.deadline.IsZero() {
			t.due = append(t.due, deadlineEntry{at: n.v.deadline, callID: n.k})
		}
	}
	heap.Init(&t.due)
}

// expire forgets what outlived its table's limit at now: unanswered calls
// and INVITEs after ttl, running calls dialog_timeout after their answer
// (returned, so the tap can end them). It also returns the running calls
// whose deadline passed; they stay in the table for the hangup.
func (t *dialogTable) expire(now time.Time, ttl time.Duration) (timedOut []*dialog, due []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		k, d, ok := t.early.oldest()
		if !ok || d.start.Add(ttl).After(now) {
			break
		}
		t.early.take(k)
	}
	for {
		k, o, ok := t.out.oldest()
		if !ok || o.start.Add(ttl).After(now) {
			break
		}
		t.out.take(k)
	}
	for {
		k, d, ok := t.calls.oldest()
		if !ok || d.answered.Add(t.timeout).After(now) {
			break
		}
		t.calls.take(k)
		timedOut = append(timedOut, d)
	}
	for t.due.Len() > 0 && !t.due[0].at.After(now) {
		e := heap.Pop(&t.due).(deadlineEntry)
		if d, ok := t.calls.get(e.callID); ok && d.deadline.Equal(e.at) {
			due = append(due, e.callID)
		}
	}
	return timedOut, due
}

// running returns the number of running calls.
func (t *dialogTable) running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls.len()
}

// list returns the running calls, oldest answer first.
func (t *dialogTable) list() []teardown.Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]teardown.Call, 0, t.calls.len())
	for n := t.calls.head; n != nil; n = n.next {
		out = append(out, n.v.row())
	}
	return out
}

// matching returns the Call-IDs of running calls for which ok holds.
func (t *dialogTable) matching(ok func(*dialog) bool) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for n := t.calls.head; n != nil; n = n.next {
		if ok(n.v) {
			ids = append(ids, n.k)
		}
	}
	return ids
}

// row is d as a listing row.
func (d *dialog) row() teardown.Call {
	c := teardown.Call{ID: d.callID, Account: d.sip.Account(), From: d.sip.FromUser, To: d.sip.RURIUser,
		Source: d.meta.Source, Direction: "outbound", Start: d.start, Answer: d.answered, Deadline: d.deadline}
	if !d.outbound {
		c.Direction = "inbound"
	}
	return c
}

// sameFlow reports whether a and b are one listener and one peer address.
func sameFlow(a, b flow) bool { return a.lis == b.lis && a.remote == b.remote }

// deadlineEntry is one call_duration deadline.
type deadlineEntry struct {
	at     time.Time
	callID string
}

// deadlines is a min-heap of deadlines (container/heap).
type deadlines []deadlineEntry

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlines) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlines) Push(x any)        { *h = append(*h, x.(deadlineEntry)) }
func (h *deadlines) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
