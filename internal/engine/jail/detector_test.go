package jail

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

func defaultJail() config.Jail {
	d := func(s time.Duration) config.Duration { return config.Duration(s) }
	return config.Jail{RegisterFailure: []config.JailRule{
		{FindTime: d(time.Minute), MaxRetry: 3, BanMode: "ip_account", BanTime: d(3 * time.Minute)},
		{FindTime: d(time.Hour), MaxRetry: 5, BanMode: "ip_account", BanTime: d(time.Hour)},
		{FindTime: d(time.Hour), MaxRetry: 10, BanMode: "ip", BanTime: d(time.Hour)},
	}, Factor: 2, MaxTime: d(24 * time.Hour)}
}

// TestDetector replays failures (one per entry: the account names and the
// gap since the previous one) and checks the rule of each ban and after
// which failure it came. Bans are not applied to the set: the counting is
// under test (in a run, a banned pair's requests never reach the PBX).
func TestDetector(t *testing.T) {
	type fail struct {
		names []string
		gap   time.Duration
	}
	repeat := func(n int, gap time.Duration, names ...string) []fail {
		var out []fail
		for range n {
			out = append(out, fail{names, gap})
		}
		return out
	}
	round := func(n int, gap time.Duration, accounts ...string) []fail {
		var out []fail
		for range n {
			for _, a := range accounts {
				out = append(out, fail{[]string{a}, gap})
			}
		}
		return out
	}
	cases := []struct {
		name   string
		fails  []fail
		known  []string
		proven bool
		want   map[int]string // failure index → rule of the ban it caused
	}{
		{"mod_cti rule: the 3rd in 60 s", repeat(3, 10*time.Second, "1001"), nil, true, map[int]string{2: "register_failure[0]"}},
		{"one try per 35 s: the 5th within 1 h", repeat(6, 35*time.Second, "1001"), nil, true, map[int]string{4: "register_failure[1]"}},
		{"one try per 9 min: still the 5th", repeat(5, 9*time.Minute, "1001"), nil, true, map[int]string{4: "register_failure[1]"}},
		{"one try per 16 min escapes", repeat(6, 16*time.Minute, "1001"), nil, true, map[int]string{}},
		{"four accounts slowly: the 10th bans the address", round(3, 9*time.Second, "1001", "1002", "1003", "1004"), nil, true, map[int]string{9: "register_failure[2]"}},
		{"accounts registered from the address do not count for the address", round(3, 9*time.Second, "1001", "1002", "1003", "1004"), []string{"1001", "1002", "1003", "1004"}, true, map[int]string{}},
		{"every name counts: To 1001 with digest user x", repeat(3, 10*time.Second, "x", "1001"), nil, true, map[int]string{2: "register_failure[0]"}},
		{"an unproven source keeps its counts: the next failure re-trips", repeat(6, 35*time.Second, "1001"), nil, false, map[int]string{4: "register_failure[1]", 5: "register_failure[1]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Compile(defaultJail(), NewRepeats(64), 1024)
			if err != nil {
				t.Fatal(err)
			}
			src := netip.MustParseAddr("203.0.113.50")
			sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(64)}
			for _, a := range tc.known {
				sh.Known.Registered(src, a)
			}
			now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			got := map[int]string{}
			for i, f := range tc.fails {
				now = now.Add(f.gap)
				in := &detector.Input{Now: now, Src: src, SIP: &event.SIP{Method: "REGISTER"}, Account: f.names[0], Proven: tc.proven}
				for _, n := range f.names {
					in.Names.Add(n)
				}
				var out detector.Out
				d.Failure(sh, in, &out)
				for _, b := range out.Decisions() {
					if b.Scope == decision.ScopeIPAccount && b.Account != "1001" && len(f.names) > 1 {
						continue // the x key of the same request
					}
					got[i] = b.Rule
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("bans %v, want %v", got, tc.want)
			}
			for i, r := range tc.want {
				if got[i] != r {
					t.Errorf("bans %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestRequestRefusesEveryName(t *testing.T) {
	d, _ := Compile(defaultJail(), NewRepeats(8), 64)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	src := netip.MustParseAddr("203.0.113.50")
	sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(8)}
	sh.Set.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(src), Account: "1001", Rule: "register_failure[0]", At: now, Until: now.Add(time.Hour)})
	for _, names := range [][]string{{"x", "1001"}, {"1001"}, {"1002", "1001"}} {
		in := &detector.Input{Now: now, Src: src, SIP: &event.SIP{}}
		for _, n := range names {
			in.Names.Add(n)
		}
		var out detector.Out
		d.Request(sh, in, &out)
		if out.V.Action != detector.Reject || out.V.Rule != RuleBan {
			t.Errorf("names %v: %+v", names, out.V)
		}
	}
}
