package engine

import (
	"fmt"
	"os"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/distributed"
	"github.com/tollguard/tollguard/internal/engine/enumeration"
	"github.com/tollguard/tollguard/internal/engine/fingerprint"
	"github.com/tollguard/tollguard/internal/engine/flood"
	"github.com/tollguard/tollguard/internal/engine/jail"
)

// Bounds on per-key state outside the flood table. A spoofed stream of
// failures evicts old keys (fail open) instead of growing memory.
const (
	maxJailKeys      = 1 << 16
	maxEnumSources   = 1 << 16
	maxDistAccounts  = 1 << 16
	maxScoreSources  = 1 << 16
	scoreMemory      = 10 * time.Minute // how long a source's weak marks add up
	maxRepeatHistory = 1 << 16
)

// rules is one compiled configuration with the detectors' state. Rules
// swap whole on Reload; the stateful parts are used under Engine.mu.
type rules struct {
	cfg      *config.Config
	jail     *jail.Jail
	enum     *enumeration.Detector
	dist     *distributed.Detector
	fp       *fingerprint.Matcher
	flood    *flood.Table
	honeypot map[string]struct{}
	scores   map[scoreKey]score
	// jailNames and jailReasons are rendered once per rule, so a ban
	// does not format strings.
	jailNames, jailReasons []string
}

type scoreKey = [16]byte

type score struct {
	mask uint64
	at   time.Time
}

// compile builds rules from cfg. fpData, when not nil, is the fingerprint
// list to use instead of cfg.Fingerprints.File and the embedded list. old,
// when not nil, lends its flood table if the flood settings are unchanged.
func compile(cfg *config.Config, fpData []byte, old *rules) (*rules, error) {
	r := &rules{cfg: cfg, honeypot: map[string]struct{}{}, scores: map[scoreKey]score{}}
	var jr []jail.Rule
	for i, e := range cfg.Jail.RegisterFailure {
		m, err := jail.ParseMode(e.BanMode)
		if err != nil {
			return nil, fmt.Errorf("engine: jail.register_failure[%d]: %w", i, err)
		}
		r.jailNames = append(r.jailNames, fmt.Sprintf("register_failure[%d]", i))
		r.jailReasons = append(r.jailReasons, fmt.Sprintf("%d auth failures within %s (banmode %s)", e.MaxRetry, e.FindTime.D(), e.BanMode))
		jr = append(jr, jail.Rule{FindTime: e.FindTime.D(), MaxRetry: e.MaxRetry, Mode: m, BanTime: e.BanTime.D()})
	}
	var err error
	if r.jail, err = jail.New(jr, maxJailKeys); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if r.enum, err = enumeration.New(cfg.Enumeration.FindTime.D(), enumeration.Grace, cfg.Enumeration.MaxAccounts, maxEnumSources); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if r.dist, err = distributed.New(cfg.Distributed.FindTime.D(), cfg.Distributed.MaxSources, maxDistAccounts); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	name := "embedded"
	switch {
	case fpData != nil:
		name = "options"
	case cfg.Fingerprints.File != "":
		name = cfg.Fingerprints.File
		if fpData, err = os.ReadFile(cfg.Fingerprints.File); err != nil {
			return nil, fmt.Errorf("engine: reading fingerprints: %w", err)
		}
	default:
		fpData = fingerprint.Embedded()
	}
	if r.fp, err = fingerprint.Compile(name, fpData); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	fc := cfg.Flood
	if old != nil && old.cfg.Flood == fc {
		r.flood = old.flood
	} else if r.flood, err = flood.New(flood.Config{Window: fc.Window.D(), Limit: fc.Limit, IPv6Prefix: fc.IPv6Prefix, MaxSources: fc.MaxSources}); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	for _, a := range cfg.Honeypot.Accounts {
		r.honeypot[a] = struct{}{}
	}
	return r, nil
}

// isHoneypot reports whether any of the non-empty names is a honeypot
// account.
func (r *rules) isHoneypot(a, b, c string) bool {
	if len(r.honeypot) == 0 {
		return false
	}
	for _, n := range [...]string{a, b, c} {
		if _, ok := r.honeypot[n]; ok && n != "" {
			return true
		}
	}
	return false
}
