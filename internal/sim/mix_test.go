package sim_test

import (
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/tollguard/tollguard/internal/demo"
	"github.com/tollguard/tollguard/internal/sim"
)

// startLab starts the demo PBX, behind the embedded guard when protect.
func startLab(t *testing.T, protect bool) sim.Lab {
	t.Helper()
	lab, stop, err := demo.StartLab(t.Context(), protect, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the lab: %v", err)
		}
	})
	return lab
}

// canForge reports whether the forged-datagram play can run; under CI it
// must (CI runs as root).
func canForge(t *testing.T) bool {
	if os.Geteuid() == 0 {
		return true
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run as root: the forged_scanner_datagram play needs a raw socket")
	}
	return false
}

// TestShortMix runs every scenario of the standard mix, scaled down,
// against the embedded guard and checks the per-scenario counts the report
// is built from: what reached the PBX per scenario is bounded by what the
// engine's rules let through, no legitimate operation fails, the totals
// are the sums of the scenarios, and the fraud calls are the calls the PBX
// itself answered for the compromised account.
func TestShortMix(t *testing.T) {
	lab := startLab(t, true)
	m := sim.ShortMix()
	if !canForge(t) {
		for i := range m.Plays {
			if m.Plays[i].Name == "forged_scanner_datagram" {
				m.Plays[i].Skip = "not root"
			}
		}
	}
	before := lab.Reached()
	rep, err := sim.RunMix(t.Context(), lab, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 {
		t.Fatalf("the PBX saw %d origins before the run", len(before))
	}
	// Every play is in the report, in order.
	for i, p := range m.Plays {
		if rep.Order[i] != p.Name || rep.Scenarios[p.Name] == nil {
			t.Fatalf("scenario %d: report has %q, want %q", i, rep.Order[i], p.Name)
		}
	}
	// Upper bounds on what reached the PBX, from the engine's rules
	// (internal/engine/README.md) and the mix's sizes.
	maxReached := map[string]int{
		"scan_options": 0, "scan_register": 0, "scan_invite": 0, // strong fingerprint: every datagram dropped
		"enumerate_register": 7, "enumerate_options": 7, "enumerate_invite": 7, // the 8th distinct user bans
		"brute_force_fast":              8,  // 3 failures (each after its challenge) ban ip_account; the next guess may race the 3rd 403
		"password_spray":                20, // recidive or enumeration after at most 10 failures
		"distributed_guessing":          30, // 5 addresses × 2 guesses trip the lock, then new_sources 5 one guess each; 2 requests a guess
		"invite_guessing":               6,
		"unauthenticated_international": 2,                 // probe: the 3rd probe is dropped
		"flood":                         30 * (m.Size / 6), // flood.stranger_limit: 30 per 2 s per address that never registered, then dropped until the ban at 200
		"forged_scanner_datagram":       0,
	}
	var sent, reached, legitSent, legitFailed int
	for _, name := range rep.Order {
		o := rep.Scenarios[name]
		if o.Skipped != "" {
			if name != "brute_force_slow" && name != "forged_scanner_datagram" {
				t.Errorf("%s skipped: %s", name, o.Skipped)
			}
			continue
		}
		if o.ReachedPBX < 0 {
			t.Errorf("%s: reached_pbx not measured", name)
		}
		if lim, ok := maxReached[name]; ok {
			if o.ReachedPBX > lim {
				t.Errorf("%s: %d requests reached the PBX, want at most %d", name, o.ReachedPBX, lim)
			}
			if o.Sent <= o.ReachedPBX && name != "forged_scanner_datagram" {
				t.Errorf("%s: sent %d, reached %d: the attack did not outlast the guard", name, o.Sent, o.ReachedPBX)
			}
		}
		if o.Attack && o.Requests {
			sent += o.Sent
			reached += o.ReachedPBX
		}
		if !o.Attack {
			legitSent += o.Sent
			if o.Answered == 0 {
				t.Errorf("%s: no legitimate operation succeeded", name)
			}
		}
		legitFailed += o.Failed
		if o.Failed != 0 {
			t.Errorf("%s: %d legitimate failures: %v", name, o.Failed, o.Notes)
		}
	}
	if rep.Attack.Sent != sent || rep.Attack.ReachedPBX != reached || rep.Legit.Sent != legitSent || rep.Legit.Failed != legitFailed {
		t.Errorf("totals %+v %+v are not the sums of the scenarios (%d, %d, %d, %d)", rep.Attack, rep.Legit, sent, reached, legitSent, legitFailed)
	}
	for _, name := range []string{"busy_office", "typo"} {
		if rep.Scenarios[name].ExpectedFailures == 0 {
			t.Errorf("%s: the meant failure (stale password, typo) did not happen", name)
		}
	}
	// Every call the PBX answered is attributed to a play, and the fraud
	// count is what the PBX answered for the attacks: whatever the guard
	// does about them, the report counts what happened.
	answered := 0
	for _, r := range lab.Reached() {
		answered += r.CallsAnswered
	}
	attributed, fraud := 0, 0
	for _, name := range rep.Order {
		o := rep.Scenarios[name]
		if o.Skipped != "" {
			continue
		}
		attributed += o.PBXCallsAnswered
		if o.Attack {
			fraud += o.PBXCallsAnswered
		} else if o.CallsConnected > o.PBXCallsAnswered {
			t.Errorf("%s: %d calls connected, the PBX answered %d", name, o.CallsConnected, o.PBXCallsAnswered)
		}
	}
	if f := rep.Scenarios["forged_scanner_datagram"]; f.Skipped == "" {
		attributed += f.CallsConnected // the victim's calls, under the victim's address
	}
	if answered != attributed || rep.FraudCallsConnected != fraud {
		t.Errorf("the PBX answered %d calls, %d attributed; fraud %d, report says %d", answered, attributed, fraud, rep.FraudCallsConnected)
	}
	if comp := rep.Scenarios["compromised_account"]; comp.CallsAttempted == 0 {
		t.Error("the compromised account placed no calls")
	}
	if rep.LatencyAddedMs == nil || rep.LatencyAddedMs.Requests == 0 {
		t.Errorf("no latency measured: %v", rep.Errors)
	}
	if len(rep.TimeToBanMs) == 0 {
		t.Error("no time to ban measured")
	}
}

// TestMixUnprotected checks the counting itself: without a guard every
// scanner request and the forged datagram reach the PBX.
func TestMixUnprotected(t *testing.T) {
	lab := startLab(t, false)
	m := sim.ShortMix()
	m.LoadRate = 0
	m.Plays = slices.DeleteFunc(m.Plays, func(p sim.Play) bool {
		return p.Name != "scan_register" && (p.Name != "forged_scanner_datagram" || !canForge(t))
	})
	rep, err := sim.RunMix(t.Context(), lab, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range rep.Order {
		o := rep.Scenarios[name]
		if o.Sent == 0 || o.ReachedPBX != o.Sent {
			t.Errorf("%s: sent %d, reached %d; without a guard all should arrive", name, o.Sent, o.ReachedPBX)
		}
	}
	if got := lab.Reached()[netip.Addr{}]; got.Requests != 0 {
		t.Errorf("%d requests without an IP bottom Via", got.Requests)
	}
}

// TestSlowBruteForce runs the slow brute force alone against the embedded
// guard (two minutes: no pace under register_failure[0]'s 3 failures a
// minute reaches 5 failures sooner): its five guesses reach the PBX (a
// REGISTER and its answer with credentials each, 10 requests), the fifth
// failure bans the address for the account (register_failure[1]), and the
// sixth guess is refused by the guard.
func TestSlowBruteForce(t *testing.T) {
	t.Parallel()
	lab := startLab(t, true)
	m := sim.StandardMix()
	m.Name, m.Duration, m.LoadRate = "slow", 0, 0
	m.Plays = slices.DeleteFunc(m.Plays, func(p sim.Play) bool { return p.Name != "brute_force_slow" })
	rep, err := sim.RunMix(t.Context(), lab, m)
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Scenarios["brute_force_slow"]
	if o == nil || o.Skipped != "" {
		t.Fatalf("brute_force_slow not run: %+v", o)
	}
	// 5 guesses of 2 requests reach the PBX; the 6th REGISTER is refused
	// at the guard (403: the ban is per address and account).
	if o.ReachedPBX != 10 || o.Sent != 11 {
		t.Errorf("sent %d, reached the PBX %d; want 11, 10 (notes %v)", o.Sent, o.ReachedPBX, o.Notes)
	}
	if rep.Attack.Sent != o.Sent || rep.Attack.ReachedPBX != o.ReachedPBX {
		t.Errorf("totals %+v are not the scenario's", rep.Attack)
	}
	if len(o.Found) != 0 {
		t.Errorf("the slow guesser found %v", o.Found)
	}
}
