package enumeration

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// Name is the rule of the detector's decisions and verdicts.
const Name = "enumeration"

// Rule is the enumeration detector as the engine sees it: the failure and
// abandoned-challenge counts (Detector) and the fast sweep count (Sweep),
// under one lock. Requests with credentials from sources with nothing
// pending or tracked skip the lock.
type Rule struct {
	mu      sync.Mutex
	core    *Detector
	sweep   *Sweep
	banTime time.Duration
}

var (
	_ detector.Detector   = (*Rule)(nil)
	_ detector.OnRequest  = (*Rule)(nil)
	_ detector.OnFailure  = (*Rule)(nil)
	_ detector.OnRegister = (*Rule)(nil)
	_ detector.OnResponse = (*Rule)(nil)
)

// Compile builds the detector from its config section; maxSources bounds
// the tracked sources.
func Compile(c config.Enumeration, maxSources int) (*Rule, error) {
	if c.BanTime <= 0 {
		return nil, fmt.Errorf("enumeration: bantime must be positive")
	}
	if c.SweepTargets != 0 && c.SweepTargets < 2 {
		return nil, fmt.Errorf("enumeration: sweep_targets must be 0 (off) or at least 2")
	}
	core, err := New(c.FindTime.D(), Grace, c.MaxAccounts, maxSources)
	if err != nil {
		return nil, err
	}
	return &Rule{core: core, sweep: NewSweep(c.FindTime.D(), c.SweepTargets, maxSources), banTime: c.BanTime.D()}, nil
}

// Name implements detector.Detector.
func (r *Rule) Name() string { return Name }

// sweepMethod reports whether method is one svwar-style enumeration can
// sweep with; the others never count.
func sweepMethod(m string) bool {
	switch m {
	case "REGISTER", "INVITE", "OPTIONS", "SUBSCRIBE", "MESSAGE":
		return true
	}
	return false
}

// Request answers challenges with credentials, judges pending challenges,
// and counts the users an unauthenticated request names. It drops and bans
// a source that trips; it flags (Pass with the rule) an OPTIONS,
// SUBSCRIBE or MESSAGE of a source that named several unproven users, so
// the wiring records it.
func (r *Rule) Request(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	s := in.SIP
	if !in.Request {
		return
	}
	pend := r.core.MayHavePending(in.Src)
	sweepable := !s.HasCredentials && r.sweep.Enabled() && sweepMethod(s.Method)
	answer := s.HasCredentials && r.sweep.Enabled() && r.sweep.MayTrack(in.Src)
	if !pend && !sweepable && !answer {
		return
	}
	var users [2]string
	nu := 0
	anyMethod := s.Method != "REGISTER" && s.Method != "INVITE"
	// A registered account's calls, BLF subscriptions and messages name
	// other users; its OPTIONS do not (keep-alives name itself or no
	// one), so an attacker holding one account cannot sweep with OPTIONS.
	if sweepable && (s.Method == "OPTIONS" || !sh.Known.Has(in.Src, detector.Normalize(s.FromUser))) {
		for i := range in.Targets.Len() {
			if t := in.Targets.At(i); !sh.Known.Has(in.Src, t) && nu < len(users) {
				users[nu] = t
				nu++
			}
		}
	}
	var names [3]string
	for i := range in.Names.Len() {
		names[i] = in.Names.At(i)
	}
	r.mu.Lock()
	if s.HasCredentials {
		r.core.Answered(in.Src, in.Account, detector.Normalize(challengedAccount(s)))
		r.sweep.Answered(in.Src, names[:in.Names.Len()], in.Now, true)
	}
	var t Trip
	if pend {
		t = r.core.Check(in.Src, in.Now)
	}
	n, swept := 0, false
	if !t.Tripped() && nu > 0 {
		n, swept = r.sweep.Named(in.Src, users[:nu], anyMethod, in.Now)
	}
	r.mu.Unlock()
	switch {
	case t.Tripped():
		r.ban(sh, in, out, t.Reason())
	case swept:
		r.ban(sh, in, out, fmt.Sprintf("%d users named without credentials", n))
	case n >= 2 && anyMethod:
		out.Set(detector.Verdict{Rule: Name, Reason: "one of several users named by an unregistered source"})
	}
}

// Failure counts a failure for the account (answering its pending
// challenge) and bans at max_accounts.
func (r *Rule) Failure(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	var names [3]string
	for i := range in.Names.Len() {
		names[i] = in.Names.At(i)
	}
	r.mu.Lock()
	r.core.Answered(in.Src, in.Account, detector.Normalize(challengedAccount(in.SIP)))
	r.sweep.Answered(in.Src, names[:in.Names.Len()], in.Now, false)
	t := r.core.Fail(in.Src, in.Account, in.Now)
	r.mu.Unlock()
	if t.Tripped() {
		r.ban(sh, in, out, t.Reason())
	}
}

// Registered answers the account's pending challenge.
func (r *Rule) Registered(_ *detector.Shared, in *detector.Input, _ *detector.Out) {
	var names [3]string
	for i := range in.Names.Len() {
		names[i] = in.Names.At(i)
	}
	r.mu.Lock()
	r.core.Answered(in.Src, in.Account, detector.Normalize(challengedAccount(in.SIP)))
	r.sweep.Answered(in.Src, names[:in.Names.Len()], in.Now, true)
	r.mu.Unlock()
}

// Response makes a 401/407 to a REGISTER or INVITE without credentials a
// pending challenge and judges the source's pending challenges. A
// response from a source with nothing pending that is not such a
// challenge costs a filter lookup.
func (r *Rule) Response(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	s := in.SIP
	challenge := isChallenge(in) && in.Account != ""
	if !challenge && !r.core.MayHavePending(in.Src) {
		return
	}
	var t Trip
	r.mu.Lock()
	if challenge {
		t = r.core.Challenged(in.Src, in.Account, in.Now)
	} else {
		if s.HasCredentials {
			r.core.Answered(in.Src, in.Account, detector.Normalize(challengedAccount(s)))
		}
		t = r.core.Check(in.Src, in.Now)
	}
	r.mu.Unlock()
	if t.Tripped() {
		r.ban(sh, in, out, t.Reason())
	}
}

// ban bans the source for enumeration.bantime unless it is banned at
// least that long already, and drops.
func (r *Rule) ban(sh *detector.Shared, in *detector.Input, out *detector.Out, reason string) {
	if b, ok := sh.IPBan(in.Src, in.Now, Name, reason, r.banTime); ok {
		out.Ban(b)
	}
	out.Set(detector.Verdict{Action: detector.Drop, Rule: Name, Reason: "accounts challenged and never answered"})
}

// Forget implements detector.Detector.
func (r *Rule) Forget(addr netip.Addr, account string) {
	if !addr.IsValid() || account != "" {
		return
	}
	r.mu.Lock()
	r.core.Forget(addr)
	r.sweep.Forget(addr)
	r.mu.Unlock()
}

// isChallenge reports whether the response is a digest challenge to a
// REGISTER or INVITE that carried no credentials. A stale challenge
// answers credentials, so it is never one (RFC 7616 §3.3).
func isChallenge(in *detector.Input) bool {
	s := in.SIP
	return (in.Code == 401 || in.Code == 407) && !s.HasCredentials && !in.Stale &&
		(s.Method == "REGISTER" || s.Method == "INVITE")
}

// challengedAccount is the account a request names without credentials:
// the To user of a REGISTER, otherwise the From user.
func challengedAccount(s *event.SIP) string {
	if s.Method == "REGISTER" && s.ToUser != "" {
		return s.ToUser
	}
	return s.FromUser
}
