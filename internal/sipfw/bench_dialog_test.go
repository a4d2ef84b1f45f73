package sipfw

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
)

// BenchmarkInviteAnswered measures one initial INVITE and its 200 (with a
// To tag, Contact and a Record-Route of the PBX's) phone → proxy → PBX →
// proxy → phone over loopback UDP, one call at a time with a new Call-ID
// each, so every 200 adds a running call to the dialog table (the table
// fills up to its bound and then evicts). It reports the p50 and p99 of
// the round trip; BenchmarkInviteAnsweredDirect is the same without the
// proxy, for the latency the proxy adds.
func BenchmarkInviteAnswered(b *testing.B) { benchInvite(b, true) }

// BenchmarkInviteAnsweredDirect is BenchmarkInviteAnswered without the
// proxy.
func BenchmarkInviteAnsweredDirect(b *testing.B) { benchInvite(b, false) }

func benchInvite(b *testing.B, viaProxy bool) {
	pbx, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.53:0")))
	if err != nil {
		b.Fatal(err)
	}
	defer pbx.Close()
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
			res.To().Params.Add("tag", "pbx")
			res.PrependHeader(sip.NewHeader("Record-Route", "<sip:127.0.0.53;lr>"))
			res.AppendHeader(sip.NewHeader("Contact", "<sip:trunk@127.0.0.53:5080>"))
			_, _ = pbx.WriteToUDPAddrPort([]byte(res.String()), from)
		}
	}()
	target := pbx.LocalAddr().(*net.UDPAddr).AddrPort()
	if viaProxy {
		p, err := New(Options{Listen: []string{"udp://127.0.0.13:0"}, Upstream: "udp://" + target.String(),
			Checker: engine.PassThrough{}, Gate: engine.PassThrough{}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := contextWithCancel()
		defer cancel()
		go func() { _ = p.Run(ctx) }()
		<-p.Ready()
		target, _ = netip.ParseAddrPort(p.Addrs()["udp://127.0.0.13:0"].String())
	}
	ph, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.23:0")))
	if err != nil {
		b.Fatal(err)
	}
	defer ph.Close()
	buf := make([]byte, 65536)
	var lat []time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		n := strconv.Itoa(i)
		msg := []byte(crlf(invite(target, "1001", "0044201", "bench-"+n, "")))
		start := time.Now()
		if _, err := ph.WriteToUDPAddrPort(msg, target); err != nil {
			b.Fatal(err)
		}
		_ = ph.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := ph.Read(buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
