package probe

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// step is one event fed to the detector.
type step struct {
	kind  event.Kind // KindCallAttempt, KindRequest, KindResponse, KindCallAnswered
	at    time.Duration
	to    string
	creds bool
	code  int
	call  string
}

func TestProbe(t *testing.T) {
	intl := "0097259000001"
	cases := []struct {
		name      string
		known     bool // the source registered an account
		steps     []step
		wantRules []string // verdict rule per step ("" = plain pass)
		wantDrop  int      // index of the step dropped, -1 none
		wantBan   bool
	}{
		{"international numbers: the 3rd bans and drops", false,
			[]step{{kind: event.KindCallAttempt, to: intl}, {kind: event.KindCallAttempt, at: time.Second, to: intl}, {kind: event.KindCallAttempt, at: 2 * time.Second, to: intl}},
			[]string{Name, Name, Name}, 2, true},
		{"a registered source never probes", true,
			[]step{{kind: event.KindCallAttempt, to: intl}, {kind: event.KindCallAttempt, to: intl}, {kind: event.KindCallAttempt, to: intl}},
			[]string{"", "", ""}, -1, false},
		{"credentials are not a probe", false,
			[]step{{kind: event.KindCallAttempt, to: intl, creds: true}, {kind: event.KindCallAttempt, to: intl, creds: true}, {kind: event.KindCallAttempt, to: intl, creds: true}},
			[]string{"", "", ""}, -1, false},
		{"an escaped international number is one", false,
			[]step{{kind: event.KindCallAttempt, to: "%2B972590000001"}},
			[]string{Name}, -1, false},
		{"a local number is not a probe at the request", false,
			[]step{{kind: event.KindCallAttempt, to: "1002"}},
			[]string{""}, -1, false},
		{"refusals 403, 404, 484 are probes; the 3rd bans", false,
			[]step{{kind: event.KindResponse, to: "1002", code: 404}, {kind: event.KindResponse, to: "1003", code: 403}, {kind: event.KindResponse, to: "1004", code: 484}},
			[]string{Name, Name, Name}, -1, true},
		{"a challenge answered with the same Call-ID is not a probe", false,
			[]step{{kind: event.KindResponse, to: "1002", code: 407, call: "a"}, {kind: event.KindRequest, at: 100 * time.Millisecond, to: "1002", creds: true, call: "a"},
				{kind: event.KindResponse, at: 10 * time.Second, to: "1002", code: 200, creds: true, call: "a"}},
			[]string{"", "", ""}, -1, false},
		{"a challenge never answered is a probe after the grace", false,
			[]step{{kind: event.KindResponse, to: "1002", code: 407, call: "a"}, {kind: event.KindResponse, at: 6 * time.Second, to: "1003", code: 407, call: "b"}},
			[]string{"", Name}, -1, false},
		{"a retransmitted INVITE (same Call-ID) counts once", false,
			[]step{{kind: event.KindCallAttempt, to: intl, call: "x"}, {kind: event.KindCallAttempt, at: 500 * time.Millisecond, to: intl, call: "x"},
				{kind: event.KindCallAttempt, at: 1500 * time.Millisecond, to: intl, call: "x"}, {kind: event.KindCallAttempt, at: 2 * time.Second, to: intl, call: "y"}},
			[]string{Name, Name, Name, Name}, -1, false},
		{"a challenge to a retransmitted INVITE is pending once", false,
			[]step{{kind: event.KindResponse, to: "1002", code: 407, call: "a"}, {kind: event.KindResponse, at: 500 * time.Millisecond, to: "1002", code: 407, call: "a"},
				{kind: event.KindResponse, at: 6 * time.Second, to: "1003", code: 407, call: "b"}, {kind: event.KindResponse, at: 12 * time.Second, to: "1003", code: 407, call: "c"}},
			[]string{"", "", Name, Name}, -1, false},
		{"probes older than findtime do not add up", false,
			[]step{{kind: event.KindCallAttempt, to: intl}, {kind: event.KindCallAttempt, at: 11 * time.Minute, to: intl}, {kind: event.KindCallAttempt, at: 22 * time.Minute, to: intl}},
			[]string{Name, Name, Name}, -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Compile(config.Probe{FindTime: config.Duration(10 * time.Minute), MaxProbes: 3, BanTime: config.Duration(time.Hour),
				Destinations: []string{`^(\+|00|011)[1-9]`, `^(1?900|0900)`}}, 1024)
			if err != nil {
				t.Fatal(err)
			}
			src := netip.MustParseAddr("203.0.113.9")
			sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(8)}
			if tc.known {
				sh.Known.Registered(src, "1001")
			}
			banned := false
			for i, s := range tc.steps {
				sip := &event.SIP{Method: "INVITE", FromUser: "1001", ToUser: s.to, RURIUser: s.to, HasCredentials: s.creds, CallID: s.call}
				in := &detector.Input{Kind: s.kind, Now: t0.Add(s.at), Src: src, SIP: sip, Code: s.code, Request: s.kind == event.KindRequest}
				var out detector.Out
				switch s.kind {
				case event.KindResponse:
					d.Response(sh, in, &out)
				default:
					d.Request(sh, in, &out)
				}
				if out.V.Rule != tc.wantRules[i] {
					t.Errorf("step %d: rule %q, want %q", i, out.V.Rule, tc.wantRules[i])
				}
				if (out.V.Action == detector.Drop) != (i == tc.wantDrop) {
					t.Errorf("step %d: action %v", i, out.V.Action)
				}
				for _, b := range out.Decisions() {
					banned = true
					if b.Rule != Name || b.Scope != decision.ScopeIP || b.Until.Sub(b.At) != time.Hour {
						t.Errorf("decision %+v", b)
					}
				}
			}
			if banned != tc.wantBan {
				t.Errorf("banned %v, want %v", banned, tc.wantBan)
			}
		})
	}
}

func TestAuthenticatedCallerExempt(t *testing.T) {
	d, _ := Compile(config.Probe{FindTime: config.Duration(10 * time.Minute), MaxProbes: 1, BanTime: config.Duration(time.Hour)}, 16)
	src := netip.MustParseAddr("198.51.100.30")
	sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(8)}
	var out detector.Out
	d.Call(sh, &detector.Input{Kind: event.KindCallAnswered, Now: t0, Src: src, SIP: &event.SIP{Method: "INVITE", HasCredentials: true}}, &out)
	d.Response(sh, &detector.Input{Kind: event.KindResponse, Now: t0, Src: src, SIP: &event.SIP{Method: "INVITE", RURIUser: "5"}, Code: 404}, &out)
	if out.V.Rule != "" || len(out.Decisions()) != 0 {
		t.Errorf("a trunk that authenticated a call was counted: %+v", out.V)
	}
}
