package enumeration

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"
)

// Sweep counts, per source, the distinct users named by requests without
// credentials (REGISTER, INVITE, OPTIONS, SUBSCRIBE, MESSAGE: the methods
// svwar can sweep with) that the source never proved: a name stops
// counting when the source sends credentials for it or registers it, and a
// request other than OPTIONS whose From user registered from the source (a
// phone's calls, BLF subscriptions, messages) names nothing. (Which users
// count is the caller's choice: see Rule.Request.)
//
// It trips, without waiting for the challenge grace, when within findtime
// a source named max distinct users, either
//
//   - by OPTIONS, SUBSCRIBE or MESSAGE (no phone sends those to many
//     users it never registered), or
//   - by any of the methods while it sent no credentials at all (a phone
//     answers its challenge within one round trip; 60 phones rebooting
//     behind one NAT name 7 accounts before the first answer).
//
// A source that sends credentials is left to the challenge grace and the
// failure counts (Detector): an enumerator that answers one challenge with
// a made-up password pays a counted failure for it.
//
// Not safe for concurrent use except MayTrack; bounded to maxSources
// sources of at most max targets each.
type Sweep struct {
	findTime   time.Duration
	max        int
	maxSources int
	m          map[netip.Addr]*sweepSrc
	filter     [1 << filterBits]atomic.Int32
}

type target struct {
	name string
	at   time.Time
	any  bool // named by OPTIONS, SUBSCRIBE or MESSAGE
}

type sweepSrc struct {
	targets  []target
	answered time.Time // last credentials sent
	last     time.Time
}

// NewSweep returns a Sweep that trips at max distinct users within
// findTime; max 0 turns it off.
func NewSweep(findTime time.Duration, max, maxSources int) *Sweep {
	return &Sweep{findTime: findTime, max: max, maxSources: maxSources, m: map[netip.Addr]*sweepSrc{}}
}

// Enabled reports whether the sweep rule is on.
func (s *Sweep) Enabled() bool { return s != nil && s.max > 0 }

// MayTrack reports whether addr may be tracked; false means it is not. Safe
// for concurrent use; does not lock or allocate.
func (s *Sweep) MayTrack(addr netip.Addr) bool { return s.bucket(addr).Load() > 0 }

// Named records that addr named users (OPTIONS, SUBSCRIBE or MESSAGE when
// any) without credentials and returns the distinct users it named within
// findtime and whether it tripped. A source that trips starts over.
func (s *Sweep) Named(addr netip.Addr, users []string, anyMethod bool, now time.Time) (int, bool) {
	src, ok := s.m[addr]
	if !ok {
		if len(s.m) >= s.maxSources {
			s.evict(now)
		}
		src = &sweepSrc{}
		s.m[addr] = src
		s.bucket(addr).Add(1)
	}
	src.last = now
	n := 0
	for _, t := range src.targets {
		if now.Sub(t.at) < s.findTime {
			src.targets[n] = t
			n++
		}
	}
	clear(src.targets[n:])
	src.targets = src.targets[:n]
	for _, u := range users {
		found := false
		for i := range src.targets {
			if src.targets[i].name == u {
				src.targets[i].any = src.targets[i].any || anyMethod
				found = true
				break
			}
		}
		if !found && len(src.targets) < s.max {
			src.targets = append(src.targets, target{name: u, at: now, any: anyMethod})
		}
	}
	nAny := 0
	for _, t := range src.targets {
		if t.any {
			nAny++
		}
	}
	silent := src.answered.IsZero() || now.Sub(src.answered) >= s.findTime
	total := len(src.targets)
	if nAny >= s.max || silent && total >= s.max {
		s.drop(addr)
		return total, true
	}
	return total, false
}

// Answered records that addr sent credentials naming names (or registered
// them): those users stop counting and the source counts as answering.
func (s *Sweep) Answered(addr netip.Addr, names []string, now time.Time, credentials bool) {
	src, ok := s.m[addr]
	if !ok {
		return
	}
	if credentials {
		src.answered = now
	}
	n := 0
	for _, t := range src.targets {
		if !contains(names, t.name) {
			src.targets[n] = t
			n++
		}
	}
	clear(src.targets[n:])
	src.targets = src.targets[:n]
}

// Forget clears addr.
func (s *Sweep) Forget(addr netip.Addr) {
	if _, ok := s.m[addr]; ok {
		s.drop(addr)
	}
}

// Len returns how many sources are tracked.
func (s *Sweep) Len() int { return len(s.m) }

func (s *Sweep) drop(addr netip.Addr) {
	delete(s.m, addr)
	s.bucket(addr).Add(-1)
}

// evict drops stale sources among a sample, or the idlest of it.
func (s *Sweep) evict(now time.Time) {
	var oldest netip.Addr
	var os *sweepSrc
	stale := false
	i := 0
	for a, v := range s.m {
		if now.Sub(v.last) >= s.findTime {
			s.drop(a)
			stale = true
		} else if os == nil || v.last.Before(os.last) {
			oldest, os = a, v
		}
		if i++; i >= evictSample {
			break
		}
	}
	if !stale && os != nil {
		s.drop(oldest)
	}
}

func (s *Sweep) bucket(addr netip.Addr) *atomic.Int32 {
	b := addr.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0xc2b2ae3d27d4eb4f ^ binary.LittleEndian.Uint64(b[8:])*0x9e3779b97f4a7c15
	return &s.filter[h>>(64-filterBits)]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
