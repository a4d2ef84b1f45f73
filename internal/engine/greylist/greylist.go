// Package greylist holds the first UDP request of a source it has not seen
// until the source's client retransmits it: SMTP greylisting applied to
// SIP. RFC 3261 requires every UDP client transaction to retransmit its
// request until it gets a response (§17.1.1.2 Timer A for INVITE,
// §17.1.2.2 Timer E otherwise, from T1 = 500 ms); attack tools (sipvicious,
// floods) send once and move on.
//
// A Table remembers, per source (an IPv4 address, an IPv6 prefix), whether
// it passed and a few pending transactions. Check of a transaction key not
// seen before holds it; the same key again between Config.MinDelay and
// Config.MaxDelay later is a retransmission: it is released and the source
// passes for Config.Remember after its last request. Pass marks a source
// that authenticated.
//
// The table is sized once (Config.MaxSources) and never grows. When the
// probed slots of a new source are all taken, it evicts, in this order, a
// slot with nothing alive (no pass, no pending transaction within
// MaxDelay), one with only pending transactions, one that passed by
// retransmitting, and only when every probed slot belongs to a source
// marked with Pass, the stalest of those. A spoofed flood of random
// sources costs one slot per source and, sending each datagram once,
// evicts pending or dead slots, and a source that passed only where all 8
// probed slots passed; a forger who repeats each datagram can evict
// sources that passed by retransmitting, which then wait one
// retransmission (T1) once more: eviction never blocks anyone.
package greylist

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/tollguard/tollguard/internal/engine/srckey"
)

const (
	// probes is how many neighbouring slots a source may occupy.
	probes = 8
	// Pending is how many transactions one source may have held at once
	// (a NAT with several phones booting). When they are all taken and
	// none is older than MaxDelay, a new one replaces the newest: the
	// oldest are the ones whose retransmission comes first, and one
	// released transaction passes the whole source.
	Pending = 4
)

// Config sizes and tunes a Table.
type Config struct {
	// MinDelay: a copy of a held transaction sooner than this is a
	// duplicate (a tool sending twice back to back), not a retransmission
	// timer; it is held and the first copy's time kept.
	MinDelay time.Duration
	// MaxDelay: a copy later than this starts over (64·T1 = 32 s ends
	// every client transaction).
	MaxDelay time.Duration
	// Remember is how long a source passes after its last request.
	Remember time.Duration
	// IPv6Prefix groups IPv6 sources; IPv4 sources are kept per address.
	IPv6Prefix int
	// MaxSources bounds the tracked sources.
	MaxSources int
}

// Result is what Check decided.
type Result uint8

// Results of Check.
const (
	// Passed: the source passed before (or authenticated); forward.
	Passed Result = iota
	// Held: a transaction not seen before, or a copy outside the delays;
	// do not forward.
	Held
	// Released: a retransmission of a held transaction; forward it. The
	// source passes from now on.
	Released
)

// String returns the result's name.
func (r Result) String() string {
	switch r {
	case Passed:
		return "passed"
	case Held:
		return "held"
	case Released:
		return "released"
	}
	return "unknown"
}

// Table is the greylist. It is safe for concurrent use.
type Table struct {
	min, max, remember int64
	v6bits             int
	seed               uint64
	shift              uint
	shards             []shard
}

type shard struct {
	mu    sync.Mutex
	mask  uint64
	slots []slot
	_     [40]byte
}

// pass levels of a slot.
const (
	none   uint8 = iota
	weak         // passed by retransmitting
	strong       // marked with Pass (authenticated)
)

// slot is one source. tag 0 means empty; times are Unix nanoseconds.
type slot struct {
	tag   uint64
	last  int64 // last request or mark
	until int64 // passes until
	level uint8
	pend  [Pending]pending
}

// pending is one held transaction; key 0 means free.
type pending struct {
	key uint64
	at  int64
}

// New returns a Table for c. It allocates all its memory at once.
func New(c Config) (*Table, error) {
	if c.MinDelay < 0 || c.MaxDelay <= c.MinDelay || c.Remember <= 0 || c.MaxSources < 1 {
		return nil, fmt.Errorf("greylist: need 0 <= min delay < max delay, and positive remember and max sources")
	}
	if c.IPv6Prefix < 1 || c.IPv6Prefix > 128 {
		return nil, fmt.Errorf("greylist: ipv6 prefix %d is not 1-128", c.IPv6Prefix)
	}
	nshards, per, shift := srckey.Layout(c.MaxSources)
	t := &Table{
		min: int64(c.MinDelay), max: int64(c.MaxDelay), remember: int64(c.Remember),
		v6bits: c.IPv6Prefix, seed: rand.Uint64(),
		shift:  shift,
		shards: make([]shard, nshards),
	}
	for i := range t.shards {
		t.shards[i].slots = make([]slot, per)
		t.shards[i].mask = uint64(per - 1)
	}
	return t, nil
}

// Bytes returns the memory the table holds; it does not change after New.
func (t *Table) Bytes() int {
	n := int(unsafe.Sizeof(*t)) + len(t.shards)*int(unsafe.Sizeof(shard{}))
	for i := range t.shards {
		n += len(t.shards[i].slots) * int(unsafe.Sizeof(slot{}))
	}
	return n
}

// Capacity returns how many sources the table can track at once.
func (t *Table) Capacity() int { return len(t.shards) * len(t.shards[0].slots) }

// Check decides one request from a, whose transaction (source address
// and port, top Via branch, Call-ID, CSeq) hashes to key: Passed, Held or
// Released (see Result).
func (t *Table) Check(a netip.Addr, key uint64, now time.Time) Result {
	if key == 0 {
		key = 1
	}
	h := t.hash(a)
	s := t.shard(h)
	ns := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(h)
	if e != nil && e.until > ns {
		e.last, e.until = ns, max(e.until, ns+t.remember)
		return Passed
	}
	if e == nil {
		e = s.claim(h, t.rank, ns)
	}
	e.last = ns
	free, newest := -1, -1
	for i := range e.pend {
		p := &e.pend[i]
		switch {
		case p.key == key:
			switch age := ns - p.at; {
			case age < t.min && age >= 0:
				return Held // a duplicate: keep the first copy's time
			case age >= 0 && age <= t.max:
				e.pend = [Pending]pending{}
				e.level, e.until = weak, ns+t.remember
				return Released
			}
			p.at = ns // too late (or the clock went back): start over
			return Held
		case p.key == 0 || ns-p.at > t.max:
			if free < 0 {
				free = i
			}
		case newest < 0 || p.at > e.pend[newest].at:
			newest = i
		}
	}
	if free < 0 {
		free = newest
	}
	e.pend[free] = pending{key: key, at: ns}
	return Held
}

// Pass marks a's source as authenticated: it passes for Remember and its
// slot is the last a new source evicts.
func (t *Table) Pass(a netip.Addr, now time.Time) {
	h := t.hash(a)
	s := t.shard(h)
	ns := now.UnixNano()
	s.mu.Lock()
	e := s.lookup(h)
	if e == nil {
		e = s.claim(h, t.rank, ns)
	}
	e.pend = [Pending]pending{}
	e.last, e.level, e.until = ns, strong, max(e.until, ns+t.remember)
	s.mu.Unlock()
}

// Fail withdraws the pass a's source earned by retransmitting (not one
// Pass gave): a wrong password or an unknown account from it makes it a
// stranger again, so its next new transaction is held until retransmitted.
// Without it, one retransmitted request would open an address to a
// non-retransmitting tool for Remember.
func (t *Table) Fail(a netip.Addr) {
	h := t.hash(a)
	s := t.shard(h)
	s.mu.Lock()
	if e := s.lookup(h); e != nil && e.level != strong {
		e.level, e.until = none, 0
	}
	s.mu.Unlock()
}

// Passes reports whether a's source passes at now without being held.
func (t *Table) Passes(a netip.Addr, now time.Time) bool {
	h := t.hash(a)
	s := t.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(h)
	return e != nil && e.until > now.UnixNano()
}

// rank orders eviction victims: lower goes first.
func (t *Table) rank(e *slot, ns int64) int {
	if e.until > ns {
		return 1 + int(e.level) // weak 2, strong 3
	}
	for _, p := range e.pend {
		if p.key != 0 && ns-p.at <= t.max {
			return 1
		}
	}
	return 0
}

func (t *Table) shard(h uint64) *shard {
	if len(t.shards) == 1 {
		return &t.shards[0]
	}
	return &t.shards[h>>t.shift]
}

// lookup returns h's slot, or nil. Called with s.mu held.
func (s *shard) lookup(h uint64) *slot {
	tag := h | 1
	for i := uint64(0); i < probes; i++ {
		if e := &s.slots[(h+i)&s.mask]; e.tag == tag {
			return e
		}
	}
	return nil
}

// claim takes a slot for h: an empty one, else the lowest ranked, stalest
// probed slot. Called with s.mu held.
func (s *shard) claim(h uint64, rank func(*slot, int64) int, ns int64) *slot {
	var victim *slot
	vr := 0
	for i := uint64(0); i < probes; i++ {
		e := &s.slots[(h+i)&s.mask]
		if e.tag == 0 {
			victim = e
			break
		}
		r := rank(e, ns)
		if victim == nil || r < vr || (r == vr && e.last < victim.last) {
			victim, vr = e, r
		}
	}
	*victim = slot{tag: h | 1}
	return victim
}

// hash is a's key in the table (srckey.Hash with the table's IPv6
// prefix and seed).
func (t *Table) hash(a netip.Addr) uint64 { return srckey.Hash(a, t.v6bits, t.seed) }
