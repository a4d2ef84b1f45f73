package anomaly

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// Name is the rule of the detector's verdicts.
const Name = "anomaly"

// Bounds of a verdict's reason: the most unusual features first.
const (
	maxReasons   = 3
	maxReasonLen = 400
)

// State is what the anomaly detector keeps across reloads: the baseline,
// learnt from every call event and registration the engine sees, and the
// current model (nil until the daemon has trained or loaded one: until
// then call attempts are learnt, not scored). It is safe for concurrent
// use; the baseline is behind one mutex.
type State struct {
	mu    sync.Mutex
	b     *Baseline
	model atomic.Pointer[Model]
}

// NewState returns a State with an empty baseline for cfg.
func NewState(cfg Config) (*State, error) {
	b, err := NewBaseline(Options{Config: cfg})
	if err != nil {
		return nil, err
	}
	return &State{b: b}, nil
}

// Model returns the current model, or nil.
func (s *State) Model() *Model { return s.model.Load() }

// SetModel swaps in m (a retrained forest) and keeps the baseline.
func (s *State) SetModel(m *Model) { s.model.Store(m) }

// Replace swaps in a baseline learnt elsewhere (a Trainer's, fed from the
// store) and its model, at start or when the baseline's settings changed.
func (s *State) Replace(b *Baseline, m *Model) {
	s.mu.Lock()
	s.b = b
	s.mu.Unlock()
	s.model.Store(m)
}

// Config returns the settings of the baseline in use.
func (s *State) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.cfg
}

// SameBaseline reports whether a baseline built for c learns the same as
// one built for o: only mode, warn, block, retrain and the forest's
// settings differ.
func (c Config) SameBaseline(o Config) bool {
	c, o = c.WithDefaults(), o.WithDefaults()
	return c.Window == o.Window && c.MaxAccounts == o.MaxAccounts && c.Country == o.Country && c.Timezone == o.Timezone
}

// Observe learns from a call record or registration.
func (s *State) Observe(ev event.Event) {
	s.mu.Lock()
	s.b.Observe(ev)
	s.mu.Unlock()
}

// attempt learns from a call attempt and scores it when there is a model.
func (s *State) attempt(ca *event.CallAttempt) (Result, bool) {
	m := s.model.Load()
	s.mu.Lock()
	if m == nil {
		s.b.Attempt(ca)
		s.mu.Unlock()
		return Result{}, false
	}
	v, ctx := s.b.Attempt(ca)
	s.mu.Unlock()
	return m.Score(v, &ctx), true
}

// Detector is the engine's anomaly rule for one configuration: it scores
// every call attempt against the account's baseline and, in enforce mode,
// rejects at Block; in shadow mode and between Warn and Block it flags
// (a Pass verdict with the rule, recorded by the wiring). Registrations
// and call records only teach the baseline.
type Detector struct {
	st      *State
	enforce bool
	warn    float64
	block   float64
}

var (
	_ detector.Detector   = (*Detector)(nil)
	_ detector.OnRequest  = (*Detector)(nil)
	_ detector.OnRegister = (*Detector)(nil)
	_ detector.OnCall     = (*Detector)(nil)
)

// Compile validates cfg and returns the detector over st, which outlives
// reloads (a changed window, country, timezone or max_accounts applies
// when the daemon next trains a baseline).
func Compile(cfg Config, st *State) (*Detector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{st: st, enforce: cfg.Mode == ModeEnforce, warn: cfg.Warn, block: cfg.Block}, nil
}

// Name implements detector.Detector.
func (d *Detector) Name() string { return Name }

// Forget implements detector.Detector: scores are not bans, nothing to
// clear.
func (d *Detector) Forget(netip.Addr, string) {}

// Request implements detector.OnRequest: call attempts only (every other
// request returns at once).
func (d *Detector) Request(_ *detector.Shared, in *detector.Input, out *detector.Out) {
	if in.Kind != event.KindCallAttempt {
		return
	}
	ca, ok := in.Event.(*event.CallAttempt)
	if !ok || ca.Account == "" {
		return
	}
	res, ok := d.st.attempt(ca)
	if !ok || res.Score < d.warn {
		return
	}
	v := detector.Verdict{Rule: Name, Reason: verdictReason(res, d.enforce && res.Score >= d.block)}
	if d.enforce && res.Score >= d.block {
		v.Action, v.Code = detector.Reject, 403
	}
	out.Set(v)
}

// Registered implements detector.OnRegister.
func (d *Detector) Registered(_ *detector.Shared, in *detector.Input, _ *detector.Out) {
	if in.Event != nil {
		d.st.Observe(in.Event)
	}
}

// Call implements detector.OnCall: ended calls teach durations and spend
// (answers carry nothing the baseline uses).
func (d *Detector) Call(_ *detector.Shared, in *detector.Input, _ *detector.Out) {
	if in.Kind == event.KindCallEnded && in.Event != nil {
		d.st.Observe(in.Event)
	}
}

// verdictReason is "score 0.81: calls to +882 never seen for this account; …",
// the first maxReasons reasons, capped at maxReasonLen bytes.
func verdictReason(r Result, blocked bool) string {
	var b strings.Builder
	b.WriteString("score ")
	b.WriteString(strconv.FormatFloat(r.Score, 'f', 2, 64))
	if blocked {
		b.WriteString(" (blocked)")
	}
	for i, s := range r.Reasons {
		if i == maxReasons {
			b.WriteString("; …")
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	s := b.String()
	if len(s) > maxReasonLen {
		s = strings.ToValidUTF8(s[:maxReasonLen], "") + "…"
	}
	return s
}
