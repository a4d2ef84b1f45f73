// Package enumeration detects one source trying many distinct accounts:
// extension enumeration (sipvicious svwar and the like), or a password
// list sprayed over extensions. The source is banned by address whatever
// its User-Agent.
//
// Two kinds of evidence count together, per source, as distinct accounts
// within findtime:
//
//   - a real authentication failure (credentials refused, unknown account);
//   - an abandoned challenge: a request without credentials was challenged
//     with 401/407 (RFC 3261 §22.2, §22.3) and the source never sent
//     credentials for that account within Grace. A PBX that challenges
//     every name (FreeSWITCH, Kamailio) gives an enumerator no failures at
//     all, but a real phone answers its challenge at once (RFC 3261 §22.2:
//     the client "SHOULD" retry with credentials), so a challenge left
//     unanswered is a name tried, not a phone registering.
//
// The engine has no timers: a pending challenge is judged on the next
// event from the same source (Check, Challenged, Fail), which for a
// scanner that keeps sending is within a few requests after Grace.
//
// A Detector is not safe for concurrent use; the engine serialises calls,
// except MayHavePending, which may be called at any time. State is
// bounded: at most maxSources sources (an approximately oldest one is
// evicted), each with at most MaxPending pending challenges (later ones are
// not tracked until earlier ones are answered or judged) and fewer than
// max_accounts counted accounts.
package enumeration

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Grace is how long a challenged source has to answer with credentials for
// the same account before the challenge counts as abandoned. Phones answer
// within one round trip; 5 s leaves room for a slow phone behind a busy
// NAT and for UDP retransmission (RFC 3261 §17.1.2.2, T1 = 500 ms).
const Grace = 5 * time.Second

// MaxPending is how many unanswered challenges are tracked per source.
const MaxPending = 16

// evictSample is how many sources are looked at to pick one to evict.
const evictSample = 8

// maxFree is how many released source records are kept for reuse, so that
// the phone's challenge-then-answer path does not allocate.
const maxFree = 256

// filterBits sizes the lock-free filter of sources with pending challenges.
const filterBits = 12

type seen struct {
	account   string
	at        time.Time
	abandoned bool // an abandoned challenge rather than a failure
}

type pending struct {
	account string
	at      time.Time
}

type source struct {
	seen    []seen
	pending []pending // at most MaxPending, oldest first
	last    time.Time // last event, for eviction
}

// Trip tells why a source tripped: how many distinct accounts failed and
// how many were challenged and never answered. The zero Trip means the
// source did not trip.
type Trip struct {
	Failed, Abandoned int
}

// Tripped reports whether the source reached max_accounts.
func (t Trip) Tripped() bool { return t.Failed+t.Abandoned > 0 }

// Reason renders t for a ban's reason. It allocates; call it only to ban.
func (t Trip) Reason() string {
	switch {
	case t.Abandoned == 0:
		return fmt.Sprintf("auth failures on %d accounts", t.Failed)
	case t.Failed == 0:
		return fmt.Sprintf("%d accounts challenged and never answered", t.Abandoned)
	}
	return fmt.Sprintf("%d accounts: %d auth failures, %d challenged and never answered", t.Failed+t.Abandoned, t.Failed, t.Abandoned)
}

// Detector counts distinct failing or abandoned accounts per source.
type Detector struct {
	findTime   time.Duration
	grace      time.Duration
	max        int
	maxSources int
	m          map[netip.Addr]*source
	free       []*source
	// filter counts, per hash bucket, the sources with pending challenges,
	// so that requests from other sources skip the lock.
	filter [1 << filterBits]atomic.Int32
}

// New returns a Detector that trips when maxAccounts distinct accounts
// fail, or are challenged and left unanswered for longer than grace, from
// one source within findTime.
func New(findTime, grace time.Duration, maxAccounts, maxSources int) (*Detector, error) {
	if findTime <= 0 || maxAccounts < 2 || grace <= 0 {
		return nil, fmt.Errorf("enumeration: findtime and grace must be positive and max_accounts at least 2")
	}
	return &Detector{findTime: findTime, grace: grace, max: maxAccounts, maxSources: max(maxSources, 1),
		m: make(map[netip.Addr]*source)}, nil
}

// Fail records a failure of account from addr (which also answers a
// pending challenge for it), judges addr's pending challenges and reports
// whether addr has now reached max_accounts. A source that trips starts
// over.
func (d *Detector) Fail(addr netip.Addr, account string, now time.Time) Trip {
	s := d.get(addr, now)
	d.unpend(addr, s, account)
	s.mark(account, now, false)
	return d.judge(addr, s, now)
}

// Challenged records that a request from addr without credentials for
// account got a 401/407 challenge, judges addr's pending challenges and
// reports whether addr has now reached max_accounts. A challenge for an
// account already pending keeps its first time; one beyond MaxPending is
// not tracked.
func (d *Detector) Challenged(addr netip.Addr, account string, now time.Time) Trip {
	s := d.get(addr, now)
	found := false
	for _, p := range s.pending {
		if p.account == account {
			found = true
			break
		}
	}
	if !found && len(s.pending) < MaxPending {
		if len(s.pending) == 0 {
			d.bucket(addr).Add(1)
		}
		s.pending = append(s.pending, pending{account, now})
	}
	return d.judge(addr, s, now)
}

// Answered records that addr sent credentials for account (or for alt, the
// account the unauthenticated request named; either may be empty) or
// registered it: a pending challenge for it is answered, and one already
// counted as abandoned is taken back (a slow phone, not a scanner).
func (d *Detector) Answered(addr netip.Addr, account, alt string) {
	s, ok := d.m[addr]
	if !ok {
		return
	}
	for _, a := range [2]string{account, alt} {
		if a == "" {
			continue
		}
		d.unpend(addr, s, a)
		for i, e := range s.seen {
			if e.account == a && e.abandoned {
				s.seen = slices.Delete(s.seen, i, i+1)
				break
			}
		}
	}
	if len(s.seen) == 0 && len(s.pending) == 0 {
		d.drop(addr, s)
	}
}

// Check judges addr's pending challenges at now and reports whether addr
// has reached max_accounts. It does not allocate when addr is not tracked.
func (d *Detector) Check(addr netip.Addr, now time.Time) Trip {
	s, ok := d.m[addr]
	if !ok {
		return Trip{}
	}
	return d.judge(addr, s, now)
}

// MayHavePending reports whether addr may have pending challenges; false
// means it has none. It is safe for concurrent use with every method and
// does not lock or allocate.
func (d *Detector) MayHavePending(addr netip.Addr) bool { return d.bucket(addr).Load() > 0 }

// Pending returns how many challenges from addr are pending.
func (d *Detector) Pending(addr netip.Addr) int {
	if s, ok := d.m[addr]; ok {
		return len(s.pending)
	}
	return 0
}

// Forget clears addr's counters and pending challenges.
func (d *Detector) Forget(addr netip.Addr) {
	if s, ok := d.m[addr]; ok {
		d.drop(addr, s)
	}
}

// Len returns how many sources are tracked.
func (d *Detector) Len() int { return len(d.m) }

// get returns addr's state, creating it (and evicting when full).
func (d *Detector) get(addr netip.Addr, now time.Time) *source {
	s, ok := d.m[addr]
	if !ok {
		if len(d.m) >= d.maxSources {
			d.evict(now)
		}
		if n := len(d.free); n > 0 {
			s, d.free = d.free[n-1], d.free[:n-1]
		} else {
			s = &source{}
		}
		d.m[addr] = s
	}
	s.last = now
	return s
}

// judge moves challenges older than grace to the counted accounts, drops
// what is older than findtime and trips addr at max_accounts.
func (d *Detector) judge(addr netip.Addr, s *source, now time.Time) Trip {
	n := 0
	for _, p := range s.pending {
		age := now.Sub(p.at)
		switch {
		case age >= d.findTime:
		case age > d.grace:
			s.mark(p.account, p.at, true)
		default:
			s.pending[n] = p
			n++
		}
	}
	if n == 0 && len(s.pending) > 0 {
		d.bucket(addr).Add(-1)
	}
	clear(s.pending[n:])
	s.pending = s.pending[:n]
	n = 0
	var t Trip
	for _, e := range s.seen {
		if now.Sub(e.at) >= d.findTime {
			continue
		}
		if e.abandoned {
			t.Abandoned++
		} else {
			t.Failed++
		}
		s.seen[n] = e
		n++
	}
	clear(s.seen[n:])
	s.seen = s.seen[:n]
	if n >= d.max {
		d.drop(addr, s)
		return t
	}
	if n == 0 && len(s.pending) == 0 {
		d.drop(addr, s)
	}
	return Trip{}
}

// mark counts account at time at; a failure outranks an abandoned
// challenge for the same account.
func (s *source) mark(account string, at time.Time, abandoned bool) {
	for i := range s.seen {
		e := &s.seen[i]
		if e.account == account {
			if at.After(e.at) {
				e.at = at
			}
			e.abandoned = e.abandoned && abandoned
			return
		}
	}
	s.seen = append(s.seen, seen{account, at, abandoned})
}

// unpend removes account from s's pending challenges.
func (d *Detector) unpend(addr netip.Addr, s *source, account string) {
	for i, p := range s.pending {
		if p.account == account {
			s.pending = slices.Delete(s.pending, i, i+1)
			if len(s.pending) == 0 {
				d.bucket(addr).Add(-1)
			}
			return
		}
	}
}

// drop forgets addr and keeps its record for reuse.
func (d *Detector) drop(addr netip.Addr, s *source) {
	if len(s.pending) > 0 {
		d.bucket(addr).Add(-1)
	}
	delete(d.m, addr)
	if len(d.free) < maxFree {
		clear(s.seen)
		clear(s.pending)
		s.seen, s.pending = s.seen[:0], s.pending[:0]
		d.free = append(d.free, s)
	}
}

// evict makes room: among a few sources (map order is random) it drops
// the stale ones, or else the one idle longest.
func (d *Detector) evict(now time.Time) {
	var oldest netip.Addr
	var os *source
	stale := false
	i := 0
	for a, s := range d.m {
		if now.Sub(s.last) >= d.findTime {
			d.drop(a, s)
			stale = true
		} else if os == nil || s.last.Before(os.last) {
			oldest, os = a, s
		}
		if i++; i >= evictSample {
			break
		}
	}
	if !stale && os != nil {
		d.drop(oldest, os)
	}
}

func (d *Detector) bucket(addr netip.Addr) *atomic.Int32 {
	b := addr.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])*0xc2b2ae3d27d4eb4f
	return &d.filter[h>>(64-filterBits)]
}
