package testpeer

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var users = map[string]string{"1001": "secret1001", "1002": "secret1002", "1003": "secret1003"}

func TestLoopbackAddrDistinct(t *testing.T) {
	seen := map[netip.Addr]bool{}
	for range 600 {
		a := LoopbackAddr(t)
		if !a.IsLoopback() || a == netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("LoopbackAddr = %s, want a loopback address other than 127.0.0.1", a)
		}
		if seen[a] {
			t.Fatalf("LoopbackAddr returned %s twice", a)
		}
		seen[a] = true
	}
}

func TestParseSippStats(t *testing.T) {
	for _, tc := range []struct {
		name       string
		csv        string
		ok, failed int
	}{
		{"empty", "", 0, 0},
		{"header only", "StartTime;SuccessfulCall(C);FailedCall(C)\n", 0, 0},
		{"last line wins", "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(C)\nx;0;0;0\nx;2;3;1\n", 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, failed := parseSippStats(tc.csv)
			if ok != tc.ok || failed != tc.failed {
				t.Errorf("parseSippStats = %d, %d; want %d, %d", ok, failed, tc.ok, tc.failed)
			}
		})
	}
}

// TestKamailioDirect proves the helpers against Kamailio with no guard in
// between: registration over UDP and TCP, wrong passwords, calls to the
// trunk and to a registered phone, and a cancelled call.
func TestKamailioDirect(t *testing.T) {
	trunkAddr := LoopbackAddr(t)
	k := StartKamailio(t, KamailioOptions{
		Users:        users,
		TrunkPattern: "^9[0-9]+$",
		Trunk:        netip.AddrPortFrom(trunkAddr, 5060),
	})

	t.Run("register udp", func(t *testing.T) {
		SippOK(t, SippOptions{Scenario: ScenarioRegister, Remote: k.Addr, User: "1001", Password: "secret1001"})
		if n := k.WaitCount(2*time.Second, 1, "registered", "user=1001"); n != 1 {
			t.Errorf("kamailio logged %d registrations of 1001, want 1", n)
		}
	})
	t.Run("register tcp", func(t *testing.T) {
		SippOK(t, SippOptions{Scenario: ScenarioRegister, Remote: k.Addr, Transport: "tcp", User: "1003", Password: "secret1003"})
		if n := k.WaitCount(2*time.Second, 1, "registered", "user=1003"); n != 1 {
			t.Errorf("kamailio logged %d registrations of 1003, want 1", n)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		before := k.Count("authfail")
		SippOK(t, SippOptions{Scenario: ScenarioRegister, Vars: map[string]string{"final": "403"},
			Remote: k.Addr, User: "1001", Password: "wrong"})
		if n := k.WaitCount(2*time.Second, before+1, "authfail") - before; n != 1 {
			t.Errorf("kamailio logged %d auth failures, want 1", n)
		}
	})
	t.Run("call to trunk", func(t *testing.T) {
		uas := StartSipp(t, SippOptions{Scenario: ScenarioUAS, Local: trunkAddr})
		SippOK(t, SippOptions{Scenario: ScenarioCall, Vars: map[string]string{"callee": "90012345"},
			Remote: k.Addr, User: "1001", Password: "secret1001"})
		if r := uas.Wait(); r.ExitCode != 0 || r.Successful != 1 {
			t.Fatalf("trunk UAS: %s", r.Summary())
		}
	})
	t.Run("cancel ringing call", func(t *testing.T) {
		uas := StartSipp(t, SippOptions{Scenario: ScenarioUASRing, Local: trunkAddr})
		SippOK(t, SippOptions{Scenario: ScenarioCancel, Vars: map[string]string{"callee": "90012345"},
			Remote: k.Addr, User: "1001", Password: "secret1001"})
		if r := uas.Wait(); r.ExitCode != 0 || r.Successful != 1 {
			t.Fatalf("trunk UAS: %s", r.Summary())
		}
	})
	t.Run("call to registered phone", func(t *testing.T) {
		phone := LoopbackAddr(t)
		SippOK(t, SippOptions{Scenario: ScenarioRegister, Local: phone, Remote: k.Addr, User: "1002", Password: "secret1002"})
		// The INVITE must come straight from Kamailio: no Path was given.
		uas := StartSipp(t, SippOptions{Scenario: ScenarioUAS, Local: phone,
			Vars: map[string]string{"via": ViaPattern(k.Addr.Addr())}})
		SippOK(t, SippOptions{Scenario: ScenarioCall, Vars: map[string]string{"callee": "1002"},
			Remote: k.Addr, User: "1001", Password: "secret1001"})
		if r := uas.Wait(); r.ExitCode != 0 || r.Successful != 1 {
			t.Fatalf("phone 1002: %s", r.Summary())
		}
	})
	t.Run("call to unregistered user fails", func(t *testing.T) {
		r := Sipp(t, SippOptions{Scenario: ScenarioCall, Vars: map[string]string{"callee": "1003x"},
			Remote: k.Addr, User: "1001", Password: "secret1001"})
		if r.ExitCode == 0 || r.Successful != 0 {
			t.Fatalf("call to an unknown user succeeded: %s", r.Summary())
		}
	})
}

// TestRegisterTLSDirect proves RegisterTLS against Kamailio's TLS listener.
func TestRegisterTLSDirect(t *testing.T) {
	addr := LoopbackAddr(t)
	pki := NewPKI(t, addr)
	k := StartKamailio(t, KamailioOptions{Addr: addr, Users: users, TLS: pki})
	for _, tc := range []struct {
		name     string
		password string
		want     int
	}{
		{"good password", "secret1001", 200},
		{"wrong password", "nope", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code, err := RegisterTLS(ctx, TLSPhoneOptions{Local: LoopbackAddr(t), Server: k.TLSAddr,
				User: "1001", Password: tc.password, Roots: pki.Roots})
			if err != nil || code != tc.want {
				t.Fatalf("RegisterTLS = %d, %v; want %d", code, err, tc.want)
			}
		})
	}
	if n := k.WaitCount(2*time.Second, 1, "registered", "user=1001"); n != 1 {
		t.Errorf("kamailio logged %d registrations, want 1", n)
	}
}

// TestSipviciousDirect proves the SIPVicious wrapper: each tool sends from
// the address it was given, and its attacks reach Kamailio.
func TestSipviciousDirect(t *testing.T) {
	k := StartKamailio(t, KamailioOptions{Users: users})
	t.Run("svcrack", func(t *testing.T) {
		t.Parallel()
		attacker := LoopbackAddr(t)
		dict := WriteDictionary(t, "123456", "password", "1001", "000000", "qwerty")
		r := Sipvicious(t, SipviciousOptions{Tool: "svcrack", Local: attacker, Target: k.Addr,
			Args: []string{"-u", "1001", "-d", dict, "--maximumtime", "2"}})
		if n := k.WaitCount(2*time.Second, 5, "authfail", "src="+attacker.String()+" "); n != 5 {
			t.Fatalf("kamailio logged %d auth failures from %s, want 5\n%s", n, attacker, r.Output)
		}
	})
	t.Run("svwar", func(t *testing.T) {
		t.Parallel()
		attacker := LoopbackAddr(t)
		r := Sipvicious(t, SipviciousOptions{Tool: "svwar", Local: attacker, Target: k.Addr, UserAgent: "Yealink SIP-T46S",
			Args: []string{"-e", "1000-1010", "-m", "REGISTER", "--maximumtime", "2"}})
		for _, ext := range []string{"1001", "1002", "1003"} {
			if !strings.Contains(r.Output, ext) {
				t.Errorf("svwar did not find extension %s:\n%s", ext, r.Output)
			}
		}
		if n := k.WaitCount(2*time.Second, 11, "rx method=REGISTER", "src="+attacker.String()+":", "ua=Yealink SIP-T46S"); n < 11 {
			t.Errorf("kamailio saw %d REGISTERs with the disguised User-Agent, want at least 11", n)
		}
		if n := k.WaitCount(2*time.Second, 8, "notfound", "src="+attacker.String()+" "); n < 8 {
			t.Errorf("kamailio answered %d unknown-account REGISTERs from %s, want at least 8", n, attacker)
		}
	})
	t.Run("svmap", func(t *testing.T) {
		t.Parallel()
		attacker := LoopbackAddr(t)
		r := Sipvicious(t, SipviciousOptions{Tool: "svmap", Local: attacker, Target: k.Addr})
		if !strings.Contains(r.Output, k.Addr.String()) {
			t.Errorf("svmap did not report %s:\n%s", k.Addr, r.Output)
		}
		if n := k.WaitCount(2*time.Second, 1, "rx method=OPTIONS", "src="+attacker.String()+":"); n < 1 {
			t.Errorf("kamailio saw no OPTIONS from %s", attacker)
		}
	})
}

func TestProbe(t *testing.T) {
	k := StartKamailio(t, KamailioOptions{Users: users})
	from := LoopbackAddr(t)
	code, err := Probe(from, k.Addr, 2*time.Second)
	if err != nil || code != 200 {
		t.Fatalf("Probe(kamailio) = %d, %v; want 200", code, err)
	}
	if n := k.WaitCount(2*time.Second, 1, "rx method=OPTIONS", "src="+from.String()+":"); n != 1 {
		t.Errorf("kamailio saw %d OPTIONS from %s, want 1", n, from)
	}
	// A listener that drops everything, as a guard does for a banned source.
	silent, err := net.ListenPacket("udp", netip.AddrPortFrom(LoopbackAddr(t), 5060).String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	to := silent.LocalAddr().(*net.UDPAddr).AddrPort()
	if code, err := Probe(from, to, 200*time.Millisecond); err != ErrNoAnswer {
		t.Errorf("Probe(nobody) = %d, %v; want ErrNoAnswer", code, err)
	}
}

// TestForge: a forged datagram arrives with the claimed source address and
// port and its payload intact (the kernel verified both checksums).
func TestForge(t *testing.T) {
	dst := netip.AddrPortFrom(LoopbackAddr(t), uint16(FreePort(t, netip.MustParseAddr("127.0.0.1"))))
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	victim := netip.AddrPortFrom(LoopbackAddr(t), 5060)
	payload := []byte("OPTIONS sip:x SIP/2.0\r\n\r\nodd")
	Forge(t, victim, dst, payload)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 256)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("forged datagram not received: %v", err)
	}
	if from != victim || string(buf[:n]) != string(payload) {
		t.Fatalf("received %q from %s, want %q from %s", buf[:n], from, payload, victim)
	}
}

// TestSendInvite: Send acknowledges a non-2xx final answer to an INVITE.
func TestSendInvite(t *testing.T) {
	srv := netip.AddrPortFrom(LoopbackAddr(t), 5060)
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan string, 2)
	go func() {
		buf := make([]byte, 4096)
		for range 2 {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			got <- msg
			if strings.HasPrefix(msg, "INVITE ") {
				res := "SIP/2.0 407 Proxy Authentication Required\r\nVia: " + header(msg, "Via") + "\r\nFrom: " + header(msg, "From") +
					"\r\nTo: " + header(msg, "To") + ";tag=srv1\r\nCall-ID: " + header(msg, "Call-ID") + "\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
				_, _ = c.WriteToUDPAddrPort([]byte(res), from)
			}
		}
	}()
	code, err := Send(LoopbackAddr(t), srv, Request{Method: "INVITE", User: "0088112345", UserAgent: "x"}, 2*time.Second)
	if err != nil || code != 407 {
		t.Fatalf("Send = %d, %v; want 407", code, err)
	}
	inv, ack := <-got, <-got
	if !strings.HasPrefix(inv, "INVITE sip:0088112345@") || !strings.HasPrefix(ack, "ACK ") || !strings.Contains(ack, ";tag=srv1") ||
		header(ack, "Via") != header(inv, "Via") {
		t.Fatalf("INVITE/ACK pair wrong:\n%s\n%s", inv, ack)
	}
}
