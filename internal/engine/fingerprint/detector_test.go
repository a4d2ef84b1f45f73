package fingerprint

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

func TestDetector(t *testing.T) {
	list := []byte(`fingerprints:
  - {name: sipvicious, strong: true, when: [{field: user_agent, prefix: friendly-scanner}], source: test}
  - {name: weak-a, score: 60, when: [{field: from_name, exact: a}], source: test}
  - {name: weak-b, score: 60, when: [{field: from_name, exact: b}], source: test}
`)
	cases := []struct {
		name     string
		sips     []event.SIP
		request  bool
		want     []detector.Action
		unproven bool // over UDP: a strong mark drops the datagram, never bans
	}{
		{"strong mark drops at once", []event.SIP{{Method: "OPTIONS", UserAgent: "friendly-scanner"}}, true, []detector.Action{detector.Drop}, false},
		{"strong mark on a call attempt", []event.SIP{{Method: "INVITE", UserAgent: "friendly-scanner"}}, false, []detector.Action{detector.Drop}, false},
		{"strong mark from an unproven source drops, no ban", []event.SIP{{Method: "OPTIONS", UserAgent: "friendly-scanner"}, {Method: "OPTIONS", UserAgent: "friendly-scanner"}}, true, []detector.Action{detector.Drop, detector.Drop}, true},
		{"weak marks from an unproven source still ban at the threshold", []event.SIP{{Method: "OPTIONS", FromName: "a"}, {Method: "OPTIONS", FromName: "b"}}, true, []detector.Action{detector.Pass, detector.Drop}, true},
		{"one weak mark passes", []event.SIP{{Method: "OPTIONS", FromName: "a"}, {Method: "OPTIONS", FromName: "a"}}, true, []detector.Action{detector.Pass, detector.Pass}, false},
		{"two distinct weak marks reach the threshold", []event.SIP{{Method: "OPTIONS", FromName: "a"}, {Method: "OPTIONS", FromName: "b"}}, true, []detector.Action{detector.Pass, detector.Drop}, false},
		{"weak marks count only on requests", []event.SIP{{Method: "INVITE", FromName: "a"}, {Method: "INVITE", FromName: "b"}}, false, []detector.Action{detector.Pass, detector.Pass}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDetector(config.Fingerprints{Threshold: 100, BanTime: config.Duration(24 * time.Hour)}, "test", list)
			if err != nil {
				t.Fatal(err)
			}
			sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(8)}
			now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			for i, s := range tc.sips {
				var out detector.Out
				d.Request(sh, &detector.Input{Now: now, Src: netip.MustParseAddr("203.0.113.5"), SIP: &s, Request: tc.request, Proven: !tc.unproven}, &out)
				if out.V.Action != tc.want[i] {
					t.Errorf("request %d: %+v, want %v", i, out.V, tc.want[i])
				}
				wantBan := out.V.Action == detector.Drop && !(tc.unproven && s.UserAgent != "")
				if wantBan != (len(out.Decisions()) == 1) {
					t.Errorf("request %d: decisions %v", i, out.Decisions())
				}
			}
		})
	}
	if _, err := NewDetector(config.Fingerprints{Threshold: 100, BanTime: config.Duration(time.Hour)}, "bad", []byte("fingerprints: [{name: x}]")); err == nil {
		t.Error("a bad list compiled")
	}
	if d, err := NewDetector(config.Fingerprints{Threshold: 100, BanTime: config.Duration(time.Hour)}, "", nil); err != nil || d.Matcher().Len() == 0 {
		t.Errorf("nil list did not give the embedded one: %v", err)
	}
}
