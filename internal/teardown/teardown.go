// Package teardown is the one contract for ending running calls (DESIGN key
// decision 10). The inline proxy (sipfw) implements it by sending BYE to
// both sides of a dialog it tracks; the FreeSWITCH sidecar (freeswitch)
// with uuid_kill and hupall. Call policy, lockdown and the admin API call
// it without knowing which placement is running.
//
// It lives in its own package, not in decision or engine: a teardown is an
// action on the world (it blocks on the network), while decision holds data
// and the engine is pure. Both implementations and every caller import this
// package and nothing of each other.
package teardown

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Teardown ends running calls. Every method blocks until the parties (or
// the PBX) answered, or ctx ends, and never retries on its own: a caller
// that wants another attempt calls again. Methods are safe for concurrent
// use.
type Teardown interface {
	// HangupCall ends one call, named by the ID its events carried
	// (event.SIP.CallID: the SIP Call-ID inline, the channel UUID for
	// FreeSWITCH). An unknown ID is an error wrapping ErrNoCall.
	HangupCall(ctx context.Context, id string) error
	// HangupSource ends every call whose signalling comes from addr and
	// returns how many it tried to end (-1 when the implementation cannot
	// tell).
	HangupSource(ctx context.Context, addr netip.Addr) (int, error)
	// HangupAccount ends every call placed by account and returns how many
	// it tried to end (-1 when the implementation cannot tell).
	HangupAccount(ctx context.Context, account string) (int, error)
}

// Lister lists the calls a Teardown can end.
type Lister interface {
	// Calls returns the calls running now, oldest first. It never blocks
	// on the network.
	Calls() []Call
}

// ErrNoCall means the call to end is not (or no longer) known.
var ErrNoCall = errors.New("no such call")

// Call is one running call. Account, From and To may hold phone numbers
// (mask them for display) and attacker-chosen text (escape them).
type Call struct {
	// ID is what HangupCall takes.
	ID string `json:"id"`
	// Account is the calling account (digest user, else the From user).
	Account string `json:"account,omitempty"`
	// From and To are the user parts of the initial INVITE's From and
	// Request-URI (the dialled number).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Source is where the caller's signalling came from.
	Source netip.AddrPort `json:"source"`
	// Direction is "outbound" for a call from a phone through the guard to
	// the PBX and "inbound" for one from the PBX to a phone.
	Direction string `json:"direction"`
	// Start is when the initial INVITE arrived, Answer when its 2xx did.
	Start  time.Time `json:"start"`
	Answer time.Time `json:"answer"`
	// Deadline, when set, is when the call is cut (call_duration).
	Deadline time.Time `json:"deadline,omitzero"`
}

// Duration is how long the call has been connected at now.
func (c Call) Duration(now time.Time) time.Duration {
	if c.Answer.IsZero() || now.Before(c.Answer) {
		return 0
	}
	return now.Sub(c.Answer)
}
