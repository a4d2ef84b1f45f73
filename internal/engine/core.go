package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/callpolicy/token"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/engine/callpolicy"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/engine/jail"
)

// Options are the Engine's collaborators.
type Options struct {
	// Set is the ban set the engine reads (required). The engine never
	// writes it directly: bans reach it through Apply.
	Set *decision.Set
	// Lists are the allow and deny CIDRs. When nil, the engine builds them
	// from the config's allow and deny keys and rebuilds them on Reload;
	// when set, the owner replaces them with SetLists.
	Lists *decision.Lists
	// Apply receives every decision, synchronously, on the caller's
	// goroutine; it must not block. The wiring fans out to the Set (so the
	// next packet is dropped), the store and the fail2ban log. Default: Set.
	Apply decision.Applier
	// Now is the clock for events without a time. Default time.Now.
	Now func() time.Time
	// Fingerprints is the fingerprint list (YAML): the content of
	// fingerprints.file, read by the wiring (the engine does no I/O). Nil
	// means the embedded list; it is an error when fingerprints.file is
	// set.
	Fingerprints []byte
	// Rates is the content of call_policy.rates, read by the wiring; it
	// is an error when call_policy.rates is set and Rates is nil.
	Rates []byte
	// CallTokenSecrets are the call token secrets by account, read by
	// the wiring from where it keeps them.
	CallTokenSecrets map[string]string
	// CallShare, when set, receives every change of the call policy's
	// counters, for the other nodes of a cluster (callpolicy.Event). It
	// must not block.
	CallShare func(callpolicy.Event)
	// Logger receives one line per decision. Default: discard.
	Logger *slog.Logger
	// Registry receives the engine's metrics. Default: none.
	Registry *prometheus.Registry
}

// Engine is the detection engine: a Checker and a Gate. It is safe for
// concurrent use.
type Engine struct {
	set      *decision.Set
	out      decision.Applier
	now      func() time.Time
	log      *slog.Logger
	fpData   []byte
	ownLists bool
	m        *metrics

	lists atomic.Pointer[decision.Lists]
	rules atomic.Pointer[rules]

	// shared is what every detector reads; repeats is the jail's ban
	// history; anomaly the model's baseline and model. All survive
	// reloads.
	shared  detector.Shared
	repeats *jail.Repeats
	anomaly *anomaly.State
	scratch sync.Pool // *scratch: one event's Input and Out

	// Call policy state that outlives reloads: the lockdown switch and
	// the memory of accepted call tokens; and its inputs read by the
	// wiring (rate file, token secrets).
	lock     *callpolicy.Switch
	verifier *token.Verifier
	rates    []byte
	secrets  map[string]string
	share    func(callpolicy.Event)

	// mu serialises Reload and guards the failure ring.
	mu   sync.Mutex
	ring ring
}

var (
	_ Checker = (*Engine)(nil)
	_ Gate    = (*Engine)(nil)
)

// New compiles cfg and returns an Engine.
func New(cfg *config.Config, opts Options) (*Engine, error) {
	if cfg == nil {
		return nil, errors.New("engine: nil config")
	}
	if opts.Set == nil {
		return nil, errors.New("engine: Options.Set is required")
	}
	e := &Engine{
		set:     opts.Set,
		out:     opts.Apply,
		now:     opts.Now,
		log:     opts.Logger,
		fpData:  opts.Fingerprints,
		repeats: jail.NewRepeats(maxRepeatHistory),
	}
	e.shared = detector.Shared{Set: opts.Set, Known: detector.NewKnown(maxDistAccounts)}
	e.scratch.New = func() any { return new(scratch) }
	if e.out == nil {
		e.out = opts.Set
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("component", "engine")
	if cfg.Fingerprints.File != "" && e.fpData == nil {
		return nil, errors.New("engine: fingerprints.file is set: pass its content in Options.Fingerprints")
	}
	e.lock, e.verifier = new(callpolicy.Switch), token.NewVerifier(token.Options{})
	e.rates, e.secrets, e.share = opts.Rates, opts.CallTokenSecrets, opts.CallShare
	an, err := anomaly.NewState(cfg.Anomaly.Model())
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.anomaly = an
	r, err := compile(cfg, e.fpData, e.repeats, e.anomaly, nil, e.policyOptions(cfg))
	if err != nil {
		return nil, err
	}
	e.rules.Store(r)
	if opts.Lists != nil {
		e.lists.Store(opts.Lists)
	} else {
		e.ownLists = true
		e.lists.Store(decision.NewLists(config.Prefixes(cfg.Allow), config.Prefixes(cfg.Deny)))
	}
	names := make([]string, len(r.list))
	for i, d := range r.list {
		names[i] = d.Name()
	}
	e.m = newMetrics(opts.Registry, e, names)
	return e, nil
}

// Reload compiles cfg and swaps it in atomically; on error nothing changes.
// Failure counters and weak-mark scores start over; ban history (repeat
// offenders), known registrations and the failure ring are kept, and so is
// the flood table when the flood settings are unchanged. The fingerprint
// list stays the one given last.
func (e *Engine) Reload(cfg *config.Config) error { return e.ReloadWith(cfg, nil) }

// ReloadWith is Reload with a new fingerprint list (the content of
// fingerprints.file, read by the wiring); nil keeps the current one, or
// goes back to the embedded list when fingerprints.file was just emptied.
func (e *Engine) ReloadWith(cfg *config.Config, fingerprints []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reloadLocked(cfg, fingerprints)
}

// ReloadAll is ReloadWith with new call policy inputs too (the content of
// call_policy.rates and the call token secrets); on error nothing changes.
func (e *Engine) ReloadAll(cfg *config.Config, fingerprints, rates []byte, secrets map[string]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	oldRates, oldSecrets := e.rates, e.secrets
	e.rates, e.secrets = rates, secrets
	if err := e.reloadLocked(cfg, fingerprints); err != nil {
		e.rates, e.secrets = oldRates, oldSecrets
		return err
	}
	return nil
}

func (e *Engine) reloadLocked(cfg *config.Config, fingerprints []byte) error {
	fp := e.fpData
	oldFile := e.rules.Load().cfg.Fingerprints.File
	if f := cfg.Fingerprints.File; f != "" && fingerprints == nil && f != oldFile {
		return errors.New("reloading engine: fingerprints.file changed: pass its content to ReloadWith")
	}
	switch {
	case fingerprints != nil:
		fp = fingerprints
	case cfg.Fingerprints.File == "" && oldFile != "":
		fp = nil
	}
	r, err := compile(cfg, fp, e.repeats, e.anomaly, e.rules.Load(), e.policyOptions(cfg))
	if err != nil {
		return fmt.Errorf("reloading engine: %w", err)
	}
	e.fpData = fp
	e.rules.Store(r)
	if e.ownLists {
		e.lists.Store(decision.NewLists(config.Prefixes(cfg.Allow), config.Prefixes(cfg.Deny)))
	}
	return nil
}

func (e *Engine) policyOptions(cfg *config.Config) callpolicy.Options {
	return callpolicy.Options{Rates: e.rates, RatesName: cfg.CallPolicy.Rates, Secrets: e.secrets, Lock: e.lock, Verifier: e.verifier,
		Share: e.share}
}

// PeerCall applies a change of the call policy's counters another node
// shared (see callpolicy.Detector.Peer) and reports whether it applied.
// It does no I/O and shares nothing back.
func (e *Engine) PeerCall(node string, ev callpolicy.Event) bool {
	ev.Account = detector.Normalize(ev.Account)
	return e.rules.Load().policy.Peer(node, ev, e.now())
}

// CallRunning returns this node's running calls per call rule and
// account, for the cluster's periodic announcement.
func (e *Engine) CallRunning() []callpolicy.Event {
	return e.rules.Load().policy.RunningCounts(e.now())
}

// SetCallPolicyInputs replaces the rate file's content and the call token
// secrets (read by the wiring) and recompiles the current config with
// them; on error nothing changes.
func (e *Engine) SetCallPolicyInputs(rates []byte, secrets map[string]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.rules.Load()
	oldRates, oldSecrets := e.rates, e.secrets
	e.rates, e.secrets = rates, secrets
	r, err := compile(cur.cfg, e.fpData, e.repeats, e.anomaly, cur, e.policyOptions(cur.cfg))
	if err != nil {
		e.rates, e.secrets = oldRates, oldSecrets
		return fmt.Errorf("reloading call policy: %w", err)
	}
	e.rules.Store(r)
	return nil
}

// SetLockdown turns the emergency lockdown on or off: while on, only
// lockdown.allow_accounts may place calls. It survives reloads; the
// wiring keeps it across restarts.
func (e *Engine) SetLockdown(on bool) { e.lock.Set(on) }

// Lockdown reports whether lockdown is on.
func (e *Engine) Lockdown() bool { return e.lock.On() }

// SetLists replaces the allow and deny lists (the wiring adds the upstream's
// address with decision.Lists.AddAllow). Later Reloads leave them alone.
func (e *Engine) SetLists(l *decision.Lists) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ownLists = false
	e.lists.Store(l)
}

// Forget clears the engine's counters after an operator's unban, so the next
// failure does not re-ban at once: every detector's Forget, and the flood
// counter of addr. With a valid addr and no account it clears everything
// about addr; with addr and account, that pair; with an account, its
// distributed counters and lock state.
func (e *Engine) Forget(addr netip.Addr, account string) {
	addr = decision.Unmap(addr)
	account = detector.Normalize(account)
	r := e.rules.Load()
	for _, d := range r.list {
		d.Forget(addr, account)
	}
	if addr.IsValid() && account == "" {
		r.flood.Forget(addr)
	}
}

// Known records that account registered from addr (the wiring reloads the
// store's registrations at start, so a lock does not refuse a phone's
// usual address after a restart).
func (e *Engine) Known(addr netip.Addr, account string) {
	addr = decision.Unmap(addr)
	e.shared.Known.Registered(addr, detector.Normalize(account))
	e.trust(addr, e.now())
}

// Anomaly returns the anomaly model's state: the wiring trains a baseline
// and model from the store and swaps them in (Replace, SetModel); the
// engine does no I/O.
func (e *Engine) Anomaly() *anomaly.State { return e.anomaly }

// Failures returns the recorded failures at or after since, oldest first.
// The engine keeps the last RingSize failures.
func (e *Engine) Failures(since time.Time) []Failure {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ring.since(since)
}

// FloodTableBytes returns the memory held by the flood table.
func (e *Engine) FloodTableBytes() int { return e.rules.Load().flood.Bytes() }

// apply sends d to the Applier and logs it.
func (e *Engine) apply(d decision.Decision) {

	e.out.Apply(d)
	e.m.decision(d.Rule)
	if e.log.Enabled(context.Background(), slog.LevelInfo) {
		e.log.Info(string(d.Type), "scope", string(d.Scope), "target", capLog(d.Target()), "rule", d.Rule,
			"reason", d.Reason, "until", d.Until, "count", d.Count, "unproven", d.Unproven)
	}
}

// capLog caps attacker-controlled text for logs at 64 bytes. The slog
// handler quotes it (text: strconv.Quote when it holds a space, a quote
// or anything unprintable; JSON: escaped), so quoting here too would
// print "\"1001@…\"".
func capLog(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
