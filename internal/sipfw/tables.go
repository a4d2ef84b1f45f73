package sipfw

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
)

// pendingKey names a forwarded request by the branch of the Via the proxy
// added. CANCEL shares its INVITE's branch (RFC 3261 §9.1), so it is keyed
// apart.
type pendingKey struct {
	branch string
	cancel bool
}

// pendingEntry is what the proxy remembers about a request forwarded to the
// upstream: enough to answer 503 if the PBX is silent, and to tap the final
// response.
type pendingEntry struct {
	req      *sip.Request // as forwarded, the proxy's Via on top
	client   flow
	meta     event.Meta
	sip      event.SIP
	initial  bool // an INVITE without To tag
	expires  int  // REGISTER: requested expiry, -1 when not stated
	deadline time.Time
	rang     bool // a provisional other than 100 was tapped (CallRinging)
}

// pendingTable holds forwarded requests until their final response. Entries
// still waiting for any answer live in wait with a deadline of
// UpstreamTimeout; once a provisional response shows the upstream is alive,
// they move to ring with Timer C's deadline. Both are FIFO ordered by
// deadline, so expiry only looks at the front.
type pendingTable struct {
	mu   sync.Mutex
	wait *fifo[pendingKey, *pendingEntry]
	ring *fifo[pendingKey, *pendingEntry]
}

func newPendingTable(max int) *pendingTable {
	return &pendingTable{wait: newFIFO[pendingKey, *pendingEntry](max), ring: newFIFO[pendingKey, *pendingEntry](max)}
}

// add remembers e, replacing a retransmission's entry. It reports whether a
// full table evicted an older entry.
func (t *pendingTable) add(k pendingKey, e *pendingEntry) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring.take(k)
	return t.wait.put(k, e)
}

// provisional records that k got a provisional response with code at now.
// For the first one other than 100 to an initial INVITE it returns the
// entry and true: the PBX took the call past authentication.
func (t *pendingTable) provisional(k pendingKey, now time.Time, code int) (*pendingEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.wait.take(k)
	if ok {
		e.deadline = now.Add(ringTTL)
		t.ring.put(k, e)
	} else if e, ok = t.ring.get(k); !ok {
		return nil, false
	}
	if code <= 100 || !e.initial || e.rang {
		return nil, false
	}
	e.rang = true
	return e, true
}

// final removes and returns k's entry.
func (t *pendingTable) final(k pendingKey) (*pendingEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.wait.take(k); ok {
		return e, true
	}
	return t.ring.take(k)
}

// expire removes entries whose deadline passed and returns those that never
// heard from the upstream.
func (t *pendingTable) expire(now time.Time) []*pendingEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var silent []*pendingEntry
	for {
		k, e, ok := t.wait.oldest()
		if !ok || e.deadline.After(now) {
			break
		}
		t.wait.take(k)
		silent = append(silent, e)
	}
	for {
		k, e, ok := t.ring.oldest()
		if !ok || e.deadline.After(now) {
			break
		}
		t.ring.take(k)
	}
	return silent
}
