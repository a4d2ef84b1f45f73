package forensics

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
)

type srcState struct {
	Source
	accounts map[string]bool
	agents   map[string]bool
}

type acctState struct {
	failures int
	sources  map[netip.Addr]bool
}

type destState struct {
	Destination
	accounts map[string]bool
}

// analysis accumulates records in time order.
type analysis struct {
	o           Options
	sources     map[netip.Addr]*srcState
	accounts    map[string]*acctState
	dests       map[string]*destState
	compromised []Compromise
	seen        map[string]bool // account|ip already reported compromised
	timeline    []Entry
}

func newAnalysis(o Options) *analysis {
	return &analysis{
		o:        o,
		sources:  map[netip.Addr]*srcState{},
		accounts: map[string]*acctState{},
		dests:    map[string]*destState{},
		seen:     map[string]bool{},
	}
}

func (a *analysis) src(ip netip.Addr, t time.Time) *srcState {
	s := a.sources[ip]
	if s == nil {
		s = &srcState{Source: Source{IP: ip, First: t}, accounts: map[string]bool{}, agents: map[string]bool{}}
		a.sources[ip] = s
	}
	s.Last = t
	return s
}

func (a *analysis) note(t time.Time, format string, args ...any) {
	a.timeline = append(a.timeline, Entry{Time: t, What: fmt.Sprintf(format, args...)})
}

func (a *analysis) add(r *store.Record) {
	ip := r.IP
	switch e := r.Event.(type) {
	case *event.AuthFailure:
		s := a.src(ip, r.Time)
		if s.Failures == 0 {
			a.note(r.Time, "first authentication failure from %s (account %s)", ip, e.Account)
		}
		s.Failures++
		s.accounts[e.Account] = true
		if e.UserAgent != "" {
			s.agents[e.UserAgent] = true
		}
		ac := a.accounts[e.Account]
		if ac == nil {
			ac = &acctState{sources: map[netip.Addr]bool{}}
			a.accounts[e.Account] = ac
		}
		ac.failures++
		ac.sources[ip] = true
	case *event.Verdict:
		s := a.src(ip, r.Time)
		s.Verdicts++
		if e.UserAgent != "" {
			s.agents[e.UserAgent] = true
		}
	case *event.Ban:
		if e.Scope == "ip" || e.Scope == "ip_account" {
			if b, err := netip.ParseAddr(e.Value); err == nil {
				a.src(b.Unmap(), r.Time).Bans++
			}
		}
		a.note(r.Time, "ban %s %s (rule %s, until %s)", e.Scope, banTarget(e), e.Rule, e.Until.UTC().Format(time.RFC3339))
	case *event.Unban:
		a.note(r.Time, "unban %s %s by %s", e.Scope, banTarget(&event.Ban{Value: e.Value, Account: e.Account}), cmp.Or(e.Actor, "?"))
	case *event.Register:
		a.success(r.Time, ip, e.Account, "register")
	case *event.CallAttempt:
		a.call(r.Time, e.Account, e.Destination, 1, 0, 0)
	case *event.CallAnswered:
		a.success(r.Time, ip, e.Account, "call_answered")
		if p := a.call(r.Time, e.Account, e.Destination, 0, 1, 0); p != "" {
			a.note(r.Time, "call answered from %s to %s (account %s)", ip, e.Destination, e.Account)
		}
	case *event.CallEnded:
		a.call(r.Time, e.Account, e.Destination, 0, 0, e.Billsec)
	case *event.Admin:
		a.note(r.Time, "admin %s: %s %s", e.Actor, e.Action, e.Target)
	}
}

// success checks whether a success is from an attacking address on an
// account that had failures: the mark of a guessed password.
func (a *analysis) success(t time.Time, ip netip.Addr, account, how string) {
	s, ac := a.sources[ip], a.accounts[account]
	if s == nil || s.Failures+s.Verdicts == 0 || ac == nil || ac.failures < a.o.MinFailures {
		return
	}
	key := account + "|" + ip.String()
	if a.seen[key] {
		return
	}
	a.seen[key] = true
	a.compromised = append(a.compromised, Compromise{Account: account, IP: ip, At: t, How: how, Failures: ac.failures})
	a.note(t, "LIKELY COMPROMISED: account %s %s from %s after %d failures", account, how, ip, ac.failures)
}

// call adds to an expensive destination's totals and returns its prefix,
// or "" when the destination is not expensive.
func (a *analysis) call(t time.Time, account, dest string, attempts, answered int, billsec time.Duration) string {
	p := expensivePrefix(dest, a.o.ExpensivePrefixes)
	if p == "" {
		return ""
	}
	d := a.dests[dest]
	if d == nil {
		d = &destState{Destination: Destination{Destination: dest, Prefix: p}, accounts: map[string]bool{}}
		a.dests[dest] = d
	}
	d.Attempts += attempts
	d.Answered += answered
	d.Billsec += billsec
	if account != "" {
		d.accounts[account] = true
	}
	return p
}

func banTarget(e *event.Ban) string {
	if e.Account != "" && e.Scope != "account" {
		return e.Account + "@" + e.Value
	}
	return e.Value
}

func (a *analysis) report() Report {
	var rep Report
	for _, s := range a.sources {
		if s.Failures+s.Verdicts+s.Bans == 0 {
			continue
		}
		s.Accounts = len(s.accounts)
		s.UserAgents = slices.Sorted(maps.Keys(s.agents))
		rep.Sources = append(rep.Sources, s.Source)
	}
	rep.Sources = top(rep.Sources, a.o.Top, func(x, y Source) int {
		return cmp.Or(cmp.Compare(y.Failures+y.Verdicts+y.Bans, x.Failures+x.Verdicts+x.Bans), x.IP.Compare(y.IP))
	})
	for name, ac := range a.accounts {
		rep.Accounts = append(rep.Accounts, Account{Account: name, Failures: ac.failures, Sources: len(ac.sources)})
	}
	rep.Accounts = top(rep.Accounts, a.o.Top, func(x, y Account) int {
		return cmp.Or(cmp.Compare(y.Failures, x.Failures), strings.Compare(x.Account, y.Account))
	})
	rep.Compromised = a.compromised
	for _, d := range a.dests {
		d.Accounts = slices.Sorted(maps.Keys(d.accounts))
		rep.Destinations = append(rep.Destinations, d.Destination)
	}
	rep.Destinations = top(rep.Destinations, a.o.Top, func(x, y Destination) int {
		return cmp.Or(cmp.Compare(y.Billsec, x.Billsec), cmp.Compare(y.Attempts, x.Attempts), strings.Compare(x.Destination, y.Destination))
	})
	rep.Timeline = a.timeline
	if n := len(rep.Timeline); n > a.o.TimelineMax {
		// Keep how it started and how it ended.
		h := a.o.TimelineMax / 2
		cut := Entry{Time: rep.Timeline[h].Time, What: fmt.Sprintf("… %d entries omitted …", n-2*h)}
		rep.Timeline = append(append(rep.Timeline[:h:h], cut), rep.Timeline[n-h:]...)
	}
	return rep
}
