// Package flood counts requests per source in a fixed-size table, the way
// Kamailio's pike does, but per exact source (IPv4 address, IPv6 prefix) so
// that neighbours in one network never share a counter.
//
// The table is sized once (Config.MaxSources) and never grows: a spoofed
// flood from millions of addresses evicts stale entries instead of
// allocating. Hit neither allocates nor blocks beyond one shard mutex.
//
// A source the caller marked with Trust (it authenticated) is held to
// Config.Limit; any other source is a stranger and is also told when it
// passes Config.StrangerLimit.
package flood

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/tollguard/tollguard/internal/engine/srckey"
)

// probes is how many neighbouring slots a key may occupy; past that the
// stalest of them is evicted.
const probes = 8

// Config sizes and tunes a Table.
type Config struct {
	// Window and Limit: a source that sends more than Limit requests in any
	// Window (sliding, estimated from two fixed windows) is over the limit.
	Window time.Duration
	Limit  int
	// StrangerLimit is the lower limit of a source not marked with Trust
	// (Hit returns OverStranger past it). Zero, or above Limit, is Limit.
	StrangerLimit int
	// IPv6Prefix groups IPv6 sources: all addresses in one /IPv6Prefix share
	// a counter. IPv4 sources are counted per address.
	IPv6Prefix int
	// MaxSources bounds the tracked sources; memory is about 24 bytes each.
	MaxSources int
}

// Table counts requests per source. It is safe for concurrent use.
type Table struct {
	window   int64
	limit    uint64
	stranger uint64
	v6bits   int
	seed     uint64
	shift    uint // shard index = hash >> shift
	shards   []shard
}

type shard struct {
	mu    sync.Mutex
	mask  uint64
	slots []slot
	_     [40]byte // keep shards on separate cache lines
}

// slot is one tracked source. tag 0 means empty. win is the index of the
// window cur counts (wrapping arithmetic); prev is the window before it.
// trusted is 1 once Trust marked the source (it fits the padding: a slot
// stays 24 bytes).
type slot struct {
	tag     uint64
	win     uint32
	cur     uint32
	prev    uint32
	trusted uint32
}

// Result is what Hit found.
type Result uint8

// Results of Hit.
const (
	// Under: the source is within its limit.
	Under Result = iota
	// OverStranger: a source not marked with Trust is past StrangerLimit
	// (but not past Limit). Its counters go on: the caller drops the
	// request, or marks the source with Trust when it learns that it
	// authenticated.
	OverStranger
	// Over: the source is past Limit; its counters restart.
	Over
)

// New returns a Table for c. It allocates all its memory at once.
func New(c Config) (*Table, error) {
	if c.Window <= 0 || c.Limit < 1 || c.MaxSources < 1 {
		return nil, fmt.Errorf("flood: window, limit and max_sources must be positive")
	}
	if c.IPv6Prefix < 1 || c.IPv6Prefix > 128 {
		return nil, fmt.Errorf("flood: ipv6 prefix %d is not 1-128", c.IPv6Prefix)
	}
	nshards, per, shift := srckey.Layout(c.MaxSources)
	stranger := c.StrangerLimit
	if stranger < 1 || stranger > c.Limit {
		stranger = c.Limit
	}
	t := &Table{
		window:   int64(c.Window),
		limit:    uint64(c.Limit),
		stranger: uint64(stranger),
		v6bits:   c.IPv6Prefix,
		seed:     rand.Uint64(),
		shift:    shift,
		shards:   make([]shard, nshards),
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

// Group returns the prefix a's requests are counted under: the address
// itself for IPv4 (and IPv4-mapped IPv6), its /IPv6Prefix for IPv6.
func (t *Table) Group(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(t.v6bits)
	return p
}

// Hit counts one request from a at now and reports whether its source is
// over the limit (Over) or, when not marked with Trust, over the stranger
// limit (OverStranger). Over restarts its counters, so a continuing flood
// reports Over again only after another Limit requests; OverStranger does
// not, so a stranger that goes on reaches Over.
func (t *Table) Hit(a netip.Addr, now time.Time) Result {
	h := t.hash(a)
	s := &t.shards[h>>t.shift&uint64(len(t.shards)-1)]
	idx := uint32(now.UnixNano() / t.window)
	frac := uint64(now.UnixNano() % t.window)
	tag := h | 1
	s.mu.Lock()
	e := s.find(h, tag, idx)
	switch idx - e.win {
	case 0:
		e.cur++
	case 1:
		e.prev, e.cur, e.win = e.cur, 1, idx
	default:
		e.prev, e.cur, e.win = 0, 1, idx
	}
	// Sliding estimate: the previous window weighs by the part of it that
	// still lies within Window of now.
	est := uint64(e.cur) + uint64(e.prev)*uint64(t.window-int64(frac))/uint64(t.window)
	r := Under
	switch {
	case est > t.limit:
		e.cur, e.prev = 0, 0
		r = Over
	case est > t.stranger && e.trusted == 0:
		r = OverStranger
	}
	s.mu.Unlock()
	return r
}

// Trust marks a's source as authenticated: from now on only Limit applies
// to it. The mark lasts as long as the source's slot: a source evicted by
// a flood of other sources is a stranger again until marked anew.
func (t *Table) Trust(a netip.Addr, now time.Time) {
	h := t.hash(a)
	s := &t.shards[h>>t.shift&uint64(len(t.shards)-1)]
	s.mu.Lock()
	s.find(h, h|1, uint32(now.UnixNano()/t.window)).trusted = 1
	s.mu.Unlock()
}

// trusted reports whether a's source is marked with Trust.
func (t *Table) trusted(a netip.Addr) bool {
	h := t.hash(a)
	s := &t.shards[h>>t.shift&uint64(len(t.shards)-1)]
	tag := h | 1
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := uint64(0); i < probes; i++ {
		if e := &s.slots[(h+i)&s.mask]; e.tag == tag {
			return e.trusted != 0
		}
	}
	return false
}

// Forget clears the counters of a's source (not its Trust mark).
func (t *Table) Forget(a netip.Addr) {
	h := t.hash(a)
	s := &t.shards[h>>t.shift&uint64(len(t.shards)-1)]
	tag := h | 1
	s.mu.Lock()
	for i := uint64(0); i < probes; i++ {
		e := &s.slots[(h+i)&s.mask]
		if e.tag == tag {
			e.cur, e.prev = 0, 0
		}
	}
	s.mu.Unlock()
}

// find returns the slot of tag, claiming an empty or the stalest probed
// slot when tag is not present. Called with s.mu held.
func (s *shard) find(h, tag uint64, idx uint32) *slot {
	var victim *slot
	var age uint32
	for i := uint64(0); i < probes; i++ {
		e := &s.slots[(h+i)&s.mask]
		if e.tag == tag {
			return e
		}
		if e.tag == 0 {
			victim = e
			break
		}
		if a := idx - e.win; victim == nil || a > age {
			victim, age = e, a
		}
	}
	*victim = slot{tag: tag, win: idx - 2}
	return victim
}

// hash is a's key in the table (srckey.Hash with the table's IPv6
// prefix and seed).
func (t *Table) hash(a netip.Addr) uint64 { return srckey.Hash(a, t.v6bits, t.seed) }
