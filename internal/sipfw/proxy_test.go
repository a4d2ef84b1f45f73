package sipfw

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
)

// TestRegisterThroughProxy follows a REGISTER from a NAT'd phone to the PBX
// and its 200 back, and checks what the PBX and the engine see.
func TestRegisterThroughProxy(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.21")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "1001", "X-AUTH-IP: 10.9.9.9\nAuthorization: Digest username=\"1001\", realm=\"pbx\", nonce=\"n\", response=\"r\"\n"))

	req := r.pbx.recvReq()
	if got := req.GetHeaders("X-AUTH-IP"); len(got) != 1 || got[0].Value() != "127.0.0.21" {
		t.Errorf("X-AUTH-IP at PBX = %v, want only 127.0.0.21", got)
	}
	path := req.GetHeader("Path")
	if path == nil || !strings.Contains(path.Value(), "sip:tg.") || !strings.Contains(path.Value(), ";lr") {
		t.Fatalf("Path = %v, want a flow token with lr", path)
	}
	r.pbx.answer(req, 200, "OK", func(res *sip.Response) {
		res.AppendHeader(sip.NewHeader("Contact", "<sip:1001@192.168.1.10:5060>;expires=600"))
	})
	res := ph.recvRes()
	if res.StatusCode != 200 {
		t.Fatalf("phone got %d", res.StatusCode)
	}
	if vias := res.GetHeaders("Via"); len(vias) != 1 {
		t.Errorf("phone got %d Vias, want its own only: %v", len(vias), vias)
	}
	reg := r.rec.wait(t, event.KindRegister, nil).(*event.Register)
	if reg.Account != "1001" || reg.Expires != 600 || reg.Source.Addr().String() != "127.0.0.21" || reg.UserAgent != "TestPhone/1.0" {
		t.Errorf("Register event = %+v", reg)
	}
	if !reg.HasCredentials {
		t.Error("HasCredentials = false")
	}
	r.rec.wait(t, event.KindRequest, nil)
	resp := r.rec.wait(t, event.KindResponse, nil).(*event.Response)
	if resp.Code != 200 || resp.CallID != "reg-1001@192.168.1.10" {
		t.Errorf("Response event = %+v", resp)
	}
}

// TestAuthFailureTapped checks that a refused REGISTER with credentials
// becomes an AuthFailure, and a plain challenge does not.
func TestAuthFailureTapped(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.22")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "1002", ""))
	r.pbx.answer(r.pbx.recvReq(), 401, "Unauthorized", func(res *sip.Response) {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="pbx", nonce="abc"`))
	})
	if c := ph.recvRes().StatusCode; c != 401 {
		t.Fatalf("got %d", c)
	}
	ph.send(r.addr("udp"), strings.Replace(register(ph, r.addr("udp"), "1002", `Authorization: Digest username="1002", nonce="abc", response="bad"`+"\n"), "CSeq: 1", "CSeq: 2", 1))
	r.pbx.answer(r.pbx.recvReq(), 401, "Unauthorized", func(res *sip.Response) {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="pbx", nonce="def"`))
	})
	ph.recvRes()
	af := r.rec.wait(t, event.KindAuthFailure, nil).(*event.AuthFailure)
	if af.Account != "1002" || af.Code != 401 {
		t.Errorf("AuthFailure = %+v", af)
	}
	if n := r.rec.count(event.KindAuthFailure); n != 1 {
		t.Errorf("%d auth failures, want 1 (the challenge is not one)", n)
	}
}

// TestPBXToPhoneViaPath registers a phone, then has the PBX call it by the
// Path it stored (RFC 3327), as FreeSWITCH does with fs_path: the INVITE
// must reach the phone's NAT binding although its Contact is private.
func TestPBXToPhoneViaPath(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.23")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "1003", ""))
	reg := r.pbx.recvReq()
	path := reg.GetHeader("Path").Value()
	r.pbx.answer(reg, 200, "OK", nil)
	ph.recvRes()

	pbxInvite := "INVITE sip:1003@192.168.1.10:5060 SIP/2.0\n" +
		"Via: SIP/2.0/UDP " + r.pbx.addr().String() + ";branch=z9hG4bK-pbx1;rport\n" +
		"Route: " + path + "\n" +
		"Max-Forwards: 70\n" +
		"From: <sip:0800@pbx.example>;tag=pbx\n" +
		"To: <sip:1003@pbx.example>\n" +
		"Call-ID: pbx-call-1\n" +
		"CSeq: 10 INVITE\n" +
		"Contact: <sip:mod_sofia@" + r.pbx.addr().String() + ">\n" +
		"Content-Length: 0\n\n"
	r.pbx.send(r.addr("udp"), pbxInvite)
	inv := ph.recvReq()
	if inv.Method != sip.INVITE || inv.Route() != nil {
		t.Fatalf("phone got %s with Route %v; the proxy must pop its own Route", inv.Method, inv.Route())
	}
	if rr := inv.RecordRoute(); rr == nil || !strings.HasPrefix(rr.Address.User, "tg.") {
		t.Errorf("Record-Route = %v, want the proxy with the phone's flow", rr)
	}
	ph.answer(inv, 200, "OK", nil)
	res := r.pbx.recvRes()
	if res.StatusCode != 200 || res.Via().Host != r.pbx.addr().Addr().String() {
		t.Errorf("PBX got %d with top Via %v", res.StatusCode, res.Via())
	}
	// Requests from the PBX are not the engine's business to refuse.
	if n := r.rec.count(event.KindCallAttempt); n != 0 {
		t.Errorf("%d CallAttempt events for a PBX-originated call", n)
	}
}

// TestInviteDialog runs INVITE, 200, ACK and BYE through the proxy: the
// in-dialog requests follow the Record-Route back through it (RFC 3261
// §12.2, §16.12), and the tap reports the call's life.
func TestInviteDialog(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.24")
	ph.send(r.addr("udp"), invite(r.addr("udp"), "1004", "0044201", "call-a", ""))
	inv := r.pbx.recvReq()
	if inv.RecordRoute() == nil {
		t.Fatal("INVITE at PBX has no Record-Route")
	}
	r.pbx.answer(inv, 100, "Trying", nil)
	if c := ph.recvRes().StatusCode; c != 100 {
		t.Fatalf("got %d, want 100", c)
	}
	r.pbx.answer(inv, 200, "OK", func(res *sip.Response) {
		res.To().Params.Add("tag", "pbxtag")
		res.AppendHeader(sip.NewHeader("Contact", "<sip:mod_sofia@"+r.pbx.addr().String()+">"))
	})
	ok := ph.recvRes()
	if ok.StatusCode != 200 {
		t.Fatalf("got %d", ok.StatusCode)
	}
	rrs := ok.GetHeaders("Record-Route")
	if len(rrs) == 0 {
		t.Fatal("200 OK lost the Record-Route")
	}
	// The phone's route set is the Record-Route list reversed (§12.1.2).
	route := ""
	for i := len(rrs) - 1; i >= 0; i-- {
		route += "Route: " + rrs[i].Value() + "\n"
	}
	inDialog := func(method, cseq string) string {
		return method + " sip:mod_sofia@" + r.pbx.addr().String() + " SIP/2.0\n" +
			"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-" + strings.ToLower(method) + ";rport\n" +
			route + "Max-Forwards: 70\n" +
			"From: <sip:1004@pbx.example>;tag=fcall-a\n" +
			"To: <sip:0044201@pbx.example>;tag=pbxtag\n" +
			"Call-ID: call-a\n" +
			"CSeq: " + cseq + " " + method + "\n" +
			"Content-Length: 0\n\n"
	}
	ph.send(r.addr("udp"), inDialog("ACK", "1"))
	if ack := r.pbx.recvReq(); ack.Method != sip.ACK || ack.Route() != nil {
		t.Fatalf("PBX got %s, Route %v", ack.Method, ack.Route())
	}
	ph.send(r.addr("udp"), inDialog("BYE", "2"))
	bye := r.pbx.recvReq()
	if bye.Method != sip.BYE {
		t.Fatalf("PBX got %s", bye.Method)
	}
	r.pbx.answer(bye, 200, "OK", nil)
	if c := ph.recvRes().StatusCode; c != 200 {
		t.Errorf("BYE got %d", c)
	}
	r.rec.wait(t, event.KindCallAttempt, nil)
	r.rec.wait(t, event.KindCallAnswered, nil)
	ce := r.rec.wait(t, event.KindCallEnded, nil).(*event.CallEnded)
	if ce.Cause != "bye" || ce.Destination != "0044201" || ce.Account != "1004" {
		t.Errorf("CallEnded = %+v", ce)
	}
}

// TestCancel checks a CANCEL keeps its INVITE's branch through the proxy
// (RFC 3261 §16.11, §9.1) and the 487 ends the call as cancelled.
func TestCancel(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.25")
	ph.send(r.addr("udp"), invite(r.addr("udp"), "1005", "1006", "call-c", ""))
	inv := r.pbx.recvReq()
	r.pbx.answer(inv, 180, "Ringing", func(res *sip.Response) { res.To().Params.Add("tag", "t") })
	ph.recvRes()
	cancel := strings.Replace(strings.Replace(invite(r.addr("udp"), "1005", "1006", "call-c", ""), "INVITE sip:", "CANCEL sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1)
	ph.send(r.addr("udp"), cancel)
	c := r.pbx.recvReq()
	ib, _ := inv.Via().Params.Get("branch")
	cb, _ := c.Via().Params.Get("branch")
	if c.Method != sip.CANCEL || ib != cb {
		t.Fatalf("CANCEL branch %q, INVITE branch %q: must match", cb, ib)
	}
	r.pbx.answer(c, 200, "OK", nil)
	r.pbx.answer(inv, 487, "Request Terminated", func(res *sip.Response) { res.To().Params.Add("tag", "t") })
	got := map[int]bool{}
	got[ph.recvRes().StatusCode] = true
	got[ph.recvRes().StatusCode] = true
	if !got[200] || !got[487] {
		t.Errorf("phone got %v, want 200 and 487", got)
	}
	ce := r.rec.wait(t, event.KindCallEnded, nil).(*event.CallEnded)
	if ce.Cause != "cancel" || ce.Code != 487 {
		t.Errorf("CallEnded = %+v", ce)
	}
}

// TestOptionsOverTCP sends an OPTIONS over TCP; the answer must come back
// over the same connection (RFC 3261 §18.2.2).
func TestOptionsOverTCP(t *testing.T) {
	r := startRig(t, nil)
	c, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.26:0")), net.TCPAddrFromAddrPort(r.addr("tcp")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "OPTIONS sip:" + r.addr("tcp").String() + " SIP/2.0\n" +
		"Via: SIP/2.0/TCP 192.168.1.10:5060;branch=z9hG4bK-opt\n" +
		"From: <sip:1007@pbx.example>;tag=o\nTo: <sip:pbx.example>\nCall-ID: opt-1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
	if _, err := c.Write([]byte(crlf(msg))); err != nil {
		t.Fatal(err)
	}
	req := r.pbx.recvReq()
	if req.Method != sip.OPTIONS {
		t.Fatalf("PBX got %s", req.Method)
	}
	if v := req.GetHeaders("Via"); len(v) != 2 || v[0].(*sip.ViaHeader).Transport != "UDP" || v[1].(*sip.ViaHeader).Transport != "TCP" {
		t.Errorf("Vias at PBX = %v", v)
	}
	if rr := req.RecordRoute(); rr != nil {
		t.Errorf("OPTIONS got a Record-Route: %v", rr)
	}
	r.pbx.answer(req, 200, "OK", nil)
	res := readTCPResponse(t, c)
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Errorf("phone got %q", firstLine(res))
	}
}

// TestDoubleRecordRoute checks RFC 5658 §4: an INVITE arriving over TCP and
// leaving over UDP gets two Record-Route entries, the PBX-facing on top.
func TestDoubleRecordRoute(t *testing.T) {
	r := startRig(t, nil)
	c, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.27:0")), net.TCPAddrFromAddrPort(r.addr("tcp")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := strings.Replace(invite(r.addr("tcp"), "1008", "1009", "call-d", ""), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := c.Write([]byte(crlf(msg))); err != nil {
		t.Fatal(err)
	}
	req := r.pbx.recvReq()
	rrs := req.GetHeaders("Record-Route")
	if len(rrs) != 2 {
		t.Fatalf("Record-Route = %v, want 2 entries", rrs)
	}
	if !strings.Contains(rrs[0].Value(), "transport=udp") || !strings.Contains(rrs[1].Value(), "transport=tcp") || !strings.Contains(rrs[1].Value(), "tg.") {
		t.Errorf("Record-Route = %v, want the udp (PBX) side on top and the tcp side with the flow", rrs)
	}
}

// TestUpstreamDown503 checks a silent PBX gets the client a 503, and that
// the proxy recovers by itself once the PBX answers its probe.
func TestUpstreamDown503(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.28")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "1010", ""))
	r.pbx.recvReq() // the PBX stays silent
	if c := ph.recvRes().StatusCode; c != 503 {
		t.Fatalf("got %d, want 503", c)
	}
	// While down the proxy answers 503 at once and probes with OPTIONS.
	probe := r.pbx.recvReq()
	if probe.Method != sip.OPTIONS {
		t.Fatalf("PBX got %s, want the OPTIONS probe", probe.Method)
	}
	r.pbx.answer(probe, 200, "OK", nil)
	waitGauge(t, r, true)
	ph.send(r.addr("udp"), strings.Replace(register(ph, r.addr("udp"), "1010", ""), "CSeq: 1", "CSeq: 2", 1))
	var req *sip.Request
	for req == nil {
		m := r.pbx.recvReq()
		if m.Method == sip.REGISTER {
			req = m
		}
	}
	r.pbx.answer(req, 200, "OK", nil)
	for {
		res := ph.recvRes()
		if res.StatusCode == 200 {
			break
		}
	}
	resp := r.rec.wait(t, event.KindResponse, func(ev event.Event) bool { return ev.(*event.Response).Code == 503 })
	if resp.(*event.Response).Method != "REGISTER" {
		t.Errorf("503 Response event = %+v", resp)
	}
}

func waitGauge(t *testing.T, r *rig, want bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if !r.p.routes[0].health.down.Load() == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("upstream up = %v, want %v", !r.p.routes[0].health.down.Load(), want)
}

// TestGateDropsBeforeParsing checks a banned source is dropped by the Gate
// on UDP and refused at accept on TCP, before any parsing.
func TestGateDropsBeforeParsing(t *testing.T) {
	bad := netip.MustParseAddr("127.0.0.66")
	r := startRig(t, func(o *Options, _ *peer) { o.Gate = banGate{banned: map[netip.Addr]bool{bad: true}} })
	att := newPeer(t, bad.String())
	att.send(r.addr("udp"), register(att, r.addr("udp"), "1011", ""))
	att.send(r.addr("udp"), "garbage that would count as malformed if parsed")
	waitCounter(t, r.p.m.drops[dropGate], 2)
	c, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(bad, 0)), net.TCPAddrFromAddrPort(r.addr("tcp")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := c.Read(make([]byte, 10)); err == nil {
		t.Error("banned TCP connection was not closed")
	}
	waitCounter(t, r.p.m.drops[dropGate], 3)
	if got := testMalformed(r); got != 0 {
		t.Errorf("malformed = %v: the gated datagram was parsed", got)
	}
	if r.rec.count(event.KindRequest) != 0 {
		t.Error("the engine saw a request from a banned source")
	}
	r.pbx.empty()
}

// TestCheckerReject checks a Reject verdict answers 403 and forwards
// nothing, and a Drop verdict answers nothing.
func TestCheckerReject(t *testing.T) {
	r := startRig(t, nil)
	r.rec.setVerdict(func(ev event.Event) engine.Verdict {
		if req, ok := ev.(*event.Request); ok {
			switch req.FromUser {
			case "evil":
				return engine.Verdict{Action: engine.Reject, Rule: "test"}
			case "silent":
				return engine.Verdict{Action: engine.Drop, Rule: "test"}
			}
		}
		return engine.Verdict{}
	})
	ph := newPeer(t, "127.0.0.29")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "evil", ""))
	if c := ph.recvRes().StatusCode; c != 403 {
		t.Fatalf("got %d, want 403", c)
	}
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "silent", ""))
	waitCounter(t, r.p.m.drops[dropVerdict], 1)
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "good", ""))
	if req := r.pbx.recvReq(); req.From().Address.User != "good" {
		t.Errorf("PBX got a request from %q, want only good's", req.From().Address.User)
	}
	ph.empty()
}

// TestMalformedCounted checks unparsable datagrams are counted and dropped.
func TestMalformedCounted(t *testing.T) {
	r := startRig(t, nil)
	att := newPeer(t, "127.0.0.30")
	att.send(r.addr("udp"), "INVITE\x00\xff not sip at all\n\n")
	att.send(r.addr("udp"), "OPTIONS sip:x SIP/2.0\nContent-Length: 0\n\n") // no Via/From/To
	waitCounter(t, r.p.m.drops[dropMalformed], 2)
	r.pbx.empty()
}

// TestBadAddressDropped: a Request-URI, From or To that a lenient parser
// reads but no SIP address can be (markup in the user part, a host with
// angle brackets or spaces) is counted as malformed and never reaches the
// PBX, while a phone's '#' and an escaped user pass.
func TestBadAddressDropped(t *testing.T) {
	r := startRig(t, nil)
	att := newPeer(t, "127.0.0.31")
	for _, bad := range []string{
		"To: <sip:<svg onload=alert(2)>@pbx.example>",
		"To: <sip:10 01@pbx.example>",
		"To: <sip:1001@pbx example>",
		"From: <sip:<img src=x>@pbx.example>;tag=1",
	} {
		msg := "REGISTER sip:pbx.example SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.31:5060;branch=z9hG4bK-bad\nMax-Forwards: 70\n" +
			"From: <sip:1001@pbx.example>;tag=1\nTo: <sip:1001@pbx.example>\nCall-ID: bad\nCSeq: 1 REGISTER\nContent-Length: 0\n\n"
		if strings.HasPrefix(bad, "To:") {
			msg = strings.Replace(msg, "To: <sip:1001@pbx.example>", bad, 1)
		} else {
			msg = strings.Replace(msg, "From: <sip:1001@pbx.example>;tag=1", bad, 1)
		}
		att.send(r.addr("udp"), msg)
	}
	waitCounter(t, r.p.m.drops[dropMalformed], 4)
	r.pbx.empty()
	ph := newPeer(t, "127.0.0.32")
	ph.send(r.addr("udp"), "OPTIONS sip:*97%231@pbx.example SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.32:5060;branch=z9hG4bK-ok\nMax-Forwards: 70\n"+
		"From: <sip:1001@pbx.example>;tag=1\nTo: <sip:*97#@pbx.example>\nCall-ID: ok\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
	if got := r.pbx.recvReq(); got.Method != sip.OPTIONS {
		t.Fatalf("PBX got %s, want the phone's OPTIONS", got.Method)
	}
	if got := testMalformed(r); got != 4 {
		t.Errorf("malformed = %v, want 4: the phone's request was counted", got)
	}
}

func testMalformed(r *rig) float64 {
	return testutilValue(r.p.m.drops[dropMalformed])
}

func readTCPResponse(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

func firstLine(s string) string { return strings.SplitN(s, "\r\n", 2)[0] }

// TestAckToNon2xxKeepsBranch checks RFC 3261 §17.1.1.3 through a stateless
// proxy (§16.11): the ACK to a non-2xx final response carries the INVITE's
// branch and the response's To tag; the proxy must forward it with the same
// branch it gave the INVITE, or the PBX never matches the ACK to its INVITE
// transaction and keeps retransmitting the 407.
func TestAckToNon2xxKeepsBranch(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.26")
	ph.send(r.addr("udp"), invite(r.addr("udp"), "1007", "1008", "call-ack", ""))
	inv := r.pbx.recvReq()
	r.pbx.answer(inv, 407, "Proxy Authentication Required", func(res *sip.Response) { res.To().Params.Add("tag", "t407") })
	if c := ph.recvRes().StatusCode; c != 407 {
		t.Fatalf("phone got %d, want 407", c)
	}
	ack := strings.NewReplacer("INVITE sip:", "ACK sip:", "CSeq: 1 INVITE", "CSeq: 1 ACK",
		"To: <sip:1008@pbx.example>", "To: <sip:1008@pbx.example>;tag=t407").
		Replace(invite(r.addr("udp"), "1007", "1008", "call-ack", ""))
	ph.send(r.addr("udp"), ack)
	a := r.pbx.recvReq()
	ib, _ := inv.Via().Params.Get("branch")
	ab, _ := a.Via().Params.Get("branch")
	if a.Method != sip.ACK || ib != ab {
		t.Fatalf("ACK branch %q, INVITE branch %q: must match", ab, ib)
	}
}

// TestOneLostAnswerIsNotAnOutage checks a PBX that answers other requests
// while one request goes unanswered (a datagram lost under load) is not
// marked down: that one client gets 503 (RFC 3261 §16.7 step 6), the next
// request is still forwarded.
func TestOneLostAnswerIsNotAnOutage(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.29")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "1011", ""))
	lost := r.pbx.recvReq() // never answered
	// Another request is answered while the first one waits.
	ph.send(r.addr("udp"), strings.Replace(register(ph, r.addr("udp"), "1012", ""), "CSeq: 1", "CSeq: 7", 1))
	r.pbx.answer(r.pbx.recvReq(), 200, "OK", nil)
	got := map[int]bool{}
	got[ph.recvRes().StatusCode] = true
	got[ph.recvRes().StatusCode] = true
	if !got[200] || !got[503] {
		t.Fatalf("phone got %v, want a 200 and a 503 for %s", got, lost.CallID().Value())
	}
	if r.p.routes[0].health.down.Load() {
		t.Fatal("upstream marked down although it answered during the wait")
	}
	ph.send(r.addr("udp"), strings.Replace(register(ph, r.addr("udp"), "1013", ""), "CSeq: 1", "CSeq: 9", 1))
	if m := r.pbx.recvReq(); m.Method != sip.REGISTER {
		t.Fatalf("PBX got %s, want the next REGISTER forwarded", m.Method)
	}
}
