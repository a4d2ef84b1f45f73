package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrNeedRoot means a forged datagram could not be sent because raw
// sockets need root (CAP_NET_RAW).
var ErrNeedRoot = errors.New("sim: forging a source address needs root (CAP_NET_RAW)")

// Forge sends one UDP datagram to dst whose IP source address and port claim
// to be src, through a raw socket (IP_HDRINCL): the way an attacker on the
// internet forges a victim's address. Both addresses must be IPv4; on
// loopback the kernel delivers the datagram as if src had sent it. Without
// CAP_NET_RAW it returns ErrNeedRoot.
func Forge(src, dst netip.AddrPort, payload []byte) error {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return fmt.Errorf("sim: forge needs IPv4 addresses, got %s -> %s", src, dst)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return ErrNeedRoot
		}
		return fmt.Errorf("sim: raw socket: %w", err)
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrInet4{Addr: dst.Addr().As4()}
	if err := syscall.Sendto(fd, forgedDatagram(src, dst, payload), 0, sa); err != nil {
		return fmt.Errorf("sim: sending forged datagram %s -> %s: %w", src, dst, err)
	}
	return nil
}

// forgedDatagram builds an IPv4 header (RFC 791) and a UDP header (RFC 768)
// around payload, with the UDP checksum over the pseudo-header so the
// receiving stack accepts it as genuine.
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
	binary.BigEndian.PutUint16(b[10:], inetChecksum(b[:ipLen], 0))
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
	c := inetChecksum(u, pseudo)
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

// inetChecksum is the Internet checksum (RFC 1071) of b, starting from sum.
func inetChecksum(b []byte, sum uint32) uint16 {
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
