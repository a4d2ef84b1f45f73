package engine

import (
	"context"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/jail"
	"github.com/tollguard/tollguard/internal/event"
)

// Rule names used in verdicts and decisions.
const (
	RuleDeny        = "deny"
	RuleBan         = "ban"
	RuleFlood       = "flood"
	RuleScanner     = "scanner"
	RuleHoneypot    = "honeypot"
	RuleEnumeration = "enumeration"
	RuleDistributed = "distributed"
	// RuleJail prefixes the jail's decisions: "register_failure[0]".
	RuleJail = "register_failure"
)

// Admit implements Gate. In order: an allowed source passes; a denied one
// is dropped ("deny"); a banned one is dropped ("ban"); then the request is
// counted against flood.limit and a source over it is banned and dropped
// ("flood"). Admit does not allocate unless it bans.
func (e *Engine) Admit(src netip.Addr, now time.Time) Verdict {
	src = decision.Unmap(src)
	if v, done := e.screen(src, now); done {
		return v
	}
	r := e.rules.Load()
	if r.flood.Hit(src, now) {
		g := r.flood.Group(src)
		scope := decision.ScopeIP
		if g.Bits() < src.BitLen() {
			scope = decision.ScopePrefix
		}
		e.apply(decision.Decision{Type: decision.TypeBan, Scope: scope, Prefix: g, Origin: decision.OriginEngine,
			Rule: RuleFlood, Reason: "request rate over flood.limit", At: now, Until: now.Add(r.cfg.Flood.BanTime.D()), Count: 1})
		return e.count(Verdict{Action: Drop, Rule: RuleFlood, Reason: "request rate over flood.limit"})
	}
	return Verdict{}
}

// Check implements Checker. Requests (*event.Request, *event.CallAttempt)
// get a verdict; *event.AuthFailure feeds the jail, enumeration and
// distributed detectors; *event.Register records where an account
// registered; *event.Response feeds the enumeration detector's abandoned
// challenges. Other kinds pass. Check is safe for concurrent use and does
// not allocate for a request that passes.
func (e *Engine) Check(_ context.Context, ev event.Event) Verdict {
	switch ev := ev.(type) {
	case *event.Request:
		return e.checkRequest(&ev.Meta, &ev.SIP, ev.SIP.Account(), true)
	case *event.CallAttempt:
		acct := ev.Account
		if acct == "" {
			acct = ev.SIP.Account()
		}
		return e.checkRequest(&ev.Meta, &ev.SIP, acct, false)
	case *event.Response:
		return e.response(ev)
	case *event.AuthFailure:
		return e.failure(ev)
	case *event.Register:
		e.registered(ev)
	}
	return Verdict{}
}

func (e *Engine) clock(m *event.Meta) time.Time {
	if !m.Time.IsZero() {
		return m.Time
	}
	return e.now()
}

// checkRequest decides one request, in the documented order: allow, deny,
// ip ban, scanner fingerprints, honeypot, abandoned challenges (Request
// only), ip_account ban, account lock.
func (e *Engine) checkRequest(m *event.Meta, s *event.SIP, account string, request bool) Verdict {
	now := e.clock(m)
	src := decision.Unmap(m.Source.Addr())
	if v, done := e.screen(src, now); done {
		return v
	}
	r := e.rules.Load()
	fp := r.fp.Match(s)
	if fp.Strong != "" {
		e.banIP(src, now, RuleScanner, "scanner fingerprint "+fp.Strong, r.cfg.Fingerprints.BanTime.D())
		return e.count(Verdict{Action: Drop, Rule: RuleScanner, Reason: fp.Strong})
	}
	if fp.Weak != 0 && request {
		if total := e.addScore(r, src, fp.Weak, now); total >= r.cfg.Fingerprints.Threshold {
			e.banIP(src, now, RuleScanner, "weak scanner marks reached fingerprints.threshold", r.cfg.Fingerprints.BanTime.D())
			return e.count(Verdict{Action: Drop, Rule: RuleScanner, Reason: "score"})
		}
	}
	if r.isHoneypot(account, s.ToUser, s.RURIUser) {
		e.banIP(src, now, RuleHoneypot, "request for a honeypot account", r.cfg.Honeypot.BanTime.D())
		return e.count(Verdict{Action: Drop, Rule: RuleHoneypot, Reason: "honeypot account"})
	}
	if request && r.enum.MayHavePending(src) {
		if v, banned := e.judgeChallenges(r, src, s, now); banned {
			return v
		}
	}
	if account == "" {
		return Verdict{}
	}
	if d, ok := e.set.BannedAccount(src, account, now); ok {
		return e.count(Verdict{Action: Reject, Code: 403, Rule: RuleBan, Reason: d.Rule})
	}
	if _, ok := e.set.AccountLocked(account, now); ok {
		e.mu.Lock()
		known := e.known.Has(src, account)
		e.mu.Unlock()
		if !known {
			return e.count(Verdict{Action: Reject, Code: 403, Rule: RuleDistributed, Reason: "account locked for new addresses"})
		}
	}
	return Verdict{}
}

// addScore adds weak marks to src's remembered marks and returns the total
// score of the distinct marks seen within scoreMemory.
func (e *Engine) addScore(r *rules, src netip.Addr, mask uint64, now time.Time) int {
	k := src.As16()
	e.mu.Lock()
	defer e.mu.Unlock()
	sc, ok := r.scores[k]
	if ok && now.Sub(sc.at) >= scoreMemory {
		sc = score{}
	}
	if !ok && len(r.scores) >= maxScoreSources {
		for k, v := range r.scores {
			if now.Sub(v.at) >= scoreMemory {
				delete(r.scores, k)
			}
		}
		if len(r.scores) >= maxScoreSources {
			clear(r.scores)
		}
	}
	sc.mask |= mask
	sc.at = now
	r.scores[k] = sc
	return r.fp.Score(sc.mask)
}

// failure counts one authentication failure (DESIGN key decision 2: the
// source only emits real failures; a stale-nonce one is ignored anyway,
// RFC 7616 §3.3). It is recorded for Failures even from allowed sources,
// which are never banned.
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
	r := e.rules.Load()
	var buf [4]decision.Decision
	ds := buf[:0]
	e.mu.Lock()
	e.ring.add(Failure{Time: now, Addr: src, Account: account, Method: ev.Method, Code: ev.Code})
	if e.lists.Load().Allowed(src) || !src.IsValid() {
		e.mu.Unlock()
		return Verdict{}
	}
	host := decision.HostPrefix(src)
	ipBanned := false
	ipBan := func(rule, reason string, d time.Duration) {
		until := now.Add(d)
		if b, ok := e.set.Banned(src, now); ipBanned || ok && (b.Until.IsZero() || !b.Until.Before(until)) {
			return
		}
		ipBanned = true
		ds = append(ds, decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: host, Origin: decision.OriginEngine,
			Rule: rule, Reason: reason, At: now, Until: until, Count: 1})
	}
	if r.isHoneypot(account, "", "") {
		ipBan(RuleHoneypot, "auth attempt on a honeypot account", r.cfg.Honeypot.BanTime.D())
	}
	tripped := r.jail.Fail(src, account, now)
	for i, rule := range r.jail.Rules() {
		if tripped&(1<<i) == 0 {
			continue
		}
		k := decision.Key{Scope: rule.Mode.Scope(), Prefix: host}
		if rule.Mode == jail.IPAccount {
			k.Account = account
			if _, ok := e.set.BannedAccount(src, account, now); ok {
				continue
			}
		} else if _, ok := e.set.Banned(src, now); ok || ipBanned {
			continue
		} else {
			ipBanned = true
		}
		d, n := e.repeats.Next(k, rule.BanTime, r.cfg.Jail.Factor, r.cfg.Jail.MaxTime.D(), now)
		ds = append(ds, decision.Decision{Type: decision.TypeBan, Scope: k.Scope, Prefix: host, Account: k.Account,
			Origin: decision.OriginEngine, Rule: r.jailNames[i], Reason: r.jailReasons[i], At: now, Until: now.Add(d), Count: n})
	}
	r.enum.Answered(src, account, challengedAccount(&ev.SIP))
	if t := r.enum.Fail(src, account, now); t.Tripped() {
		ipBan(RuleEnumeration, t.Reason(), r.cfg.Enumeration.BanTime.D())
	}
	if account != "" && r.dist.Fail(src, account, now) {
		ds = append(ds, decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: account, Origin: decision.OriginEngine,
			Rule: RuleDistributed, Reason: "auth failures from distributed.max_sources addresses", At: now,
			Until: now.Add(r.cfg.Distributed.LockTime.D()), Count: 1})
	}
	e.mu.Unlock()
	v := Verdict{}
	for _, d := range ds {
		e.apply(d)
		switch {
		case d.Scope == decision.ScopeIP:
			v = Verdict{Action: Drop, Rule: d.Rule, Reason: d.Reason}
		case d.Scope == decision.ScopeIPAccount && v.Action == Pass:
			v = Verdict{Action: Reject, Code: 403, Rule: d.Rule, Reason: d.Reason}
		}
	}
	return v
}

// registered records a successful registration: the address is known for
// the account (kept working during a distributed lock) and the account's
// ip_account failure counters from that address restart.
func (e *Engine) registered(ev *event.Register) {
	src := decision.Unmap(ev.Source.Addr())
	account := ev.Account
	if account == "" {
		account = ev.SIP.Account()
	}
	if !src.IsValid() || account == "" {
		return
	}
	r := e.rules.Load()
	if r.isHoneypot(account, "", "") && !e.lists.Load().Allowed(src) {
		e.banIP(src, e.clock(&ev.Meta), RuleHoneypot, "registration of a honeypot account", r.cfg.Honeypot.BanTime.D())
		return
	}
	e.mu.Lock()
	e.known.Registered(src, account)
	r.jail.Succeeded(src, account)
	r.enum.Answered(src, account, challengedAccount(&ev.SIP))
	e.mu.Unlock()
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

// banIP emits an ip ban of src for d unless src is allowed.
func (e *Engine) banIP(src netip.Addr, now time.Time, rule, reason string, d time.Duration) {
	if e.lists.Load().Allowed(src) {
		return
	}
	e.apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(src),
		Origin: decision.OriginEngine, Rule: rule, Reason: reason, At: now, Until: now.Add(d), Count: 1})
}
