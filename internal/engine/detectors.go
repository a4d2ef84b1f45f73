package engine

import (
	"fmt"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/engine/callpolicy"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/engine/distributed"
	"github.com/tollguard/tollguard/internal/engine/enumeration"
	"github.com/tollguard/tollguard/internal/engine/fingerprint"
	"github.com/tollguard/tollguard/internal/engine/flood"
	"github.com/tollguard/tollguard/internal/engine/greylist"
	"github.com/tollguard/tollguard/internal/engine/honeypot"
	"github.com/tollguard/tollguard/internal/engine/jail"
	"github.com/tollguard/tollguard/internal/engine/probe"
)

// Bounds on per-key state outside the flood table. A spoofed stream of
// failures evicts old keys (fail open) instead of growing memory.
const (
	maxJailKeys      = 1 << 16
	maxEnumSources   = 1 << 16
	maxDistAccounts  = 1 << 16
	maxProbeSources  = 1 << 16
	maxRepeatHistory = 1 << 16
	maxPolicyAccts   = 1 << 17
	maxPolicyCalls   = 1 << 16
)

// rules is one compiled configuration: the detectors in order, with their
// hooks, and the flood table. Rules swap whole on Reload; each detector
// guards its own state.
type rules struct {
	cfg        *config.Config
	list       []detector.Detector
	onRequest  []detector.OnRequest
	onFailure  []detector.OnFailure
	onRegister []detector.OnRegister
	onResponse []detector.OnResponse
	onCall     []detector.OnCall
	// The hooks of Unscreened detectors, which also run for allowed
	// sources.
	freeRequest []detector.OnRequest
	freeCall    []detector.OnCall
	policy      *callpolicy.Detector
	flood       *flood.Table
	grey        *greylist.Table // nil when greylist.enabled is false
	unproven    time.Duration
}

// compile builds rules from cfg. fp is the fingerprint list's YAML (nil:
// the embedded list). repeats is the jail's ban history, kept across
// reloads. old, when not nil, lends its flood table if the flood settings
// are unchanged.
func compile(cfg *config.Config, fp []byte, repeats *jail.Repeats, an *anomaly.State, old *rules, po callpolicy.Options) (*rules, error) {
	fpName := "embedded"
	if fp != nil {
		fpName = "fingerprints.file"
		if cfg.Fingerprints.File != "" {
			fpName = cfg.Fingerprints.File
		}
	}
	fpd, err := fingerprint.NewDetector(cfg.Fingerprints, fpName, fp)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	hp, err := honeypot.Compile(cfg.Honeypot)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	en, err := enumeration.Compile(cfg.Enumeration, maxEnumSources)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	pr, err := probe.Compile(cfg.Probe, maxProbeSources)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	jl, err := jail.Compile(cfg.Jail, repeats, maxJailKeys)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	di, err := distributed.Compile(cfg.Distributed, maxDistAccounts)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	po.MaxAccounts, po.MaxCalls = maxPolicyAccts, maxPolicyCalls
	cp, err := callpolicy.Compile(callpolicy.Config{Policy: cfg.CallPolicy, Lockdown: cfg.Lockdown, Tokens: cfg.CallTokens, Media: cfg.Media}, po)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	ad, err := anomaly.Compile(cfg.Anomaly.Model(), an)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	r := &rules{cfg: cfg, unproven: cfg.Unproven.MaxTime.D(), policy: cp}
	// The order, and why. A request's chain stops at the first verdict that
	// is not Pass; failures, registrations and responses go through all.
	r.add(
		// Stateless match, cheapest: a known scanner is dropped before
		// any counter is touched.
		fpd,
		// A name no device uses bans before counting, so a honeypot
		// attempt never counts against a real account.
		hp,
		// A sweeping source is dropped before the per-account checks:
		// its address ban covers every account.
		en,
		// Unauthenticated INVITEs (event.CallAttempt and responses);
		// after enumeration so that a sweep ban wins.
		pr,
		// ip_account bans under every name, failure counts per address.
		jl,
		// Account locks: the widest scope, consulted only when the
		// narrower ones passed.
		di,
		// Call rules, lockdown, call tokens, SRTP last: a call from a
		// source refused for what it is never reaches them, and they
		// judge calls, not sources. They also see allowed sources
		// (detector.Unscreened) and count only calls the PBX let past
		// authentication.
		cp,
		// The model last: it judges only the call attempts the rules let
		// through, so a refused attempt is neither scored nor learnt as
		// normal; only call attempts are scored, any other request
		// returns at once.
		ad,
	)
	fc := cfg.Flood
	if old != nil && old.cfg.Flood == fc {
		r.flood = old.flood
	} else if r.flood, err = flood.New(flood.Config{Window: fc.Window.D(), Limit: fc.Limit, StrangerLimit: fc.StrangerLimit, IPv6Prefix: fc.IPv6Prefix, MaxSources: fc.MaxSources}); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if r.grey, err = compileGreylist(cfg, old); err != nil {
		return nil, err
	}
	return r, nil
}

// add appends detectors in order and sorts their hooks.
func (r *rules) add(ds ...detector.Detector) {
	for _, d := range ds {
		r.list = append(r.list, d)
		if h, ok := d.(detector.OnRequest); ok {
			r.onRequest = append(r.onRequest, h)
		}
		if h, ok := d.(detector.OnFailure); ok {
			r.onFailure = append(r.onFailure, h)
		}
		if h, ok := d.(detector.OnRegister); ok {
			r.onRegister = append(r.onRegister, h)
		}
		if h, ok := d.(detector.OnResponse); ok {
			r.onResponse = append(r.onResponse, h)
		}
		if h, ok := d.(detector.OnCall); ok {
			r.onCall = append(r.onCall, h)
		}
		if _, ok := d.(detector.Unscreened); ok {
			if h, ok := d.(detector.OnRequest); ok {
				r.freeRequest = append(r.freeRequest, h)
			}
			if h, ok := d.(detector.OnCall); ok {
				r.freeCall = append(r.freeCall, h)
			}
		}
	}
}
