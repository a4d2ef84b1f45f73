package integration

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// The tests of this file run greylisting as shipped (guardOptions.Greylist).

// greyDrops is how many requests the guard held until retransmitted.
func greyDrops(g *guard) float64 { return g.metric("tollguard_sipfw_drops_total", `reason="greylist"`) }

// TestGreylistStopsSipvicious: svwar (REGISTER, INVITE, OPTIONS, with a
// phone's User-Agent and --force) and svcrack, each on its own address,
// sweep and guess through the guard in front of Kamailio. Neither
// retransmits, so every request is held: none reaches Kamailio, while the
// guard's detectors still saw them (svwar's sweep is banned by the
// enumeration rule).
func TestGreylistStopsSipvicious(t *testing.T) {
	t.Parallel()
	k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Users: users, Enumerable: true})
	g := startGuard(t, guardOptions{Upstream: k.Addr, DefaultRules: true, Greylist: true})
	for _, method := range []string{"REGISTER", "INVITE", "OPTIONS"} {
		attacker := testpeer.LoopbackAddr(t)
		r := testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svwar", Local: attacker, Target: g.SIP(),
			UserAgent: disguise, Args: []string{"-e", "990-1010", "-m", method, "-t", "0.05", "--force", "--maximumtime", "3"}})
		if n := k.Count("rx", "xauthip="+attacker.String()+" "); n != 0 {
			t.Errorf("svwar -m %s: %d requests reached kamailio, want 0\n%s", method, n, r.Output)
		}
	}
	cracker := testpeer.LoopbackAddr(t)
	dict := testpeer.WriteDictionary(t, "123456", "password", "1001", "000000", "qwerty", "letmein", "111111", users["1001"])
	r := testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svcrack", Local: cracker, Target: g.SIP(),
		UserAgent: disguise, Args: []string{"-u", "1001", "-d", dict, "--maximumtime", "3"}})
	if n := k.Count("rx", "xauthip="+cracker.String()+" "); n != 0 {
		t.Errorf("svcrack: %d requests reached kamailio, want 0\n%s", n, r.Output)
	}
	if n := k.Count("authok", "user=1001 "); n != 0 {
		t.Errorf("svcrack logged in %d times:\n%s", n, r.Output)
	}
	if n := greyDrops(g); n < 4 {
		t.Errorf("the guard held %v requests, want every tool's", n)
	}
}

// TestGreylistPhones: a sipp phone (retransmitting over UDP, as shipped)
// and a sim phone (sipgo's client transactions), each on its own new
// address, register and call through the guard with greylisting on. Each
// address's first REGISTER is held once and passes at its
// retransmission; nothing after it is held.
func TestGreylistPhones(t *testing.T) {
	t.Parallel()
	k, trunk := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr, DefaultRules: true, Greylist: true})

	phone := testpeer.LoopbackAddr(t)
	start := time.Now()
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(),
		User: "1001", Password: users["1001"], Timeout: 10 * time.Second})
	first := time.Since(start)
	if n := greyDrops(g); n != 1 {
		t.Fatalf("after the first REGISTER the guard held %v requests, want 1", n)
	}
	start = time.Now()
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(),
		User: "1001", Password: users["1001"], Timeout: 10 * time.Second})
	t.Logf("sipp REGISTER from a new address took %v (held until T1), from the same address again %v", first, time.Since(start))
	uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk})
	call := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phone, Remote: g.SIP(),
		User: "1001", Password: users["1001"], Vars: map[string]string{"callee": "90055501", "hold": "100"}})
	if srv := finish(uas, call); call.ExitCode != 0 || call.Successful != 1 || srv.Successful != 1 {
		t.Fatalf("call through the guard failed: %s\ntrunk: %s", call.Summary(), srv.Summary())
	}
	if n := greyDrops(g); n != 1 {
		t.Fatalf("after the second REGISTER and a call the guard held %v requests, want still 1", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sp := sim.NewPhone(sim.PhoneConfig{Account: "1002", Password: users["1002"], Target: g.SIP(), Source: testpeer.LoopbackAddr(t)})
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sp.Register(ctx); err != nil {
		t.Fatalf("sim phone REGISTER through the guard: %v", err)
	}
	if n := greyDrops(g); n != 2 {
		t.Fatalf("after the sim phone's REGISTER the guard held %v requests, want 2", n)
	}
	if err := sp.Register(ctx); err != nil {
		t.Fatalf("sim phone's second REGISTER: %v", err)
	}
	if n := greyDrops(g); n != 2 {
		t.Fatalf("after the sim phone's second REGISTER the guard held %v requests, want still 2", n)
	}
	if rep := sp.Report(); rep.Registered != 2 {
		t.Fatalf("sim phone report: %+v", rep)
	}
}
