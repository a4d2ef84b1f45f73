package enumeration

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// TestSweep drives the sweep rule through Rule.Request: which request of a
// sequence is dropped (-1: none).
func TestSweep(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	type req struct {
		method string
		user   string // From = To = R-URI user
		creds  bool
	}
	sweep := func(method string, n int) []req {
		var out []req
		for i := range n {
			out = append(out, req{method: method, user: fmt.Sprint(100 + i)})
		}
		return out
	}
	office := func() []req { // phones answer their challenges as they come
		var out []req
		for i := range 20 {
			u := fmt.Sprint(2000 + i)
			out = append(out, req{method: "REGISTER", user: u})
			if i >= 6 {
				out = append(out, req{method: "REGISTER", user: fmt.Sprint(2000 + i - 6), creds: true})
			}
		}
		return out
	}
	cases := []struct {
		name     string
		reqs     []req
		known    []string // accounts registered from the source
		wantDrop int
	}{
		{"svwar REGISTER: the 8th user drops", sweep("REGISTER", 20), nil, 7},
		{"svwar INVITE", sweep("INVITE", 20), nil, 7},
		{"OPTIONS", sweep("OPTIONS", 20), nil, 7},
		{"SUBSCRIBE", sweep("SUBSCRIBE", 20), nil, 7},
		{"MESSAGE", sweep("MESSAGE", 20), nil, 7},
		{"other methods never count", sweep("NOTIFY", 20), nil, -1},
		{"seven users are not a sweep", sweep("REGISTER", 7), nil, -1},
		{"an office whose phones answer", office(), nil, -1},
		{"an answering source still trips by OPTIONS",
			append([]req{{method: "REGISTER", user: "99"}, {method: "REGISTER", user: "99", creds: true}}, sweep("OPTIONS", 10)...), nil, 9},
		{"an answering source is left to the grace for REGISTER",
			append([]req{{method: "REGISTER", user: "99"}, {method: "REGISTER", user: "99", creds: true}}, sweep("REGISTER", 10)...), nil, -1},
		{"a registered account's OPTIONS to other users count", []req{
			{method: "OPTIONS", user: "100"}, {method: "OPTIONS", user: "101"}, {method: "OPTIONS", user: "102"}, {method: "OPTIONS", user: "103"},
			{method: "OPTIONS", user: "104"}, {method: "OPTIONS", user: "105"}, {method: "OPTIONS", user: "106"}, {method: "OPTIONS", user: "107"}},
			[]string{"999"}, 7},
		{"a registered account's calls to other users do not", sweep("INVITE", 20), []string{"999"}, -1},
		{"registered phones' OPTIONS name nothing", sweep("OPTIONS", 20), []string{
			"100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "110", "111", "112", "113", "114", "115", "116", "117", "118", "119"}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(config.Enumeration{FindTime: config.Duration(time.Minute), MaxAccounts: 5, BanTime: config.Duration(time.Hour), SweepTargets: 8}, 1024)
			if err != nil {
				t.Fatal(err)
			}
			src := netip.MustParseAddr("203.0.113.20")
			sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(64)}
			for _, a := range tc.known {
				sh.Known.Registered(src, a)
			}
			dropped := -1
			for i, q := range tc.reqs {
				from := q.user
				if len(tc.known) == 1 {
					from = tc.known[0] // the source's registered account
				}
				s := &event.SIP{Method: q.method, FromUser: from, ToUser: q.user, RURIUser: q.user, HasCredentials: q.creds}
				if q.creds {
					s.AuthUser = q.user
				}
				in := &detector.Input{Kind: event.KindRequest, Now: t0.Add(time.Duration(i) * 50 * time.Millisecond), Src: src, SIP: s, Request: true, Account: q.user}
				in.Names.Add(q.user)
				in.Targets.Add(q.user)
				var out detector.Out
				r.Request(sh, in, &out)
				if out.V.Action == detector.Drop {
					dropped = i
					if len(out.Decisions()) != 1 || out.Decisions()[0].Rule != Name {
						t.Errorf("decisions %v", out.Decisions())
					}
					break
				}
			}
			if dropped != tc.wantDrop {
				t.Errorf("dropped request %d, want %d", dropped, tc.wantDrop)
			}
		})
	}
}

func TestSweepOff(t *testing.T) {
	if _, err := Compile(config.Enumeration{FindTime: config.Duration(time.Minute), MaxAccounts: 5, BanTime: config.Duration(time.Hour), SweepTargets: 1}, 16); err == nil {
		t.Error("sweep_targets 1 compiled")
	}
	s := NewSweep(time.Minute, 0, 16)
	if s.Enabled() {
		t.Error("sweep_targets 0 is on")
	}
}
