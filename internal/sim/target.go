// Package sim generates SIP traffic against any target address: simulated
// phones that register and call, attackers that behave like the sipvicious
// tools (svmap, svcrack, svwar) and floods, and a load generator with a
// stateless responder for latency benchmarks. Every simulated party sends
// from its own loopback source address (127.0.0.x), so a guard in front of
// the target sees distinct peers. Only UDP is supported.
package sim

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
)

// ParseTarget parses "udp://ip:port" (or a bare "ip:port") into an address.
func ParseTarget(s string) (netip.AddrPort, error) {
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		if scheme != "udp" {
			return netip.AddrPort{}, fmt.Errorf("sim: target %q: only udp is supported", s)
		}
		rest = after
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sim: target %q: %w", s, err)
	}
	return ap, nil
}

// Sources hands out distinct IPv4 loopback source addresses, counting up
// from a base address. Linux answers on all of 127.0.0.0/8 without any
// setup, so each simulated party can bind its own address. The zero value
// starts at 127.0.0.10. Safe for concurrent use.
type Sources struct {
	// Base is the first address handed out; the zero value means 127.0.0.10.
	Base netip.Addr

	mu   sync.Mutex
	next netip.Addr
}

// Next returns the next unused loopback address. It panics when the
// addresses run out of 127.0.0.0/8, which needs more than 16 million calls.
func (s *Sources) Next() netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.next.IsValid() {
		s.next = s.Base
		if !s.next.IsValid() {
			s.next = netip.AddrFrom4([4]byte{127, 0, 0, 10})
		}
	}
	a := s.next
	if !netip.MustParsePrefix("127.0.0.0/8").Contains(a) {
		panic("sim: out of loopback source addresses")
	}
	s.next = a.Next()
	if b := s.next.As4(); b[3] == 255 {
		// Skip x.x.x.255 and x.x.x.0 so every address looks like a host.
		s.next = s.next.Next().Next()
	}
	return a
}
