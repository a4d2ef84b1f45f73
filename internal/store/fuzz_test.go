package store

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/event"
)

// FuzzRowRoundTrip feeds attacker-controlled SIP text through the row
// encoding: the columns must fit both engines, and decoding the stored JSON
// must give back an event with the same columns, and the JSON must reach a
// fixed point after one round trip.
func FuzzRowRoundTrip(f *testing.F) {
	f.Add("a84b4c76e66710@pc33", "1001", "friendly-scanner", uint16(5060))
	f.Add(strings.Repeat("x", 600), "13812345678", "\x00\xff\xfe", uint16(0))
	f.Add("", "\u202e1001", "sipvicious\r\n", uint16(65535))
	f.Fuzz(func(t *testing.T, callID, user, ua string, port uint16) {
		ev := &event.Verdict{Meta: event.Meta{Time: t0, Source: ap("203.0.113.7:5060")},
			SIP:    event.SIP{Method: "REGISTER", CallID: callID, FromUser: user, ToUser: user, UserAgent: ua},
			Action: "drop", Rule: ua}
		r, err := newRow(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{r.Account, r.CallID, r.Rule} {
			if len(c) > maxColumn || !utf8.ValidString(c) || strings.ContainsRune(c, 0) {
				t.Fatalf("column %q does not fit", c)
			}
		}
		back, err := decodeEvent(r.Kind, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := newRow(back)
		if err != nil {
			t.Fatal(err)
		}
		// The columns survive; the JSON may change once (invalid UTF-8
		// becomes U+FFFD) and is stable from then on.
		r.Data = nil
		data2 := r2.Data
		r2.Data = nil
		if !bytes.Equal(r.canonical(nil), r2.canonical(nil)) {
			t.Fatalf("columns changed through a round trip:\n%q\n%q", r.canonical(nil), r2.canonical(nil))
		}
		again, err := decodeEvent(r2.Kind, data2)
		if err != nil {
			t.Fatal(err)
		}
		r3, err := newRow(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r3.Data, data2) {
			t.Fatalf("JSON not stable:\n%s\n%s", data2, r3.Data)
		}
	})
}
