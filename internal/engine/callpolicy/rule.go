package callpolicy

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
	"github.com/tollguard/tollguard/internal/callpolicy/rates"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
)

// Window shapes: calls per minute to the second, an hour to the minute, a
// day to a quarter hour.
const (
	minuteBuckets = 60
	hourBuckets   = 60
	dayBuckets    = 96
	// seqReset: calls to one number more than an hour apart are not "in a
	// row".
	seqReset = time.Hour
)

// limits is a compiled config.CallLimits.
type limits struct {
	perMinute, concurrent, sequential, distinct, perDay int
	callDuration                                        time.Duration
	spendHour, spendDay                                 rates.Amount
}

func compileLimits(l config.CallLimits, at string) (limits, error) {
	c := limits{perMinute: l.CallsPerMinute, concurrent: l.Concurrent, sequential: l.SequentialSameNumber,
		distinct: l.DistinctDestinationsPerHour, perDay: l.CallsPerDay, callDuration: l.CallDuration.D()}
	for _, n := range []int{c.perMinute, c.concurrent, c.sequential, c.distinct, c.perDay} {
		if n < 0 {
			return c, fmt.Errorf("%s: limits must not be negative", at)
		}
	}
	if c.callDuration < 0 {
		return c, fmt.Errorf("%s.call_duration: must not be negative", at)
	}
	var err error
	if l.SpendPerHour != "" {
		if c.spendHour, err = rates.ParseAmount(l.SpendPerHour); err != nil {
			return c, fmt.Errorf("%s.spend_per_hour: %w", at, err)
		}
	}
	if l.SpendPerDay != "" {
		if c.spendDay, err = rates.ParseAmount(l.SpendPerDay); err != nil {
			return c, fmt.Errorf("%s.spend_per_day: %w", at, err)
		}
	}
	return c, nil
}

// rule is one compiled call rule with its counters.
type rule struct {
	name, decisionRule string
	match, except      matcher
	warn, block        limits
	reject, kill       bool
	shadow             bool
	ban                decision.Scope
	banTime            time.Duration
	// counts: the rule has limits, so it keeps counters.
	counts bool

	mu    sync.Mutex
	accts map[string]*counters
}

// counters are one account's under one rule. Windows exist only for the
// limits the rule sets.
type counters struct {
	minute, day         *window
	spendHour, spendDay *window
	concurrent          int64
	// peers are the other nodes' running calls of the account (Peer).
	peers    map[string]peerRun
	lastDest string
	seq      int64
	lastAt   time.Time
	dests    map[string]time.Time
	// destsOldest is the oldest time in dests: pruning runs only once it
	// is an hour old.
	destsOldest time.Time
}

// pruneDests drops destinations last called an hour or more before now.
func (ct *counters) pruneDests(now time.Time) {
	if ct.dests == nil || now.Sub(ct.destsOldest) < time.Hour {
		return
	}
	oldest := now
	for k, at := range ct.dests {
		if now.Sub(at) >= time.Hour {
			delete(ct.dests, k)
		} else if at.Before(oldest) {
			oldest = at
		}
	}
	ct.destsOldest = oldest
}

func compileRule(i int, rc config.CallRule, n *dest.Normalizer) (*rule, error) {
	at := fmt.Sprintf("call_policy.rules[%d]", i)
	r := &rule{name: rc.Name, decisionRule: Name + "[" + rc.Name + "]", reject: rc.Action == "reject" || rc.Action == "kill" && rc.Block == (config.CallLimits{}),
		kill: rc.Action == "kill", shadow: rc.Mode == "shadow", banTime: rc.BanTime.D(), accts: map[string]*counters{}}
	var err error
	if r.match, err = compileMatch(rc.Match, n, at+".match"); err != nil {
		return nil, err
	}
	if r.except, err = compileMatch(rc.Except, n, at+".except"); err != nil {
		return nil, err
	}
	if r.warn, err = compileLimits(rc.Warn, at+".warn"); err != nil {
		return nil, err
	}
	if r.block, err = compileLimits(rc.Block, at+".block"); err != nil {
		return nil, err
	}
	switch rc.Ban {
	case "ip":
		r.ban = decision.ScopeIP
	case "ip_account":
		r.ban = decision.ScopeIPAccount
	case "":
	default:
		return nil, fmt.Errorf("%s.ban: unknown %q", at, rc.Ban)
	}
	if r.banTime <= 0 {
		r.banTime = defaultBanTime
	}
	r.counts = r.warn != (limits{}) || r.block != (limits{})
	return r, nil
}

// applies reports whether the call is the rule's.
func (r *rule) applies(c *call) bool {
	return r.match.match(c) && (r.except.empty || !r.except.match(c))
}

// value is one counter's value with this call included, and its limits.
type value struct {
	name        string
	n           int64
	warn, block int64
	money       bool
}

// judge decides one attempt under r; true ends the chain (a refusal).
func (r *rule) judge(d *Detector, c *call, in *detector.Input, out *detector.Out) bool {
	if r.reject {
		return r.refuse(d, c, in, out, "action reject", nil)
	}
	if !r.counts {
		return false
	}
	var vals [7]value
	n := r.values(c, &vals)
	for _, v := range vals[:n] {
		if v.over(v.block) {
			return r.refuse(d, c, in, out, overText(v, v.block), vals[:n])
		}
	}
	for _, v := range vals[:n] {
		if v.over(v.warn) {
			out.Set(detector.Verdict{Action: detector.Pass, Rule: Name, Policy: r.name, Mode: "warn",
				Reason: r.name + ": warn: " + overText(v, v.warn), Counters: countersText(vals[:n]), Loss: d.loss(c)})
			return false
		}
	}
	return false
}

// refuse answers the attempt 403 (or flags it in shadow mode) and places
// the rule's ban and kill.
func (r *rule) refuse(d *Detector, c *call, in *detector.Input, out *detector.Out, why string, vals []value) bool {
	v := detector.Verdict{Action: detector.Reject, Code: 403, Rule: Name, Policy: r.name, Mode: "enforce",
		Reason: r.name + ": " + why, Counters: countersText(vals), Loss: d.loss(c)}
	if r.shadow {
		v.Action, v.Code, v.Mode = detector.Pass, 0, "shadow"
		v.Reason = r.name + ": shadow, would reject: " + why
		out.Set(v)
		return false
	}
	out.Set(v)
	switch r.ban {
	case decision.ScopeIP:
		if in.Src.IsValid() && !in.Allowed {
			out.Ban(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(in.Src),
				Origin: decision.OriginEngine, Rule: r.decisionRule, Reason: why, At: in.Now,
				Until: in.Now.Add(r.banTime), Count: 1})
		}
	case decision.ScopeIPAccount:
		if c.account != "" && !in.Allowed {
			out.Ban(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(in.Src),
				Account: c.account, Origin: decision.OriginEngine, Rule: r.decisionRule, Reason: why, At: in.Now,
				Until: in.Now.Add(r.banTime), Count: 1})
		}
	}
	if r.kill && c.account != "" {
		out.Ban(decision.Decision{Type: decision.TypeKill, Scope: decision.ScopeAccount, Account: c.account,
			Origin: decision.OriginEngine, Rule: r.decisionRule, Reason: why, At: in.Now})
	}
	return true
}

// over reports whether v passes limit (0: none). A call counter passes
// it with this call; money already spent trips it once reached (the
// call's own cost is not known yet).
func (v value) over(limit int64) bool {
	if limit <= 0 {
		return false
	}
	if v.money {
		return v.n >= limit
	}
	return v.n > limit
}

func overText(v value, limit int64) string {
	if v.money {
		return v.name + " " + rates.Amount(v.n).String() + " reached " + rates.Amount(limit).String()
	}
	return v.name + " " + strconv.FormatInt(v.n, 10) + " > " + strconv.FormatInt(limit, 10)
}

func countersText(vals []value) string {
	if len(vals) == 0 {
		return ""
	}
	b := make([]byte, 0, 128)
	for i, v := range vals {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, v.name...)
		b = append(b, '=')
		if v.money {
			b = append(b, rates.Amount(v.n).String()...)
		} else {
			b = strconv.AppendInt(b, v.n, 10)
		}
	}
	return string(b)
}

// values fills vals with the rule's counters as they would be with this
// call, for the limits the rule sets, and returns how many. It does not
// count the call: that happens when the PBX lets it past authentication.
func (r *rule) values(c *call, vals *[7]value) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	ct := r.accts[c.account]
	n := 0
	put := func(name string, x int64, w, b int, money bool) {
		vals[n] = value{name: name, n: x, warn: int64(w), block: int64(b), money: money}
		n++
	}
	w, b := &r.warn, &r.block
	if w.perMinute > 0 || b.perMinute > 0 {
		var x int64
		if ct != nil && ct.minute != nil {
			x = ct.minute.sum(c.now)
		}
		put("calls_per_minute", x+1, w.perMinute, b.perMinute, false)
	}
	if w.concurrent > 0 || b.concurrent > 0 {
		var x int64
		if ct != nil {
			x = ct.concurrent + ct.peerRunning(c.now)
		}
		put("concurrent", x+1, w.concurrent, b.concurrent, false)
	}
	if w.sequential > 0 || b.sequential > 0 {
		x := int64(1)
		if ct != nil && ct.lastDest == c.key && c.now.Sub(ct.lastAt) < seqReset {
			x = ct.seq + 1
		}
		put("sequential_same_number", x, w.sequential, b.sequential, false)
	}
	if w.distinct > 0 || b.distinct > 0 {
		var x int64
		seen := false
		if ct != nil {
			ct.pruneDests(c.now)
			x = int64(len(ct.dests))
			_, seen = ct.dests[c.key]
		}
		if !seen {
			x++
		}
		put("distinct_destinations_per_hour", x, w.distinct, b.distinct, false)
	}
	if w.perDay > 0 || b.perDay > 0 {
		var x int64
		if ct != nil && ct.day != nil {
			x = ct.day.sum(c.now)
		}
		put("calls_per_day", x+1, w.perDay, b.perDay, false)
	}
	// Spend: money already spent by ended calls; a call is refused once
	// the limit is reached (its own cost is not known yet).
	if w.spendHour > 0 || b.spendHour > 0 {
		var x int64
		if ct != nil && ct.spendHour != nil {
			x = ct.spendHour.sum(c.now)
		}
		put("spend_per_hour", x, int64m(w.spendHour), int64m(b.spendHour), true)
	}
	if w.spendDay > 0 || b.spendDay > 0 {
		var x int64
		if ct != nil && ct.spendDay != nil {
			x = ct.spendDay.sum(c.now)
		}
		put("spend_per_day", x, int64m(w.spendDay), int64m(b.spendDay), true)
	}
	return n
}

// int64m converts a money limit for value (which compares ints).
func int64m(a rates.Amount) int { return int(a) }

// commit counts a call the PBX let past authentication; answered calls
// also count as concurrent. It returns the concurrent count after, and
// shares the count (and the running calls) with the other nodes.
func (r *rule) commit(d *Detector, c *call, answered bool) int64 {
	r.mu.Lock()
	n, windowed := r.commitLocked(d, c, answered)
	r.mu.Unlock()
	if windowed {
		d.share(Event{Kind: EventCall, Rule: r.name, Account: c.account, At: c.now})
	}
	if answered && (r.warn.concurrent > 0 || r.block.concurrent > 0) {
		d.share(Event{Kind: EventRunning, Rule: r.name, Account: c.account, At: c.now, N: n})
	}
	return n
}

func (r *rule) commitLocked(d *Detector, c *call, answered bool) (int64, bool) {
	ct, ok := r.accts[c.account]
	if !ok {
		r.makeRoom(d) // evict one (fail open), preferring an idle one
		ct = r.newCounters()
		r.accts[c.account] = ct
	}
	if ct.minute != nil {
		ct.minute.add(c.now, 1)
	}
	if ct.day != nil {
		ct.day.add(c.now, 1)
	}
	if ct.dests != nil {
		ct.pruneDests(c.now)
		if len(ct.dests) == 0 {
			ct.destsOldest = c.now
		}
		if lim := max(r.warn.distinct, r.block.distinct); len(ct.dests) <= lim {
			ct.dests[c.key] = c.now
		} else if _, ok := ct.dests[c.key]; ok {
			ct.dests[c.key] = c.now
		}
	}
	if ct.lastDest == c.key && c.now.Sub(ct.lastAt) < seqReset {
		ct.seq++
	} else {
		ct.lastDest, ct.seq = c.key, 1
	}
	ct.lastAt = c.now
	if answered {
		ct.concurrent++
	}
	return ct.concurrent, ct.minute != nil || ct.day != nil
}

// concurrentOf returns account's calls in progress under r.
func (r *rule) concurrentOf(account string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ct, ok := r.accts[account]; ok {
		return ct.concurrent
	}
	return 0
}

func (r *rule) newCounters() *counters {
	w, b := &r.warn, &r.block
	ct := &counters{}
	if w.perMinute > 0 || b.perMinute > 0 {
		ct.minute = newWindow(time.Minute, minuteBuckets)
	}
	if w.perDay > 0 || b.perDay > 0 {
		ct.day = newWindow(24*time.Hour, dayBuckets)
	}
	if w.spendHour > 0 || b.spendHour > 0 {
		ct.spendHour = newWindow(time.Hour, hourBuckets)
	}
	if w.spendDay > 0 || b.spendDay > 0 {
		ct.spendDay = newWindow(24*time.Hour, dayBuckets)
	}
	if w.distinct > 0 || b.distinct > 0 {
		ct.dests = map[string]time.Time{}
	}
	return ct
}
