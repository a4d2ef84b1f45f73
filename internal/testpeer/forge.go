package testpeer

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/tollguard/tollguard/internal/sim"
)

// Forge sends payload as one UDP datagram to dst whose IPv4 source address
// and port claim to be src (sim.Forge: a raw socket, IP_HDRINCL), the way
// an attacker on the internet forges a victim's address. It needs root
// (CAP_NET_RAW); without it the test fails when CI is set and is skipped
// otherwise. On loopback the kernel delivers the datagram as if src had
// sent it.
func Forge(t testing.TB, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	err := sim.Forge(src, dst, payload)
	switch {
	case errors.Is(err, sim.ErrNeedRoot):
		requireRoot(t, err.Error())
	case err != nil:
		t.Fatalf("testpeer: %v", err)
	}
}
