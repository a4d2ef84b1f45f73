package sipfw

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine"
)

// BenchmarkInviteAnswered measures one initial INVITE and its 200 (with a
// To tag, Contact and a Record-Route of the PBX's) phone → proxy → PBX →
// proxy → phone over loopback UDP, one call at a time with a new Call-ID
// each, so every 200 adds a running call to the dialog table (the table
// fills up to its bound and then evicts). It reports the p50 and p99 of
// the round trip; BenchmarkInviteAnsweredDirect is the same without the
// proxy, for the latency the proxy adds.
func BenchmarkInviteAnswered(b *testing.B) { benchInvite(b, true, nil) }

// BenchmarkInviteAnsweredDirect is BenchmarkInviteAnswered without the
// proxy.
func BenchmarkInviteAnsweredDirect(b *testing.B) { benchInvite(b, false, nil) }

// BenchmarkInviteAnsweredCallPolicy is BenchmarkInviteAnswered with the
// real engine judging every INVITE and counting every answer against 100
// call rules (issue #9's benchmark: the latency the policy adds), each
// call from another of 50,000 accounts.
func BenchmarkInviteAnsweredCallPolicy(b *testing.B) {
	var y strings.Builder
	// One phone address sends every INVITE: lift the flood limit.
	y.WriteString("flood: {limit: 10000000}\ncall_policy:\n  default_country: CN\n  rules:\n")
	for i := range 99 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&y, "    - {name: dest%d, match: {destinations: [\"+%d\"]}, action: reject}\n", i, 200+i)
		case 1:
			fmt.Fprintf(&y, "    - {name: acct%d, match: {accounts: [\"%d\"]}, block: {calls_per_minute: 10, concurrent: 2}}\n", i, 900000+i)
		default:
			fmt.Fprintf(&y, "    - {name: net%d, match: {sources: [\"10.%d.0.0/16\"]}, action: reject}\n", i, i%250)
		}
	}
	y.WriteString("    - {name: burst, match: {accounts: [\"*\"]}, warn: {calls_per_minute: 30}, block: {calls_per_minute: 60, concurrent: 20, calls_per_day: 5000}}\n")
	cfg, err := config.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	set := decision.NewSet()
	e, err := engine.New(cfg, engine.Options{Set: set})
	if err != nil {
		b.Fatal(err)
	}
	benchInvite(b, true, e)
}

// engineChecker is what benchInvite needs of a real engine.
type engineChecker interface {
	engine.Checker
	engine.Gate
}

func benchInvite(b *testing.B, viaProxy bool, eng engineChecker) {
	target := benchPBX(b, "127.0.0.53:0", func(res *sip.Response) {
		res.To().Params.Add("tag", "pbx")
		res.PrependHeader(sip.NewHeader("Record-Route", "<sip:127.0.0.53;lr>"))
		res.AppendHeader(sip.NewHeader("Contact", "<sip:trunk@127.0.0.53:5080>"))
	})
	if viaProxy {
		var chk engineChecker = engine.PassThrough{}
		if eng != nil {
			chk = eng
		}
		target = runBenchProxy(b, "udp://127.0.0.13:0", target, chk)
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
		from, auth := "1001", ""
		if eng != nil {
			// An authenticated phone's INVITE (the PBX checks the
			// digest; the guard judges the account and destination).
			from = strconv.Itoa(100000 + i%50000)
			auth = "Proxy-Authorization: Digest username=\"" + from + "\", realm=\"pbx\", nonce=\"n\", uri=\"sip:0044201@pbx\", response=\"00\"\n"
		}
		msg := []byte(crlf(invite(target, from, "0044201", "bench-"+n, auth)))
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
