// Package callpolicy is the call_policy detector: rules over calls (who
// may call which destinations, when, how often, how many at once, for how
// much money), the emergency lockdown, one-time call tokens and the SRTP
// media policy. It judges each call attempt before the PBX sees it
// (reject with 403 or 488, flag a warning, or record in shadow mode what
// would have been refused) and, from the call records, counts calls, ends
// calls over call_duration and cuts an account's running calls (kill
// decisions the wiring carries out through the teardown interface).
//
// Counters are per rule and account over sliding windows, and count only
// calls the PBX let past authentication: an answered call, or one refused
// with anything but 401, 403 or 407. An INVITE sent in an account's name
// with a wrong password gets 401/403/407 and never moves a counter, so
// nobody can spend a real account's budget without its password.
package callpolicy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
	"github.com/tollguard/tollguard/internal/callpolicy/media"
	"github.com/tollguard/tollguard/internal/callpolicy/rates"
	"github.com/tollguard/tollguard/internal/callpolicy/token"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// Name is the rule of the detector's verdicts; decisions carry
// "call_policy[<rule>]".
const Name = "call_policy"

// Sub-rule names of the built-in checks, in verdicts' Policy.
const (
	PolicyLockdown = "lockdown"
	PolicyToken    = "call_tokens"
	PolicyMedia    = "media"
)

// defaultBanTime is a rule's bantime when it sets ban without one.
const defaultBanTime = time.Hour

// Config is what the detector is compiled from: its config sections.
type Config struct {
	Policy   config.CallPolicy
	Lockdown config.Lockdown
	Tokens   config.CallTokens
	Media    config.Media
}

// Options are the detector's inputs that are not config.
type Options struct {
	// Rates is the content of call_policy.rates (the wiring reads the
	// file); nil when unset. RatesName names it in errors.
	Rates     []byte
	RatesName string
	// Secrets are the call token secrets by account (base32).
	Secrets map[string]string
	// Lock is the lockdown switch; it outlives reloads. Nil: a new one.
	Lock *Switch
	// Verifier remembers accepted codes; it outlives reloads. Nil: a new
	// one.
	Verifier *token.Verifier
	// MaxAccounts bounds the accounts counted per rule, MaxCalls the
	// answered calls tracked. Zero: 1<<17 and 1<<16.
	MaxAccounts, MaxCalls int
	// Share, when set, receives every change of this node's counters
	// (see Event) for the other nodes of a cluster. It is called on the
	// engine's goroutine and must not block.
	Share func(Event)
}

// Detector is the call_policy detector. It is safe for concurrent use.
type Detector struct {
	norm     *dest.Normalizer
	rates    *rates.Table
	expected time.Duration
	rules    []*rule
	lock     *Switch
	allow    map[string]struct{}
	tokAccts map[string]struct{}
	secrets  map[string]string
	verifier *token.Verifier
	srtpAny  bool
	srtpAcct map[string]struct{}
	srtpLis  map[string]struct{}
	// concurrent: some rule limits concurrent calls.
	concurrent bool
	maxAccts   int
	maxCalls   int
	sink       func(Event)
	byName     map[string]*rule

	mu    sync.Mutex
	calls map[string]*running // calls in progress by Call-ID
	order []string            // Call-IDs in the order they started, for eviction
	// accepted remembers, per account, the Call-ID a code was accepted
	// for: the INVITE repeated with credentials after the PBX's challenge
	// carries the same code and must pass.
	accepted map[string]acceptedCode
}

type acceptedCode struct{ callID, code string }

// running is a call in progress (it rang or was answered): the rules
// that count it as concurrent.
type running struct {
	account  string
	key      string
	at       time.Time
	answered bool
	rules    []*rule
	rate     rates.Rate
	priced   bool
}

var (
	_ detector.Detector   = (*Detector)(nil)
	_ detector.OnRequest  = (*Detector)(nil)
	_ detector.OnCall     = (*Detector)(nil)
	_ detector.Unscreened = (*Detector)(nil)
)

// Compile builds the detector from its config sections.
func Compile(c Config, o Options) (*Detector, error) {
	n, err := dest.New(dest.Options{DefaultCountry: c.Policy.DefaultCountry})
	if err != nil {
		return nil, fmt.Errorf("call_policy.default_country: %w", err)
	}
	d := &Detector{norm: n, expected: c.Policy.ExpectedDuration.D(), lock: o.Lock, verifier: o.Verifier,
		maxAccts: o.MaxAccounts, maxCalls: o.MaxCalls, calls: map[string]*running{}, accepted: map[string]acceptedCode{},
		allow: names(c.Lockdown.AllowAccounts), tokAccts: names(c.Tokens.Accounts), srtpAcct: names(c.Media.SRTPRequired.Accounts),
		srtpLis: map[string]struct{}{}, secrets: map[string]string{}, sink: o.Share, byName: map[string]*rule{}}
	if d.expected <= 0 {
		d.expected = 10 * time.Minute
	}
	if d.lock == nil {
		d.lock = new(Switch)
	}
	if d.verifier == nil {
		d.verifier = token.NewVerifier(token.Options{})
	}
	if d.maxAccts <= 0 {
		d.maxAccts = 1 << 17
	}
	if d.maxCalls <= 0 {
		d.maxCalls = 1 << 16
	}
	_, d.srtpAny = d.srtpAcct["*"]
	for _, l := range c.Media.SRTPRequired.Listeners {
		d.srtpLis[l] = struct{}{}
	}
	for a, s := range o.Secrets {
		if err := token.CheckSecret(s); err != nil {
			return nil, fmt.Errorf("call token secret of %q: %w", a, err)
		}
		d.secrets[detector.Normalize(a)] = s
	}
	if o.Rates != nil {
		name := o.RatesName
		if name == "" {
			name = "call_policy.rates"
		}
		if d.rates, err = rates.Parse(name, o.Rates); err != nil {
			return nil, fmt.Errorf("call_policy.rates: %w", err)
		}
	} else if c.Policy.Rates != "" {
		return nil, fmt.Errorf("call_policy.rates is set: pass its content in Options.Rates")
	}
	for i, rc := range c.Policy.Rules {
		r, err := compileRule(i, rc, n)
		if err != nil {
			return nil, err
		}
		if (r.block.spendHour > 0 || r.block.spendDay > 0 || r.warn.spendHour > 0 || r.warn.spendDay > 0) && d.rates == nil {
			return nil, fmt.Errorf("call_policy.rules[%d]: spend limits need call_policy.rates", i)
		}
		d.rules = append(d.rules, r)
		d.byName[r.name] = r
		d.concurrent = d.concurrent || r.warn.concurrent > 0 || r.block.concurrent > 0
	}
	return d, nil
}

func names(list []string) map[string]struct{} {
	m := make(map[string]struct{}, len(list))
	for _, a := range list {
		if a == "*" {
			m[a] = struct{}{}
			continue
		}
		m[detector.Normalize(a)] = struct{}{}
	}
	return m
}

// Name implements detector.Detector.
func (d *Detector) Name() string { return Name }

// Unscreened implements detector.Unscreened: call rules apply to allowed
// sources too (an office or a trunk in allow may not call premium numbers
// either); allow only means "never banned".
func (d *Detector) Unscreened() {}

// Forget implements detector.Detector: an operator's unban of an account
// clears its counters (running calls stay counted).
func (d *Detector) Forget(_ netip.Addr, account string) {
	if account == "" {
		return
	}
	for _, r := range d.rules {
		r.mu.Lock()
		if c, ok := r.accts[account]; ok && c.concurrent == 0 {
			delete(r.accts, account)
		}
		r.mu.Unlock()
	}
}

// Lock returns the lockdown switch.
func (d *Detector) Lock() *Switch { return d.lock }

// Request implements detector.OnRequest: it judges call attempts.
func (d *Detector) Request(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	if in.Kind != event.KindCallAttempt {
		return
	}
	if d.lock.On() && !d.allowed(&in.Names) {
		out.Set(detector.Verdict{Action: detector.Reject, Code: 403, Rule: Name, Policy: PolicyLockdown,
			Reason: "lockdown: account not on lockdown.allow_accounts"})
		return
	}
	if len(d.tokAccts) > 0 {
		if v, bad := d.checkToken(in); bad {
			out.Set(v)
			return
		}
	}
	if d.srtpRequired(in) {
		if err := (media.Policy{}).Check(in.SIP.SDP); err != nil {
			out.Set(detector.Verdict{Action: detector.Reject, Code: media.Code, Rule: Name, Policy: PolicyMedia,
				Reason: "media: srtp_required: " + capText(err.Error())})
			return
		}
	}
	if len(d.rules) == 0 {
		return
	}
	if d.concurrent {
		d.sweep(in.Now)
	}
	c := d.callOf(in)
	for _, r := range d.rules {
		if !r.applies(&c) {
			continue
		}
		if r.judge(d, &c, in, out) {
			return
		}
	}
}

// allowed reports whether every name of the request is on
// lockdown.allow_accounts: a phone authenticating as 2001 with From 1001
// is not let through on 2001's right.
func (d *Detector) allowed(n *detector.Names) bool {
	if n.Len() == 0 {
		return false
	}
	for i := range n.Len() {
		if _, ok := d.allow[n.At(i)]; !ok {
			return false
		}
	}
	return true
}

// checkToken verifies the call token of an account listed in
// call_tokens.accounts. Any name of the request that is listed needs one:
// the digest user, or the From user of an INVITE without credentials.
func (d *Detector) checkToken(in *detector.Input) (detector.Verdict, bool) {
	acct := ""
	for i := range in.Names.Len() {
		if _, ok := d.tokAccts[in.Names.At(i)]; ok {
			acct = in.Names.At(i)
			break
		}
	}
	if acct == "" {
		return detector.Verdict{}, false
	}
	refuse := func(why string) (detector.Verdict, bool) {
		return detector.Verdict{Action: detector.Reject, Code: 403, Rule: Name, Policy: PolicyToken, Reason: "call token: " + why}, true
	}
	secret, ok := d.secrets[acct]
	if !ok {
		return refuse("no secret for the account (tollguard token new)")
	}
	code := in.SIP.Token
	d.mu.Lock()
	a, seen := d.accepted[acct]
	d.mu.Unlock()
	if seen && a.callID == in.SIP.CallID && a.code == code && code != "" {
		return detector.Verdict{}, false // the same call after the PBX's challenge
	}
	if err := d.verifier.VerifyAt(acct, secret, code, in.Now); err != nil {
		return refuse(err.Error())
	}
	d.mu.Lock()
	if len(d.accepted) >= d.maxCalls {
		clear(d.accepted)
	}
	d.accepted[acct] = acceptedCode{callID: in.SIP.CallID, code: code}
	d.mu.Unlock()
	return detector.Verdict{}, false
}

func (d *Detector) srtpRequired(in *detector.Input) bool {
	if d.srtpAny {
		return true
	}
	if _, ok := d.srtpLis[in.Listener]; ok && in.Listener != "" {
		return true
	}
	for i := range in.Names.Len() {
		if _, ok := d.srtpAcct[in.Names.At(i)]; ok {
			return true
		}
	}
	return false
}

// callOf normalises the call in in once for every rule.
func (d *Detector) callOf(in *detector.Input) call {
	raw := in.Destination
	if raw == "" && in.SIP != nil {
		raw = in.SIP.RURIUser
	}
	c := call{names: &in.Names, account: in.Account, src: in.Src, now: in.Now}
	c.dest = d.norm.Normalize(raw)
	if c.dest.Kind == dest.KindNumber {
		c.key = c.dest.E164
	} else {
		c.key = detector.Normalize(raw)
	}
	return c
}

// Call implements detector.OnCall: answered calls are counted (and get
// their deadline), ended calls release their concurrency and add their
// cost, calls the PBX refused after authentication are counted.
func (d *Detector) Call(_ *detector.Shared, in *detector.Input, out *detector.Out) {
	if len(d.rules) == 0 || in.SIP == nil || in.SIP.CallID == "" {
		return
	}
	switch in.Kind {
	case event.KindCallRinging:
		d.start(in, out, false)
	case event.KindCallAnswered:
		d.start(in, out, true)
	case event.KindCallEnded:
		d.ended(in)
	}
}

// Counted reports whether a call the PBX answered with code passed
// authentication (a provisional other than 100, a 2xx, or a final answer
// other than 401, 403 and 407).
func Counted(code int) bool {
	return code > 100 && code != 401 && code != 403 && code != 407
}

// maxRinging is how long a call that rang may stay unanswered before its
// concurrency is given back without a CallEnded: the proxy forgets it
// after Timer C (RFC 3261 §16.6 step 11, 3 min).
const maxRinging = 3*time.Minute + 30*time.Second

// start counts a call the PBX took past authentication, once: at its
// first provisional other than 100 (CallRinging) or at its answer. From
// then on it is in progress (concurrent) until it ends. At the answer the
// concurrent cap is enforced again (calls that raced past it while ringing
// are cut while over it) and call_duration sets the deadline.
func (d *Detector) start(in *detector.Input, out *detector.Out, answer bool) {
	id := in.SIP.CallID
	d.mu.Lock()
	run, known := d.calls[id]
	if known && (run.answered || !answer) {
		d.mu.Unlock()
		return // a repeated event
	}
	if known {
		run.answered = true
	}
	d.mu.Unlock()
	if !known {
		c := d.callOf(in)
		run = &running{account: c.account, key: c.key, at: in.Now, answered: answer}
		if d.rates != nil && c.dest.E164 != "" {
			run.rate, run.priced = d.rates.Lookup(c.dest.E164)
		}
		for _, r := range d.rules {
			if r.counts && r.applies(&c) {
				r.commit(d, &c, true)
				run.rules = append(run.rules, r)
			}
		}
		d.track(id, run, in.Now)
	}
	if !answer {
		return
	}
	var deadline time.Duration
	for _, r := range run.rules {
		if r.shadow {
			continue
		}
		if n := r.concurrentOf(run.account); r.block.concurrent > 0 && n > int64(r.block.concurrent) {
			out.Ban(decision.Decision{Type: decision.TypeKill, Scope: decision.ScopeCall, CallID: id, Account: run.account,
				Origin: decision.OriginEngine, Rule: r.decisionRule, At: in.Now,
				Reason: fmt.Sprintf("concurrent %d > %d", n, r.block.concurrent)})
		}
		if cd := r.block.callDuration; cd > 0 && (deadline == 0 || cd < deadline) {
			deadline = cd
		}
	}
	if deadline > 0 {
		out.Ban(decision.Decision{Type: decision.TypeKill, Scope: decision.ScopeCall, CallID: id, Account: run.account,
			Origin: decision.OriginEngine, Rule: Name, At: in.Now, Until: in.Now.Add(deadline),
			Reason: "call_duration " + deadline.String()})
	}
}

// staleLocked drops, from the front of order (the oldest), calls that
// ended or rang without an answer for maxRinging, appending the latter to
// released. Called with mu held.
func (d *Detector) staleLocked(now time.Time, released []*running) []*running {
	for len(d.order) > 0 {
		old := d.order[0]
		r, ok := d.calls[old]
		if ok && (r.answered || now.Sub(r.at) < maxRinging) {
			break
		}
		d.order = d.order[1:]
		if ok {
			delete(d.calls, old)
			released = append(released, r)
		}
	}
	return released
}

// sweep gives back the concurrency of calls that rang and were never
// answered nor ended (the proxy forgot them), before an attempt is judged.
func (d *Detector) sweep(now time.Time) {
	d.mu.Lock()
	var released []*running
	if len(d.order) > 0 {
		released = d.staleLocked(now, nil)
	}
	d.mu.Unlock()
	for _, r := range released {
		r.release(d, 0, now)
	}
}

// track adds a call in progress, evicting the oldest beyond maxCalls and
// calls that rang but were never answered nor ended within maxRinging.
func (d *Detector) track(id string, run *running, now time.Time) {
	d.mu.Lock()
	d.calls[id] = run
	d.order = append(d.order, id)
	var released []*running
	for len(d.calls) > d.maxCalls && len(d.order) > 0 {
		old := d.order[0]
		d.order = d.order[1:]
		if r, ok := d.calls[old]; ok {
			delete(d.calls, old)
			released = append(released, r)
		}
	}
	released = d.staleLocked(now, released)
	if len(d.order) > 2*d.maxCalls {
		d.order = compactOrder(d.order, d.calls)
	}
	d.mu.Unlock()
	for _, r := range released {
		r.release(d, 0, now)
	}
}

func compactOrder(order []string, live map[string]*running) []string {
	out := make([]string, 0, len(live))
	for _, id := range order {
		if _, ok := live[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

func (d *Detector) ended(in *detector.Input) {
	id := in.SIP.CallID
	d.mu.Lock()
	run, ok := d.calls[id]
	if ok {
		delete(d.calls, id)
	}
	d.mu.Unlock()
	if ok {
		var cost int64
		if run.priced {
			cost = int64(run.rate.Cost(in.Billsec))
		}
		run.release(d, cost, in.Now)
		return
	}
	if in.Code == 0 || !Counted(in.Code) {
		return // an answered call we do not know, or an auth refusal
	}
	c := d.callOf(in)
	for _, r := range d.rules {
		if r.counts && r.applies(&c) {
			r.commit(d, &c, false)
		}
	}
}

// release gives back the call's concurrency and adds its cost, and
// shares both.
func (run *running) release(d *Detector, cost int64, now time.Time) {
	for _, r := range run.rules {
		r.mu.Lock()
		c, ok := r.accts[run.account]
		var n int64
		concurrent := r.warn.concurrent > 0 || r.block.concurrent > 0
		spent := cost > 0 && ok && (c.spendHour != nil || c.spendDay != nil)
		if ok {
			if c.concurrent > 0 {
				c.concurrent--
			}
			n = c.concurrent
			if cost > 0 {
				if c.spendHour != nil {
					c.spendHour.add(now, cost)
				}
				if c.spendDay != nil {
					c.spendDay.add(now, cost)
				}
			}
		}
		r.mu.Unlock()
		if concurrent {
			d.share(Event{Kind: EventRunning, Rule: r.name, Account: run.account, At: now, N: n})
		}
		if spent {
			d.share(Event{Kind: EventSpend, Rule: r.name, Account: run.account, At: now, N: cost})
		}
	}
}

// Running returns the answered calls tracked (for tests and metrics).
func (d *Detector) Running() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// loss estimates what the call costs if it runs expected_duration.
func (d *Detector) loss(c *call) string {
	if d.rates == nil || c.dest.E164 == "" {
		return ""
	}
	amt, r, ok := d.rates.Estimate(c.dest.E164, d.expected)
	if !ok {
		return ""
	}
	return amt.String() + " " + r.Currency
}

// capText caps text that may hold attacker input for a verdict reason.
func capText(s string) string {
	if len(s) > 120 {
		s = s[:120]
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// Switch is the lockdown switch: while on, only lockdown.allow_accounts
// may place calls. Only the operator flips it (admin API); nothing in
// SIP traffic can.
type Switch struct{ on atomic.Bool }

// On reports whether lockdown is on.
func (s *Switch) On() bool { return s.on.Load() }

// Set turns lockdown on or off.
func (s *Switch) Set(on bool) { s.on.Store(on) }

// joinCounters renders counter values "name=value/limit" for events.
func joinCounters(parts []string) string { return strings.Join(parts, " ") }
