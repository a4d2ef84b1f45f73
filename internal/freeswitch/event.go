package freeswitch

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Event is one FreeSWITCH event received in plain format. Header values are
// percent-decoded; a header that appears twice keeps its first value
// (sofia::register_failure carries profile-name twice, sofia_reg.c
// sofia_reg_handle_register_token).
type Event struct {
	Headers map[string]string
	Body    string
}

// Get returns the named header's decoded value, or "". FreeSWITCH header
// lookups ignore case (switch_event_get_header), and so does Get.
func (e *Event) Get(name string) string {
	if v, ok := e.Headers[name]; ok {
		return v
	}
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Array returns the named header's elements: several for an "ARRAY::"
// value, one otherwise, none when the header is absent.
func (e *Event) Array(name string) []string {
	v, ok := e.Headers[name]
	if !ok {
		return nil
	}
	return SplitArray(v)
}

// Name returns Event-Name.
func (e *Event) Name() string { return e.Get("Event-Name") }

// Subclass returns Event-Subclass (for CUSTOM events).
func (e *Event) Subclass() string { return e.Get("Event-Subclass") }

// undef is how switch_event_serialize writes an empty value.
const undef = "_undef_"

// ParsePlain parses the body of a text/event-plain frame, the text
// switch_event_serialize writes (src/switch_event.c): "Name: value\n" per
// header with values percent-encoded, then either "\n" or, when the event
// has a body, a last header "Content-Length: N", an empty line and N bytes.
// An empty value, serialised as "_undef_", reads back as "".
func ParsePlain(b []byte) (*Event, error) {
	e := &Event{Headers: make(map[string]string, 48)}
	for len(b) > 0 {
		var line []byte
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			line, b = b, nil
		} else {
			line, b = b[:i], b[i+1:]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			return nil, fmt.Errorf("%w: event header without a name: %q", ErrFrame, capText(string(line)))
		}
		name := string(bytes.TrimSpace(line[:c]))
		if _, dup := e.Headers[name]; dup {
			continue
		}
		v := Unescape(string(bytes.TrimSpace(line[c+1:])))
		if v == undef {
			v = ""
		}
		e.Headers[name] = v
	}
	if cl, ok := e.Headers["Content-Length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: bad event Content-Length %q", ErrFrame, capText(cl))
		}
		if n > len(b) {
			return nil, fmt.Errorf("%w: event body of %d bytes announced, %d present", ErrFrame, n, len(b))
		}
		e.Body = string(b[:n])
	}
	if e.Name() == "" {
		return nil, fmt.Errorf("%w: event without Event-Name", ErrFrame)
	}
	return e, nil
}
