package sipfw

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestForwardedHeaders sends requests through a live proxy and checks the
// headers the PBX receives, or the answer the phone gets, per RFC section.
func TestForwardedHeaders(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.31")
	base := func(id, extra string) string {
		return "MESSAGE sip:1001@" + r.addr("udp").String() + " SIP/2.0\n" +
			"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-" + id + "\n" +
			"From: <sip:1001@pbx.example>;tag=" + id + "\nTo: <sip:1002@pbx.example>\n" +
			"Call-ID: " + id + "\nCSeq: 1 MESSAGE\n" + extra + "Content-Length: 0\n\n"
	}
	tests := []struct {
		name string
		msg  string
		// atPBX checks the forwarded request; nil means the phone must get
		// wantCode instead and nothing is forwarded.
		atPBX    func(t *testing.T, req *sip.Request)
		wantCode int
	}{
		{
			name: "RFC 3261 §16.6 step 3: absent Max-Forwards is added as 70",
			msg:  base("mf-absent", ""),
			atPBX: func(t *testing.T, req *sip.Request) {
				if mf := req.MaxForwards(); mf == nil || *mf != 70 {
					t.Errorf("Max-Forwards = %v, want 70", mf)
				}
			},
		},
		{
			name: "RFC 3261 §16.6 step 3: Max-Forwards is decremented",
			msg:  base("mf-dec", "Max-Forwards: 10\n"),
			atPBX: func(t *testing.T, req *sip.Request) {
				if mf := req.MaxForwards(); mf == nil || *mf != 9 {
					t.Errorf("Max-Forwards = %v, want 9", mf)
				}
			},
		},
		{
			name:     "RFC 3261 §16.3 step 3: Max-Forwards 0 is answered 483",
			msg:      base("mf-zero", "Max-Forwards: 0\n"),
			wantCode: 483,
		},
		{
			name: "RFC 3261 §18.2.1 and RFC 3581 §4: received and rport on the client's Via",
			msg:  base("via", "Max-Forwards: 70\n"),
			atPBX: func(t *testing.T, req *sip.Request) {
				vias := req.GetHeaders("Via")
				if len(vias) != 2 {
					t.Fatalf("Vias = %v", vias)
				}
				top := vias[0].(*sip.ViaHeader)
				if b, _ := top.Params.Get("branch"); !strings.HasPrefix(b, branchPrefix) || top.Host != "127.0.0.10" {
					t.Errorf("top Via = %v, want the proxy's with a z9hG4bK branch", top)
				}
				cl := vias[1].(*sip.ViaHeader)
				rec, _ := cl.Params.Get("received")
				rport, _ := cl.Params.Get("rport")
				if rec != "127.0.0.31" || rport != ph.addr().String()[len("127.0.0.31:"):] {
					t.Errorf("client Via = %v, want received=127.0.0.31 rport=%d", cl, ph.addr().Port())
				}
			},
		},
		{
			name: "DESIGN decision 8: X-AUTH-IP from outside is stripped, the real one added",
			msg:  base("xauth", "Max-Forwards: 70\nX-AUTH-IP: 10.1.1.1\nx-auth-ip: 10.2.2.2\nX-Auth-Port: 1\n"),
			atPBX: func(t *testing.T, req *sip.Request) {
				var ips []string
				for _, h := range req.Headers() {
					if strings.EqualFold(h.Name(), "X-AUTH-IP") {
						ips = append(ips, h.Value())
					}
				}
				if len(ips) != 1 || ips[0] != "127.0.0.31" {
					t.Errorf("X-AUTH-IP = %v, want [127.0.0.31]", ips)
				}
				if p := req.GetHeader("X-AUTH-PORT"); p == nil || p.Value() == "1" {
					t.Errorf("X-AUTH-PORT = %v, want the real port", p)
				}
			},
		},
		{
			name: "RFC 3261 §16.6 step 4: non-dialog requests get no Record-Route",
			msg:  base("norr", "Max-Forwards: 70\n"),
			atPBX: func(t *testing.T, req *sip.Request) {
				if rr := req.GetHeaders("Record-Route"); len(rr) != 0 {
					t.Errorf("Record-Route = %v", rr)
				}
			},
		},
		{
			name: "RFC 3261 §16.6 step 4: an initial INVITE gets one Record-Route with lr when both sides are one socket",
			msg:  invite(r.addr("udp"), "1001", "1002", "rr-inv", ""),
			atPBX: func(t *testing.T, req *sip.Request) {
				rr := req.GetHeaders("Record-Route")
				if len(rr) != 1 || !strings.Contains(rr[0].Value(), ";lr") || !strings.Contains(rr[0].Value(), "127.0.0.10") {
					t.Errorf("Record-Route = %v", rr)
				}
			},
		},
		{
			name: "RFC 3261 §16.4: a Route naming the proxy is removed, others kept",
			msg:  base("route", "Max-Forwards: 70\nRoute: <sip:"+r.addr("udp").String()+";lr>\nRoute: <sip:198.51.100.1;lr>\n"),
			atPBX: func(t *testing.T, req *sip.Request) {
				rs := req.GetHeaders("Route")
				if len(rs) != 1 || !strings.Contains(rs[0].Value(), "198.51.100.1") {
					t.Errorf("Route = %v, want only the foreign one", rs)
				}
			},
		},
		{
			name:     "RFC 3261 §16.3 step 2: an unknown URI scheme is answered 416",
			msg:      strings.Replace(base("scheme", "Max-Forwards: 70\n"), "MESSAGE sip:", "MESSAGE urn:", 1),
			wantCode: 416,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ph.send(r.addr("udp"), tc.msg)
			if tc.atPBX == nil {
				if c := ph.recvRes().StatusCode; c != tc.wantCode {
					t.Fatalf("got %d, want %d", c, tc.wantCode)
				}
				r.pbx.empty()
				return
			}
			req := r.pbx.recvReq()
			tc.atPBX(t, req)
			r.pbx.answer(req, 200, "OK", nil)
			ph.recvRes()
		})
	}
}

// TestLoopDetected checks RFC 3261 §16.3 step 4: a request carrying a Via
// the proxy added, with the same loop hash, is answered 482, while one whose
// Request-URI changed (a spiral) is forwarded.
func TestLoopDetected(t *testing.T) {
	r := startRig(t, nil)
	ph := newPeer(t, "127.0.0.32")
	msg := invite(r.addr("udp"), "1001", "1002", "loop-1", "")
	ph.send(r.addr("udp"), msg)
	fwd := r.pbx.recvReq()
	// Send the forwarded request back in from the outside unchanged.
	back := strings.Replace(fwd.String(), "Max-Forwards: 69", "Max-Forwards: 68", 1)
	ph.send(r.addr("udp"), back)
	if c := ph.recvRes().StatusCode; c != 482 {
		t.Fatalf("looped request got %d, want 482", c)
	}
	spiral := strings.Replace(back, "INVITE sip:1002@", "INVITE sip:1003@", 1)
	ph.send(r.addr("udp"), spiral)
	if got := r.pbx.recvReq(); got.Recipient.User != "1003" {
		t.Errorf("spiral not forwarded: %v", got.Recipient)
	}
}

// TestFlowToken checks a token survives a round trip, and that one altered
// in any part, minted under another key or malformed is refused.
func TestFlowToken(t *testing.T) {
	ls := []*listener{{idx: 0, network: "udp"}, {idx: 1, network: "tcp"}}
	c := newFlowCodec([]byte("0123456789abcdef0123456789abcdef"))
	other := newFlowCodec([]byte("fedcba9876543210fedcba9876543210"))
	for _, ap := range []string{"203.0.113.9:5060", "[2001:db8::1]:40000"} {
		f := flow{lis: ls[1], remote: netip.MustParseAddrPort(ap)}
		tok := c.encode(f)
		got, ok := c.decode(tok, ls)
		if !ok || got.lis != ls[1] || got.remote != f.remote {
			t.Errorf("%s: token %q decoded to %+v %v", ap, tok, got, ok)
		}
		if _, ok := other.decode(tok, ls); ok {
			t.Errorf("%s: token minted under another key accepted", ap)
		}
	}
	good := c.encode(flow{lis: ls[0], remote: netip.MustParseAddrPort("127.0.0.1:5060")})
	body, mac, _ := strings.Cut(strings.TrimPrefix(good, "tg.0.7f000001.5060"), ".")
	if body != "" || len(mac) != 2*flowMACLen {
		t.Fatalf("unexpected token layout %q", good)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	for _, tc := range []struct{ name, tok string }{
		{"empty", ""},
		{"user name", "1001"},
		{"prefix only", "tg."},
		{"unsigned (old format)", "tg.0.7f000001.5060"},
		{"address changed", strings.Replace(good, "7f000001", "7f000002", 1)},
		{"port changed", strings.Replace(good, ".5060.", ".5061.", 1)},
		{"listener changed", strings.Replace(good, "tg.0.", "tg.1.", 1)},
		{"mac flipped", flip(good, len(good)-1)},
		{"mac truncated", good[:len(good)-2]},
		{"mac upper case", strings.ToUpper(good[:3]) + good[3:len(good)-20] + strings.ToUpper(good[len(good)-20:])},
		{"no such listener", "tg.9.7f000001.5060." + mac},
		{"bad hex", "tg.0.zzzzzzzz.5060." + mac},
		{"port zero", "tg.0.7f000001.0." + mac},
		{"short address", "tg.0.7f00.5060." + mac},
		{"negative listener", "tg.-1.7f000001.5060." + mac},
		{"leading zero listener", "tg.00.7f000001.5060." + mac},
	} {
		if _, ok := c.decode(tc.tok, ls); ok {
			t.Errorf("%s: decode(%q) accepted", tc.name, tc.tok)
		}
	}
}

// TestStripHeaders checks the identity headers a client must not set are
// removed in any letter case and compact form, and that the list refuses
// headers the proxy needs.
func TestStripHeaders(t *testing.T) {
	set, err := stripSet(append(append([]string(nil), DefaultStripHeaders...), "Identity", "Referred-By"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		strip  bool
	}{
		{"P-Asserted-Identity", "P-Asserted-Identity: <sip:0800@pbx>", true},
		{"lower case", "p-asserted-identity: <sip:0800@pbx>", true},
		{"mixed case", "P-ASSERTED-identity: <sip:0800@pbx>", true},
		{"P-Preferred-Identity", "P-Preferred-Identity: <sip:0800@pbx>", true},
		{"Remote-Party-ID", "Remote-Party-ID: <sip:0800@pbx>;party=calling", true},
		{"X-Forwarded-For", "X-Forwarded-For: 10.0.0.1", true},
		{"X-Real-IP", "X-Real-IP: 10.0.0.1", true},
		{"X-AUTH-IP", "x-Auth-Ip: 10.0.0.1", true},
		{"X-AUTH-PORT", "X-AUTH-PORT: 5060", true},
		{"Identity compact form y", "y: abc", true},
		{"Referred-By compact form b", "b: <sip:x@y>", true},
		{"Referred-By full", "Referred-By: <sip:x@y>", true},
		{"unrelated header kept", "X-Custom: 1", false},
		{"User-Agent kept", "User-Agent: phone", false},
	}
	parser := sip.NewParser()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := crlf("MESSAGE sip:1@h SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\n" +
				"Call-ID: c\nCSeq: 1 MESSAGE\n" + tc.header + "\n" + tc.header + "\nContent-Length: 0\n\n")
			msg, err := parser.ParseSIP([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			req := msg.(*sip.Request)
			name, _, _ := strings.Cut(tc.header, ":")
			stripHeaders(req, set)
			n := 0
			for _, h := range req.Headers() {
				if strings.EqualFold(h.Name(), name) {
					n++
				}
			}
			if tc.strip && n != 0 || !tc.strip && n != 2 {
				t.Errorf("%d %q headers left, strip=%v", n, name, tc.strip)
			}
			if req.Via() == nil || req.CallID() == nil || req.From() == nil {
				t.Error("a mandatory header was removed")
			}
		})
	}
	for _, bad := range []string{"Via", "v", "call-id", "i", "CSeq", "Route", "Contact", "m", "", "X Bad", "X-Bad:"} {
		if _, err := stripSet([]string{bad}); err == nil {
			t.Errorf("stripSet(%q) accepted", bad)
		}
	}
}

// TestMarkReceived checks the proxy writes the source it saw into the
// client's Via and never keeps what the client claimed.
func TestMarkReceived(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.7:40000")
	for _, tc := range []struct{ name, params string }{
		{"no params", ""},
		{"rport asked", ";rport"},
		{"forged received", ";received=10.0.0.9;rport=5060"},
		{"forged received, other case", ";Received=10.0.0.9;RPORT=1"},
		{"received equal to host", ";received=203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := "SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK1" + tc.params
			msg, err := sip.NewParser().ParseSIP([]byte(crlf("OPTIONS sip:h SIP/2.0\nVia: " + h + "\nFrom: <sip:a@h>;tag=1\nTo: <sip:b@h>\nCall-ID: c\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")))
			if err != nil {
				t.Fatal(err)
			}
			v := msg.(*sip.Request).Via()
			markReceived(v, src)
			var rec, rport []string
			for _, kv := range v.Params {
				switch strings.ToLower(kv.K) {
				case "received":
					rec = append(rec, kv.V)
				case "rport":
					rport = append(rport, kv.V)
				}
			}
			if len(rec) != 1 || rec[0] != "203.0.113.7" || len(rport) != 1 || rport[0] != "40000" {
				t.Errorf("Via %v: received=%v rport=%v, want exactly the source", v, rec, rport)
			}
		})
	}
}
