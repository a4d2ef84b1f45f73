package evaluate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/tollguard/tollguard/internal/event"
)

// Labelled is one event of an event file with its label.
type Labelled struct {
	Event event.Event
	// Fraud is true for events marked "label": "fraud".
	Fraud bool
	// Pattern names the fraud pattern ("pattern": "night_burst"), when the
	// file says.
	Pattern string
}

// maxEventSize bounds one JSON value of an event file (the whole document
// for `tollguard events --json` output).
const maxEventSize = 256 << 20

// ReadEvents reads an event file and returns its events in time order.
// It accepts, mixed in one stream:
//
//   - one event per line, the event's fields beside "kind" (the replay
//     format): {"kind":"call_attempt","time":…,"account":"1001","destination":"+44…"};
//   - one stored record per line, the event under "event":
//     {"seq":1,"kind":"call_attempt","event":{…}};
//   - the document `tollguard events --json --unmask` prints:
//     {"masked":false,"records":[…]}.
//
// Lines starting with '#' are skipped, as in replay files. Any line may
// add "label": "fraud" (and "pattern": NAME). Kinds the
// anomaly detector does not learn from are skipped; an unknown kind, a
// malformed value or masked numbers are errors naming the value's position.
func ReadEvents(r io.Reader) ([]Labelled, error) {
	dec := json.NewDecoder(&uncommented{r: bufio.NewReaderSize(r, 1<<16)})
	var out []Labelled
	for n := 1; ; n++ {
		var raw json.RawMessage
		off := dec.InputOffset()
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("event file value %d (byte %d): %w", n, off, err)
		}
		if len(raw) > maxEventSize {
			return nil, fmt.Errorf("event file value %d (byte %d): larger than %d bytes", n, off, maxEventSize)
		}
		var err error
		if out, err = appendValue(out, raw, true); err != nil {
			return nil, fmt.Errorf("event file value %d (byte %d): %w", n, off, err)
		}
	}
	slices.SortStableFunc(out, func(a, b Labelled) int {
		return a.Event.Base().Time.Compare(b.Event.Base().Time)
	})
	return out, nil
}

// head is what every accepted value may hold.
type head struct {
	Kind    string            `json:"kind"`
	Label   string            `json:"label"`
	Pattern string            `json:"pattern"`
	Event   json.RawMessage   `json:"event"`
	Masked  *bool             `json:"masked"`
	Records []json.RawMessage `json:"records"`
}

func appendValue(out []Labelled, raw json.RawMessage, top bool) ([]Labelled, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.TrimSpace(raw)[0] != '{' {
		return out, errors.New("not a JSON object")
	}
	var h head
	if err := json.Unmarshal(raw, &h); err != nil {
		return out, err
	}
	if h.Masked != nil || h.Records != nil {
		if !top {
			return out, errors.New("a document of records inside a record")
		}
		if h.Masked != nil && *h.Masked {
			return out, errors.New("phone numbers are masked: export with `tollguard events --json --unmask`")
		}
		for i, rec := range h.Records {
			var err error
			if out, err = appendValue(out, rec, false); err != nil {
				return out, fmt.Errorf("record %d: %w", i, err)
			}
		}
		return out, nil
	}
	body := raw
	if len(h.Event) > 0 && !bytes.Equal(h.Event, []byte("null")) {
		body = h.Event
	}
	var ev event.Event
	switch h.Kind {
	case "call_attempt":
		ev = new(event.CallAttempt)
	case "call_answered":
		ev = new(event.CallAnswered)
	case "call_ended":
		ev = new(event.CallEnded)
	case "register":
		ev = new(event.Register)
	case "":
		return out, errors.New(`no "kind"`)
	default:
		if _, ok := event.ParseKind(h.Kind); ok || h.Kind == "datagram" {
			return out, nil // not learnt from
		}
		return out, fmt.Errorf("unknown kind %q", capText(h.Kind))
	}
	if err := json.Unmarshal(body, ev); err != nil {
		return out, fmt.Errorf("%s: %w", h.Kind, err)
	}
	if ev.Base().Time.IsZero() {
		return out, fmt.Errorf("%s without a time", h.Kind)
	}
	switch h.Label {
	case "", "normal", "fraud":
	default:
		return out, fmt.Errorf("label %q is not fraud or normal", capText(h.Label))
	}
	return append(out, Labelled{Event: ev, Fraud: h.Label == "fraud", Pattern: capText(h.Pattern)}), nil
}

func capText(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// uncommented drops lines whose first byte is '#'.
type uncommented struct {
	r    *bufio.Reader
	line []byte
	err  error
}

func (u *uncommented) Read(p []byte) (int, error) {
	for len(u.line) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		u.line, u.err = u.r.ReadBytes('\n')
		if len(bytes.TrimLeft(u.line, " \t")) > 0 && bytes.TrimLeft(u.line, " \t")[0] == '#' {
			u.line = nil
		}
	}
	n := copy(p, u.line)
	u.line = u.line[n:]
	return n, nil
}
