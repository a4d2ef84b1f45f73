package sipfw

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
)

// waitLimit bounds every wait in these tests; it is a failure deadline, not
// a speed assertion.
const waitLimit = 5 * time.Second

// peer is a UDP SIP endpoint on its own loopback address: a phone, an
// attacker or the fake PBX.
type peer struct {
	t    *testing.T
	c    *net.UDPConn
	msgs chan sip.Message
}

func newPeer(t *testing.T, ip string) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ip+":0")))
	if err != nil {
		t.Fatalf("peer %s: %v", ip, err)
	}
	pe := &peer{t: t, c: c, msgs: make(chan sip.Message, 64)}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			pe.msgs <- m
		}
	}()
	return pe
}

func (pe *peer) addr() netip.AddrPort { return pe.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (pe *peer) send(to netip.AddrPort, msg string) {
	pe.t.Helper()
	if _, err := pe.c.WriteToUDPAddrPort([]byte(crlf(msg)), to); err != nil {
		pe.t.Fatalf("send: %v", err)
	}
}

func (pe *peer) sendMsg(to netip.AddrPort, m sip.Message) { pe.send(to, m.String()) }

func (pe *peer) recv() sip.Message {
	pe.t.Helper()
	select {
	case m := <-pe.msgs:
		return m
	case <-time.After(waitLimit):
		pe.t.Fatalf("peer %s: nothing received", pe.addr())
		return nil
	}
}

func (pe *peer) recvReq() *sip.Request {
	pe.t.Helper()
	m := pe.recv()
	r, ok := m.(*sip.Request)
	if !ok {
		pe.t.Fatalf("got response %q, want a request", m.(*sip.Response).StartLine())
	}
	return r
}

func (pe *peer) recvRes() *sip.Response {
	pe.t.Helper()
	m := pe.recv()
	r, ok := m.(*sip.Response)
	if !ok {
		pe.t.Fatalf("got request %q, want a response", m.(*sip.Request).StartLine())
	}
	return r
}

// empty asserts nothing is queued right now.
func (pe *peer) empty() {
	pe.t.Helper()
	select {
	case m := <-pe.msgs:
		pe.t.Fatalf("peer %s got unexpected %q", pe.addr(), strings.SplitN(m.String(), "\r\n", 2)[0])
	default:
	}
}

// answer sends a response to req back where it came from, as a UAS would
// (RFC 3261 §18.2.2, by the top Via's received/rport).
func (pe *peer) answer(req *sip.Request, code int, reason string, mod func(*sip.Response)) {
	pe.t.Helper()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if mod != nil {
		mod(res)
	}
	v := req.Via()
	host := v.Host
	if r, ok := v.Params.Get("received"); ok {
		host = r
	}
	port := v.Port
	if r, ok := v.Params.Get("rport"); ok && r != "" {
		port = atoi(r)
	}
	pe.sendMsg(netip.AddrPortFrom(netip.MustParseAddr(host), uint16(port)), res)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// recorder is a Checker that records every event and answers with verdict.
type recorder struct {
	mu      sync.Mutex
	evs     []event.Event
	verdict func(event.Event) engine.Verdict
}

func (r *recorder) Check(_ context.Context, ev event.Event) engine.Verdict {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	v := r.verdict
	r.mu.Unlock()
	if v != nil {
		return v(ev)
	}
	return engine.Verdict{}
}

func (r *recorder) setVerdict(v func(event.Event) engine.Verdict) {
	r.mu.Lock()
	r.verdict = v
	r.mu.Unlock()
}

// wait returns the first recorded event of kind k matching ok.
func (r *recorder) wait(t *testing.T, k event.Kind, ok func(event.Event) bool) event.Event {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, ev := range r.evs {
			if ev.Kind() == k && (ok == nil || ok(ev)) {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s event recorded", k)
	return nil
}

func (r *recorder) count(k event.Kind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if ev.Kind() == k {
			n++
		}
	}
	return n
}

// banGate refuses the addresses in banned.
type banGate struct{ banned map[netip.Addr]bool }

func (g banGate) Admit(a netip.Addr, _ time.Time) engine.Verdict {
	if g.banned[a] {
		return engine.Verdict{Action: engine.Drop, Rule: "ban"}
	}
	return engine.Verdict{}
}

// rig is a running proxy with a fake PBX.
type rig struct {
	p   *Proxy
	pbx *peer
	rec *recorder
	reg *prometheus.Registry
}

// startRig runs a proxy on 127.0.0.10 in front of a fake PBX on
// 127.0.0.50; mod adjusts the options first.
func startRig(t *testing.T, mod func(*Options, *peer)) *rig {
	t.Helper()
	pbx := newPeer(t, "127.0.0.50")
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	o := Options{
		Listen:          []string{"udp://127.0.0.10:0", "tcp://127.0.0.10:0"},
		Upstream:        "udp://" + pbx.addr().String(),
		UpstreamTimeout: 300 * time.Millisecond,
		Checker:         rec,
		Gate:            engine.PassThrough{},
		Registry:        reg,
	}
	if mod != nil {
		mod(&o, pbx)
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return &rig{p: p, pbx: pbx, rec: rec, reg: reg}
}

// addr is the bound address of the default route's listener whose URL
// starts with scheme.
func (r *rig) addr(scheme string) netip.AddrPort {
	for u, a := range r.p.Addrs() {
		if strings.HasPrefix(u, scheme+"://127.0.0.10:") {
			ap, _ := netip.ParseAddrPort(a.String())
			return ap
		}
	}
	panic("no " + scheme + " listener")
}

// waitCounter waits until c reaches want.
func waitCounter(t *testing.T, c prometheus.Collector, want float64) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if testutil.ToFloat64(c) >= want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("counter = %v, want %v", testutil.ToFloat64(c), want)
}

// register is a REGISTER from ph for user, as a phone behind NAT sends it:
// its Via and Contact name a private address.
func register(ph *peer, to netip.AddrPort, user, extra string) string {
	return "REGISTER sip:" + to.String() + " SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-reg-" + user + ";rport\n" +
		"Max-Forwards: 70\n" +
		"From: <sip:" + user + "@pbx.example>;tag=f" + user + "\n" +
		"To: <sip:" + user + "@pbx.example>\n" +
		"Call-ID: reg-" + user + "@192.168.1.10\n" +
		"CSeq: 1 REGISTER\n" +
		"Contact: <sip:" + user + "@192.168.1.10:5060>;expires=600\n" +
		"User-Agent: TestPhone/1.0\n" + extra +
		"Content-Length: 0\n\n"
}

// invite is an initial INVITE from user to dest.
func invite(to netip.AddrPort, user, dest, callID, extra string) string {
	return "INVITE sip:" + dest + "@" + to.String() + " SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-inv-" + callID + ";rport\n" +
		"Max-Forwards: 70\n" +
		"From: <sip:" + user + "@pbx.example>;tag=f" + callID + "\n" +
		"To: <sip:" + dest + "@pbx.example>\n" +
		"Call-ID: " + callID + "\n" +
		"CSeq: 1 INVITE\n" +
		"Contact: <sip:" + user + "@192.168.1.10:5060>\n" + extra +
		"Content-Length: 0\n\n"
}

func testutilValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
