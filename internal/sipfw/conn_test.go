package sipfw

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// dialFrom opens a TCP connection from ip to the proxy's TCP listener.
func dialFrom(t *testing.T, r *rig, ip string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.MustParseAddrPort(ip+":0")), net.TCPAddrFromAddrPort(r.addr("tcp")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByProxy reports whether the proxy closed c within waitLimit; what
// it sent before (keep-alive pongs) is discarded.
func closedByProxy(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err != nil {
			return errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset")
		}
	}
}

// optionsOver sends an OPTIONS over c, has the PBX answer it, and reports
// whether the answer came back over c.
func optionsOver(t *testing.T, r *rig, c net.Conn, id string) bool {
	t.Helper()
	msg := "OPTIONS sip:" + r.addr("tcp").String() + " SIP/2.0\n" +
		"Via: SIP/2.0/TCP 192.168.1.10:5060;branch=z9hG4bK-" + id + "\n" +
		"From: <sip:1050@pbx.example>;tag=" + id + "\nTo: <sip:pbx.example>\nCall-ID: " + id + "\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
	if _, err := c.Write([]byte(crlf(msg))); err != nil {
		return false
	}
	r.pbx.answer(r.pbx.recvReq(), 200, "OK", nil)
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200")
}

// registerOver registers user over c and waits for the 200.
func registerOver(t *testing.T, r *rig, c net.Conn, user string) {
	t.Helper()
	msg := strings.Replace(register(nil, r.addr("tcp"), user, ""), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := c.Write([]byte(crlf(msg))); err != nil {
		t.Fatal(err)
	}
	r.pbx.answer(r.pbx.recvReq(), 200, "OK", nil)
	if res := readTCPResponse(t, c); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("REGISTER over TCP answered %q", firstLine(res))
	}
}

// TestConnPerSourceCap: one address cannot hold more than its share, and
// another address still gets in.
func TestConnPerSourceCap(t *testing.T) {
	r := startRig(t, func(o *Options, _ *peer) { o.MaxConnectionsPerSource = 3 })
	for range 3 {
		dialFrom(t, r, "127.0.0.81")
	}
	waitConns(t, r, 3)
	if extra := dialFrom(t, r, "127.0.0.81"); !closedByProxy(extra) {
		t.Fatal("a fourth connection from one address was kept")
	}
	waitCounter(t, r.p.m.drops[dropConnLimit], 1)
	if !optionsOver(t, r, dialFrom(t, r, "127.0.0.82"), "cap-other") {
		t.Error("another address could not use a connection")
	}
}

// TestConnPerSourceCapIPv6: IPv6 sources are counted per /64.
func TestConnPerSourceCapIPv6(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"127.0.0.1", "127.0.0.2", false},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
	} {
		ka, kb := sourceKey(netip.MustParseAddr(tc.a)), sourceKey(netip.MustParseAddr(tc.b))
		if (ka == kb) != tc.same {
			t.Errorf("sourceKey(%s)=%v, sourceKey(%s)=%v, want same=%v", tc.a, ka, tc.b, kb, tc.same)
		}
	}
}

// TestConnEvictsIdleUnregistered: with the table full, a newcomer evicts
// the idlest connection that never registered; a registered phone's
// connection is never the one evicted.
func TestConnEvictsIdleUnregistered(t *testing.T) {
	r := startRig(t, func(o *Options, _ *peer) { o.MaxConnections = 4 })
	phone := dialFrom(t, r, "127.0.0.83")
	registerOver(t, r, phone, "1083")
	var idle []*net.TCPConn
	for range 3 {
		idle = append(idle, dialFrom(t, r, "127.0.0.84"))
	}
	waitConns(t, r, 4)
	for range 3 {
		dialFrom(t, r, "127.0.0.85")
	}
	waitCounter(t, r.p.m.drops[dropConnEvict], 3)
	for i, c := range idle {
		if !closedByProxy(c) {
			t.Errorf("idle connection %d not evicted", i)
		}
	}
	if !optionsOver(t, r, phone, "evict-phone") {
		t.Error("the registered phone lost its connection")
	}
	if got := testutilValue(r.p.m.drops[dropConnLimit]); got != 0 {
		t.Errorf("conn_limit drops = %v, want 0 while something could be evicted", got)
	}
}

// TestConnTableRefusesWhenOnlyRegistered: registered connections are never
// evicted; a newcomer is refused instead.
func TestConnTableRefusesWhenOnlyRegistered(t *testing.T) {
	r := startRig(t, func(o *Options, _ *peer) { o.MaxConnections = 1 })
	phone := dialFrom(t, r, "127.0.0.86")
	registerOver(t, r, phone, "1086")
	if c := dialFrom(t, r, "127.0.0.87"); !closedByProxy(c) {
		t.Fatal("a newcomer was kept in a table full of registered phones")
	}
	waitCounter(t, r.p.m.drops[dropConnLimit], 1)
	if !optionsOver(t, r, phone, "only-reg") {
		t.Error("the registered phone lost its connection")
	}
}

// TestConnDeadlines: a silent connection and one that keeps sending only
// keep-alives without registering are closed; a registered phone keeps its
// connection past the unregistered deadline without sending a byte, and
// past the registered one by sending keep-alives.
func TestConnDeadlines(t *testing.T) {
	const short = 300 * time.Millisecond
	const registered = 1 * time.Second
	r := startRig(t, func(o *Options, _ *peer) {
		o.FirstMessageTimeout = short
		o.UnregisteredIdle = short
		o.RegisteredIdle = registered
	})
	silent := dialFrom(t, r, "127.0.0.88")
	if !closedByProxy(silent) {
		t.Fatal("a connection that sent nothing was kept")
	}
	waitCounter(t, r.p.m.drops[dropConnIdle], 1)

	trickle := dialFrom(t, r, "127.0.0.89")
	if !optionsOver(t, r, trickle, "trickle") {
		t.Fatal("OPTIONS over a fresh connection failed")
	}
	quiet := dialFrom(t, r, "127.0.0.90")
	registerOver(t, r, quiet, "1090")
	chatty := dialFrom(t, r, "127.0.0.91")
	registerOver(t, r, chatty, "1091")

	start := time.Now()
	checkedQuiet := false
	for time.Since(start) < registered+registered/2 {
		_, _ = trickle.Write([]byte("\r\n\r\n"))
		if _, err := chatty.Write([]byte("\r\n\r\n")); err != nil {
			t.Fatalf("phone keep-alive: %v", err)
		}
		if !checkedQuiet && time.Since(start) > 2*short {
			checkedQuiet = true
			if !optionsOver(t, r, quiet, "deadline-quiet") {
				t.Error("a registered phone that sent nothing lost its connection at the unregistered deadline")
			}
		}
		time.Sleep(short / 4)
	}
	if !closedByProxy(trickle) {
		t.Error("an unregistered connection sending only keep-alives was kept")
	}
	// The phone read pongs meanwhile; drain them before the OPTIONS.
	_ = chatty.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _ = chatty.Read(make([]byte, 4096))
	if !optionsOver(t, r, chatty, "deadline-chatty") {
		t.Error("a registered phone sending keep-alives lost its connection")
	}
}

// waitConns waits until the proxy holds n stream connections.
func waitConns(t *testing.T, r *rig, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if got, _ := r.p.conns.len(); got == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, _ := r.p.conns.len()
	t.Fatalf("proxy holds %d connections, want %d", got, n)
}
