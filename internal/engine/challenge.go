package engine

import (
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/enumeration"
	"github.com/tollguard/tollguard/internal/event"
)

// response feeds the enumeration detector from a final response: a
// 401/407 challenge to a REGISTER or INVITE without credentials (RFC 3261
// §22.2, §22.3) becomes pending for the account the request named; any
// response judges the source's pending challenges. It bans when the source
// reaches enumeration.max_accounts. A response from a source with nothing
// pending that is not such a challenge costs a filter lookup.
func (e *Engine) response(ev *event.Response) Verdict {
	src := decision.Unmap(ev.Source.Addr())
	if !src.IsValid() {
		return Verdict{}
	}
	r := e.rules.Load()
	account := ev.SIP.Account()
	challenge := isChallenge(ev) && account != ""
	if !challenge && !r.enum.MayHavePending(src) {
		return Verdict{}
	}
	if e.lists.Load().Allowed(src) {
		return Verdict{}
	}
	now := e.clock(&ev.Meta)
	var t enumeration.Trip
	e.mu.Lock()
	switch {
	case challenge:
		t = r.enum.Challenged(src, account, now)
	default:
		if ev.HasCredentials {
			r.enum.Answered(src, account, challengedAccount(&ev.SIP))
		}
		t = r.enum.Check(src, now)
	}
	e.mu.Unlock()
	if !t.Tripped() {
		return Verdict{}
	}
	return e.enumBan(r, src, now, t) // not counted: no request was refused
}

// judgeChallenges runs for a request from a source that may have pending
// challenges: credentials answer the challenge for their account, then the
// pending challenges are judged. It reports the verdict and true when the
// source was banned.
func (e *Engine) judgeChallenges(r *rules, src netip.Addr, s *event.SIP, now time.Time) (Verdict, bool) {
	e.mu.Lock()
	if s.HasCredentials {
		r.enum.Answered(src, s.Account(), challengedAccount(s))
	}
	t := r.enum.Check(src, now)
	e.mu.Unlock()
	if !t.Tripped() {
		return Verdict{}, false
	}
	return e.count(e.enumBan(r, src, now, t)), true
}

// enumBan bans src for enumeration.bantime unless it is already banned for
// at least as long, and returns the drop verdict (uncounted).
func (e *Engine) enumBan(r *rules, src netip.Addr, now time.Time, t enumeration.Trip) Verdict {
	d := r.cfg.Enumeration.BanTime.D()
	if b, ok := e.set.Banned(src, now); !ok || !b.Until.IsZero() && b.Until.Before(now.Add(d)) {
		e.banIP(src, now, RuleEnumeration, t.Reason(), d)
	}
	return Verdict{Action: Drop, Rule: RuleEnumeration, Reason: "accounts challenged and never answered"}
}

// isChallenge reports whether r is a digest challenge to a REGISTER or
// INVITE that carried no credentials. A stale challenge answers
// credentials, so it is never one (RFC 7616 §3.3).
func isChallenge(r *event.Response) bool {
	return (r.Code == 401 || r.Code == 407) && !r.HasCredentials && !r.Stale &&
		(r.Method == "REGISTER" || r.Method == "INVITE")
}

// challengedAccount is the account a request names without credentials:
// the To user of a REGISTER, otherwise the From user (event.SIP.Account
// without the digest username).
func challengedAccount(s *event.SIP) string {
	if s.Method == "REGISTER" && s.ToUser != "" {
		return s.ToUser
	}
	return s.FromUser
}
