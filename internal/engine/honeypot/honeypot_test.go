package honeypot

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

func TestHoneypot(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	d, err := Compile(config.Honeypot{Accounts: []string{"Test", "9999"}, BanTime: config.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		hook     string
		names    []string
		targets  []string
		want     bool
		unproven bool
	}{
		{"account name", "request", []string{"9999"}, nil, true, false},
		{"normalised config entry", "request", []string{"test"}, nil, true, false},
		{"Request-URI user", "request", []string{"1001"}, []string{"9999"}, true, false},
		{"real account", "request", []string{"1001"}, []string{"1002"}, false, false},
		{"failure", "failure", []string{"9999"}, nil, true, false},
		{"registration", "register", []string{"test"}, nil, true, false},
		{"failure of a real account", "failure", []string{"1001"}, nil, false, false},
		// A lone datagram's source can be forged: dropped, never banned.
		{"request from an unproven source", "request", []string{"9999"}, nil, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(8)}
			in := &detector.Input{Now: now, Src: netip.MustParseAddr("203.0.113.9"), SIP: &event.SIP{Method: "REGISTER"}, Proven: !tc.unproven}
			for _, n := range tc.names {
				in.Names.Add(n)
			}
			for _, n := range tc.targets {
				in.Targets.Add(n)
			}
			var out detector.Out
			switch tc.hook {
			case "request":
				d.Request(sh, in, &out)
			case "failure":
				d.Failure(sh, in, &out)
			case "register":
				d.Registered(sh, in, &out)
			}
			if tc.unproven && out.V.Action != detector.Drop {
				t.Errorf("unproven honeypot request passed: %+v", out.V)
			}
			got := out.V.Action == detector.Drop && len(out.Decisions()) == 1
			if got != tc.want {
				t.Fatalf("banned = %v, want %v (%+v, %v)", got, tc.want, out.V, out.Decisions())
			}
			if got && (out.Decisions()[0].Rule != Name || out.Decisions()[0].Until != now.Add(time.Hour)) {
				t.Errorf("decision %+v", out.Decisions()[0])
			}
		})
	}
}

func TestCompileRejectsEmpty(t *testing.T) {
	if _, err := Compile(config.Honeypot{Accounts: []string{" "}, BanTime: config.Duration(time.Hour)}); err == nil {
		t.Error("an empty account compiled")
	}
}
