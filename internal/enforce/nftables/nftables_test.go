package nftables

import (
	"github.com/tollguard/tollguard/internal/testkit"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// udpPair is a client bound to a source address and a server on loopback.
type udpPair struct {
	t      *testing.T
	server *net.UDPConn
	client *net.UDPConn
}

func newPair(t *testing.T, src, dst string) *udpPair {
	t.Helper()
	s, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(dst), 0)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0)), s.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return &udpPair{t: t, server: s, client: c}
}

// reaches sends msg from the client and reports whether the server got it.
// A dropped packet is gone at once; 300 ms is only the upper bound of a
// delivery on loopback.
func (p *udpPair) reaches(msg string) bool {
	p.t.Helper()
	if _, err := p.client.Write([]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 64)
	p.server.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		n, from, err := p.server.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == msg {
			// Answer, so conntrack sees both directions (established).
			p.server.WriteToUDP([]byte("ack"), from)
			p.client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			p.client.Read(buf)
			return true
		}
	}
}

// eventuallyReaches is reaches with three tries, for checks that traffic
// flows again: one datagram can be lost on a loaded machine, while a ban
// that still holds drops all three.
func (p *udpPair) eventuallyReaches(msg string) bool {
	for range 3 {
		if p.reaches(msg) {
			return true
		}
	}
	return false
}

func openTest(t *testing.T, reg prometheus.Registerer) *Enforcer {
	t.Helper()
	e, err := Open(Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

var counterRe = regexp.MustCompile(`ct state established,related counter packets (\d+)`)

// A banned address cannot reach a UDP port even though its flow is
// established in conntrack and a host firewall accepts established flows
// before its own drop rule (fail2ban's placement); unban restores it.
func TestBanBeatsEstablishedConntrack(t *testing.T) {
	if !testkit.InNetns(t) {
		return
	}
	testkit.NFT(t, `table inet hostfw {
	chain input {
		type filter hook input priority 0; policy accept;
		ct state established,related counter accept
	}
}
`, "-f", "-")
	p := newPair(t, "127.0.0.2", "127.0.0.1")
	other := newPair(t, "127.0.0.3", "127.0.0.1")
	if !p.reaches("1") || !other.reaches("1") {
		t.Fatal("no traffic before any ban")
	}
	// fail2ban's rule: a drop after the established accept. The
	// established flow is not stopped by it.
	testkit.NFT(t, "", "add", "rule", "inet", "hostfw", "input", "ip", "saddr", "127.0.0.2", "drop")
	if !p.reaches("2") {
		t.Fatal("the established flow was stopped by the filter rule; the test does not show the failure mode")
	}
	m := counterRe.FindStringSubmatch(testkit.NFT(t, "", "list", "chain", "inet", "hostfw", "input"))
	if n, _ := strconv.Atoi(m[1]); m == nil || n == 0 {
		t.Fatalf("no packet was accepted as established: %v", m)
	}
	reg := prometheus.NewRegistry()
	e := openTest(t, reg)
	if n, err := e.Ban(Ban{Addr: netip.MustParseAddr("127.0.0.2"), Until: time.Now().Add(time.Hour)}); err != nil || n != 1 {
		t.Fatalf("Ban = %d, %v", n, err)
	}
	if p.reaches("3") {
		t.Fatal("a banned address reached the port")
	}
	if !other.reaches("3") {
		t.Fatal("an address not banned was dropped")
	}
	// Banning again replaces the element (a new expiry), not an error.
	if _, err := e.Ban(Ban{Addr: netip.MustParseAddr("::ffff:127.0.0.2")}); err != nil {
		t.Fatalf("second Ban: %v", err)
	}
	if got, _ := e.Banned(); len(got) != 1 || got[netip.MustParseAddr("127.0.0.2")] != 0 {
		t.Fatalf("Banned = %v, want 127.0.0.2 without timeout", got)
	}
	testkit.NFT(t, "", "flush", "chain", "inet", "hostfw", "input")
	if err := e.Unban(netip.MustParseAddr("127.0.0.2")); err != nil {
		t.Fatal(err)
	}
	if !p.reaches("4") {
		t.Fatal("unban did not restore the address")
	}
	if f := testutil.ToFloat64(e.flushes); f != 3 {
		t.Errorf("flushes = %v, want 3 (one per call)", f)
	}
}

// An element's timeout is the kernel's: the ban ends without tollguard.
func TestKernelExpiry(t *testing.T) {
	if !testkit.InNetns(t) {
		return
	}
	p := newPair(t, "127.0.0.2", "127.0.0.1")
	e := openTest(t, nil)
	if _, err := e.Ban(Ban{Addr: netip.MustParseAddr("127.0.0.2"), Until: time.Now().Add(1500 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if p.reaches("1") {
		t.Fatal("banned address reached the port")
	}
	e.Close() // tollguard gone: the kernel alone expires the ban
	probe, err := Open(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := probe.Banned()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("element never expired: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !p.reaches("2") {
		t.Fatal("address still dropped after its ban expired")
	}
}

// Sync at start replaces whatever the sets held with the stored bans, in
// IPv4 and IPv6; expired and invalid bans are skipped.
func TestSyncRebuilds(t *testing.T) {
	if !testkit.InNetns(t) {
		return
	}
	a := newPair(t, "127.0.0.2", "127.0.0.1")
	b := newPair(t, "127.0.0.3", "127.0.0.1")
	v6 := newPair(t, "2001:db8::2", "2001:db8::1")
	e := openTest(t, nil)
	if _, err := e.Ban(Ban{Addr: netip.MustParseAddr("127.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	// A restart: a new Enforcer, the same table.
	e = openTest(t, nil)
	now := time.Now()
	n, err := e.Sync([]Ban{
		{Addr: netip.MustParseAddr("127.0.0.3"), Until: now.Add(time.Hour)},
		{Addr: netip.MustParseAddr("2001:db8::2"), Until: now.Add(time.Hour)},
		{Addr: netip.MustParseAddr("127.0.0.3"), Until: now.Add(2 * time.Hour)},
		{Addr: netip.MustParseAddr("192.0.2.9"), Until: now.Add(-time.Second)},
		{},
	})
	if err != nil || n != 2 {
		t.Fatalf("Sync = %d, %v", n, err)
	}
	got, err := e.Banned()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[netip.MustParseAddr("127.0.0.3")] <= 0 || got[netip.MustParseAddr("2001:db8::2")] <= 0 {
		t.Fatalf("Banned = %v", got)
	}
	if !a.reaches("1") {
		t.Error("an address not in the stored bans is still dropped")
	}
	if b.reaches("1") || v6.reaches("1") {
		t.Error("a stored ban was not rebuilt")
	}
	// Remove takes the table away.
	if err := e.Remove(); err != nil {
		t.Fatal(err)
	}
	if !b.eventuallyReaches("2") {
		t.Error("IPv4 traffic still dropped after Remove")
	}
	if !v6.eventuallyReaches("2") {
		t.Error("IPv6 traffic still dropped after Remove")
	}
}
