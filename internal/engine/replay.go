package engine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// Replay files hold one JSON object per line. "kind" names the event
// ("request", "auth_failure", "register", "response", "call_attempt",
// "call_answered", "call_ended") and the other keys are that event's JSON
// fields, e.g.
//
//	{"kind":"auth_failure","time":"2025-03-01T12:00:00Z","source":"198.51.100.7:5060","method":"REGISTER","account":"1001","code":403}
//
// The replay-only kind "datagram" stands for a packet seen by Admit before
// parsing: {"kind":"datagram","time":...,"source":...,"repeat":300,"every":"5ms"}.
// Blank lines and lines starting with '#' are skipped. Unknown keys are errors.

// Record is one line of a replay file.
type Record struct {
	// Line is the 1-based line number in the file.
	Line int
	// Event is set for event lines.
	Event event.Event
	// Datagram is set for "datagram" lines.
	Datagram *Datagram
	// Lockdown is set for replay-only "lockdown" lines ({"kind":
	// "lockdown","on":true}): the operator flips the switch.
	Lockdown *bool
}

// Datagram is a packet that goes through Admit only.
type Datagram struct {
	Time   time.Time      `json:"time"`
	Source netip.AddrPort `json:"source"`
	// Repeat sends the datagram this many times (default 1), Every apart.
	Repeat int    `json:"repeat,omitempty"`
	Every  string `json:"every,omitempty"`
}

// ReadReplay parses a replay file.
func ReadReplay(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		rec, err := ParseRecord(line)
		if err != nil {
			return nil, fmt.Errorf("replay line %d: %w", n, err)
		}
		rec.Line = n
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading replay: %w", err)
	}
	return out, nil
}

// ParseRecord parses one replay line.
func ParseRecord(line []byte) (Record, error) {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return Record{}, fmt.Errorf("parsing record: %w", err)
	}
	var rec Record
	var target any
	switch head.Kind {
	case "datagram":
		rec.Datagram = &Datagram{}
		target = &struct {
			Kind string `json:"kind"`
			*Datagram
		}{Datagram: rec.Datagram}
	case "request":
		ev := &event.Request{}
		rec.Event, target = ev, &struct {
			Kind string `json:"kind"`
			*event.Request
		}{Request: ev}
	case "response":
		ev := &event.Response{}
		rec.Event, target = ev, &struct {
			Kind string `json:"kind"`
			*event.Response
		}{Response: ev}
	case "auth_failure":
		ev := &event.AuthFailure{}
		rec.Event, target = ev, &struct {
			Kind string `json:"kind"`
			*event.AuthFailure
		}{AuthFailure: ev}
	case "register":
		ev := &event.Register{}
		rec.Event, target = ev, &struct {
			Kind string `json:"kind"`
			*event.Register
		}{Register: ev}
	case "lockdown":
		var l struct {
			Kind string `json:"kind"`
			On   bool   `json:"on"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			return Record{}, fmt.Errorf("parsing lockdown: %w", err)
		}
		return Record{Lockdown: &l.On}, nil
	case "call_attempt":
		// token and sdp are replay-only: the tap hands them to the
		// engine, the store never keeps them.
		ev := &event.CallAttempt{}
		x := &struct {
			Kind string `json:"kind"`
			*event.CallAttempt
			Token string `json:"token"`
			SDP   string `json:"sdp"`
		}{CallAttempt: ev}
		rec.Event, target = ev, x
		defer func() { ev.Token, ev.SDP = x.Token, []byte(x.SDP) }()
	case "call_answered":
		ev := &event.CallAnswered{}
		rec.Event, target = ev, &struct {
			Kind string `json:"kind"`
			*event.CallAnswered
		}{CallAnswered: ev}
	case "call_ringing":
		ev := &event.CallRinging{}
		rec.Event, target = ev, &struct {
			Kind string `json:"kind"`
			*event.CallRinging
		}{CallRinging: ev}
	case "call_ended":
		ev := &event.CallEnded{}
		rec.Event, target = ev, &struct {
			Kind string `json:"kind"`
			*event.CallEnded
		}{CallEnded: ev}
	default:
		return Record{}, fmt.Errorf("unknown kind %q", head.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return Record{}, fmt.Errorf("parsing %s: %w", head.Kind, err)
	}
	if rec.Event != nil {
		m := rec.Event.Base()
		m.Source = netip.AddrPortFrom(m.Source.Addr().Unmap(), m.Source.Port())
	}
	if d := rec.Datagram; d != nil {
		if d.Repeat == 0 {
			d.Repeat = 1
		}
		if d.Every != "" {
			if _, err := time.ParseDuration(d.Every); err != nil {
				return Record{}, fmt.Errorf("datagram every: %w", err)
			}
		}
	}
	return rec, nil
}
