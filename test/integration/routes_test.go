package integration

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testpeer"
)

// TestRoutesPerProfile: one guard in front of two PBXs, as in front of
// FreeSWITCH's internal and external profiles: phones on port 5060 reach
// the first Kamailio only, the trunk on port 5080 the second only. The
// trunk's address is refused on the phones' port and a phone's on the
// trunks' port, before the PBX sees a byte; the PBX of the phones' route
// still reaches a phone registered through the guard.
func TestRoutesPerProfile(t *testing.T) {
	t.Parallel()
	kInt, intTrunk := pbx(t)
	kExt, extTrunk := pbx(t)
	addr := testpeer.LoopbackAddr(t)
	carrier := testpeer.LoopbackAddr(t)
	g := startGuard(t, guardOptions{Addr: addr, Upstream: kInt.Addr, SIPExtra: fmt.Sprintf(
		"  deny_sources: [%q]\n"+
			"  routes:\n"+
			"    - name: external\n"+
			"      listen: [\"udp://%s:5080\", \"tcp://%s:5080\"]\n"+
			"      upstream: \"udp://%s\"\n"+
			"      allow_sources: [%q]\n",
		carrier, addr, addr, kExt.Addr, carrier)})
	ext := netip.AddrPortFrom(addr, 5080)
	phone := testpeer.LoopbackAddr(t)

	call := func(t *testing.T, k *testpeer.Kamailio, uasAddr, from netip.Addr, to netip.AddrPort, transport, user string) {
		t.Helper()
		uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: uasAddr})
		uac := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: from, Remote: to, Transport: transport,
			User: user, Password: users[user], Vars: map[string]string{"callee": "90055501"}})
		srv := finish(uas, uac)
		if uac.ExitCode != 0 || uac.Successful != 1 || srv.ExitCode != 0 || srv.Successful != 1 {
			t.Fatalf("caller %s via %s: %s\n\ntrunk UAS behind %s: %s", user, to, uac.Summary(), k.Addr, srv.Summary())
		}
	}

	for _, tr := range []string{"udp", "tcp"} {
		t.Run("phone registers and calls over "+tr+" to the internal PBX", func(t *testing.T) {
			user := map[string]string{"udp": "1001", "tcp": "1002"}[tr]
			testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(),
				Transport: tr, User: user, Password: users[user]})
			requireRegisteredVia(t, kInt, user, g)
			call(t, kInt, intTrunk, phone, g.SIP(), tr, user)
			if n := kInt.Count("trunk call", "src="+addr.String()+" ", "from="+user+" "); n != 1 {
				t.Errorf("internal PBX routed %d calls from %s via the guard, want 1", n, user)
			}
		})
		t.Run("carrier calls over "+tr+" to the external PBX", func(t *testing.T) {
			call(t, kExt, extTrunk, carrier, ext, tr, "1003")
			if n := kExt.Count("rx method=INVITE", "xauthip="+carrier.String()+" "); n < 1 {
				t.Errorf("external PBX saw %d INVITEs from the carrier through the guard", n)
			}
		})
	}
	t.Run("carrier refused on the phones' port", func(t *testing.T) {
		before := g.metric("tollguard_sipfw_drops_total", `reason="route"`)
		res := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: carrier, Remote: g.SIP(),
			User: "1004", Password: users["1004"], Timeout: 2 * time.Second})
		if res.Successful != 0 {
			t.Fatalf("the carrier registered on the phones' port: %s", res.Summary())
		}
		g.waitMetric("tollguard_sipfw_drops_total", `reason="route"`, before+1, 3*time.Second)
		if n := kInt.Count("rx method=", "xauthip="+carrier.String()+" "); n != 0 {
			t.Errorf("internal PBX saw %d requests from the carrier's address", n)
		}
	})
	t.Run("phone refused on the trunks' port", func(t *testing.T) {
		before := g.metric("tollguard_sipfw_drops_total", `reason="route"`)
		res := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: ext,
			User: "1004", Password: users["1004"], Timeout: 2 * time.Second})
		if res.Successful != 0 {
			t.Fatalf("a phone registered on the trunks' port: %s", res.Summary())
		}
		g.waitMetric("tollguard_sipfw_drops_total", `reason="route"`, before+1, 3*time.Second)
		if n := kExt.Count("rx method=", "xauthip="+phone.String()+" "); n != 0 {
			t.Errorf("external PBX saw %d requests from the phone's address", n)
		}
	})
	t.Run("internal PBX calls the phone through the guard", func(t *testing.T) {
		uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: phone,
			Vars: map[string]string{"via": testpeer.ViaPattern(addr)}})
		time.Sleep(100 * time.Millisecond) // let sipp bind before the INVITE arrives
		uac := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Remote: kInt.Addr,
			User: "1003", Password: users["1003"], Vars: map[string]string{"callee": "1001"}})
		srv := finish(uas, uac)
		if uac.ExitCode != 0 || uac.Successful != 1 || srv.ExitCode != 0 || srv.Successful != 1 {
			t.Fatalf("caller 1003 at the internal PBX: %s\n\nphone 1001 behind the guard: %s", uac.Summary(), srv.Summary())
		}
	})
	for _, route := range []string{"default", "external"} {
		if v := g.metric("tollguard_sipfw_upstream_up", `route="`+route+`"`); v != 1 {
			t.Errorf("upstream_up{route=%q} = %v, want 1", route, v)
		}
	}
}
