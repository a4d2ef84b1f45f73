package sipfw

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
)

// countGate passes everything and counts Admit calls per address.
type countGate struct {
	mu sync.Mutex
	n  map[netip.Addr]int
}

func (g *countGate) Admit(a netip.Addr, _ time.Time) engine.Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == nil {
		g.n = make(map[netip.Addr]int)
	}
	g.n[a]++
	return engine.Verdict{}
}

func (g *countGate) count(a netip.Addr) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n[a]
}

// quiet asserts pe receives nothing within a short grace period. It is
// called after a counter showed the proxy finished with the message, so the
// grace only covers a datagram already in flight on loopback.
func (pe *peer) quiet() {
	pe.t.Helper()
	select {
	case m := <-pe.msgs:
		pe.t.Fatalf("peer %s got %q", pe.addr(), strings.SplitN(m.String(), "\r\n", 2)[0])
	case <-time.After(50 * time.Millisecond):
	}
}

// edgeRig is a proxy with a phone registered over UDP, the Path token the
// PBX stored for it, and the tgf the proxy minted for the PBX when it
// forwarded a PBX INVITE to the phone.
type edgeRig struct {
	*rig
	gate     *countGate
	phone    *peer
	phoneTok string // from the Path: names the phone's flow
	pbxTok   string // from the Via on a PBX request: names the PBX
	path     string
}

func startEdgeRig(t *testing.T) *edgeRig {
	t.Helper()
	gate := &countGate{}
	r := startRig(t, func(o *Options, _ *peer) { o.Gate = gate })
	ph := newPeer(t, "127.0.0.41")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "1041", ""))
	reg := r.pbx.recvReq()
	path := reg.GetHeader("Path").Value()
	r.pbx.answer(reg, 200, "OK", nil)
	ph.recvRes()
	u := strings.TrimPrefix(strings.Trim(path, "<>"), "sip:")
	phoneTok, _, _ := strings.Cut(u, "@")

	r.pbx.send(r.addr("udp"), pbxRequest("INVITE", "pbx-edge-1", path, ""))
	inv := ph.recvReq()
	pbxTok, _ := inv.Via().Params.Get("tgf")
	ph.answer(inv, 486, "Busy Here", nil)
	if res := r.pbx.recvRes(); res.StatusCode != 486 {
		t.Fatalf("PBX got %d from the phone", res.StatusCode)
	}
	return &edgeRig{rig: r, gate: gate, phone: ph, phoneTok: phoneTok, pbxTok: pbxTok, path: path}
}

// pbxRequest is a request from the PBX to a phone, routed by route.
func pbxRequest(method, callID, route, extra string) string {
	s := method + " sip:1041@192.168.1.10:5060 SIP/2.0\n" +
		"Via: SIP/2.0/UDP 127.0.0.50:5080;branch=z9hG4bK-" + callID + ";rport\n"
	if route != "" {
		s += "Route: " + route + "\n"
	}
	return s + "Max-Forwards: 70\nFrom: <sip:0800@pbx.example>;tag=pbx\nTo: <sip:1041@pbx.example>\n" +
		"Call-ID: " + callID + "\nCSeq: 10 " + method + "\nContact: <sip:mod_sofia@127.0.0.50:5080>\n" + extra +
		"Content-Length: 0\n\n"
}

// forgedResponse is a response whose top Via names the proxy with tgf (no
// tgf when empty) and whose next Via names to.
func forgedResponse(proxy netip.AddrPort, tgf string, to netip.AddrPort, body string) string {
	top := "SIP/2.0/UDP " + proxy.String() + ";branch=z9hG4bKtg1.2"
	if tgf != "" {
		top += ";tgf=" + tgf
	}
	return "SIP/2.0 200 OK\n" +
		"Via: " + top + "\n" +
		"Via: SIP/2.0/UDP " + to.String() + ";branch=z9hG4bK-victim;received=" + to.Addr().String() + ";rport=" + strconv.Itoa(int(to.Port())) + "\n" +
		"From: <sip:a@x>;tag=1\nTo: <sip:b@x>;tag=2\nCall-ID: forged\nCSeq: 1 INVITE\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\n\n" + body
}

// tokenFor forges a token naming to, with the layout of a real one and a
// MAC that is not the proxy's.
func tokenFor(idx int, to netip.AddrPort, mac string) string {
	a := to.Addr().As4()
	return "tg." + strconv.Itoa(idx) + "." + strings.ToLower(hexString(a[:])) + "." + strconv.Itoa(int(to.Port())) + mac
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestForgedResponsesNotRelayed: a response from outside whose top Via
// names the proxy must reach neither the address its Vias or token name
// (a sink counting datagrams) nor a phone; it is dropped, counted, and
// charged to its source's flood budget.
func TestForgedResponsesNotRelayed(t *testing.T) {
	r := startEdgeRig(t)
	sink := newPeer(t, "127.0.0.99")
	att := newPeer(t, "127.0.0.77")
	otherPort := newPeer(t, "127.0.0.50") // the PBX's address, another port
	guard := r.addr("udp")
	tokMAC := r.phoneTok[strings.LastIndexByte(r.phoneTok, '.'):]
	body := strings.Repeat("v=0\r\n", 2000)
	tests := []struct {
		name string
		from *peer
		tgf  string
	}{
		{"guard's Via without a token, next Via names the sink", att, ""},
		{"unsigned token naming the sink", att, tokenFor(0, sink.addr(), "")},
		{"token naming the sink with a made-up MAC", att, tokenFor(0, sink.addr(), ".0123456789abcdef0123")},
		{"phone's token altered to name the sink, MAC kept", att, tokenFor(0, sink.addr(), tokMAC)},
		{"phone's valid token replayed from outside", att, r.phoneTok},
		{"from the PBX's address on another port, phone's valid token", otherPort, r.phoneTok},
		{"from the PBX's address on another port, token naming the sink", otherPort, tokenFor(0, sink.addr(), ".0123456789abcdef0123")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := r.gate.count(tc.from.addr().Addr())
			tc.from.send(guard, forgedResponse(guard, tc.tgf, sink.addr(), body))
			waitCounter(t, r.p.m.drops[dropForged], float64(i+1))
			sink.quiet()
			r.phone.quiet()
			r.pbx.quiet()
			if got := r.gate.count(tc.from.addr().Addr()) - before; got != 1+forgedCharge {
				t.Errorf("source charged %d Admit calls, want %d", got, 1+forgedCharge)
			}
		})
	}
	// A valid token naming the PBX, replayed from outside, can only reach
	// the PBX, which drops a response it has no transaction for.
	att.send(guard, forgedResponse(guard, r.pbxTok, sink.addr(), ""))
	if res := r.pbx.recvRes(); res.CallID().Value() != "forged" {
		t.Errorf("PBX got %v", res)
	}
	sink.quiet()
	r.phone.quiet()
}

// TestPBXCannotRelay: a request or response from the PBX goes only to a
// flow a verified token names; a Request-URI host, a forged Route or tgf
// are never followed.
func TestPBXCannotRelay(t *testing.T) {
	r := startEdgeRig(t)
	sink := newPeer(t, "127.0.0.98")
	guard := r.addr("udp")
	forgedRoute := "<sip:" + tokenFor(0, sink.addr(), ".0123456789abcdef0123") + "@" + guard.String() + ";lr>"
	tests := []struct{ name, msg string }{
		{"Request-URI naming another host, no Route",
			strings.Replace(pbxRequest("INVITE", "pbx-relay-1", "", ""), "1041@192.168.1.10:5060", "1041@"+sink.addr().String(), 1)},
		{"Route with a forged token", pbxRequest("INVITE", "pbx-relay-2", forgedRoute, "")},
		{"Route naming the proxy without a token", pbxRequest("MESSAGE", "pbx-relay-3", "<sip:"+guard.String()+";lr>", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.pbx.send(guard, tc.msg)
			if res := r.pbx.recvRes(); res.StatusCode != 404 {
				t.Errorf("PBX got %d, want 404", res.StatusCode)
			}
			sink.quiet()
			r.phone.quiet()
		})
	}
	t.Run("response with a forged tgf", func(t *testing.T) {
		n := testutilValue(r.p.m.drops[dropForged])
		r.pbx.send(guard, forgedResponse(guard, tokenFor(0, sink.addr(), ".0123456789abcdef0123"), sink.addr(), ""))
		waitCounter(t, r.p.m.drops[dropForged], n+1)
		sink.quiet()
		if got := r.gate.count(r.pbx.addr().Addr()); got != 0 {
			t.Errorf("the PBX was put to the Gate %d times", got)
		}
	})
	t.Run("response whose tgf names the PBX itself", func(t *testing.T) {
		n := testutilValue(r.p.m.drops[dropForged])
		r.pbx.send(guard, forgedResponse(guard, r.pbxTok, sink.addr(), ""))
		waitCounter(t, r.p.m.drops[dropForged], n+1)
		r.pbx.quiet()
	})
	// The legitimate path still works: the PBX reaches the phone by Path.
	r.pbx.send(guard, pbxRequest("OPTIONS", "pbx-ok", r.path, ""))
	if req := r.phone.recvReq(); req.Method != sip.OPTIONS {
		t.Errorf("phone got %s", req.Method)
	}
}

// TestPBXAddressOtherPortIsOutside: a request from the PBX's address but not
// its port is checked like any client's and goes to the PBX, never to the
// phone its Route names.
func TestPBXAddressOtherPortIsOutside(t *testing.T) {
	r := startEdgeRig(t)
	r.rec.setVerdict(func(ev event.Event) engine.Verdict {
		if rq, ok := ev.(*event.Request); ok && rq.UserAgent == "friendly-scanner" {
			return engine.Verdict{Action: engine.Drop, Rule: "fingerprint"}
		}
		return engine.Verdict{}
	})
	local := newPeer(t, "127.0.0.50")
	guard := r.addr("udp")
	local.send(guard, pbxRequest("INVITE", "local-1", r.path, "User-Agent: friendly-scanner\n"))
	waitCounter(t, r.p.m.drops[dropVerdict], 1)
	r.phone.quiet()
	r.pbx.quiet()

	local.send(guard, pbxRequest("INVITE", "local-2", r.path, "User-Agent: softphone\n"))
	req := r.pbx.recvReq()
	if ip := req.GetHeader("X-AUTH-IP"); ip == nil || ip.Value() != "127.0.0.50" || req.CallID().Value() != "local-2" {
		t.Errorf("PBX got %v with X-AUTH-IP %v, want the request checked as an outside one", req.CallID(), ip)
	}
	r.phone.quiet()
	ca := r.rec.wait(t, event.KindCallAttempt, nil).(*event.CallAttempt)
	if ca.Source != local.addr() {
		t.Errorf("CallAttempt source = %v, want %v", ca.Source, local.addr())
	}
}
