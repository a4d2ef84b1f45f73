package sipfw

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/teardown"
)

// endpoint is a phone as a test drives it: over a UDP socket or a TCP
// connection to the proxy.
type endpoint interface {
	send(msg string)
	recvMsg() sip.Message
	reply(req *sip.Request, code int)
	transport() string
}

type udpPhone struct {
	pe    *peer
	proxy netip.AddrPort
}

func (u udpPhone) send(msg string)                  { u.pe.send(u.proxy, msg) }
func (u udpPhone) recvMsg() sip.Message             { return u.pe.recv() }
func (u udpPhone) reply(req *sip.Request, code int) { u.pe.answer(req, code, "OK", nil) }
func (u udpPhone) transport() string                { return "UDP" }

type tcpPhone struct {
	t    *testing.T
	c    net.Conn
	msgs chan sip.Message
}

func newTCPPhone(t *testing.T, r *rig, ip string) *tcpPhone {
	c := dialFrom(t, r, ip)
	tp := &tcpPhone{t: t, c: c, msgs: make(chan sip.Message, 16)}
	go func() {
		par := sip.NewParser().NewSIPStream()
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			_ = par.ParseSIPStream(buf[:n], func(m sip.Message) { tp.msgs <- m })
		}
	}()
	return tp
}

func (tp *tcpPhone) send(msg string) {
	if _, err := tp.c.Write([]byte(crlf(msg))); err != nil {
		tp.t.Fatalf("tcp send: %v", err)
	}
}

func (tp *tcpPhone) recvMsg() sip.Message {
	select {
	case m := <-tp.msgs:
		return m
	case <-time.After(waitLimit):
		tp.t.Fatal("tcp phone: nothing received")
		return nil
	}
}

func (tp *tcpPhone) reply(req *sip.Request, code int) {
	tp.send(sip.NewResponseFromRequest(req, code, "OK", nil).String())
}

func (tp *tcpPhone) transport() string { return "TCP" }

// answeredCall has ph call 0044201 through r; the PBX record-routes and
// answers, the phone ACKs and then sends an UPDATE with CSeq 5 and a new
// Contact, the PBX an INFO with CSeq 7. The phone's INVITE already carries the Record-Route of
// a proxy on its side (edge.example).
func answeredCall(t *testing.T, r *rig, ph endpoint, callID string) {
	t.Helper()
	tr := ph.transport()
	inv := strings.Replace(invite(r.addr(strings.ToLower(tr)), "1101", "0044201", callID,
		"Record-Route: <sip:edge.example;lr>\n"), "SIP/2.0/UDP", "SIP/2.0/"+tr, 1)
	ph.send(inv)
	fwd := r.pbx.recvReq()
	r.pbx.answer(fwd, 200, "OK", func(res *sip.Response) {
		res.To().Params.Add("tag", "pbxtag")
		res.PrependHeader(sip.NewHeader("Record-Route", "<sip:pbx-rr.example;lr>"))
		res.PrependHeader(sip.NewHeader("Record-Route", "<sip:pbx-rr2.example;lr>"))
		res.AppendHeader(sip.NewHeader("Contact", "<sip:trunk@10.0.0.9:5080>"))
	})
	ok, isRes := ph.recvMsg().(*sip.Response)
	if !isRes || ok.StatusCode != 200 {
		t.Fatalf("phone did not get the 200")
	}
	var route string
	rrs := ok.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		if v := rrs[i].Value(); !strings.Contains(v, "edge.example") && !strings.Contains(v, "pbx-rr") {
			route += "Route: " + rrs[i].Value() + "\n"
		}
	}
	inDialog := func(method string, cseq int) string {
		return method + " sip:trunk@10.0.0.9:5080 SIP/2.0\n" +
			"Via: SIP/2.0/" + tr + " 192.168.1.10:5060;branch=z9hG4bK-" + callID + strconv.Itoa(cseq) + ";rport\n" +
			route + "Max-Forwards: 70\nFrom: <sip:1101@pbx.example>;tag=f" + callID + "\n" +
			"To: <sip:0044201@pbx.example>;tag=pbxtag\nCall-ID: " + callID + "\n" +
			"CSeq: " + strconv.Itoa(cseq) + " " + method + "\nContent-Length: 0\n\n"
	}
	ph.send(inDialog("ACK", 1))
	if ack := r.pbx.recvReq(); ack.Method != sip.ACK {
		t.Fatalf("PBX got %s, want ACK", ack.Method)
	}
	// A target refresh (RFC 3311 UPDATE) moves the phone's Contact.
	ph.send(strings.Replace(inDialog("UPDATE", 5), "Content-Length: 0", "Contact: <sip:1101@192.168.1.11:5062>\nContent-Length: 0", 1))
	info := r.pbx.recvReq()
	r.pbx.answer(info, 200, "OK", nil)
	if res, isRes := ph.recvMsg().(*sip.Response); !isRes || res.StatusCode != 200 {
		t.Fatal("UPDATE from the phone not answered")
	}
	// The PBX's in-dialog request follows the route set the 200 gave it:
	// the proxy's Record-Route entries, as the INVITE carried them.
	var pbxRoute string
	for _, h := range fwd.GetHeaders("Record-Route") {
		pbxRoute += "Route: " + h.Value() + "\n"
	}
	r.pbx.send(r.addr("udp"), "INFO sip:1101@192.168.1.10:5060 SIP/2.0\n"+
		"Via: SIP/2.0/UDP "+r.pbx.addr().String()+";branch=z9hG4bK-pbxinfo-"+callID+";rport\n"+
		pbxRoute+"Max-Forwards: 70\nFrom: <sip:0044201@pbx.example>;tag=pbxtag\n"+
		"To: <sip:1101@pbx.example>;tag=f"+callID+"\nCall-ID: "+callID+"\nCSeq: 7 INFO\nContent-Length: 0\n\n")
	pinfo, isReq := ph.recvMsg().(*sip.Request)
	if !isReq || pinfo.Method != "INFO" {
		t.Fatal("phone did not get the PBX's INFO")
	}
	ph.reply(pinfo, 200)
	if res := r.pbx.recvRes(); res.StatusCode != 200 {
		t.Fatalf("PBX got %d to its INFO", res.StatusCode)
	}
}

// routes returns the Route values of req in order.
func routes(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Route") {
		out = append(out, h.Value())
	}
	return out
}

// TestHangupBothSides: HangupCall sends each side a BYE built from its own
// dialog state (RFC 3261 §15.1.1, §12.2.1.1), over UDP and TCP, and
// consumes the 200s.
func TestHangupBothSides(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phone func(*rig) endpoint
	}{
		{"udp", func(r *rig) endpoint { return udpPhone{newPeer(t, "127.0.0.111"), r.addr("udp")} }},
		{"tcp", func(r *rig) endpoint { return newTCPPhone(t, r, "127.0.0.112") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, nil)
			ph := tc.phone(r)
			answeredCall(t, r, ph, "hang-"+tc.name)
			calls := r.p.Calls()
			if len(calls) != 1 || calls[0].ID != "hang-"+tc.name || calls[0].Account != "1101" || calls[0].To != "0044201" ||
				calls[0].Direction != "outbound" || calls[0].Answer.IsZero() {
				t.Fatalf("Calls() = %+v", calls)
			}

			done := make(chan error, 1)
			go func() { done <- r.p.HangupCall(context.Background(), "hang-"+tc.name) }()

			toPBX := r.pbx.recvReq()
			if toPBX.Method != sip.BYE || toPBX.Recipient.String() != "sip:trunk@10.0.0.9:5080" {
				t.Errorf("PBX got %s %s, want BYE to its Contact", toPBX.Method, toPBX.Recipient.String())
			}
			// RFC 3261 §12.1.2: the Record-Route entries above the proxy's,
			// reversed.
			if got := strings.Join(routes(toPBX), ","); got != "<sip:pbx-rr.example;lr>,<sip:pbx-rr2.example;lr>" {
				t.Errorf("BYE to PBX Route = %q, want the PBX side's route set, reversed", got)
			}
			if ft, _ := toPBX.From().Params.Get("tag"); ft != "fhang-"+tc.name || toPBX.From().Address.User != "1101" {
				t.Errorf("BYE to PBX From = %s, want the caller with its tag", toPBX.From().Value())
			}
			if tt, _ := toPBX.To().Params.Get("tag"); tt != "pbxtag" {
				t.Errorf("BYE to PBX To = %s", toPBX.To().Value())
			}
			if c := toPBX.CSeq(); c.SeqNo != 6 || c.MethodName != sip.BYE {
				t.Errorf("BYE to PBX CSeq = %v, want 6 BYE (the phone sent up to 5)", c)
			}
			if b, _ := toPBX.Via().Params.Get("branch"); !strings.HasPrefix(b, byeBranch) {
				t.Errorf("BYE branch = %q", b)
			}

			toPhone, isReq := ph.recvMsg().(*sip.Request)
			if !isReq || toPhone.Method != sip.BYE {
				t.Fatal("phone got no BYE")
			}
			if toPhone.Recipient.String() != "sip:1101@192.168.1.11:5062" {
				t.Errorf("BYE to phone Request-URI = %s, want its Contact from the UPDATE", toPhone.Recipient.String())
			}
			if got := routes(toPhone); len(got) != 1 || got[0] != "<sip:edge.example;lr>" {
				t.Errorf("BYE to phone Route = %q, want the phone side's route set", got)
			}
			if ft, _ := toPhone.From().Params.Get("tag"); ft != "pbxtag" || toPhone.From().Address.User != "0044201" {
				t.Errorf("BYE to phone From = %s, want the callee with its tag", toPhone.From().Value())
			}
			if tt, _ := toPhone.To().Params.Get("tag"); tt != "fhang-"+tc.name {
				t.Errorf("BYE to phone To = %s", toPhone.To().Value())
			}
			if c := toPhone.CSeq(); c.SeqNo != 8 {
				t.Errorf("BYE to phone CSeq = %d, want 8 (the PBX sent up to 7)", c.SeqNo)
			}
			if toPhone.Via().Transport != ph.transport() {
				t.Errorf("BYE to phone Via transport %s", toPhone.Via().Transport)
			}
			r.pbx.answer(toPBX, 200, "OK", nil)
			ph.reply(toPhone, 200)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("HangupCall = %v", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("HangupCall did not return")
			}
			// The 200s were the proxy's: neither side got the other's.
			time.Sleep(50 * time.Millisecond)
			r.pbx.empty()
			if up, ok := ph.(udpPhone); ok {
				up.pe.empty()
			}
			if n := len(r.p.Calls()); n != 0 {
				t.Errorf("%d calls left after hangup", n)
			}
			ce := r.rec.wait(t, event.KindCallEnded, nil).(*event.CallEnded)
			if ce.Cause != causeRequest || ce.Account != "1101" {
				t.Errorf("CallEnded = %+v", ce)
			}
			if err := r.p.HangupCall(context.Background(), "hang-"+tc.name); !errors.Is(err, teardown.ErrNoCall) {
				t.Errorf("second HangupCall = %v, want ErrNoCall", err)
			}
			if v := testutilValue(r.p.m.hangups.WithLabelValues(causeRequest, "ok")); v != 1 {
				t.Errorf("hangups{ok} = %v", v)
			}
		})
	}
}

// TestHangupReportsSilentSide: a side that never answers the BYE is named
// in the error once ctx ends; the call is gone from the table anyway.
func TestHangupReportsSilentSide(t *testing.T) {
	r := startRig(t, nil)
	ph := udpPhone{newPeer(t, "127.0.0.113"), r.addr("udp")}
	answeredCall(t, r, ph, "silent")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.p.HangupCall(ctx, "silent") }()
	r.pbx.answer(r.pbx.recvReq(), 200, "OK", nil)
	ph.recvMsg() // the phone stays silent
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "caller did not answer") || strings.Contains(err.Error(), "callee") {
		t.Fatalf("HangupCall = %v, want the caller named as silent", err)
	}
	if n := len(r.p.Calls()); n != 0 {
		t.Errorf("%d calls left", n)
	}
}

// pbxCallsPhone registers a phone on pe, has the PBX call it through its
// Path, and the phone answer; it returns the PBX's INVITE as the phone got
// it.
func pbxCallsPhone(t *testing.T, r *rig, pe *peer, callID string) *sip.Request {
	t.Helper()
	pe.send(r.addr("udp"), register(pe, r.addr("udp"), "1102", ""))
	reg := r.pbx.recvReq()
	path := reg.GetHeader("Path").Value()
	r.pbx.answer(reg, 200, "OK", nil)
	pe.recvRes()
	r.pbx.send(r.addr("udp"), "INVITE sip:1102@192.168.1.10:5060 SIP/2.0\n"+
		"Via: SIP/2.0/UDP "+r.pbx.addr().String()+";branch=z9hG4bK-"+callID+";rport\n"+
		"Route: "+path+"\nMax-Forwards: 70\nFrom: <sip:0800@pbx.example>;tag=pbx\nTo: <sip:1102@pbx.example>\n"+
		"Call-ID: "+callID+"\nCSeq: 10 INVITE\nContact: <sip:mod_sofia@"+r.pbx.addr().String()+">\nContent-Length: 0\n\n")
	inv := pe.recvReq()
	return inv
}

// TestHangupCallFromPBX: a call the PBX placed to a phone through its Path
// is tracked when the phone answers and torn down the same way.
func TestHangupCallFromPBX(t *testing.T) {
	r := startRig(t, nil)
	pe := newPeer(t, "127.0.0.114")
	inv := pbxCallsPhone(t, r, pe, "from-pbx")
	pe.answer(inv, 200, "OK", func(res *sip.Response) {
		res.To().Params.Add("tag", "phonetag")
		res.AppendHeader(sip.NewHeader("Contact", "<sip:1102@192.168.1.10:5060>"))
	})
	if res := r.pbx.recvRes(); res.StatusCode != 200 {
		t.Fatalf("PBX got %d", res.StatusCode)
	}
	calls := r.p.Calls()
	if len(calls) != 1 || calls[0].Direction != "inbound" || calls[0].To != "1102" {
		t.Fatalf("Calls() = %+v", calls)
	}
	done := make(chan error, 1)
	go func() { done <- r.p.HangupCall(context.Background(), "from-pbx") }()
	toPBX := r.pbx.recvReq()
	toPhone := pe.recvReq()
	// The PBX saw no request from the phone: any CSeq will do (§12.2.2);
	// the phone saw the PBX's INVITE with 10.
	if toPBX.Recipient.String() != "sip:mod_sofia@"+r.pbx.addr().String() || toPBX.CSeq().SeqNo != 1 {
		t.Errorf("BYE to PBX: %s CSeq %d, want its Contact and 1", toPBX.Recipient.String(), toPBX.CSeq().SeqNo)
	}
	if ft, _ := toPBX.From().Params.Get("tag"); ft != "phonetag" {
		t.Errorf("BYE to PBX From tag %q, want the phone's", ft)
	}
	if toPhone.Recipient.String() != "sip:1102@192.168.1.10:5060" || toPhone.CSeq().SeqNo != 11 {
		t.Errorf("BYE to phone: %s CSeq %d", toPhone.Recipient.String(), toPhone.CSeq().SeqNo)
	}
	if ft, _ := toPhone.From().Params.Get("tag"); ft != "pbx" {
		t.Errorf("BYE to phone From tag %q, want the PBX's", ft)
	}
	if len(routes(toPhone)) != 0 || len(routes(toPBX)) != 0 {
		t.Errorf("Routes: phone %q, PBX %q; want none (no other hop recorded a route)", routes(toPhone), routes(toPBX))
	}
	r.pbx.answer(toPBX, 200, "OK", nil)
	pe.answer(toPhone, 200, "OK", nil)
	if err := <-done; err != nil {
		t.Fatalf("HangupCall = %v", err)
	}
	if n := r.rec.count(event.KindCallEnded); n != 0 {
		t.Errorf("%d CallEnded events for a call the PBX placed (not tapped)", n)
	}
}

// TestDeadlineCutsCall: SetDeadline has the proxy send the BYEs when the
// limit passes, with nobody calling HangupCall.
func TestDeadlineCutsCall(t *testing.T) {
	r := startRig(t, nil)
	ph := udpPhone{newPeer(t, "127.0.0.115"), r.addr("udp")}
	answeredCall(t, r, ph, "limited")
	if err := r.p.SetDeadline("unknown", time.Now()); !errors.Is(err, teardown.ErrNoCall) {
		t.Errorf("SetDeadline of an unknown call = %v", err)
	}
	at := time.Now().Add(200 * time.Millisecond)
	if err := r.p.SetDeadline("limited", at); err != nil {
		t.Fatal(err)
	}
	if c := r.p.Calls(); len(c) != 1 || !c[0].Deadline.Equal(at) {
		t.Fatalf("Calls() = %+v, want the deadline shown", c)
	}
	bye := r.pbx.recvReq()
	if bye.Method != sip.BYE {
		t.Fatalf("PBX got %s", bye.Method)
	}
	if now := time.Now(); now.Before(at) {
		t.Errorf("BYE sent %v before the deadline", at.Sub(now))
	}
	r.pbx.answer(bye, 200, "OK", nil)
	pb, isReq := ph.recvMsg().(*sip.Request)
	if !isReq || pb.Method != sip.BYE {
		t.Fatal("phone got no BYE")
	}
	ph.reply(pb, 200)
	ce := r.rec.wait(t, event.KindCallEnded, nil).(*event.CallEnded)
	if ce.Cause != causeDeadline {
		t.Errorf("CallEnded cause %q", ce.Cause)
	}
	waitCounter(t, r.p.m.hangups.WithLabelValues(causeDeadline, "ok"), 1)
}

// TestHangupByAccountAndSource: HangupAccount and HangupSource end only
// the calls they name; another phone's call stays.
func TestHangupByAccountAndSource(t *testing.T) {
	r := startRig(t, nil)
	a := udpPhone{newPeer(t, "127.0.0.116"), r.addr("udp")}
	b := udpPhone{newPeer(t, "127.0.0.117"), r.addr("udp")}
	answeredCall(t, r, a, "acct-a")
	answeredCall(t, r, b, "acct-b")
	answerByes := func(ph udpPhone) {
		r.pbx.answer(r.pbx.recvReq(), 200, "OK", nil)
		ph.pe.answer(ph.pe.recvReq(), 200, "OK", nil)
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := r.p.HangupSource(context.Background(), netip.MustParseAddr("127.0.0.116"))
		done <- result{n, err}
	}()
	answerByes(a)
	if res := <-done; res.n != 1 || res.err != nil {
		t.Fatalf("HangupSource = %d, %v", res.n, res.err)
	}
	if c := r.p.Calls(); len(c) != 1 || c[0].ID != "acct-b" {
		t.Fatalf("after HangupSource: %+v", c)
	}
	if n, err := r.p.HangupAccount(context.Background(), "nobody"); n != 0 || err != nil {
		t.Errorf("HangupAccount(nobody) = %d, %v", n, err)
	}
	go func() {
		n, err := r.p.HangupAccount(context.Background(), "1101")
		done <- result{n, err}
	}()
	answerByes(b)
	if res := <-done; res.n != 1 || res.err != nil {
		t.Fatalf("HangupAccount = %d, %v", res.n, res.err)
	}
}

// TestForgedAnswersDoNotConfuseTable: a 200 to a PBX → phone INVITE from
// anywhere but the phone it was sent to creates no call (so a forged
// INVITE/200 pair cannot make the proxy BYE a victim); a response to one of
// the proxy's BYEs from the wrong side is dropped as forged and does not
// end the wait; a BYE from a third party does not take the call out of the
// table.
func TestForgedAnswersDoNotConfuseTable(t *testing.T) {
	r := startRig(t, nil)
	pe := newPeer(t, "127.0.0.118")
	attacker := newPeer(t, "127.0.0.119")
	inv := pbxCallsPhone(t, r, pe, "forged-200")
	// The attacker copies the INVITE it could have seen and answers it
	// from its own address, naming a victim's Contact.
	forged := sip.NewResponseFromRequest(inv, 200, "OK", nil)
	forged.To().Params.Add("tag", "evil")
	forged.AppendHeader(sip.NewHeader("Contact", "<sip:victim@198.51.100.7:5060>"))
	attacker.sendMsg(r.addr("udp"), forged)
	r.pbx.recvRes() // relayed as before (its token names the PBX), but not trusted
	if c := r.p.Calls(); len(c) != 0 {
		t.Fatalf("a 200 from a third party created a call: %+v", c)
	}
	pe.answer(inv, 486, "Busy Here", nil)
	r.pbx.recvRes()

	ph := udpPhone{newPeer(t, "127.0.0.120"), r.addr("udp")}
	answeredCall(t, r, ph, "forged-bye")
	// A BYE naming the call from a third party is forwarded (the PBX
	// judges it) but leaves the call in the table.
	attacker.send(r.addr("udp"), "BYE sip:trunk@10.0.0.9:5080 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.119:5060;branch=z9hG4bK-evilbye\n"+
		"Max-Forwards: 70\nFrom: <sip:1101@pbx.example>;tag=fforged-bye\nTo: <sip:0044201@pbx.example>;tag=pbxtag\n"+
		"Call-ID: forged-bye\nCSeq: 99 BYE\nContent-Length: 0\n\n")
	r.pbx.recvReq()
	if c := r.p.Calls(); len(c) != 1 {
		t.Fatalf("a third party's BYE ended the call in the table: %+v", c)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() { done <- r.p.HangupCall(ctx, "forged-bye") }()
	toPBX := r.pbx.recvReq()
	toPhone := ph.recvMsg().(*sip.Request)
	forgedDrops := testutilValue(r.p.m.drops[dropForged])
	// The attacker answers the phone's BYE in its place.
	attacker.sendMsg(r.addr("udp"), sip.NewResponseFromRequest(toPhone, 200, "OK", nil))
	waitCounter(t, r.p.m.drops[dropForged], forgedDrops+1)
	select {
	case err := <-done:
		t.Fatalf("HangupCall returned %v on a forged answer", err)
	case <-time.After(100 * time.Millisecond):
	}
	r.pbx.answer(toPBX, 200, "OK", nil)
	ph.reply(toPhone, 200)
	if err := <-done; err != nil {
		t.Fatalf("HangupCall = %v", err)
	}
}

// TestDialogTableBound: a flood of INVITEs that are never answered fills
// only the unanswered table; a running call survives it, and the
// evictions are counted.
func TestDialogTableBound(t *testing.T) {
	tb := newDialogTable(100, time.Hour)
	now := time.Now()
	running := &dialog{callID: "real", answered: now, outbound: true}
	if tb.confirm(running) {
		t.Fatal("eviction on an empty table")
	}
	evicted := 0
	for i := range 1000 {
		if tb.begin("flood-"+strconv.Itoa(i), &dialog{start: now}) {
			evicted++
		}
		if tb.beginInbound("br-"+strconv.Itoa(i), &outInvite{start: now}) {
			evicted++
		}
	}
	if evicted != 2*900 {
		t.Errorf("%d evictions, want %d", evicted, 2*900)
	}
	if tb.early.len() != 100 || tb.out.len() != 100 {
		t.Errorf("tables hold %d and %d, want 100 each", tb.early.len(), tb.out.len())
	}
	if _, ok := tb.calls.get("real"); !ok {
		t.Fatal("the running call was evicted by unanswered INVITEs")
	}
	timedOut, _ := tb.expire(now.Add(2*time.Hour), time.Minute)
	if len(timedOut) != 1 || tb.early.len() != 0 || tb.out.len() != 0 {
		t.Errorf("expire: %d timed out, %d/%d left", len(timedOut), tb.early.len(), tb.out.len())
	}
}

// TestDialogTableFloodThroughProxy: the same through the proxy: a flood of
// INVITEs the PBX never answers counts dialog evictions, and a call
// answered before it is still listed and can be hung up.
func TestDialogTableFloodThroughProxy(t *testing.T) {
	r := startRig(t, func(o *Options, _ *peer) { o.UpstreamTimeout = time.Minute; o.dialogLimit = 50 })
	ph := udpPhone{newPeer(t, "127.0.0.121"), r.addr("udp")}
	answeredCall(t, r, ph, "survivor")
	flood := newPeer(t, "127.0.0.122")
	for i := range 200 {
		flood.send(r.addr("udp"), invite(r.addr("udp"), "1199", "0099", "flood-"+strconv.Itoa(i), ""))
	}
	waitCounter(t, r.p.m.evictions.WithLabelValues("dialog"), 150)
	if c := r.p.Calls(); len(c) != 1 || c[0].ID != "survivor" {
		t.Fatalf("Calls() after the flood = %+v", c)
	}
	if v := testutilValue(r.p.m.evictions.WithLabelValues("call")); v != 0 {
		t.Errorf("call evictions = %v", v)
	}
}

// TestAnswerWithoutTagIsNoCall: a 2xx without a To tag makes no dialog
// (RFC 3261 §12.1.1), so the proxy never builds a BYE without one.
func TestAnswerWithoutTagIsNoCall(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.123")
	ph.send(r.addr("udp"), invite(r.addr("udp"), "1103", "0044201", "no-tag", ""))
	r.pbx.answer(r.pbx.recvReq(), 200, "OK", func(res *sip.Response) { res.To().Params.Remove("tag") })
	if res := ph.recvRes(); res.StatusCode != 200 || res.To().Params.Has("tag") {
		t.Fatalf("phone got %d, To %s", res.StatusCode, res.To().Value())
	}
	r.rec.wait(t, event.KindCallAnswered, nil)
	if c := r.p.Calls(); len(c) != 0 {
		t.Errorf("Calls() = %+v, want none", c)
	}
}
