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

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/distributed"
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
	// Fingerprints, when not nil, is the fingerprint list (YAML) used instead
	// of fingerprints.file and the embedded list.
	Fingerprints []byte
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

	// mu guards the detectors' state in rules and the fields below.
	mu      sync.Mutex
	repeats *jail.Repeats
	known   *distributed.Known
	ring    ring
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
		known:   distributed.NewKnown(maxDistAccounts),
	}
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
	r, err := compile(cfg, e.fpData, nil)
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
	e.m = newMetrics(opts.Registry, e)
	return e, nil
}

// Reload compiles cfg and swaps it in atomically; on error nothing changes.
// Failure counters and weak-mark scores start over; ban history (repeat
// offenders), known registrations and the failure ring are kept, and so is
// the flood table when the flood settings are unchanged.
func (e *Engine) Reload(cfg *config.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := compile(cfg, e.fpData, e.rules.Load())
	if err != nil {
		return fmt.Errorf("reloading engine: %w", err)
	}
	e.rules.Store(r)
	if e.ownLists {
		e.lists.Store(decision.NewLists(config.Prefixes(cfg.Allow), config.Prefixes(cfg.Deny)))
	}
	return nil
}

// SetLists replaces the allow and deny lists (the wiring adds the upstream's
// address with decision.Lists.AddAllow). Later Reloads leave them alone.
func (e *Engine) SetLists(l *decision.Lists) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ownLists = false
	e.lists.Store(l)
}

// Forget clears the engine's counters after an operator's unban, so the next
// failure does not re-ban at once. With a valid addr and no account it
// clears everything about addr (jail keys, enumeration, flood counter,
// weak marks, repeat history); with addr and account, that pair's jail
// counters and history; with an account, its distributed counters.
func (e *Engine) Forget(addr netip.Addr, account string) {
	addr = decision.Unmap(addr)
	r := e.rules.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	if addr.IsValid() {
		r.jail.Forget(addr, account)
		if account == "" {
			r.enum.Forget(addr)
			r.flood.Forget(addr)
			delete(r.scores, addr.As16())
			e.repeats.ForgetAddr(addr)
		} else {
			e.repeats.Forget(decision.Key{Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(addr), Account: account})
		}
	}
	if account != "" {
		r.dist.Forget(account)
	}
}

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
		e.log.Info("ban", "scope", string(d.Scope), "target", capLog(d.Target()), "rule", d.Rule,
			"reason", d.Reason, "until", d.Until, "count", d.Count)
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
