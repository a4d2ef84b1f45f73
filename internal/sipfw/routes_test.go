package sipfw

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildRoutes(t *testing.T) {
	pf := netip.MustParsePrefix
	base := func(mod func(*Options)) Options {
		o := Options{Listen: []string{"udp://127.0.0.1:5060"}, Upstream: "udp://127.0.0.1:5070"}
		mod(&o)
		return o
	}
	tests := []struct {
		name    string
		o       Options
		want    []string // route names, in order
		wantErr string
	}{
		{"default route only", base(func(*Options) {}), []string{"default"}, ""},
		{"default and external", base(func(o *Options) {
			o.Routes = []Route{{Name: "external", Listen: []string{"udp://127.0.0.1:5080"}, Upstream: "udp://127.0.0.1:5090"}}
		}), []string{"default", "external"}, ""},
		{"routes only", Options{Routes: []Route{
			{Name: "internal", Listen: []string{"udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"}, Upstream: "udp://127.0.0.1:5070"},
			{Name: "external", Listen: []string{"udp://127.0.0.1:5080"}, Upstream: "udp://127.0.0.1:5090"},
		}}, []string{"internal", "external"}, ""},
		{"nothing", Options{}, nil, "no listeners"},
		{"upstream without listeners", Options{Upstream: "udp://127.0.0.1:5070"}, nil, `route "default": no listeners`},
		{"bad name", base(func(o *Options) {
			o.Routes = []Route{{Name: "Ext ernal", Listen: []string{"udp://127.0.0.1:5080"}, Upstream: "udp://127.0.0.1:5090"}}
		}), nil, "route name"},
		{"name used twice", base(func(o *Options) {
			o.Routes = []Route{{Name: "default", Listen: []string{"udp://127.0.0.1:5080"}, Upstream: "udp://127.0.0.1:5090"}}
		}), nil, "name used twice"},
		{"listener in two routes", base(func(o *Options) {
			o.Routes = []Route{{Name: "external", Listen: []string{"udp://127.0.0.1:5060"}, Upstream: "udp://127.0.0.1:5090"}}
		}), nil, "bound twice"},
		{"one upstream for two routes", base(func(o *Options) {
			o.Routes = []Route{{Name: "external", Listen: []string{"udp://127.0.0.1:5080"}, Upstream: "udp://127.0.0.1:5070"}}
		}), nil, `is route "default"'s too`},
		{"tls upstream", base(func(o *Options) {
			o.Routes = []Route{{Name: "external", Listen: []string{"udp://127.0.0.1:5080"}, Upstream: "tls://127.0.0.1:5090"}}
		}), nil, "only udp and tcp"},
		{"tls listener without a config", base(func(o *Options) {
			o.Routes = []Route{{Name: "external", Listen: []string{"tls://127.0.0.1:5081"}, Upstream: "udp://127.0.0.1:5090"}}
		}), nil, "needs a TLS config"},
		{"udp and tcp on one port", base(func(o *Options) {
			o.Routes = []Route{{Name: "external", Listen: []string{"tcp://127.0.0.1:5060"}, Upstream: "udp://127.0.0.1:5090",
				AllowSources: []netip.Prefix{pf("192.0.2.0/24")}}}
		}), []string{"default", "external"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := buildRoutes(&tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.name)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("routes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRouteAdmits(t *testing.T) {
	pf := netip.MustParsePrefix
	ad := netip.MustParseAddr
	tests := []struct {
		name        string
		allow, deny []netip.Prefix
		src         netip.Addr
		want        bool
	}{
		{"no lists: anyone", nil, nil, ad("203.0.113.9"), true},
		{"in allow", []netip.Prefix{pf("192.0.2.0/24")}, nil, ad("192.0.2.7"), true},
		{"outside allow", []netip.Prefix{pf("192.0.2.0/24")}, nil, ad("203.0.113.9"), false},
		{"denied", nil, []netip.Prefix{pf("192.0.2.7/32")}, ad("192.0.2.7"), false},
		{"deny wins over allow", []netip.Prefix{pf("192.0.2.0/24")}, []netip.Prefix{pf("192.0.2.7/32")}, ad("192.0.2.7"), false},
		{"mapped prefix matches a plain IPv4 source", []netip.Prefix{pf("::ffff:192.0.2.0/120")}, nil, ad("192.0.2.7"), true},
		{"IPv6 source outside an IPv4 allow list", []netip.Prefix{pf("192.0.2.0/24")}, nil, ad("2001:db8::1"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &upstream{allow: masked(tc.allow), deny: masked(tc.deny)}
			if got := u.admits(tc.src); got != tc.want {
				t.Errorf("admits(%v) = %v, want %v", tc.src, got, tc.want)
			}
		})
	}
}

// routesRig is a proxy with two routes: "default" (phones: UDP and TCP on
// 127.0.0.10, PBX A on 127.0.0.50, the trunk's address denied) and
// "external" (trunks: UDP on 127.0.0.11, PBX B on 127.0.0.51, only the
// trunk's address allowed), and a phone registered on the default route.
type routesRig struct {
	*rig
	pbxB  *peer
	phone *peer
	trunk *peer
	path  string // the Path PBX A stored for the phone
	regTG string // the tgf PBX A saw on the phone's REGISTER
}

func startRoutesRig(t *testing.T) *routesRig {
	t.Helper()
	pbxB := newPeer(t, "127.0.0.51")
	trunk := newPeer(t, "127.0.0.60")
	r := startRig(t, func(o *Options, _ *peer) {
		o.DenySources = []netip.Prefix{netip.MustParsePrefix("127.0.0.60/32")}
		o.Routes = []Route{{Name: "external", Listen: []string{"udp://127.0.0.11:0"}, Upstream: "udp://" + pbxB.addr().String(),
			AllowSources: []netip.Prefix{netip.MustParsePrefix("127.0.0.60/32")}}}
	})
	ph := newPeer(t, "127.0.0.41")
	ph.send(r.addr("udp"), register(ph, r.addr("udp"), "1041", ""))
	reg := r.pbx.recvReq()
	path := reg.GetHeader("Path").Value()
	tgf, _ := reg.Via().Params.Get("tgf")
	r.pbx.answer(reg, 200, "OK", nil)
	if res := ph.recvRes(); res.StatusCode != 200 {
		t.Fatalf("phone got %d", res.StatusCode)
	}
	return &routesRig{rig: r, pbxB: pbxB, phone: ph, trunk: trunk, path: path, regTG: tgf}
}

// ext is the external route's listener.
func (r *routesRig) ext() netip.AddrPort {
	for u, a := range r.p.Addrs() {
		if strings.HasPrefix(u, "udp://127.0.0.11:") {
			return netip.MustParseAddrPort(a.String())
		}
	}
	panic("no external listener")
}

// TestRoutesSeparateUpstreams: each listener reaches its own upstream
// only; a source a route does not admit is dropped before parsing.
func TestRoutesSeparateUpstreams(t *testing.T) {
	r := startRoutesRig(t)
	r.pbxB.quiet() // the phone's REGISTER went to PBX A only
	t.Run("trunk on the external listener reaches PBX B", func(t *testing.T) {
		r.trunk.send(r.ext(), invite(r.ext(), "carrier", "0800", "trunk-1", ""))
		req := r.pbxB.recvReq()
		if got := req.GetHeader("X-AUTH-IP"); got == nil || got.Value() != "127.0.0.60" {
			t.Errorf("X-AUTH-IP = %v", got)
		}
		if v := req.Via(); v.Host != "127.0.0.11" || v.Port != int(r.ext().Port()) {
			t.Errorf("top Via %s:%d, want the external listener", v.Host, v.Port)
		}
		r.pbxB.answer(req, 486, "Busy Here", nil)
		if res := r.trunk.recvRes(); res.StatusCode != 486 {
			t.Errorf("trunk got %d", res.StatusCode)
		}
		r.pbx.quiet()
	})
	t.Run("trunk on the phones' listener is dropped", func(t *testing.T) {
		n := testutil.ToFloat64(r.p.m.drops[dropRoute])
		r.trunk.send(r.addr("udp"), invite(r.addr("udp"), "carrier", "0800", "trunk-2", ""))
		waitCounter(t, r.p.m.drops[dropRoute], n+1)
		r.pbx.quiet()
		r.pbxB.quiet()
		r.trunk.quiet()
	})
	t.Run("phone on the trunks' listener is dropped", func(t *testing.T) {
		n := testutil.ToFloat64(r.p.m.drops[dropRoute])
		r.phone.send(r.ext(), invite(r.ext(), "1041", "0800", "phone-ext", ""))
		waitCounter(t, r.p.m.drops[dropRoute], n+1)
		r.pbx.quiet()
		r.pbxB.quiet()
	})
	t.Run("trunk's TCP connection to the phones' listener is closed", func(t *testing.T) {
		n := testutil.ToFloat64(r.p.m.drops[dropRoute])
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.60")}}
		c, err := d.Dial("tcp", r.addr("tcp").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
			t.Errorf("read = %v, want the connection closed", err)
		}
		waitCounter(t, r.p.m.drops[dropRoute], n+1)
	})
	t.Run("PBX A on the trunks' listener is an outside source", func(t *testing.T) {
		n := testutil.ToFloat64(r.p.m.drops[dropRoute])
		r.pbx.send(r.ext(), pbxRequest("INVITE", "a-on-b", r.path, ""))
		waitCounter(t, r.p.m.drops[dropRoute], n+1)
		r.phone.quiet()
		r.pbxB.quiet()
	})
	t.Run("each route has its own health gauge", func(t *testing.T) {
		for _, name := range []string{"default", "external"} {
			if got := testutil.ToFloat64(r.p.m.upstream.WithLabelValues(name)); got != 1 {
				t.Errorf("upstream_up{route=%q} = %v, want 1", name, got)
			}
		}
	})
}

// TestRoutesTokenNotReplayedAcross: a flow token minted on one route is
// refused on another: PBX B cannot reach the phone PBX A registered, by
// Path or by a response's tgf, and PBX A still can.
func TestRoutesTokenNotReplayedAcross(t *testing.T) {
	r := startRoutesRig(t)
	t.Run("PBX B routes a request by the phone's Path", func(t *testing.T) {
		r.pbxB.send(r.ext(), pbxRequest("INVITE", "b-by-path", r.path, ""))
		if res := r.pbxB.recvRes(); res.StatusCode != 404 {
			t.Errorf("PBX B got %d, want 404", res.StatusCode)
		}
		r.phone.quiet()
	})
	t.Run("PBX B answers with the phone's tgf", func(t *testing.T) {
		n := testutil.ToFloat64(r.p.m.drops[dropForged])
		r.pbxB.send(r.ext(), forgedResponse(r.ext(), r.regTG, r.phone.addr(), ""))
		waitCounter(t, r.p.m.drops[dropForged], n+1)
		r.phone.quiet()
	})
	t.Run("PBX B on the phones' listener is an outside client", func(t *testing.T) {
		r.pbxB.send(r.addr("udp"), pbxRequest("INVITE", "b-on-a", r.path, ""))
		req := r.pbx.recvReq()
		if ip := req.GetHeader("X-AUTH-IP"); ip == nil || ip.Value() != "127.0.0.51" {
			t.Errorf("PBX A got X-AUTH-IP %v, want PBX B's address as a client", ip)
		}
		r.phone.quiet()
	})
	t.Run("PBX A reaches its phone", func(t *testing.T) {
		r.pbx.send(r.addr("udp"), pbxRequest("OPTIONS", "a-by-path", r.path, ""))
		if req := r.phone.recvReq(); req.CallID().Value() != "a-by-path" {
			t.Errorf("phone got %v", req.CallID())
		}
	})
}

// TestRoutesTCPUpstream: a route whose upstream is tcp:// dials its own
// connection and gets its own inside listener.
func TestRoutesTCPUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.52:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := startRig(t, func(o *Options, _ *peer) {
		o.Routes = []Route{{Name: "external", Listen: []string{"udp://127.0.0.11:0"}, Upstream: "tcp://" + ln.Addr().String()}}
	})
	var ext netip.AddrPort
	for u, a := range r.p.Addrs() {
		if strings.HasPrefix(u, "udp://127.0.0.11:") {
			ext = netip.MustParseAddrPort(a.String())
		}
	}
	trunk := newPeer(t, "127.0.0.60")
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(waitLimit))
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		got <- string(buf[:n])
	}()
	// The first request starts the dial and gets 503; the next goes over
	// the dialled connection.
	deadline := time.Now().Add(waitLimit)
	for i := 0; ; i++ {
		trunk.send(ext, invite(ext, "carrier", "0800", "tcp-up-"+string(rune('a'+i)), ""))
		select {
		case s := <-got:
			if !strings.Contains(s, "SIP/2.0/TCP") || !strings.Contains(s, "X-AUTH-IP: 127.0.0.60") {
				t.Errorf("PBX B got %q", s)
			}
			r.pbx.quiet()
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the external route's TCP upstream got nothing")
		}
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "reset")
}

// TestDialogSideOfRoute: a BYE from the PBX side is the PBX leg's only
// when it comes from the PBX of the call's own route.
func TestDialogSideOfRoute(t *testing.T) {
	ra, rb := &upstream{name: "default"}, &upstream{name: "external"}
	la, lb := &listener{idx: 0, route: ra}, &listener{idx: 1, route: rb}
	phone := flow{lis: la, remote: netip.MustParseAddrPort("192.0.2.7:5060")}
	d := &dialog{caller: leg{flow: phone, tag: "ph"}, callee: leg{flow: flow{lis: la, remote: netip.MustParseAddrPort("127.0.0.1:5080")}, up: true, tag: "pbx"}}
	bye, err := sip.ParseMessage([]byte(crlf("BYE sip:x@y SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\n" +
		"From: <sip:b@y>;tag=pbx\nTo: <sip:a@y>;tag=ph\nCall-ID: c\nCSeq: 9 BYE\nContent-Length: 0\n\n")))
	if err != nil {
		t.Fatal(err)
	}
	req := bye.(*sip.Request)
	if got := d.sideOf(req, true, flow{lis: la, remote: netip.MustParseAddrPort("127.0.0.1:5080")}); got != &d.callee {
		t.Errorf("BYE from the call's own PBX: side %v, want the PBX leg", got)
	}
	if got := d.sideOf(req, true, flow{lis: lb, remote: netip.MustParseAddrPort("127.0.0.1:5090")}); got != nil {
		t.Errorf("BYE from another route's PBX: side %v, want none", got)
	}
}

// TestRoutesHangupAnswers: the proxy's BYE to a route's PBX is answered by
// that PBX only; another route's PBX answering it is a forged drop.
func TestRoutesHangupAnswers(t *testing.T) {
	r := startRoutesRig(t)
	r.trunk.send(r.ext(), invite(r.ext(), "carrier", "0800", "route-hang", ""))
	fwd := r.pbxB.recvReq()
	r.pbxB.answer(fwd, 200, "OK", func(res *sip.Response) {
		res.To().Params.Add("tag", "pbxb")
		res.AppendHeader(sip.NewHeader("Contact", "<sip:0800@127.0.0.51:5080>"))
	})
	if res := r.trunk.recvRes(); res.StatusCode != 200 {
		t.Fatalf("trunk got %d", res.StatusCode)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() { done <- r.p.HangupCall(ctx, "route-hang") }()
	toPBX := r.pbxB.recvReq()
	toTrunk := r.trunk.recvReq()
	if toPBX.Method != sip.BYE || toTrunk.Method != sip.BYE {
		t.Fatalf("got %s and %s, want BYEs", toPBX.Method, toTrunk.Method)
	}
	n := testutil.ToFloat64(r.p.m.drops[dropForged])
	r.pbx.sendMsg(r.addr("udp"), sip.NewResponseFromRequest(toPBX, 200, "OK", nil))
	waitCounter(t, r.p.m.drops[dropForged], n+1)
	r.pbxB.answer(toPBX, 200, "OK", nil)
	r.trunk.answer(toTrunk, 200, "OK", nil)
	if err := <-done; err != nil {
		t.Fatalf("HangupCall = %v", err)
	}
}
