package pbx

import (
	"net/netip"

	"github.com/emiago/sipgo/sip"
)

// Origin counts what reached the PBX from one originating address: the host
// of the bottom Via header, which is the address of the party that sent the
// request even when a proxy (the guard) forwarded it (RFC 3261 §16.6 item 8:
// a proxy adds its own Via on top and keeps the others).
type Origin struct {
	Requests      uint64 // requests received (every method, retransmissions included)
	CallsAnswered uint64 // inbound INVITEs answered 200
}

// Origins returns a snapshot of the per-origin counters. Requests whose
// bottom Via host is not an IP address are counted under the zero Addr.
func (p *PBX) Origins() map[netip.Addr]Origin {
	p.omu.Lock()
	defer p.omu.Unlock()
	out := make(map[netip.Addr]Origin, len(p.origins))
	for a, o := range p.origins {
		out[a] = o
	}
	return out
}

// origin returns the host of req's bottom Via header.
func origin(req *sip.Request) netip.Addr {
	vias := req.GetHeaders("via")
	if len(vias) == 0 {
		return netip.Addr{}
	}
	v, ok := vias[len(vias)-1].(*sip.ViaHeader)
	if !ok {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(v.Host)
	return a
}

// countOrigin adds a request (and, when answered, an answered call) to the
// counters of req's origin.
func (p *PBX) countOrigin(req *sip.Request, answered bool) {
	a := origin(req)
	p.omu.Lock()
	defer p.omu.Unlock()
	if p.origins == nil {
		p.origins = make(map[netip.Addr]Origin)
	}
	o := p.origins[a]
	if answered {
		o.CallsAnswered++
	} else {
		o.Requests++
	}
	p.origins[a] = o
}
