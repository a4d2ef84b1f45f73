// Package engine decides what happens to each event: pass, reject or drop a
// request inline, and which bans to place. It is pure and synchronous: Check
// updates in-memory state and returns at once, with the clock injected, so
// replays are deterministic. It performs no I/O; decisions leave through a
// decision.Applier that must not block.
package engine

import (
	"context"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// Action is what the inline proxy does with a request (see
// detector.Action).
type Action = detector.Action

// The actions, from mildest to hardest.
const (
	Pass   = detector.Pass
	Reject = detector.Reject
	Drop   = detector.Drop
)

// Verdict is the engine's answer for one event (see detector.Verdict).
type Verdict = detector.Verdict

// Checker is the engine as seen by sources. Check must be safe for concurrent
// use, must not block, and must not keep ev after it returns unless the
// event's owner hands it over (sources never change an event once passed).
type Checker interface {
	Check(ctx context.Context, ev event.Event) Verdict
}

// PassThrough is a Checker that passes everything.
type PassThrough struct{}

// Check implements Checker.
func (PassThrough) Check(context.Context, event.Event) Verdict { return Verdict{} }

var _ Checker = PassThrough{}

// Gate is consulted before parsing: for every UDP datagram and for every
// new TCP/TLS connection. It must be cheap (a map lookup and a counter), must
// not block and must not allocate on the common path.
type Gate interface {
	// Admit returns Pass, or Drop/Reject with the rule that refused src.
	Admit(src netip.Addr, now time.Time) Verdict
}

// Admit implements Gate.
func (PassThrough) Admit(netip.Addr, time.Time) Verdict { return Verdict{} }

var _ Gate = PassThrough{}
