// Package probe detects toll-fraud probes: an INVITE without credentials
// from a source that never registered or authenticated, which either
// dials a number matching probe.destinations (international and premium
// patterns) or which the PBX refuses: 403, 404 or 484, or a 401/407
// challenge never answered within Grace. Attackers send such INVITEs to
// learn which dial prefixes a PBX routes without authentication (an open
// trunk, a permissive default context). A real phone authenticates (it
// answers the challenge at once with the same Call-ID) and registers, so
// it never trips the rule.
//
// Every probe is flagged on the event that shows it (a Pass verdict with
// Rule "probe", which the wiring records); a source with max_probes probes
// within findtime is banned and the request is dropped.
package probe

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// Name is the rule of the detector's decisions and verdicts.
const Name = "probe"

// Grace is how long a challenged INVITE has to be answered with
// credentials (same Call-ID) before it counts as a probe; the same bound
// as the enumeration detector's.
const Grace = 5 * time.Second

// maxPending bounds the challenged INVITEs tracked per source.
const maxPending = 8

// Detector is the probe rule.
type Detector struct {
	findTime   time.Duration
	max        int
	banTime    time.Duration
	dest       []*regexp.Regexp
	maxSources int

	mu sync.Mutex
	m  map[netip.Addr]*source
	// size mirrors len(m), so that the common case (nothing tracked)
	// skips the lock.
	size atomic.Int32
}

type source struct {
	probes  []time.Time
	pending []pending
	// counted are the Call-IDs of the last maxPending probes, so that a
	// retransmitted INVITE (the copy a greylisting guard lets through, or
	// one the PBX answered late) counts once.
	counted []string
	authed  bool // a credentialed call was answered from this source
	last    time.Time
}

type pending struct {
	callID string
	at     time.Time
}

var (
	_ detector.Detector   = (*Detector)(nil)
	_ detector.OnRequest  = (*Detector)(nil)
	_ detector.OnResponse = (*Detector)(nil)
	_ detector.OnCall     = (*Detector)(nil)
)

// Compile builds the detector from its config section; maxSources bounds
// the tracked sources.
func Compile(c config.Probe, maxSources int) (*Detector, error) {
	if c.FindTime <= 0 || c.MaxProbes < 1 || c.BanTime <= 0 {
		return nil, fmt.Errorf("probe: findtime, max_probes and bantime must be positive")
	}
	d := &Detector{findTime: c.FindTime.D(), max: c.MaxProbes, banTime: c.BanTime.D(), maxSources: max(maxSources, 1),
		m: map[netip.Addr]*source{}}
	for i, p := range c.Destinations {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("probe.destinations[%d]: %w", i, err)
		}
		d.dest = append(d.dest, re)
	}
	return d, nil
}

// Name implements detector.Detector.
func (d *Detector) Name() string { return Name }

// unknown reports whether src never registered any account.
func unknown(sh *detector.Shared, src netip.Addr) bool { return !sh.Known.HasAny(src) }

// Request sees an initial INVITE as event.CallAttempt (Input.Request
// false): without credentials from an unknown source and to a listed
// destination, it is a probe. An INVITE with credentials answers the
// source's pending challenge with the same Call-ID.
func (d *Detector) Request(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	s := in.SIP
	if s.Method != "INVITE" {
		return
	}
	if s.HasCredentials {
		if in.Request && d.tracked(in.Src) {
			d.mu.Lock()
			if src, ok := d.m[in.Src]; ok {
				src.answer(s.CallID)
			}
			d.mu.Unlock()
		}
		return
	}
	if in.Kind != event.KindCallAttempt || !unknown(sh, in.Src) || !d.matches(detector.Normalize(s.RURIUser)) {
		return
	}
	d.probe(sh, in, out, s.CallID, "unauthenticated INVITE to an international or premium number", true)
}

// Response judges an unauthenticated INVITE's final response: 403, 404 or
// 484 make it a probe, a 401/407 challenge is pending until answered.
func (d *Detector) Response(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	s := in.SIP
	if s.Method != "INVITE" || s.HasCredentials {
		if d.tracked(in.Src) {
			d.judge(sh, in, out)
		}
		return
	}
	if d.matches(detector.Normalize(s.RURIUser)) || !unknown(sh, in.Src) {
		return // counted at the request already, or a registered source
	}
	switch in.Code {
	case 403, 404, 484:
		d.probe(sh, in, out, s.CallID, fmt.Sprintf("unauthenticated INVITE refused with %d", in.Code), false)
	case 401, 407:
		d.mu.Lock()
		src := d.get(in.Src, in.Now)
		if len(src.pending) < maxPending && !src.isPending(s.CallID) {
			src.pending = append(src.pending, pending{callID: s.CallID, at: in.Now})
		}
		d.mu.Unlock()
		d.judge(sh, in, out)
	default:
		if d.tracked(in.Src) {
			d.judge(sh, in, out)
		}
	}
}

// Call marks a source whose credentialed call was answered as
// authenticated: a trunk or PBX that calls without registering.
func (d *Detector) Call(_ *detector.Shared, in *detector.Input, _ *detector.Out) {
	if in.Kind != event.KindCallAnswered || !in.SIP.HasCredentials {
		return
	}
	d.mu.Lock()
	d.get(in.Src, in.Now).authed = true
	d.mu.Unlock()
}

// matches reports whether the dialled number (normalised: "%2B44…" is
// "+44…", as the PBX decodes it) matches a destination pattern.
func (d *Detector) matches(user string) bool {
	for _, re := range d.dest {
		if re.MatchString(user) {
			return true
		}
	}
	return false
}

// tracked reports whether src has state; it takes the lock only when some
// source is tracked.
func (d *Detector) tracked(src netip.Addr) bool {
	if d.size.Load() == 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[src]
	return ok
}

// judge counts src's challenges unanswered for longer than Grace as probes.
func (d *Detector) judge(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	d.mu.Lock()
	src, ok := d.m[in.Src]
	var expired []string
	if ok {
		k := 0
		for _, p := range src.pending {
			if in.Now.Sub(p.at) > Grace {
				expired = append(expired, p.callID)
				continue
			}
			src.pending[k] = p
			k++
		}
		clear(src.pending[k:])
		src.pending = src.pending[:k]
	}
	d.mu.Unlock()
	for _, id := range expired {
		d.probe(sh, in, out, id, "unauthenticated INVITE challenged and never answered", false)
	}
}

// probe counts one probe (the INVITE of callID) from in.Src, flags it,
// and bans at max_probes (dropping the request when drop is set). An
// INVITE already counted (a retransmission: same Call-ID) is flagged but
// not counted again.
func (d *Detector) probe(sh *detector.Shared, in *detector.Input, out *detector.Out, callID, reason string, drop bool) {
	d.mu.Lock()
	src := d.get(in.Src, in.Now)
	if src.authed {
		d.mu.Unlock()
		return
	}
	if callID != "" && slices.Contains(src.counted, callID) {
		d.mu.Unlock()
		out.Set(detector.Verdict{Rule: Name, Reason: reason})
		return
	}
	if len(src.counted) == maxPending {
		src.counted = append(src.counted[:0], src.counted[1:]...)
	}
	src.counted = append(src.counted, callID)
	k := 0
	for _, t := range src.probes {
		if in.Now.Sub(t) < d.findTime {
			src.probes[k] = t
			k++
		}
	}
	src.probes = append(src.probes[:k], in.Now)
	n := len(src.probes)
	if n >= d.max {
		src.probes = src.probes[:0]
	}
	d.mu.Unlock()
	if n < d.max {
		out.Set(detector.Verdict{Rule: Name, Reason: reason})
		return
	}
	if b, ok := sh.IPBan(in.Src, in.Now, Name, fmt.Sprintf("%d toll-fraud probes within %s", n, d.findTime), d.banTime); ok {
		out.Ban(b)
	}
	v := detector.Verdict{Action: detector.Drop, Rule: Name, Reason: reason}
	if !drop {
		v.Action = detector.Pass
	}
	out.Set(v)
}

// isPending reports whether the INVITE of callID awaits its answer.
func (s *source) isPending(callID string) bool {
	return slices.ContainsFunc(s.pending, func(p pending) bool { return p.callID == callID })
}

func (s *source) answer(callID string) {
	for i, p := range s.pending {
		if p.callID == callID {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return
		}
	}
}

// get returns src's state, creating it (evicting the idlest of a sample
// when full).
func (d *Detector) get(a netip.Addr, now time.Time) *source {
	s, ok := d.m[a]
	if !ok {
		if len(d.m) >= d.maxSources {
			var oldest netip.Addr
			var os *source
			i := 0
			for k, v := range d.m {
				if os == nil || v.last.Before(os.last) {
					oldest, os = k, v
				}
				if i++; i >= 8 {
					break
				}
			}
			delete(d.m, oldest)
		}
		s = &source{}
		d.m[a] = s
		d.size.Store(int32(len(d.m)))
	}
	s.last = now
	return s
}

// Forget implements detector.Detector.
func (d *Detector) Forget(addr netip.Addr, account string) {
	if !addr.IsValid() || account != "" {
		return
	}
	d.mu.Lock()
	delete(d.m, addr)
	d.size.Store(int32(len(d.m)))
	d.mu.Unlock()
}
