package integration

import (
	"context"
	"crypto/tls"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testpeer"
)

var users = map[string]string{
	"1001": "secret1001", "1002": "secret1002", "1003": "secret1003", "1004": "secret1004",
}

// pbx starts Kamailio with the test users, routing 9xxx numbers to a trunk
// UAS on its own address, and returns both.
func pbx(t *testing.T) (*testpeer.Kamailio, netip.Addr) {
	t.Helper()
	trunk := testpeer.LoopbackAddr(t)
	k := testpeer.StartKamailio(t, testpeer.KamailioOptions{
		Users:        users,
		TrunkPattern: "^9[0-9]+$",
		Trunk:        netip.AddrPortFrom(trunk, 5060),
	})
	return k, trunk
}

// finish waits for a one-call UAS to exit on its own when the caller
// succeeded (the UAS records its call after answering BYE), and stops it
// otherwise.
func finish(uas *testpeer.SippRun, caller testpeer.SippResult) testpeer.SippResult {
	if caller.ExitCode == 0 && caller.Successful > 0 {
		return uas.Wait()
	}
	return uas.Stop()
}

// requireRegisteredVia checks that Kamailio saved a registration of user
// that arrived from the guard and carries the guard in its Path (RFC 3327).
func requireRegisteredVia(t *testing.T, k *testpeer.Kamailio, user string, g *guard) {
	t.Helper()
	k.WaitCount(3*time.Second, 1, "registered", "user="+user+" ")
	ip := regexp.QuoteMeta(g.Addr.String())
	want := regexp.MustCompile(`user=` + user + ` src=` + ip + ` path=\S*` + ip + `\b`)
	for _, l := range k.Lines("registered") {
		if want.MatchString(l) {
			return
		}
	}
	t.Fatalf("kamailio has no registration of %s from the guard %s with the guard in Path; registrations:\n%q", user, g.Addr, k.Lines("registered"))
}

// TestRegisterThroughGuard: phones register with digest auth through the
// guard over UDP and TCP (sipp) and TLS (sipgo; Debian's sipp has no TLS).
func TestRegisterThroughGuard(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	addr := testpeer.LoopbackAddr(t)
	pki := testpeer.NewPKI(t, addr)
	g := startGuard(t, guardOptions{Addr: addr, Upstream: k.Addr, PKI: pki})
	for _, tc := range []struct {
		name, transport, user string
	}{
		{"udp", "udp", "1001"},
		{"tcp", "tcp", "1002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Remote: g.SIP(),
				Transport: tc.transport, User: tc.user, Password: users[tc.user]})
			requireRegisteredVia(t, k, tc.user, g)
		})
	}
	t.Run("tls", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code, err := testpeer.RegisterTLS(ctx, testpeer.TLSPhoneOptions{Local: testpeer.LoopbackAddr(t), Server: g.TLS(),
			User: "1003", Password: users["1003"], Roots: pki.Roots})
		if err != nil || code != 200 {
			t.Fatalf("REGISTER over TLS = %d, %v; want 200", code, err)
		}
		requireRegisteredVia(t, k, "1003", g)
	})
}

// TestMutualTLS: with sip.tls.client_ca set, only a client holding a
// certificate from that CA gets through the handshake.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	addr := testpeer.LoopbackAddr(t)
	pki := testpeer.NewPKI(t, addr)
	g := startGuard(t, guardOptions{Addr: addr, Upstream: k.Addr, PKI: pki, MutualTLS: true})
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		wantOK bool
	}{
		{"no certificate", nil, false},
		{"certificate from another CA", &pki.Stranger, false},
		{"certificate from client_ca", &pki.Client, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			code, err := testpeer.RegisterTLS(ctx, testpeer.TLSPhoneOptions{Local: testpeer.LoopbackAddr(t), Server: g.TLS(),
				User: "1004", Password: users["1004"], Roots: pki.Roots, Certificate: tc.cert})
			switch {
			case tc.wantOK && (err != nil || code != 200):
				t.Fatalf("REGISTER over mutual TLS = %d, %v; want 200", code, err)
			case !tc.wantOK && err == nil:
				t.Fatalf("REGISTER over mutual TLS answered %d; want the handshake refused", code)
			}
		})
	}
	if n := k.WaitCount(2*time.Second, 1, "registered", "user=1004 "); n != 1 {
		t.Errorf("kamailio saved %d registrations of 1004, want exactly 1 (the client with a valid certificate)", n)
	}
}

// TestCallsThroughGuard: a phone registered through the guard calls a
// number behind the PBX (INVITE, 407, INVITE with credentials, 200, ACK,
// BYE), and cancels a second call while it rings.
func TestCallsThroughGuard(t *testing.T) {
	t.Parallel()
	k, trunk := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr})
	phone := testpeer.LoopbackAddr(t)
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(),
		User: "1001", Password: users["1001"]})

	for _, tc := range []struct {
		name, transport, uas, uac string
	}{
		{"call udp", "udp", testpeer.ScenarioUAS, testpeer.ScenarioCall},
		{"call tcp", "tcp", testpeer.ScenarioUAS, testpeer.ScenarioCall},
		{"cancel ringing call", "udp", testpeer.ScenarioUASRing, testpeer.ScenarioCancel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: tc.uas, Local: trunk})
			uac := testpeer.Sipp(t, testpeer.SippOptions{Scenario: tc.uac, Local: phone, Remote: g.SIP(), Transport: tc.transport,
				User: "1001", Password: users["1001"], Vars: map[string]string{"callee": "90055501"}})
			srv := finish(uas, uac)
			if uac.ExitCode != 0 || uac.Successful != 1 || srv.ExitCode != 0 || srv.Successful != 1 {
				t.Fatalf("phone 1001: %s\n\ntrunk UAS behind the PBX: %s", uac.Summary(), srv.Summary())
			}
		})
	}
	if n := k.Count("trunk call", "src="+g.Addr.String()+" ", "from=1001 "); n != 3 {
		t.Errorf("kamailio routed %d calls from 1001 via the guard to the trunk, want 3", n)
	}
}

// TestCallToPhoneBehindGuard: a phone registers through the guard over
// UDP; a caller registered directly at the PBX calls it, and the INVITE must
// reach the phone through the guard (Path), not straight from Kamailio.
// (Over TCP the phone must keep its registration connection open to be
// reachable (RFC 5626 flows); sipp cannot register and then answer on one
// connection, so that case is not covered here.)
func TestCallToPhoneBehindGuard(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr})
	phone := testpeer.LoopbackAddr(t)
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(),
		User: "1002", Password: users["1002"]})
	requireRegisteredVia(t, k, "1002", g)
	uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: phone,
		Vars: map[string]string{"via": testpeer.ViaPattern(g.Addr)}})
	time.Sleep(100 * time.Millisecond) // let sipp bind before the INVITE arrives
	uac := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Remote: k.Addr,
		User: "1001", Password: users["1001"], Vars: map[string]string{"callee": "1002"}})
	srv := finish(uas, uac)
	if uac.ExitCode != 0 || uac.Successful != 1 || srv.ExitCode != 0 || srv.Successful != 1 {
		t.Fatalf("caller 1001 at the PBX: %s\n\nphone 1002 behind the guard: %s", uac.Summary(), srv.Summary())
	}
}
