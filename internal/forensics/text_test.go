package forensics

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/safetext"
	"github.com/tollguard/tollguard/internal/store"
)

// hostile holds every kind of character that must not reach a terminal:
// C0 (ESC), DEL, C1 (8-bit CSI), bidi embedding, override, isolate and
// marks.
const hostile = "1001\x1b[2J\x07\x7f\u009b31m\u202a\u202e\u2066\u2069\u200e\u200f\u061c\r\n\t"

// Every place the report prints text that came from the network escapes
// it: accounts, User-Agents, destinations, ban targets and admin targets
// in the timeline.
func TestWriteTextEscapesAttackerText(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, config.Default().Store, t.TempDir(), store.Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := netip.MustParseAddrPort("203.0.113.20:5070")
	at := func(sec int) event.Meta {
		return event.Meta{Time: t0.Add(time.Duration(sec) * time.Second), Source: src}
	}
	for i := range 4 {
		s.Record(&event.AuthFailure{Meta: at(i), SIP: event.SIP{Method: "REGISTER", UserAgent: "ua" + hostile}, Account: hostile, Code: 403})
	}
	s.Record(&event.Register{Meta: at(10), Account: hostile})
	s.Record(&event.CallAnswered{Meta: at(20), Account: hostile, Destination: "00972" + hostile})
	s.Record(&event.CallEnded{Meta: at(30), Account: hostile, Destination: "00972" + hostile, Billsec: time.Minute})
	s.Record(&event.Ban{Meta: at(40), Scope: "ip_account", Value: "203.0.113.20", Account: hostile, Rule: "register_failure[0]", Until: t0.Add(time.Hour)})
	s.Record(&event.Admin{Meta: at(50), Actor: "token@127.0.0.1", Action: "ban", Target: hostile + "@203.0.113.20"})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Query(ctx, store.Filter{Since: t0, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rep := Analyze(recs, Options{})
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for i, r := range text {
		if r != '\n' && safetext.Unsafe(r) {
			t.Errorf("raw %U at byte %d of the report:\n%s", r, i, text)
			break
		}
	}
	for _, want := range []string{`1001\x1b[2J`, `\u202e`, `\u061c`, "LIKELY COMPROMISED"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}
