package pbx_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

func TestPhoneCalls(t *testing.T) {
	tests := []struct {
		name         string
		password     string
		number       string
		wantCode     int // 0: answered and hung up
		wantAnswered uint64
		wantEnded    uint64
		wantRejected uint64
		wantFailures uint64
	}{
		{name: "answered then BYE", password: "Secret-1001", number: "00441234567", wantAnswered: 1, wantEnded: 1},
		{name: "number not served is 404", password: "Secret-1001", number: "12", wantCode: 404, wantRejected: 1},
		{name: "wrong password is 403", password: "typo", number: "00441234567", wantCode: 403, wantFailures: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startPBX(t, pbx.Options{})
			ph := startPhone(t, p.Addr(), "1001", tc.password)
			err := ph.Call(testCtx(t), tc.number, 10*time.Millisecond)
			if got := sim.StatusCode(err); got != tc.wantCode || (tc.wantCode == 0 && err != nil) {
				t.Fatalf("Call: code %d (err %v), want %d", got, err, tc.wantCode)
			}
			st := p.Stats()
			if st.CallsAnswered != tc.wantAnswered || st.CallsEnded != tc.wantEnded ||
				st.CallsRejected != tc.wantRejected || st.AuthFailures != tc.wantFailures {
				t.Errorf("stats = %+v, want answered %d ended %d rejected %d failures %d",
					st, tc.wantAnswered, tc.wantEnded, tc.wantRejected, tc.wantFailures)
			}
			if st.Challenges < 1 {
				t.Errorf("Challenges = %d, want the INVITE challenged with 407", st.Challenges)
			}
			if r := ph.Report(); tc.wantCode == 0 && (r.CallsAnswered != 1 || r.CallCodes[200] != 1) {
				t.Errorf("phone report = %+v, want one answered call", r)
			}
			if r := ph.Report(); tc.wantCode == 0 && len(r.Errors) > 0 {
				t.Errorf("phone errors: %q", r.Errors)
			}
		})
	}
}

func TestCallToRegisteredPhone(t *testing.T) {
	p := startPBX(t, pbx.Options{})
	ph := startPhone(t, p.Addr(), "1002", "Secret-1002")
	ctx := testCtx(t)
	if err := p.Call(ctx, "1002"); err == nil {
		t.Fatal("Call before registration succeeded")
	}
	if err := ph.Register(ctx); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if err := p.Call(ctx, "1002"); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if got := p.Stats().CallsPlaced; got != 1 {
		t.Errorf("CallsPlaced = %d, want 1", got)
	}
	// The BYE from the PBX reaches the phone asynchronously after Call
	// returned; wait for the phone to see it (bounded by the test context).
	for ctx.Err() == nil && ph.Report().IncomingEnded == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if r := ph.Report(); r.IncomingAnswered != 1 || r.IncomingEnded != 1 {
		t.Errorf("phone report = %+v, want 1 incoming call answered and ended", r)
	}
}

// TestCallFollowsPath registers a binding whose REGISTER carried a Path
// header (as an edge proxy adds, RFC 3327) and checks that the PBX sends
// the INVITE for that account to the Path address, with the Path as Route
// and the registered Contact as Request-URI.
func TestCallFollowsPath(t *testing.T) {
	p := startPBX(t, pbx.Options{})
	ctx := testCtx(t)

	edge := listen(t, source()) // stands in for the proxy that added Path
	phone := listen(t, source())
	pathURI := fmt.Sprintf("<sip:%s;lr>", edge.LocalAddr())
	contact := fmt.Sprintf("sip:1001@%s", phone.LocalAddr())

	res := rawRegister(t, phone, p.Addr(), contact, pathURI, "")
	if code := statusOf(t, res); code != 401 {
		t.Fatalf("first REGISTER: %d, want 401", code)
	}
	res = rawRegister(t, phone, p.Addr(), contact, pathURI, authFor(t, res))
	if code := statusOf(t, res); code != 200 {
		t.Fatalf("REGISTER with credentials: %d, want 200", code)
	}
	if !strings.Contains(res, "Path: "+pathURI) {
		t.Errorf("200 to REGISTER does not echo Path (RFC 3327 §5.3):\n%s", res)
	}
	regs := p.Registrations()
	if len(regs) != 1 || len(regs[0].Path) != 1 || regs[0].Path[0] != pathURI {
		t.Fatalf("Registrations = %+v, want one binding with Path %s", regs, pathURI)
	}

	callErr := make(chan error, 1)
	go func() { callErr <- p.Call(ctx, "1001") }()

	invite := readPacket(t, edge)
	if !strings.HasPrefix(invite, "INVITE "+contact+" SIP/2.0") {
		t.Errorf("INVITE start line = %q, want Request-URI %s", firstLine(invite), contact)
	}
	if !strings.Contains(invite, "Route: "+pathURI) {
		t.Errorf("INVITE lacks Route %s:\n%s", pathURI, invite)
	}
	// Reject as busy so that Call returns.
	busy := responseTo(invite, "486 Busy Here")
	if _, err := edge.WriteTo([]byte(busy), mustUDPAddr(t, p.Addr())); err != nil {
		t.Fatal(err)
	}
	if err := <-callErr; err == nil || !strings.Contains(err.Error(), "486") {
		t.Errorf("Call = %v, want a 486 error", err)
	}
}

func listen(t *testing.T, src netip.Addr) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(src, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func mustUDPAddr(t *testing.T, ap netip.AddrPort) *net.UDPAddr {
	t.Helper()
	return net.UDPAddrFromAddrPort(ap)
}

func rawRegister(t *testing.T, pc net.PacketConn, target netip.AddrPort, contact, path, auth string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "REGISTER sip:demo.test SIP/2.0\r\n")
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%d;rport\r\n", pc.LocalAddr(), time.Now().UnixNano())
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:1001@demo.test>;tag=a1\r\nTo: <sip:1001@demo.test>\r\n")
	fmt.Fprintf(&b, "Call-ID: path-test\r\nCSeq: %d REGISTER\r\nContact: <%s>\r\nPath: %s\r\nExpires: 60\r\n", 1+len(auth)%7, contact, path)
	if auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", auth)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	if _, err := pc.WriteTo([]byte(b.String()), mustUDPAddr(t, target)); err != nil {
		t.Fatal(err)
	}
	return readPacket(t, pc)
}

func authFor(t *testing.T, res string) string {
	t.Helper()
	m, err := sip.ParseMessage([]byte(res))
	if err != nil {
		t.Fatal(err)
	}
	h := m.(*sip.Response).GetHeader("WWW-Authenticate")
	if h == nil {
		t.Fatal("401 without WWW-Authenticate")
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:demo.test", Username: "1001", Password: "Secret-1001"})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func readPacket(t *testing.T, pc net.PacketConn) string {
	t.Helper()
	buf := make([]byte, 65535)
	for {
		if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "SIP/2.0 1") { // skip provisional responses
			return msg
		}
	}
}

func statusOf(t *testing.T, res string) int {
	t.Helper()
	var code int
	if _, err := fmt.Sscanf(res, "SIP/2.0 %d", &code); err != nil {
		t.Fatalf("not a response: %q", firstLine(res))
	}
	return code
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// responseTo builds a response to req copying the RFC 3261 §8.2.6.2 headers.
func responseTo(req, status string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, line := range strings.Split(req, "\r\n")[1:] {
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(name) {
		case "via", "from", "call-id", "cseq":
			b.WriteString(line + "\r\n")
		case "to":
			b.WriteString(line + ";tag=busy\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}
