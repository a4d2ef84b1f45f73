package integration

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testpeer"
)

// metric reads one sample of the guard's /metrics: name with exactly the
// label set labels (`reason="forged"`), or without labels when empty.
func (g *guard) metric(name, labels string) float64 {
	g.t.Helper()
	res, err := http.Get("http://" + g.Admin.String() + "/metrics")
	if err != nil {
		g.t.Fatalf("reading metrics: %v", err)
	}
	defer res.Body.Close()
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == want {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				g.t.Fatalf("metric %s: %v", want, err)
			}
			return f
		}
	}
	return 0
}

// waitMetric waits until the metric reaches at least min.
func (g *guard) waitMetric(name, labels string, min float64, timeout time.Duration) float64 {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := g.metric(name, labels)
		if v >= min {
			return v
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s{%s} = %v after %v, want at least %v", name, labels, v, timeout, min)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rss returns the guard process's VmRSS and VmHWM in MiB.
func (g *guard) rss() (rss, hwm float64) {
	g.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.Pid()))
	if err != nil {
		g.t.Fatalf("reading the guard's status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// sink is a UDP socket that counts every datagram it receives: the victim
// a reflection attack would aim the guard at.
type sink struct {
	addr netip.AddrPort
	n    atomic.Int64
}

func newSink(t testing.TB) *sink {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(testpeer.LoopbackAddr(t), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &sink{addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			s.n.Add(1)
		}
	}()
	return s
}

// mintToken makes the flow token the guard itself would mint for the flow
// to on listener idx, from the key in its data directory: what an attacker
// who captured a real token, or the key, would hold.
func mintToken(key []byte, idx int, to netip.AddrPort) string {
	a := to.Addr().As4()
	body := fmt.Sprintf("tg.%d.%s.%d", idx, hex.EncodeToString(a[:]), to.Port())
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return body + "." + hex.EncodeToString(m.Sum(nil)[:10])
}

// forgedResponse is a 200 whose top Via names the guard (with tgf when set)
// and whose next Via names victim with received/rport.
func forgedResponse(guard netip.AddrPort, tgf string, victim netip.AddrPort, n int, body string) string {
	top := fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bKtg%d.1", guard, n)
	if tgf != "" {
		top += ";tgf=" + tgf
	}
	return fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-v%d;received=%s;rport=%d\r\n"+
		"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: forged-%d\r\nCSeq: 1 INVITE\r\nContent-Length: %d\r\n\r\n%s",
		top, victim, n, victim.Addr(), victim.Port(), n, len(body), body)
}

// inviteTo is an INVITE whose Request-URI names target, optionally with a
// Route naming the guard with a flow token.
func inviteTo(target netip.AddrPort, route string, n int) string {
	r := ""
	if route != "" {
		r = "Route: " + route + "\r\n"
	}
	return fmt.Sprintf("INVITE sip:1001@%s SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-i%d\r\n%s"+
		"Max-Forwards: 70\r\nFrom: <sip:0800@pbx>;tag=%d\r\nTo: <sip:1001@pbx>\r\nCall-ID: relay-%d\r\nCSeq: 1 INVITE\r\n"+
		"User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n", target, n, r, n, n)
}

// TestForgedResponsesNotRelayed: forged responses (the guard's Via without
// a token, made-up and altered tokens, even a valid token naming the
// victim) from outside sources and from the PBX's address on another port,
// and requests from that port aimed at the victim, reach the victim's sink
// zero times; the drops are counted, and a source that keeps forging is
// banned as a flood.
func TestForgedResponsesNotRelayed(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr})
	s := newSink(t)
	key, err := os.ReadFile(filepath.Join(g.DataDir, "flow.key"))
	if err != nil {
		t.Fatalf("the guard keeps no flow key: %v", err)
	}
	valid := mintToken(key, 0, s.addr)
	altered := mintToken(key, 0, netip.AddrPortFrom(s.addr.Addr(), s.addr.Port()+1))
	altered = strings.Replace(altered, "."+strconv.Itoa(int(s.addr.Port())+1)+".", "."+strconv.Itoa(int(s.addr.Port()))+".", 1)
	madeUp := valid[:len(valid)-20] + "0123456789abcdef0123"
	big := strings.Repeat("a=x-amplification\r\n", 3000) // ~57 KB: the amplification payload

	tokens := []string{"", "tg.0." + valid[5:strings.LastIndexByte(valid, '.')], madeUp, altered, valid}
	const sources, each = 5, 20
	var wg sync.WaitGroup
	for i := range sources {
		src := testpeer.LoopbackAddr(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(g.SIP()))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for n := range each {
				body := ""
				if n%5 == 0 {
					body = big
				}
				_, _ = c.Write([]byte(forgedResponse(g.SIP(), tokens[(i+n)%len(tokens)], s.addr, i*1000+n, body)))
				// A forged response costs its source 1+4 requests of its
				// flood budget, and these sources never registered
				// (flood.stranger_limit, 30 per 2 s): 2.5/s stays under it,
				// so every response is parsed and judged as forged.
				time.Sleep(400 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	g.waitMetric("tollguard_sipfw_drops_total", `reason="forged"`, sources*each, 20*time.Second)

	// The PBX's address on another port is an outside client.
	local, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(k.Addr.Addr(), 0)), net.UDPAddrFromAddrPort(g.SIP()))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	before := g.metric("tollguard_sipfw_drops_total", `reason="forged"`)
	for n, msg := range []string{
		forgedResponse(g.SIP(), valid, s.addr, 9001, big),
		forgedResponse(g.SIP(), "", s.addr, 9002, ""),
	} {
		if _, err := local.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		g.waitMetric("tollguard_sipfw_drops_total", `reason="forged"`, before+float64(n+1), 5*time.Second)
	}
	reqs := g.metric("tollguard_sipfw_requests_total", `method="INVITE"`)
	for n, msg := range []string{
		inviteTo(s.addr, "", 9003),
		inviteTo(s.addr, "<sip:"+valid+"@"+g.SIP().String()+";lr>", 9004),
	} {
		if _, err := local.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		g.waitMetric("tollguard_sipfw_requests_total", `method="INVITE"`, reqs+float64(n+1), 5*time.Second)
	}
	time.Sleep(300 * time.Millisecond) // anything the guard sent is on loopback by now
	if got := s.n.Load(); got != 0 {
		t.Fatalf("the sink received %d datagrams from the guard, want 0", got)
	}

	// Sustained forging from one source is a flood: it gets banned. The
	// first 6 are parsed (6 × 5 = 30, its stranger limit), the rest
	// dropped unparsed, each counting 1, until the ban past flood.limit
	// (200).
	flooder := testpeer.LoopbackAddr(t)
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(flooder, 0)), net.UDPAddrFromAddrPort(g.SIP()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for n := range 250 {
		_, _ = c.Write([]byte(forgedResponse(g.SIP(), madeUp, s.addr, 20000+n, "")))
		time.Sleep(5 * time.Millisecond)
	}
	if bans := g.waitBanned(flooder, 5*time.Second); len(bans) == 0 {
		t.Error("a source forging 200 responses/s was not banned")
	}
	if got := s.n.Load(); got != 0 {
		t.Fatalf("the sink received %d datagrams from the guard, want 0", got)
	}
}

// exhaustion is a connection-exhaustion attack: Sources addresses each
// holding up to PerSource idle connections (split between the TCP and TLS
// listeners), plus OneSource connections from a single address. With
// Reconnect, a slot whose connection the guard closed dials again.
type exhaustion struct {
	Sources, PerSource, OneSource int
	Reconnect                     bool
	TLS                           bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
	open   atomic.Int64 // connections currently open from the attacker's side
	dialed atomic.Int64
}

// start launches the attack against g and returns once every slot dialled
// once.
func (e *exhaustion) start(t testing.TB, g *guard) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	var first sync.WaitGroup
	slot := func(src netip.Addr, dst netip.AddrPort) {
		defer e.wg.Done()
		once := false
		for ctx.Err() == nil {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 2 * time.Second}
			c, err := d.DialContext(ctx, "tcp", dst.String())
			e.dialed.Add(1)
			if !once {
				once = true
				first.Done()
			}
			if err != nil {
				if !e.Reconnect {
					return
				}
				time.Sleep(200 * time.Millisecond)
				continue
			}
			e.open.Add(1)
			go func() { <-ctx.Done(); c.Close() }()
			opened := time.Now()
			_, _ = c.Read(make([]byte, 1)) // blocks until the guard closes it
			e.open.Add(-1)
			c.Close()
			if !e.Reconnect {
				return
			}
			if time.Since(opened) < 100*time.Millisecond {
				time.Sleep(500 * time.Millisecond) // refused at once: back off a little
			} else {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	dsts := []netip.AddrPort{g.SIP()}
	if e.TLS {
		dsts = append(dsts, g.TLS())
	}
	launch := func(src netip.Addr, n int) {
		for i := range n {
			e.wg.Add(1)
			first.Add(1)
			go slot(src, dsts[i%len(dsts)])
		}
	}
	for range e.Sources {
		launch(testpeer.LoopbackAddr(t), e.PerSource)
	}
	if e.OneSource > 0 {
		launch(testpeer.LoopbackAddr(t), e.OneSource)
	}
	first.Wait()
}

func (e *exhaustion) stop() {
	e.cancel()
	e.wg.Wait()
}

// phonesRegister registers a sipp phone over TCP and a Go phone over TLS.
func phonesRegister(t *testing.T, g *guard, pki *testpeer.PKI) {
	t.Helper()
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: testpeer.LoopbackAddr(t), Remote: g.SIP(),
		Transport: "tcp", User: "1002", Password: users["1002"]})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := testpeer.RegisterTLS(ctx, testpeer.TLSPhoneOptions{Local: testpeer.LoopbackAddr(t), Server: g.TLS(),
		User: "1003", Password: users["1003"], Roots: pki.Roots})
	if err != nil || code != 200 {
		t.Fatalf("REGISTER over TLS during the attack = %d, %v; want 200", code, err)
	}
}

// TestConnectionExhaustion: idle TCP and TLS connections from many
// addresses (more than the table holds) and a burst from one address leave
// a sipp phone able to register over TCP and a Go phone over TLS,
// throughout. The full-size run is BenchmarkConnectionExhaustion.
func TestConnectionExhaustion(t *testing.T) {
	t.Parallel()
	k, _ := pbx(t)
	addr := testpeer.LoopbackAddr(t)
	pki := testpeer.NewPKI(t, addr)
	g := startGuard(t, guardOptions{Addr: addr, Upstream: k.Addr, PKI: pki,
		SIPExtra: "  max_connections: 200\n  max_connections_per_source: 8\n  first_message_timeout: 3s\n"})
	// 30 sources × 12 slots: up to 240 held, over the table's 200, so
	// idle ones are evicted; one source dials 500 at once.
	e := &exhaustion{Sources: 30, PerSource: 12, OneSource: 500, Reconnect: true, TLS: true}
	e.start(t, g)
	defer e.stop()
	g.waitMetric("tollguard_sipfw_drops_total", `reason="conn_limit"`, 1, 10*time.Second)
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) { phonesRegister(t, g, pki) })
	}
	if n := g.metric("tollguard_sipfw_connections", ""); n > 200 {
		t.Errorf("guard holds %v connections, over max_connections 200", n)
	}
	if ev := g.metric("tollguard_sipfw_drops_total", `reason="conn_evicted"`); ev == 0 {
		t.Error("no idle connection was evicted although the table was full")
	}
	rss, hwm := g.rss()
	t.Logf("attacker dialled %d connections, holds %d; guard RSS %.1f MiB (peak %.1f)", e.dialed.Load(), e.open.Load(), rss, hwm)
	if hwm > 100 {
		t.Errorf("guard peak RSS %.1f MiB, want under 100", hwm)
	}
}

// BenchmarkConnectionExhaustion is the full-size attack of issue 8: 16,800
// idle connections from 112 addresses (150 each, TCP and TLS) plus 2,000
// from one address (the test process's 20,000 descriptors bound the total), against the default limits. It reports the guard's RSS
// while they are held and checks a phone registers over TCP and TLS.
//
//	go test -run '^$' -bench ConnectionExhaustion -benchtime 1x ./test/integration/
func BenchmarkConnectionExhaustion(b *testing.B) {
	for b.Loop() {
		k := testpeer.StartKamailio(b, testpeer.KamailioOptions{Users: users})
		addr := testpeer.LoopbackAddr(b)
		pki := testpeer.NewPKI(b, addr)
		g := startGuard(b, guardOptions{Addr: addr, Upstream: k.Addr, PKI: pki})
		base, _ := g.rss()
		start := time.Now()
		e := &exhaustion{Sources: 112, PerSource: 150, OneSource: 2000, TLS: true}
		e.start(b, g)
		took := time.Since(start)
		held := g.metric("tollguard_sipfw_drops_total", `reason="conn_limit"`)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, err := testpeer.RegisterTLS(ctx, testpeer.TLSPhoneOptions{Local: testpeer.LoopbackAddr(b), Server: g.TLS(),
			User: "1003", Password: users["1003"], Roots: pki.Roots})
		cancel()
		if err != nil || code != 200 {
			b.Errorf("REGISTER over TLS under attack = %d, %v", code, err)
		}
		r := testpeer.Sipp(b, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: testpeer.LoopbackAddr(b), Remote: g.SIP(),
			Transport: "tcp", User: "1002", Password: users["1002"]})
		if r.ExitCode != 0 || r.Successful != 1 {
			b.Errorf("REGISTER over TCP under attack: %s", r.Summary())
		}
		rss, hwm := g.rss()
		b.ReportMetric(g.metric("go_memstats_heap_inuse_bytes", "")/(1<<20), "heap-inuse-MiB")
		b.ReportMetric(g.metric("go_memstats_stack_inuse_bytes", "")/(1<<20), "stack-inuse-MiB")
		b.ReportMetric(g.metric("go_goroutines", ""), "goroutines")
		b.ReportMetric(float64(e.dialed.Load()), "dialled")
		b.ReportMetric(float64(e.open.Load()), "held-by-attacker")
		b.ReportMetric(held, "refused")
		b.ReportMetric(g.metric("tollguard_sipfw_drops_total", `reason="gate"`), "gated")
		b.ReportMetric(g.metric("tollguard_sipfw_drops_total", `reason="conn_evicted"`), "evicted")
		b.ReportMetric(base, "rss-idle-MiB")
		b.ReportMetric(rss, "rss-MiB")
		b.ReportMetric(hwm, "peak-rss-MiB")
		b.ReportMetric(took.Seconds(), "dial-s")
		e.stop()
		if hwm > 100 {
			b.Errorf("guard peak RSS %.1f MiB, want under 100", hwm)
		}
	}
}
