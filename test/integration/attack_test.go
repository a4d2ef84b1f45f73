package integration

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testpeer"
)

// maxRetry is defaultJail's maxretry.
const maxRetry = 3

// disguise is a phone's User-Agent given to SIPVicious, so the attack is
// caught by its behaviour rather than by its fingerprint.
const disguise = "Yealink SIP-T46S 66.85.0.5"

// legitTraffic keeps a phone on its own address registering through the
// guard and calling the trunk until the returned function is called; that
// function reports how many rounds succeeded and the first failure.
func legitTraffic(t *testing.T, g *guard, trunk netip.Addr, user string) func() (int, error) {
	t.Helper()
	phone := testpeer.LoopbackAddr(t)
	stop := make(chan struct{})
	var (
		wg     sync.WaitGroup
		rounds int
		first  error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			reg := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(),
				User: user, Password: users[user]})
			uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk})
			call := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phone, Remote: g.SIP(),
				User: user, Password: users[user], Vars: map[string]string{"callee": "90055501", "hold": "100"}})
			srv := finish(uas, call)
			switch {
			case reg.ExitCode != 0 || reg.Successful != 1:
				first = errors.New("legit REGISTER failed: " + reg.Summary())
				return
			case call.ExitCode != 0 || call.Successful != 1 || srv.Successful != 1:
				first = errors.New("legit call failed: " + call.Summary() + "\n\ntrunk: " + srv.Summary())
				return
			}
			rounds++
		}
	}()
	return func() (int, error) {
		close(stop)
		wg.Wait()
		return rounds, first
	}
}

// requireDropped checks that the guard answers nothing to from any more.
func requireDropped(t *testing.T, g *guard, from netip.Addr) {
	t.Helper()
	if code, err := testpeer.Probe(from, g.SIP(), time.Second); !errors.Is(err, testpeer.ErrNoAnswer) {
		t.Errorf("OPTIONS from banned %s: got %d, %v; want no answer", from, code, err)
	}
}

// TestSvcrackJailed (issue #3): svcrack brute-forces an account through the
// guard with Kamailio behind it. At most maxretry wrong passwords reach
// Kamailio, the password is never found, and a phone on another address
// registers and calls throughout. Disguised, the cracker is banned and gets
// no answers; with SIPVicious's own User-Agent every datagram is dropped at
// once (none reaches Kamailio) without banning the address, since one UDP
// datagram proves nothing about its source (issue #7).
func TestSvcrackJailed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, userAgent string
	}{
		{"disguised user agent", disguise},
		{"friendly-scanner", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, trunk := pbx(t)
			g := startGuard(t, guardOptions{Upstream: k.Addr})
			stopLegit := legitTraffic(t, g, trunk, "1002")
			attacker := testpeer.LoopbackAddr(t)
			dict := testpeer.WriteDictionary(t, "123456", "password", "1001", "000000", "qwerty", "letmein", "111111", "secret1001")
			r := testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svcrack", Local: attacker, Target: g.SIP(),
				UserAgent: tc.userAgent, Args: []string{"-u", "1001", "-d", dict, "--maximumtime", "3"}})
			rounds, legitErr := stopLegit()

			fails := k.Count("authfail", "user=1001 ")
			t.Logf("wrong passwords for 1001 that reached kamailio: %d; legit rounds during the attack: %d", fails, rounds)
			if fails > maxRetry {
				t.Errorf("kamailio saw %d failed logins for 1001, want at most maxretry=%d", fails, maxRetry)
			}
			if tc.userAgent != "" && fails == 0 {
				t.Errorf("no attempt reached kamailio: the disguised attack was not exercised\n%s", r.Output)
			}
			if tc.userAgent == "" && k.Count("rx method=REGISTER", "xauthip="+attacker.String()+" ") != 0 {
				t.Errorf("a REGISTER with SIPVicious's User-Agent reached kamailio")
			}
			if n := k.Count("authok", "user=1001 "); n > 0 || strings.Contains(r.Output, "secret1001") {
				t.Errorf("svcrack found the password (%d successful logins):\n%s", n, r.Output)
			}
			if tc.userAgent != "" {
				if b := g.waitBanned(attacker, 3*time.Second); len(b) == 0 {
					t.Errorf("%s is not banned; bans: %+v", attacker, g.bans())
				} else {
					t.Logf("bans of %s: %+v", attacker, b)
				}
				requireDropped(t, g, attacker)
			}
			if legitErr != nil {
				t.Errorf("legitimate phone on another address: %v", legitErr)
			}
			if rounds == 0 {
				t.Errorf("no legitimate register+call round completed during the attack")
			}
		})
	}
}

// TestSvwarStopped (issue #3): svwar enumerates extensions through the
// guard; it is banned after a handful of unknown accounts.
func TestSvwarStopped(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr})
	attacker := testpeer.LoopbackAddr(t)
	r := testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svwar", Local: attacker, Target: g.SIP(),
		UserAgent: disguise, Args: []string{"-e", "2000-2060", "-m", "REGISTER", "--maximumtime", "3"}})
	// Each unknown account is one failure; enumeration.max_accounts is 5.
	n := k.Count("notfound")
	t.Logf("unknown-account REGISTERs that reached kamailio: %d", n)
	if n == 0 || n > 5 {
		t.Errorf("kamailio answered %d unknown-account REGISTERs, want 1..5\n%s", n, r.Output)
	}
	if b := g.waitBanned(attacker, 3*time.Second); len(b) == 0 {
		t.Errorf("%s is not banned; bans: %+v", attacker, g.bans())
	}
	requireDropped(t, g, attacker)
}

// TestSvmapDropped (issue #3, #7): svmap's OPTIONS carries SIPVicious's
// fingerprint; the guard drops it without forwarding or answering. One
// UDP datagram proves nothing about its source, so the address is not
// banned: each of the scanner's datagrams carries the mark and is dropped.
func TestSvmapDropped(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr})
	attacker := testpeer.LoopbackAddr(t)
	r := testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svmap", Local: attacker, Target: g.SIP()})
	if strings.Contains(r.Output, g.SIP().String()) {
		t.Errorf("svmap found the guard:\n%s", r.Output)
	}
	if n := k.Count("rx method=OPTIONS", "ua=friendly-scanner"); n != 0 {
		t.Errorf("%d svmap OPTIONS reached kamailio, want 0", n)
	}
	if b := g.bansOf(attacker); len(b) != 0 {
		t.Errorf("%s banned on one datagram's evidence: %+v", attacker, b)
	}
}

// TestBanSurvivesRestartAndUnban (issue #3): a ban earned by wrong
// passwords is still enforced after tollguard restarts, and `tollguard
// unban` lets the address back in at once.
func TestBanSurvivesRestartAndUnban(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr})
	attacker := testpeer.LoopbackAddr(t)
	if code, err := testpeer.Probe(attacker, g.SIP(), 2*time.Second); err != nil || code != 200 {
		t.Fatalf("OPTIONS before any failure = %d, %v; want 200", code, err)
	}
	r := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: attacker, Remote: g.SIP(),
		User: "1001", Password: "wrong-password", Calls: maxRetry, Vars: map[string]string{"final": "403"}})
	if b := g.waitBanned(attacker, 3*time.Second); len(b) == 0 {
		t.Fatalf("%s not banned after %d wrong passwords; bans: %+v\n%s", attacker, maxRetry, g.bans(), r.Summary())
	}
	requireDropped(t, g, attacker)

	g.restart()
	if b := g.bansOf(attacker); len(b) == 0 {
		t.Errorf("ban of %s lost in the restart; bans: %+v", attacker, g.bans())
	}
	requireDropped(t, g, attacker)

	if out, err := g.cli("unban", attacker.String()); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("tollguard unban: %s", strings.TrimSpace(out))
	}
	if b := g.bansOf(attacker); len(b) != 0 {
		t.Errorf("bans of %s after unban: %+v", attacker, b)
	}
	if code, err := testpeer.Probe(attacker, g.SIP(), 2*time.Second); err != nil || code != 200 {
		t.Errorf("OPTIONS right after unban = %d, %v; want 200", code, err)
	}
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: attacker, Remote: g.SIP(),
		User: "1001", Password: users["1001"]})
}
