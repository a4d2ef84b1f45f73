// Package detector is the contract every detection rule of the engine
// implements, and the small shared state the rules read.
//
// A detector has a name (the rule in its decisions and verdicts), is
// compiled from its config section by its own package (validation lives
// there), implements the hooks it needs (OnRequest, OnFailure, OnRegister,
// OnResponse, OnCall) and Forget. A hook receives the event's Input, reads
// the Shared state, and writes bans and a verdict to Out. The engine calls
// the detectors in one fixed order (engine/detectors.go) and stops a
// request's chain at the first verdict that is not Pass.
//
// Detectors are safe for concurrent use: each guards its own state. They
// do no I/O and must not block; the clock is Input.Now.
package detector

import (
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// Action is what the inline proxy does with a request.
type Action uint8

// The actions, from mildest to hardest.
const (
	// Pass forwards the request.
	Pass Action = iota
	// Reject answers the request with Verdict.Code and does not forward it.
	Reject
	// Drop discards the request without an answer.
	Drop
)

// String returns "pass", "reject" or "drop".
func (a Action) String() string {
	switch a {
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	default:
		return "pass"
	}
}

// Verdict is the engine's answer for one event. Only request events get an
// Action other than Pass; for other events it is informational. A Pass
// with a Rule is a flagged event: it goes through, and the wiring records
// it (a toll-fraud probe, a request of an enumeration sweep).
type Verdict struct {
	Action Action
	// Code is the SIP status for Reject (403 by default).
	Code int
	// Rule names the rule that decided ("honeypot", "scanner", "ban").
	Rule string
	// Reason is a short explanation for logs and the event store.
	Reason string
	// Policy names the call rule within Rule "call_policy" ("burst",
	// "lockdown"); the proxy names it to the caller in the refusal's
	// Reason header (RFC 3326). Empty for every other detector: their
	// refusals tell a scanner nothing.
	Policy string
	// Mode is "enforce", "warn" or "shadow" for call policy verdicts.
	Mode string
	// Counters are the call policy counters ("calls_per_minute=61
	// concurrent=3"), Loss the estimated cost of the call ("12.00 USD").
	Counters string
	Loss     string
}

// Detector is one detection rule. Name is the rule in its decisions
// ("enumeration"; the jail's decisions add an index,
// "register_failure[0]"). Forget clears what the detector holds after an
// operator's unban: with addr and no account, everything about addr; with
// addr and account, that pair; with only an account, that account.
type Detector interface {
	Name() string
	Forget(addr netip.Addr, account string)
}

// OnRequest sees every request (event.Request, and event.CallAttempt with
// Input.Request false) that passed the allow/deny lists and the address
// bans. A verdict other than Pass ends the chain.
type OnRequest interface {
	Request(sh *Shared, in *Input, out *Out)
}

// OnFailure sees every authentication failure that is not stale, from a
// source that is not allowed.
type OnFailure interface {
	Failure(sh *Shared, in *Input, out *Out)
}

// OnRegister sees every successful registration. The engine has already
// recorded the address as known for the request's names.
type OnRegister interface {
	Registered(sh *Shared, in *Input, out *Out)
}

// OnResponse sees every final response (Input.Code) from a source that is
// not allowed.
type OnResponse interface {
	Response(sh *Shared, in *Input, out *Out)
}

// OnCall sees call records: Input.Kind is KindCallAnswered or
// KindCallEnded (attempts come through OnRequest).
type OnCall interface {
	Call(sh *Shared, in *Input, out *Out)
}

// Unscreened is implemented by a detector whose hooks also see requests,
// responses and call records of allowed sources (allow means "never
// banned", not "may call anything"): call policy. Such a detector must
// not ban.
type Unscreened interface {
	Unscreened()
}

// Input is one event as every detector sees it, computed once by the
// engine. Strings are attacker-controlled.
type Input struct {
	Kind event.Kind
	Now  time.Time
	// Src is the source address (unmapped, valid).
	Src netip.Addr
	// SIP is the event's request fields.
	SIP *event.SIP
	// Account is the account the event speaks for, normalised (Names[0]
	// when there is one).
	Account string
	// Names are every name the request uses for an account, normalised
	// (see Normalize): the account first, then the digest username, the
	// To user of a REGISTER or the From user of other requests.
	Names Names
	// Targets are the users the request is addressed to, normalised: the
	// Request-URI user and the To user.
	Targets Names
	// Proven is true when the message's source address is proven (it
	// came over a completed TCP/TLS handshake; see the engine's README).
	// Bans of unproven sources are shortened and kept inline by the
	// engine; a detector may count such sources differently.
	Proven bool
	// Request is false for an event.CallAttempt (only event.Request
	// carries weak fingerprint marks and challenge answers).
	Request bool
	// Code and Stale are the response's (OnResponse) or failure's status.
	Code  int
	Stale bool
	// Destination is the dialled number of a call event.
	Destination string
	// Listener is the listener the message came on (event.Meta.Listener).
	Listener string
	// Billsec is how long an ended call was connected (event.CallEnded).
	Billsec time.Duration
	// Allowed is true when the source is on the allow list (only
	// Unscreened detectors see such events).
	Allowed bool
	// Event is the event itself, for a detector that needs fields beyond
	// these (the anomaly model: durations, User-Agents). Read only.
	Event event.Event
}

// Out collects what one hook decided. Bans are applied by the engine in
// order once the hooks have run.
type Out struct {
	buf [12]decision.Decision
	n   int
	// V is the verdict; the first detector that sets an Action other than
	// Pass ends a request's chain.
	V Verdict
}

// Ban adds d. Within one event the first ip ban wins and later ones are
// dropped, and so is anything beyond the buffer (twelve decisions).
func (o *Out) Ban(d decision.Decision) {
	if d.Scope == decision.ScopeIP {
		for _, x := range o.buf[:o.n] {
			if x.Scope == decision.ScopeIP {
				return
			}
		}
	}
	if o.n < len(o.buf) {
		o.buf[o.n] = d
		o.n++
	}
}

// Decisions returns the bans added so far.
func (o *Out) Decisions() []decision.Decision { return o.buf[:o.n] }

// HasIPBan reports whether an ip ban was added.
func (o *Out) HasIPBan() bool {
	for _, x := range o.buf[:o.n] {
		if x.Scope == decision.ScopeIP {
			return true
		}
	}
	return false
}

// Set sets the verdict unless one with an Action was set before.
func (o *Out) Set(v Verdict) {
	if o.V.Action == Pass && (v.Action != Pass || o.V.Rule == "") {
		o.V = v
	}
}

// Reset empties o for the next event.
func (o *Out) Reset() {
	clear(o.buf[:o.n])
	o.n = 0
	o.V = Verdict{}
}

// Shared is the state every detector may read: the ban set and the
// addresses each account registered from. The engine owns it; it survives
// reloads.
type Shared struct {
	Set   *decision.Set
	Known *Known
}

// IPBan returns an ip ban of src by rule for d, or false when src is
// already banned at least that long.
func (sh *Shared) IPBan(src netip.Addr, now time.Time, rule, reason string, d time.Duration) (decision.Decision, bool) {
	until := now.Add(d)
	if b, ok := sh.Set.Banned(src, now); ok && (b.Until.IsZero() || !b.Until.Before(until)) {
		return decision.Decision{}, false
	}
	return decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(src),
		Origin: decision.OriginEngine, Rule: rule, Reason: reason, At: now, Until: until, Count: 1}, true
}

// BannedAccount reports the ip_account ban of any of names from src.
func (sh *Shared) BannedAccount(src netip.Addr, names *Names, now time.Time) (decision.Decision, bool) {
	for i := range names.Len() {
		if d, ok := sh.Set.BannedAccount(src, names.At(i), now); ok {
			return d, true
		}
	}
	return decision.Decision{}, false
}
