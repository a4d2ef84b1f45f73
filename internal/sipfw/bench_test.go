package sipfw

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
)

// benchProxy is a bound but not running proxy whose upstream is a socket
// nobody reads.
func benchProxy(b *testing.B) (*Proxy, *listener) {
	b.Helper()
	sink, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.51:0")))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	p, err := New(Options{
		Listen:   []string{"udp://127.0.0.11:0"},
		Upstream: "udp://" + sink.LocalAddr().String(),
		Checker:  engine.PassThrough{}, Gate: engine.PassThrough{},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.bind(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.closeAll)
	return p, p.listeners[0]
}

// BenchmarkForwardRequest measures the per-request path from raw bytes to
// the write toward the upstream: parse, Gate, tap extraction, Checker,
// Max-Forwards, loop check, Via/Path/X-AUTH-IP, pending entry and the UDP
// write. Parsing is included.
func BenchmarkForwardRequest(b *testing.B) {
	p, l := benchProxy(b)
	src := netip.MustParseAddrPort("127.0.0.21:5060")
	msgs := map[string][]byte{
		"REGISTER": []byte(crlf(register(nil, l.bind, "1001", "Authorization: Digest username=\"1001\", realm=\"pbx\", nonce=\"n\", response=\"r\"\n"))),
		"INVITE":   []byte(crlf(invite(l.bind, "1001", "0044201", "bench-call", "User-Agent: TestPhone/1.0\n"))),
	}
	for name, data := range msgs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				if v := p.o.Gate.Admit(src.Addr(), now); v.Action != engine.Pass {
					b.Fatal("gated")
				}
				msg, err := p.parser.ParseSIP(data)
				if err != nil {
					b.Fatal(err)
				}
				p.handle(msg, &inbound{from: flow{lis: l, remote: src}, at: now})
			}
		})
	}
}

// BenchmarkParseOnly is the sipgo parse of the same INVITE, to subtract
// from BenchmarkForwardRequest.
func BenchmarkParseOnly(b *testing.B) {
	data := []byte(crlf(invite(mustAP("127.0.0.11:5060"), "1001", "0044201", "bench-call", "User-Agent: TestPhone/1.0\n")))
	parser := sip.NewParser()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parser.ParseSIP(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip measures one OPTIONS transaction phone → proxy → PBX
// → proxy → phone over loopback UDP, one at a time; compare with
// BenchmarkRoundTripDirect (phone ↔ PBX) for the latency the proxy adds.
func BenchmarkRoundTrip(b *testing.B) {
	benchRoundTrip(b, true)
}

// BenchmarkRoundTripDirect is BenchmarkRoundTrip without the proxy.
func BenchmarkRoundTripDirect(b *testing.B) { benchRoundTrip(b, false) }

func benchRoundTrip(b *testing.B, viaProxy bool) {
	// The PBX answers every request with 200 by swapping the start line.
	target := benchPBX(b, "127.0.0.52:0", nil)
	if viaProxy {
		target = runBenchProxy(b, "udp://127.0.0.12:0", target, engine.PassThrough{})
	}
	ph, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.22:0")))
	if err != nil {
		b.Fatal(err)
	}
	defer ph.Close()
	buf := make([]byte, 65536)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		n := strconv.Itoa(i)
		msg := crlf("OPTIONS sip:" + target.String() + " SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.22:5060;branch=z9hG4bK-" + n + ";rport\n" +
			"Max-Forwards: 70\nFrom: <sip:1001@pbx>;tag=" + n + "\nTo: <sip:pbx>\nCall-ID: rt-" + n + "\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
		if _, err := ph.WriteToUDPAddrPort([]byte(msg), target); err != nil {
			b.Fatal(err)
		}
		_ = ph.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := ph.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPBX starts a UDP PBX on addr that answers every request with 200 OK,
// after decorate (when not nil) has added what the benchmark needs, and
// returns its address. It stops when the benchmark ends.
func benchPBX(b *testing.B, addr string, decorate func(*sip.Response)) netip.AddrPort {
	b.Helper()
	pbx, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pbx.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pbx.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(buf[:n])
			req, ok := msg.(*sip.Request)
			if err != nil || !ok {
				continue
			}
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			if decorate != nil {
				decorate(res)
			}
			_, _ = pbx.WriteToUDPAddrPort([]byte(res.String()), from)
		}
	}()
	return pbx.LocalAddr().(*net.UDPAddr).AddrPort()
}

// runBenchProxy runs a proxy listening on listen in front of upstream, checked
// and gated by chk, and returns the address phones send to. It stops when
// the benchmark ends.
func runBenchProxy(b *testing.B, listen string, upstream netip.AddrPort, chk engineChecker) netip.AddrPort {
	b.Helper()
	p, err := New(Options{Listen: []string{listen}, Upstream: "udp://" + upstream.String(), Checker: chk, Gate: chk})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	b.Cleanup(cancel)
	go func() { _ = p.Run(ctx) }()
	<-p.Ready()
	target, _ := netip.ParseAddrPort(p.Addrs()[listen].String())
	return target
}
