package testpeer

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
)

// Forge sends payload as one UDP datagram to dst whose IPv4 source address
// and port claim to be src, through a raw socket (IP_HDRINCL): the way an
// attacker on the internet forges a victim's address. It needs root
// (CAP_NET_RAW); without it the test fails when CI is set and is skipped
// otherwise. Both addresses must be IPv4; on loopback the kernel delivers
// the datagram as if src had sent it.
func Forge(t testing.TB, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		t.Fatalf("testpeer: Forge needs IPv4 addresses, got %s -> %s", src, dst)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		requireRoot(t, fmt.Sprintf("raw socket: %v", err))
		return
	}
	defer syscall.Close(fd)
	pkt := forgedDatagram(src, dst, payload)
	sa := &syscall.SockaddrInet4{Addr: dst.Addr().As4()}
	if err := syscall.Sendto(fd, pkt, 0, sa); err != nil {
		t.Fatalf("testpeer: sending forged datagram %s -> %s: %v", src, dst, err)
	}
}

// forgedDatagram builds an IPv4 header (RFC 791) and a UDP header
// (RFC 768) around payload. The UDP checksum is computed over the
// pseudo-header, so the receiver's stack accepts it as genuine.
func forgedDatagram(src, dst netip.AddrPort, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	total := ipLen + udpLen + len(payload)
	b := make([]byte, total)
	s, d := src.Addr().As4(), dst.Addr().As4()
	b[0] = 0x45 // version 4, IHL 5
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	b[8] = 64 // TTL
	b[9] = syscall.IPPROTO_UDP
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:], checksum(b[:ipLen], 0))

	u := b[ipLen:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	var pseudo uint32
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(s[i:])) + uint32(binary.BigEndian.Uint16(d[i:]))
	}
	pseudo += syscall.IPPROTO_UDP + uint32(len(u))
	c := checksum(u, pseudo)
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
