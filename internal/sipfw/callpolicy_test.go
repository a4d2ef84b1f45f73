package sipfw

import (
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
)

// TestCallPolicyTap: the call token header's value and the SDP offer reach
// the Checker with the call attempt, the header never reaches the PBX, and
// a call policy refusal carries an RFC 3326 Reason naming its rule while
// other refusals name nothing.
func TestCallPolicyTap(t *testing.T) {
	r := startRig(t, func(o *Options, _ *peer) { o.TokenHeader = "X-Call-Token" })
	r.rec.setVerdict(func(ev event.Event) engine.Verdict {
		ca, ok := ev.(*event.CallAttempt)
		if !ok {
			return engine.Verdict{}
		}
		switch ca.Token {
		case "111111":
			return engine.Verdict{Action: engine.Reject, Code: 403, Rule: "call_policy", Policy: "call_tokens"}
		case "222222":
			return engine.Verdict{Action: engine.Reject, Code: 403, Rule: "probe"}
		}
		return engine.Verdict{}
	})
	ph := newPeer(t, "127.0.0.71")
	to := r.addr("udp")

	ph.send(to, invite(to, "1001", "13800138000", "cp1", "X-Call-Token: 111111\n"))
	res := ph.recvRes()
	if h := res.GetHeader("Reason"); res.StatusCode != 403 || h == nil || h.Value() != `SIP;cause=403;text="call_policy call_tokens"` {
		t.Errorf("call policy refusal: %d, Reason %v", res.StatusCode, h)
	}
	ph.send(to, invite(to, "1001", "13800138000", "cp2", "x-call-token: 222222\n"))
	if res := ph.recvRes(); res.StatusCode != 403 || res.GetHeader("Reason") != nil {
		t.Errorf("another rule's refusal: %d, Reason %v; want 403 without a Reason", res.StatusCode, res.GetHeader("Reason"))
	}

	sdp := "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n"
	msg := strings.Replace(invite(to, "1001", "13800138000", "cp3", "X-Call-Token: 333333\nContent-Type: application/sdp\n"),
		"Content-Length: 0\n\n", "Content-Length: "+strconv.Itoa(len(sdp))+"\n\n", 1)
	ph.send(to, crlf(msg)+sdp)
	req := r.pbx.recvReq()
	if h := req.GetHeader("X-Call-Token"); h != nil {
		t.Errorf("the PBX got the call token header: %v", h)
	}
	ca := r.rec.wait(t, event.KindCallAttempt, func(ev event.Event) bool { return ev.(*event.CallAttempt).CallID == "cp3" }).(*event.CallAttempt)
	if ca.Token != "333333" || string(ca.SDP) != sdp {
		t.Errorf("call attempt: token %q, SDP %q", ca.Token, ca.SDP)
	}
}

// TestCallRingingTapped: the first provisional other than 100 to an
// initial INVITE reaches the Checker as CallRinging, once.
func TestCallRingingTapped(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.72")
	to := r.addr("udp")
	ph.send(to, invite(to, "1001", "13800138000", "ring1", ""))
	req := r.pbx.recvReq()
	r.pbx.answer(req, 100, "Trying", nil)
	ph.recvRes()
	if n := r.rec.count(event.KindCallRinging); n != 0 {
		t.Errorf("100 Trying made %d CallRinging events", n)
	}
	for range 2 {
		r.pbx.answer(req, 180, "Ringing", func(res *sip.Response) { res.To().Params.Add("tag", "t1") })
		ph.recvRes()
	}
	ev := r.rec.wait(t, event.KindCallRinging, nil).(*event.CallRinging)
	if ev.CallID != "ring1" || ev.Account != "1001" || ev.Destination != "13800138000" || ev.Code != 180 {
		t.Errorf("CallRinging = %+v", ev)
	}
	if n := r.rec.count(event.KindCallRinging); n != 1 {
		t.Errorf("%d CallRinging events, want 1", n)
	}
}
