package integration

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testpeer"
)

// The tests of this file run the guard with the shipped defaults
// (guardOptions.DefaultRules): what an operator who changed nothing gets.

// TestSvwarAcrossMethods (issue #7): svwar sweeps 101 extensions, the real
// accounts 1001-1004 among them, with REGISTER, INVITE and OPTIONS at about
// 20 requests/s, a phone's User-Agent and --force (it would otherwise give
// up when the PBX challenges or refuses its first probe). At most 10 of its
// requests reach Kamailio, it finds no account, and the sweeper is banned.
//
// The sweep starts at 990, so the first real account is its 13th request
// (svwar first sends one to a random extension). An account among a sweep's
// first few requests cannot be hidden from a PBX that answers unknown
// accounts differently from known ones, as this Kamailio does (404 to a
// REGISTER for an unknown account); FreeSWITCH challenges every REGISTER
// alike, which gives svwar nothing to compare. Kamailio runs Enumerable
// here: it answers INVITE and OPTIONS for unknown accounts 404 too, so
// every method has something to find.
func TestSvwarAcrossMethods(t *testing.T) {
	t.Parallel()
	// svwar prints one table row per extension it believes exists.
	found := regexp.MustCompile(`(?m)^\|\s*(100[1-4])\s*\|`)
	for _, method := range []string{"REGISTER", "INVITE", "OPTIONS"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Users: users, Enumerable: true})
			g := startGuard(t, guardOptions{Upstream: k.Addr, DefaultRules: true})
			attacker := testpeer.LoopbackAddr(t)
			r := testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svwar", Local: attacker, Target: g.SIP(),
				UserAgent: disguise, Args: []string{"-e", "990-1090", "-m", method, "-t", "0.05", "--force", "--maximumtime", "5"}})
			n := k.Count("rx method="+method, "xauthip="+attacker.String()+" ")
			t.Logf("svwar -m %s: %d requests reached kamailio", method, n)
			if n == 0 {
				t.Errorf("no request reached kamailio: the sweep was not exercised\n%s", r.Output)
			}
			if n > 10 {
				t.Errorf("%d svwar %s requests reached kamailio, want at most 10", n, method)
			}
			if m := found.FindAllStringSubmatch(r.Output, -1); len(m) > 0 {
				t.Errorf("svwar -m %s found accounts %v:\n%s", method, m, r.Output)
			}
			if b := g.waitBanned(attacker, 3*time.Second); len(b) == 0 {
				t.Errorf("%s is not banned; bans: %+v\nsvwar:\n%s", attacker, g.bans(), r.Output)
			} else {
				t.Logf("bans of %s: %+v", attacker, b)
			}
		})
	}
}

// TestSprayKeepsPhonesWorking (issue #7): 40 addresses guess 1001's
// password twice each while 1001's phone keeps its usual address. At most
// 20 guesses reach Kamailio; the phone registers from its usual address
// during the attack and after a restart, and from a new address with the
// right password at its first try.
func TestSprayKeepsPhonesWorking(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr, DefaultRules: true})
	phone := testpeer.LoopbackAddr(t)
	register := func(from netip.Addr) {
		t.Helper()
		testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: from, Remote: g.SIP(),
			User: "1001", Password: users["1001"], Timeout: 5 * time.Second})
	}
	register(phone)

	sprayers := make([]netip.Addr, 40)
	for i := range sprayers {
		sprayers[i] = testpeer.LoopbackAddr(t)
	}
	var wg sync.WaitGroup
	work := make(chan netip.Addr)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: a, Remote: g.SIP(),
					User: "1001", Password: "guess-" + a.String(), Calls: 2, Timeout: 4 * time.Second,
					Vars: map[string]string{"final": "403"}})
			}
		}()
	}
	for i, a := range sprayers {
		work <- a
		if i%10 == 9 {
			register(phone) // the phone re-registers throughout the attack
		}
	}
	close(work)
	wg.Wait()

	fails := k.Count("authfail", "user=1001 ")
	t.Logf("wrong passwords for 1001 that reached kamailio: %d of 80", fails)
	if fails > 20 {
		t.Errorf("%d guesses reached kamailio, want at most 20", fails)
	}
	if fails == 0 {
		t.Errorf("no guess reached kamailio: the spray was not exercised")
	}
	register(phone)
	g.restart()
	register(phone)
	register(testpeer.LoopbackAddr(t))
	if n := k.Count("authok", "user=1001 "); n < 5 {
		t.Errorf("kamailio saw %d successful logins of 1001, want the phone's 5", n)
	}
}

// TestUnauthenticatedInternationalCalls (issue #7): INVITEs without
// credentials to international numbers from a source that never
// authenticated are toll-fraud probes: the source is banned after 3, so
// few of its 30 reach Kamailio, while a registered phone calls the trunk
// as usual.
func TestUnauthenticatedInternationalCalls(t *testing.T) {
	t.Parallel()
	k, trunk := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr, DefaultRules: true})
	phone := testpeer.LoopbackAddr(t)
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(),
		User: "1002", Password: users["1002"]})

	attacker := testpeer.LoopbackAddr(t)
	answered := 0
	for i := range 30 {
		code, err := testpeer.Send(attacker, g.SIP(), testpeer.Request{Method: "INVITE", User: fmt.Sprintf("0088216%07d", i),
			From: "100", UserAgent: disguise}, 400*time.Millisecond)
		if err == nil {
			answered++
			t.Logf("INVITE %d: %d", i, code)
		}
	}
	n := k.Count("rx method=INVITE", "xauthip="+attacker.String()+" ")
	t.Logf("unauthenticated international INVITEs that reached kamailio: %d of 30 (%d answered)", n, answered)
	if n == 0 || n > 3 {
		t.Errorf("%d INVITEs reached kamailio, want 1..3", n)
	}
	if b := g.waitBanned(attacker, 3*time.Second); len(b) == 0 {
		t.Errorf("%s is not banned; bans: %+v", attacker, g.bans())
	} else if b[0].Rule != "probe" {
		t.Errorf("%s banned by %q, want probe: %+v", attacker, b[0].Rule, b)
	}

	uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk})
	call := testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phone, Remote: g.SIP(),
		User: "1002", Password: users["1002"], Vars: map[string]string{"callee": "90055501", "hold": "100"}})
	if srv := finish(uas, call); srv.Successful != 1 {
		t.Errorf("the registered phone's call did not reach the trunk: %s", srv.Summary())
	}
	if b := g.bansOf(phone); len(b) != 0 {
		t.Errorf("the registered phone %s is banned: %+v", phone, b)
	}
}

// TestForgedDatagramsCannotAimBans (issue #7): one UDP datagram forged with
// a victim's source address — a scanner's User-Agent, or a honeypot
// account — is dropped before Kamailio sees it, yet the victim is not
// banned for long, not written to the fail2ban log, and registers at once.
func TestForgedDatagramsCannotAimBans(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, user, ua string
	}{
		{"scanner user agent", "OPTIONS", "", "friendly-scanner"},
		{"honeypot account", "REGISTER", "9999", "Yealink SIP-T46S 66.85.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, _ := pbx(t)
			f2b := filepath.Join(t.TempDir(), "fail2ban.log")
			g := startGuard(t, guardOptions{Upstream: k.Addr, DefaultRules: true, Fail2banFile: f2b,
				Extra: "honeypot: {accounts: [\"9999\"]}\n"})
			victim := testpeer.LoopbackAddr(t)
			testpeer.Forge(t, netip.AddrPortFrom(victim, 5060), g.SIP(), forgedRequest(tc.method, tc.user, tc.ua, victim, g.SIP()))
			time.Sleep(300 * time.Millisecond)

			if n := k.Count("rx method="+tc.method, "xauthip="+victim.String()+" "); n != 0 {
				t.Errorf("the forged %s reached kamailio %d times, want 0", tc.method, n)
			}
			for _, b := range g.bansOf(victim) {
				t.Errorf("victim %s banned by one forged datagram: %+v", victim, b)
			}
			if data, err := os.ReadFile(f2b); err == nil && strings.Contains(string(data), victim.String()) {
				t.Errorf("the fail2ban log names the victim:\n%s", data)
			}
			testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: victim, Remote: g.SIP(),
				User: "1003", Password: users["1003"], Timeout: 5 * time.Second})
		})
	}
}

// forgedRequest is a request as a scanner sends it, claiming to come from
// victim:5060.
func forgedRequest(method, user, ua string, victim netip.Addr, to netip.AddrPort) []byte {
	ruri := "sip:" + to.String()
	if user != "" {
		ruri = "sip:" + user + "@" + to.String()
	}
	from := victim.String() + ":5060"
	return []byte(method + " " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + from + ";branch=z9hG4bK-forged-1;rport\r\n" +
		"From: <sip:" + user + "@" + from + ">;tag=forged1\r\n" +
		"To: <" + ruri + ">\r\n" +
		"Call-ID: forged-1@" + from + "\r\n" +
		"CSeq: 1 " + method + "\r\n" +
		"Contact: <sip:" + user + "@" + from + ">\r\n" +
		"Max-Forwards: 70\r\nUser-Agent: " + ua + "\r\nContent-Length: 0\r\n\r\n")
}
