package daemon

import (
	"context"

	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
)

// recorder is the Checker the proxy sees: it asks the engine, then hands the
// event and any refusal to the store. Store.Record never blocks, so the
// packet path stays synchronous and cheap.
type recorder struct {
	next engine.Checker
	rec  recordFunc
	// watch, when set, sees every event and its verdict (alerts); it
	// must not block.
	watch func(event.Event, engine.Verdict)
}

// recordFunc hands an event to the store (and the fail2ban log); it must
// not block.
type recordFunc func(event.Event)

var _ engine.Checker = recorder{}

// Check implements engine.Checker. What is recorded (issue: record every
// registration, call and verdict, without turning a flood into rows):
//   - a Request only when it was refused or flagged (a Pass verdict with a
//     rule: a toll-fraud probe, an OPTIONS of an enumeration sweep), as a
//     Verdict event: its final Response, recorded below, already carries
//     every request field;
//   - a Response except to OPTIONS (keep-alives and scanners' probes; the
//     scanners' refused or flagged probes are recorded as Verdicts), and a
//     Verdict when the engine flagged it;
//   - every other event (auth failures, registrations, call records), and
//     a Verdict for a refused or flagged call attempt.
func (r recorder) Check(ctx context.Context, ev event.Event) engine.Verdict {
	v := r.next.Check(ctx, ev)
	if r.watch != nil {
		r.watch(ev, v)
	}
	switch e := ev.(type) {
	case *event.Request:
		if v.Action != engine.Pass || v.Rule != "" {
			r.rec(verdictEvent(e.Meta, e.SIP, v))
		}
	case *event.Response:
		if e.Method != "OPTIONS" {
			r.rec(e)
		}
		if v.Rule != "" {
			r.rec(verdictEvent(e.Meta, e.SIP, v))
		}
	case *event.CallAttempt:
		r.rec(e)
		if v.Action != engine.Pass || v.Rule != "" {
			r.rec(verdictEvent(e.Meta, e.SIP, v))
		}
	case *event.CallRinging:
		// Counted by call rules only: the answer or the end follows.
	default:
		r.rec(ev)
	}
	return v
}

func verdictEvent(m event.Meta, s event.SIP, v engine.Verdict) *event.Verdict {
	return &event.Verdict{Meta: m, SIP: s, Action: v.Action.String(), Code: v.Code, Rule: v.Rule, Reason: v.Reason,
		Policy: v.Policy, Mode: v.Mode, Counters: v.Counters, Loss: v.Loss}
}
