package integration

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testpeer"
)

// TestWSPhones: browser phones register with digest auth over ws:// and
// wss:// (RFC 7118) through the guard to Kamailio, which saves the guard
// in their Path; a caller at the PBX then reaches each WebSocket phone
// through the guard, on the phone's own connection. A page from a foreign
// origin and a client without the "sip" subprotocol get no connection.
func TestWSPhones(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	addr := testpeer.LoopbackAddr(t)
	pki := testpeer.NewPKI(t, addr)
	wsAddr, wssAddr := netip.AddrPortFrom(addr, 5066), netip.AddrPortFrom(addr, 7443)
	g := startGuard(t, guardOptions{Addr: addr, Upstream: k.Addr, PKI: pki,
		ExtraListen: []string{"ws://" + wsAddr.String(), "wss://" + wssAddr.String()},
		SIPExtra:    "  ws_origins: [\"https://phone.example\"]\n"})

	for _, tc := range []struct {
		name   string
		secure bool
		server netip.AddrPort
		user   string
	}{
		{"ws", false, wsAddr, "1001"},
		{"wss", true, wssAddr, "1002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ph, err := testpeer.DialWSPhone(ctx, testpeer.WSPhoneOptions{Local: testpeer.LoopbackAddr(t), Server: tc.server,
				Secure: tc.secure, Roots: pki.Roots, Origin: "https://phone.example", User: tc.user, Password: users[tc.user]})
			if err != nil {
				t.Fatal(err)
			}
			defer ph.Close()
			if code, err := ph.Register(ctx); err != nil || code != 200 {
				t.Fatalf("REGISTER over %s = %d, %v; want 200", tc.name, code, err)
			}
			requireRegisteredVia(t, k, tc.user, g)

			answered := make(chan error, 1)
			var via string
			go func() {
				inv, err := ph.AnswerCall(ctx)
				if inv != nil {
					via = inv.Via().Transport
				}
				answered <- err
			}()
			uac := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Remote: k.Addr,
				User: "1003", Password: users["1003"], Vars: map[string]string{"callee": tc.user}})
			err = <-answered
			if uac.ExitCode != 0 || uac.Successful != 1 || err != nil {
				t.Fatalf("call from 1003 at the PBX to %s over %s: phone: %v\n%s", tc.user, tc.name, err, uac.Summary())
			}
			if want := strings.ToUpper(tc.name); via != want {
				t.Errorf("INVITE reached the phone with Via transport %q, want %q", via, want)
			}
		})
	}
	t.Run("foreign origin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		before := g.metric("tollguard_sipfw_drops_total", `reason="ws_origin"`)
		if _, err := testpeer.DialWSPhone(ctx, testpeer.WSPhoneOptions{Local: testpeer.LoopbackAddr(t), Server: wssAddr, Secure: true,
			Roots: pki.Roots, Origin: "https://evil.example", User: "1004"}); err == nil {
			t.Fatal("a page from https://evil.example got a WebSocket")
		}
		g.waitMetric("tollguard_sipfw_drops_total", `reason="ws_origin"`, before+1, 3*time.Second)
	})
}
