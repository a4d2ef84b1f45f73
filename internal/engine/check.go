package engine

import (
	"context"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/engine/distributed"
	"github.com/tollguard/tollguard/internal/engine/enumeration"
	"github.com/tollguard/tollguard/internal/engine/fingerprint"
	"github.com/tollguard/tollguard/internal/engine/flood"
	"github.com/tollguard/tollguard/internal/engine/honeypot"
	"github.com/tollguard/tollguard/internal/engine/jail"
	"github.com/tollguard/tollguard/internal/engine/probe"
	"github.com/tollguard/tollguard/internal/event"
)

// Rule names used in verdicts and decisions.
const (
	RuleDeny        = "deny"
	RuleBan         = jail.RuleBan
	RuleFlood       = "flood"
	RuleScanner     = fingerprint.Name
	RuleHoneypot    = honeypot.Name
	RuleEnumeration = enumeration.Name
	RuleDistributed = distributed.Name
	RuleProbe       = probe.Name
	RuleAnomaly     = anomaly.Name
	// RuleJail prefixes the jail's decisions: "register_failure[0]".
	RuleJail = jail.Name
)

// scratch is one event's Input and Out, pooled so that hooks called
// through interfaces do not allocate.
type scratch struct {
	in  detector.Input
	out detector.Out
}

// Admit implements Gate. In order: an allowed source passes; a denied one
// is dropped ("deny"); a banned one is dropped ("ban"); then the request is
// counted against flood.limit and a source over it is banned and dropped
// ("flood"). A source that never authenticated (no registration, no
// answered call with credentials: see trust) is a stranger, and its
// requests past flood.stranger_limit are dropped ("flood") without a ban.
// Admit does not allocate unless it bans. A flood ban is unproven: Admit
// cannot tell a datagram from a connection, and a UDP flood's source can
// be forged.
//
// Trade-off: a stranger's requests past stranger_limit are dropped, not
// banned, so an office whose phones all boot at once loses only what it
// sends before its first registration is answered, and retransmits it
// (RFC 3261 §17.1.2.2 Timer E); a forger still needs more than limit
// datagrams to ban an address, as before.
func (e *Engine) Admit(src netip.Addr, now time.Time) Verdict {
	src = decision.Unmap(src)
	if v, done := e.screen(src, now); done {
		return v
	}
	r := e.rules.Load()
	switch r.flood.Hit(src, now) {
	case flood.Under:
		return Verdict{}
	case flood.OverStranger:
		// The flood table's mark is lost when its slot is evicted; the
		// registrations (kept per account, reloaded from the store at
		// start) still know the address.
		if e.shared.Known.HasAny(src) {
			r.flood.Trust(src, now)
			return Verdict{}
		}
		return e.count(Verdict{Action: Drop, Rule: RuleFlood, Reason: "stranger over flood.stranger_limit"})
	default:
		g := r.flood.Group(src)
		scope := decision.ScopeIP
		if g.Bits() < src.BitLen() {
			scope = decision.ScopePrefix
		}
		e.apply(e.limit(r, decision.Decision{Type: decision.TypeBan, Scope: scope, Prefix: g, Origin: decision.OriginEngine,
			Rule: RuleFlood, Reason: "request rate over flood.limit", At: now, Until: now.Add(r.cfg.Flood.BanTime.D()), Count: 1, Unproven: true}))
		return e.count(Verdict{Action: Drop, Rule: RuleFlood, Reason: "request rate over flood.limit"})
	}
}

// trust lifts flood.stranger_limit for src: it authenticated (a
// registration, or a call with credentials the PBX answered). Anyone who
// knows one account's password can do this for his own address; the
// other rules still judge what he sends.
func (e *Engine) trust(src netip.Addr, now time.Time) {
	if src.IsValid() {
		r := e.rules.Load()
		r.flood.Trust(src, now)
		if r.grey != nil {
			r.grey.Pass(src, now)
		}
	}
}

// Check implements Checker. Requests (*event.Request, *event.CallAttempt)
// get a verdict from the detectors' request hooks, in order;
// *event.AuthFailure, *event.Register, *event.Response and the call records
// go to the detectors' other hooks. Check is safe for concurrent use and
// does not allocate for a request that passes.
func (e *Engine) Check(_ context.Context, ev event.Event) Verdict {
	switch ev := ev.(type) {
	case *event.Request:
		return e.checkRequest(ev, event.KindRequest, &ev.Meta, &ev.SIP, ev.SIP.Account(), "", true)
	case *event.CallAttempt:
		acct := ev.Account
		if acct == "" {
			acct = ev.SIP.Account()
		}
		return e.checkRequest(ev, event.KindCallAttempt, &ev.Meta, &ev.SIP, acct, ev.Destination, false)
	case *event.Response:
		return e.response(ev)
	case *event.AuthFailure:
		return e.failure(ev)
	case *event.Register:
		return e.registered(ev)
	case *event.CallAnswered:
		return e.call(ev, event.KindCallAnswered, &ev.Meta, &ev.SIP, ev.Account, ev.Destination, 0, 0)
	case *event.CallRinging:
		return e.call(ev, event.KindCallRinging, &ev.Meta, &ev.SIP, ev.Account, ev.Destination, ev.Code, 0)
	case *event.CallEnded:
		return e.call(ev, event.KindCallEnded, &ev.Meta, &ev.SIP, ev.Account, ev.Destination, ev.Code, ev.Billsec)
	}
	return Verdict{}
}

func (e *Engine) clock(m *event.Meta) time.Time {
	if !m.Time.IsZero() {
		return m.Time
	}
	return e.now()
}

// begin takes a scratch and fills its Input: the account and every name
// the request uses for it, normalised (detector.Normalize), and the users
// it is addressed to.
func (e *Engine) begin(kind event.Kind, m *event.Meta, now time.Time, src netip.Addr, s *event.SIP, account string) *scratch {
	sc := e.scratch.Get().(*scratch)
	in := &sc.in
	*in = detector.Input{Kind: kind, Now: now, Src: src, SIP: s, Proven: m.Transport.Proven(), Listener: m.Listener}
	in.Account = detector.Normalize(account)
	in.Names.Add(in.Account)
	in.Names.Add(detector.Normalize(s.AuthUser))
	if s.Method == "REGISTER" {
		in.Names.Add(detector.Normalize(s.ToUser))
	} else {
		in.Names.Add(detector.Normalize(s.FromUser))
	}
	if in.Account == "" {
		in.Account = in.Names.First()
	}
	in.Targets.Add(detector.Normalize(s.RURIUser))
	in.Targets.Add(detector.Normalize(s.ToUser))
	return sc
}

// end applies sc's decisions (limited when the source is unproven) and
// returns sc to the pool.
func (e *Engine) end(r *rules, sc *scratch) {
	if ds := sc.out.Decisions(); len(ds) > 0 {
		for _, d := range ds {
			if !sc.in.Proven && d.Type != decision.TypeKill {
				d.Unproven = true
				d = e.limit(r, d)
			}
			e.apply(d)
		}
	}
	sc.out.Reset()
	sc.in = detector.Input{}
	e.scratch.Put(sc)
}

// A message's source is proven (DESIGN key decision 9) when it came over a
// completed TCP/TLS/WebSocket handshake: the peer answered packets sent to
// its address. A UDP datagram proves nothing, per message: forging its
// source costs one packet, an earlier registration from the address does
// not make this datagram genuine, and even a refused password is no proof
// (FreeSWITCH answers an unknown nonce with a stale challenge, never a
// failure, but accepts a nonce it issued from any address, and a forger
// can fetch one from its own; Kamailio's nonces are not bound to the
// address either unless configured to). A PBX's events and log lines that
// name no transport (event.TransportUnknown) count as UDP; replays without
// a transport count as proven (event.Transport.Proven).

// limit marks d as unproven and caps its duration at unproven.maxtime.
func (e *Engine) limit(r *rules, d decision.Decision) decision.Decision {
	d.Unproven = true
	if d.Scope == decision.ScopeAccount {
		return d
	}
	if maxUntil := d.At.Add(r.unproven); d.Until.IsZero() || d.Until.After(maxUntil) {
		d.Until = maxUntil
	}
	return d
}

// checkRequest decides one request: allow, deny, address bans, then the
// detectors' request hooks in order (detectors.go) until one refuses.
func (e *Engine) checkRequest(ev event.Event, kind event.Kind, m *event.Meta, s *event.SIP, account, dest string, request bool) Verdict {
	now := e.clock(m)
	src := decision.Unmap(m.Source.Addr())
	hooks := e.rules.Load().onRequest
	allowed := false
	if v, done := e.screen(src, now); done {
		if v.Action != Pass || request || len(e.rules.Load().freeRequest) == 0 {
			return v
		}
		// An allowed source's call attempt: only the Unscreened hooks.
		hooks, allowed = e.rules.Load().freeRequest, true
	}
	r := e.rules.Load()
	sc := e.begin(kind, m, now, src, s, account)
	sc.in.Request = request
	sc.in.Destination = dest
	sc.in.Allowed = allowed
	sc.in.Event = ev
	for _, h := range hooks {
		h.Request(&e.shared, &sc.in, &sc.out)
		if sc.out.V.Action != Pass {
			break
		}
	}
	v := sc.out.V
	e.end(r, sc)
	if v.Rule != "" {
		return e.count(v)
	}
	return v
}

// failure counts one authentication failure (DESIGN key decision 2: the
// source only emits real failures; a stale-nonce one is ignored anyway,
// RFC 7616 §3.3). It is recorded for Failures even from allowed sources,
// which are never banned. The verdict follows the bans: an ip ban drops,
// an ip_account ban rejects.
func (e *Engine) failure(ev *event.AuthFailure) Verdict {
	if ev.Stale {
		return Verdict{}
	}
	now := e.clock(&ev.Meta)
	src := decision.Unmap(ev.Source.Addr())
	account := ev.Account
	if account == "" {
		account = ev.SIP.Account()
	}
	e.m.failures.Inc()
	e.mu.Lock()
	e.ring.add(Failure{Time: now, Addr: src, Account: account, Method: ev.Method, Code: ev.Code})
	e.mu.Unlock()
	if e.lists.Load().Allowed(src) || !src.IsValid() {
		return Verdict{}
	}
	r := e.rules.Load()
	if r.grey != nil {
		r.grey.Fail(src)
	}
	sc := e.begin(event.KindAuthFailure, &ev.Meta, now, src, &ev.SIP, account)
	sc.in.Code = ev.Code
	for _, h := range r.onFailure {
		h.Failure(&e.shared, &sc.in, &sc.out)
	}
	v := Verdict{}
	for _, d := range sc.out.Decisions() {
		switch {
		case d.Scope == decision.ScopeIP:
			v = Verdict{Action: Drop, Rule: d.Rule, Reason: d.Reason}
		case d.Scope == decision.ScopeIPAccount && v.Action == Pass:
			v = Verdict{Action: Reject, Code: 403, Rule: d.Rule, Reason: d.Reason}
		}
	}
	e.end(r, sc)
	return v
}

// registered records a successful registration: the detectors' hooks run
// (the honeypot bans a honeypot account's registration), then, unless one
// banned, the address becomes known for every name the request used.
func (e *Engine) registered(ev *event.Register) Verdict {
	src := decision.Unmap(ev.Source.Addr())
	account := ev.Account
	if account == "" {
		account = ev.SIP.Account()
	}
	if !src.IsValid() || account == "" {
		return Verdict{}
	}
	allowed := e.lists.Load().Allowed(src)
	r := e.rules.Load()
	sc := e.begin(event.KindRegister, &ev.Meta, e.clock(&ev.Meta), src, &ev.SIP, account)
	sc.in.Event = ev
	for _, h := range r.onRegister {
		h.Registered(&e.shared, &sc.in, &sc.out)
	}
	if allowed {
		sc.out.Reset() // an allowed source is never banned
	}
	v := sc.out.V
	if v.Action == Pass {
		for i := range sc.in.Names.Len() {
			e.shared.Known.Registered(src, sc.in.Names.At(i))
		}
		e.trust(src, sc.in.Now)
	}
	e.end(r, sc)
	return v
}

// response hands a final response to the detectors' response hooks. It
// always passes for the proxy (the tap ignores the verdict) but may ban;
// a verdict with a rule flags the response for the store.
func (e *Engine) response(ev *event.Response) Verdict {
	src := decision.Unmap(ev.Source.Addr())
	if !src.IsValid() || e.lists.Load().Allowed(src) {
		return Verdict{}
	}
	r := e.rules.Load()
	sc := e.begin(event.KindResponse, &ev.Meta, e.clock(&ev.Meta), src, &ev.SIP, ev.SIP.Account())
	sc.in.Code, sc.in.Stale = ev.Code, ev.Stale
	for _, h := range r.onResponse {
		h.Response(&e.shared, &sc.in, &sc.out)
	}
	v := sc.out.V
	e.end(r, sc)
	return v
}

// call hands a call record to the detectors' call hooks.
func (e *Engine) call(ev event.Event, kind event.Kind, m *event.Meta, s *event.SIP, account, dest string, code int, billsec time.Duration) Verdict {
	r := e.rules.Load()
	src := decision.Unmap(m.Source.Addr())
	if kind == event.KindCallAnswered && s.HasCredentials && ev != nil {
		e.trust(src, e.clock(m))
	}
	if len(r.onCall) == 0 {
		return Verdict{}
	}
	hooks, allowed := r.onCall, false
	if src.IsValid() && e.lists.Load().Allowed(src) {
		hooks, allowed = r.freeCall, true
	}
	if !src.IsValid() || len(hooks) == 0 {
		return Verdict{}
	}
	if account == "" {
		account = s.Account()
	}
	sc := e.begin(kind, m, e.clock(m), src, s, account)
	sc.in.Destination = dest
	sc.in.Code, sc.in.Billsec, sc.in.Allowed = code, billsec, allowed
	sc.in.Event = ev
	for _, h := range hooks {
		h.Call(&e.shared, &sc.in, &sc.out)
	}
	v := sc.out.V
	e.end(r, sc)
	return v
}

// screen applies the allow and deny lists and the address bans to src: done
// is true when they settle the verdict (allowed: Pass; denied or banned:
// Drop). Both Admit and Check call it: a ban placed while a TCP connection
// is open, or a sidecar source that has no Admit, is caught at Check.
func (e *Engine) screen(src netip.Addr, now time.Time) (v Verdict, done bool) {
	l := e.lists.Load()
	if l.Allowed(src) {
		return Verdict{}, true
	}
	if l.Denied(src) {
		return e.count(Verdict{Action: Drop, Rule: RuleDeny, Reason: "deny list"}), true
	}
	if d, ok := e.set.Banned(src, now); ok {
		return e.count(Verdict{Action: Drop, Rule: RuleBan, Reason: d.Rule}), true
	}
	return Verdict{}, false
}

// CheckCall answers the pre-call check of a dialplan or sidecar: would a
// call from account at src to destination be let through now? It is
// judged and counted like an inline call the PBX let past authentication
// (the caller asks after authenticating it), but never as a running call:
// the sidecar's own call records end it.
func (e *Engine) CheckCall(ctx context.Context, account string, src netip.Addr, destination string) Verdict {
	now := e.now()
	s := event.SIP{Method: "INVITE", FromUser: account, AuthUser: account, RURIUser: destination, HasCredentials: true}
	m := event.Meta{Time: now, Source: netip.AddrPortFrom(src, 0)}
	v := e.Check(ctx, &event.CallAttempt{Meta: m, SIP: s, Account: account, Destination: destination})
	if v.Action == Pass {
		// Counted as a call the PBX let through (any final answer but
		// 401/403/407); see callpolicy.Counted.
		// No event for detectors that read it (the anomaly model): this
		// is a count, not a call the model should learn from.
		e.call(nil, event.KindCallEnded, &m, &s, account, destination, 200, 0)
	}
	return v
}
