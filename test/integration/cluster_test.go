package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// clusterGuards starts n guard processes named a, b, c… in front of
// upstream, sharing through redisURL, each with its own loopback address,
// the test jail (3 failures in a minute ban the address), greylisting off
// (the subject is sharing what the detectors decide) and extra YAML.
func clusterGuards(t testing.TB, n int, redisURL string, upstream netip.AddrPort, extra string) []*testpeer.Guard {
	t.Helper()
	requireBinary(t)
	gs := make([]*testpeer.Guard, n)
	for i := range gs {
		addr := testpeer.LoopbackAddr(t)
		name := string(rune('a' + i))
		cfg := fmt.Sprintf("log: {level: debug}\nsip:\n  listen: [%q]\n  upstream: %q\ncluster: {redis: %q, node: %s}\n%s%s%s",
			"udp://"+netip.AddrPortFrom(addr, 5060).String(), "udp://"+upstream.String(), redisURL, name, defaultJail, greylistOff, extra)
		gs[i] = testpeer.StartGuard(t, testpeer.GuardOptions{Bin: tollguardBin, Name: name, Addr: addr, Config: cfg})
	}
	return gs
}

// waitStreams waits until every guard reads both cluster streams and has
// sent what it queued.
func waitStreams(t testing.TB, gs []*testpeer.Guard, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, g := range gs {
		for _, s := range []string{"failures", "calls"} {
			for {
				up, err := g.Metric("tollguard_cluster_stream_connected", `stream="`+s+`"`)
				if err != nil {
					t.Fatal(err)
				}
				q, _ := g.Metric("tollguard_cluster_stream_queued", `stream="`+s+`"`)
				if up == 1 && q == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("guard %s: stream %s connected=%v queued=%v after %v", g.Name, s, up, q, timeout)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// banned reports whether g holds a ban covering addr.
func banned(t *testing.T, g *testpeer.Guard, addr netip.Addr) bool {
	t.Helper()
	b, err := g.BansOf(addr)
	if err != nil {
		t.Fatal(err)
	}
	return len(b) > 0
}

// guess makes one wrong-password attempt for 1001 from src against g (a
// REGISTER, its 401 challenge, the answer with a wrong password and the
// PBX's 403), and checks the PBX refused it. svcrack cannot do it: with a
// one-word dictionary it never exits.
func guess(t *testing.T, g *testpeer.Guard, realm string, src netip.Addr, word string) {
	t.Helper()
	res, err := sim.Cracker{Attack: sim.Attack{Target: g.SIP(), Source: src, Timeout: 2 * time.Second}, Account: "1001",
		Domain: realm, UserAgent: disguise, Passwords: []string{word}}.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Answers[403] != 1 {
		t.Fatalf("guess %q on %s: %v", word, g.Name, res)
	}
}

// TestClusterThreeProcesses (issue 16): three tollguard processes share
// one redis-server in front of Kamailio.
//
//   - svcrack against a: a bans the cracker, and b refuses it within
//     100 ms of a's ban (a's decision time to b's "ban from the cluster").
//   - one wrong password on each node from one address: alone no node
//     reaches maxretry (3); together every node bans it.
//   - account 1001 may place 3 calls a minute: calls through a, b and c
//     reach the trunk, the 4th is refused whichever node it crosses.
//   - Redis killed mid-attack: b still bans a cracker alone; one guess on
//     a and one on b are queued; Redis restarted empty: b's ban reaches a
//     and c, and the queued guesses count, so one more on c bans the
//     guesser everywhere.
func TestClusterThreeProcesses(t *testing.T) {
	trunk := testpeer.LoopbackAddr(t)
	k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Users: users, TrunkPattern: "^9[0-9]+$",
		Trunk: netip.AddrPortFrom(trunk, 5060)})
	r := testpeer.StartRedis(t)
	gs := clusterGuards(t, 3, r.URL(), k.Addr, `call_policy:
  default_country: CN
  rules:
    - name: burst
      match: {accounts: ["1001"]}
      block: {calls_per_minute: 3}
`)
	a, b, c := gs[0], gs[1], gs[2]
	waitStreams(t, gs, 10*time.Second)

	t.Run("svcrack on a, refused by b", func(t *testing.T) {
		cracker := testpeer.LoopbackAddr(t)
		dict := testpeer.WriteDictionary(t, "123456", "password", "1001", "000000", "qwerty", "letmein")
		testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svcrack", Local: cracker, Target: a.SIP(), UserAgent: disguise,
			Args: []string{"-u", "1001", "-d", dict, "--maximumtime", "1"}, Timeout: 4 * time.Second})
		bans := a.WaitBanned(cracker, 3*time.Second)
		if len(bans) == 0 {
			t.Fatalf("a did not ban svcrack at %s", cracker)
		}
		at := bans[0].At
		// b bans either on a's word (the ban arrives from the cluster) or
		// by its own jail (a's failures arrive on the failure stream
		// first): whichever came first is when b started refusing.
		got := b.WaitBanned(cracker, 2*time.Second)
		if len(got) == 0 {
			t.Fatalf("b does not refuse %s banned on a", cracker)
		}
		// When b made the ban itself, its At is the time of the failure
		// that tripped it (a's, shared): b's log says when it decided.
		var refused time.Time
		for _, l := range [][]string{{`msg="ban from the cluster"`}, {"component=engine", "msg=ban"}} {
			for _, at := range b.LogTimes(append(l, "target="+cracker.String()+" ")...) {
				if refused.IsZero() || at.Before(refused) {
					refused = at
				}
			}
		}
		if refused.IsZero() {
			t.Fatalf("b logged no ban of %s", cracker)
		}
		lag := refused.Sub(at)
		t.Logf("a banned %s at %s; b refuses it %v later (%s, %s)", cracker, at.Format(time.RFC3339Nano), lag, got[0].Origin, got[0].Rule)
		if lag > 100*time.Millisecond {
			t.Errorf("b refused %s %v after a's ban, want within 100 ms", cracker, lag)
		}
		if code, err := testpeer.Probe(cracker, b.SIP(), time.Second); err == nil {
			t.Errorf("b answered the banned cracker: %d", code)
		}

		// The ban itself travels too: an operator's ban on a, which no
		// failure on b or c precedes, reaches both from cluster:a. (A
		// public address: every node refuses a loopback ban from the
		// cluster, decision/screen, so svcrack's own ban above reached b
		// through the shared failures.)
		op := netip.MustParseAddr("45.83.2.9")
		if code, err := a.Post("/api/v1/bans", map[string]string{"ip": op.String(), "for": "1h", "reason": "test"}); err != nil || code != 201 {
			t.Fatalf("operator ban on a: %d %v", code, err)
		}
		for _, g := range []*testpeer.Guard{b, c} {
			got := g.WaitBanned(op, 2*time.Second)
			if len(got) == 0 || got[0].Origin != "cluster:a" {
				t.Fatalf("%s's bans of %s: %+v, want one from cluster:a", g.Name, op, got)
			}
			recv := g.LogTimes(`msg="ban from the cluster"`, "target="+op.String()+" ")
			if len(recv) == 0 {
				t.Fatalf("%s logged no ban from the cluster for %s", g.Name, op)
			}
			lag := recv[0].Sub(got[0].At)
			t.Logf("operator ban on a reached %s %v after it was made", g.Name, lag)
			if lag > 100*time.Millisecond {
				t.Errorf("%s applied a's ban %v after it was made, want within 100 ms", g.Name, lag)
			}
		}
	})

	t.Run("a guess spread over the nodes", func(t *testing.T) {
		guesser := testpeer.LoopbackAddr(t)
		guess(t, a, k.Realm, guesser, "wrong1")
		guess(t, b, k.Realm, guesser, "wrong2")
		time.Sleep(200 * time.Millisecond)
		for _, g := range gs {
			if banned(t, g, guesser) {
				t.Fatalf("%s banned %s after 2 failures (maxretry 3)", g.Name, guesser)
			}
		}
		guess(t, c, k.Realm, guesser, "wrong3")
		for _, g := range gs {
			if len(g.WaitBanned(guesser, 2*time.Second)) == 0 {
				t.Errorf("%s did not ban %s after one failure on each node", g.Name, guesser)
			}
		}
	})

	t.Run("calls_per_minute across nodes", func(t *testing.T) {
		phone := testpeer.LoopbackAddr(t)
		uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk, Calls: 10, Timeout: 40 * time.Second})
		defer uas.Stop()
		call := func(g *testpeer.Guard, n int) testpeer.SippResult {
			// A port per call: the next sipp never waits for the last
			// one's socket.
			return testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phone, LocalPort: 5070 + n, Remote: g.SIP(),
				User: "1001", Password: users["1001"], Vars: map[string]string{"callee": fmt.Sprint("9005551", n)}})
		}
		for i, g := range gs {
			if res := call(g, i); res.Successful != 1 {
				t.Fatalf("call %d through %s: %s", i+1, g.Name, res.Summary())
			}
		}
		time.Sleep(50 * time.Millisecond)
		for i, g := range []*testpeer.Guard{b, c} {
			res := call(g, 5+i)
			if res.Successful != 0 || !strings.Contains(res.Messages, policyReason("burst")) {
				t.Errorf("call %d within the minute through %s: want refused by rule burst: %s", 4+i, g.Name, res.Summary())
			}
		}
		if n := k.Count("trunk call", "from=1001 "); n != 3 {
			t.Errorf("kamailio routed %d calls of 1001 to the trunk, want 3", n)
		}
	})

	t.Run("redis killed mid-attack", func(t *testing.T) {
		r.Stop()
		cracker := testpeer.LoopbackAddr(t)
		guesser := testpeer.LoopbackAddr(t)
		dict := testpeer.WriteDictionary(t, "123456", "password", "1001", "000000", "qwerty")
		testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svcrack", Local: cracker, Target: b.SIP(), UserAgent: disguise,
			Args: []string{"-u", "1001", "-d", dict, "--maximumtime", "1"}, Timeout: 4 * time.Second})
		if len(b.WaitBanned(cracker, 3*time.Second)) == 0 {
			t.Fatalf("b did not ban %s alone with Redis down", cracker)
		}
		outage := netip.MustParseAddr("45.83.2.10")
		if code, err := b.Post("/api/v1/bans", map[string]string{"ip": outage.String(), "for": "1h", "reason": "test"}); err != nil || code != 201 {
			t.Fatalf("operator ban on b with Redis down: %d %v", code, err)
		}
		guess(t, a, k.Realm, guesser, "down1")
		guess(t, b, k.Realm, guesser, "down2")
		for _, g := range []*testpeer.Guard{a, c} {
			if banned(t, g, cracker) {
				t.Fatalf("%s learnt b's ban with Redis down", g.Name)
			}
		}
		for _, g := range gs {
			for _, m := range [][2]string{{"tollguard_cluster_connected", ""}, {"tollguard_cluster_stream_connected", `stream="failures"`},
				{"tollguard_cluster_stream_connected", `stream="calls"`}} {
				if v, err := g.Metric(m[0], m[1]); err != nil || v != 0 {
					t.Errorf("%s: %s{%s} = %v (%v) with Redis down, want 0", g.Name, m[0], m[1], v, err)
				}
			}
		}
		if q, _ := a.Metric("tollguard_cluster_stream_queued", `stream="failures"`); q < 1 {
			t.Errorf("a queued %v failures with Redis down, want at least 1", q)
		}
		r.Start()
		waitStreams(t, gs, 15*time.Second)
		for _, g := range []*testpeer.Guard{a, c} {
			if len(g.WaitBanned(cracker, 5*time.Second)) == 0 {
				t.Errorf("%s does not refuse the cracker b banned while Redis was down", g.Name)
			}
			if got := g.WaitBanned(outage, 5*time.Second); len(got) == 0 || got[0].Origin != "cluster:b" {
				t.Errorf("%s did not learn b's operator ban made while Redis was down: %+v", g.Name, got)
			}
		}
		time.Sleep(100 * time.Millisecond)
		if banned(t, c, guesser) {
			t.Fatalf("c banned %s after the two queued failures alone", guesser)
		}
		guess(t, c, k.Realm, guesser, "after")
		var missing []string
		for _, g := range gs {
			if len(g.WaitBanned(guesser, 3*time.Second)) == 0 {
				missing = append(missing, g.Name)
			}
		}
		if len(missing) > 0 {
			t.Errorf("not banned on %v: the failures queued during the outage did not count", missing)
		}
	})
}
