package sipfw

import (
	"hash/maphash"
	"strconv"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
)

// greySeed keys the transaction hashes of this process.
var greySeed = maphash.MakeSeed()

// greylisted reports whether req, which the Checker passed, is held by
// the Greylister (config greylist): only requests over UDP from outside
// are asked about, and never ACK (the client does not retransmit it) or
// CANCEL (it follows an INVITE that passed). A held request is counted
// (drop reason "greylist") and gets no answer: its client retransmits it
// (RFC 3261 §17.1.1.2, §17.1.2.2), and the retransmission is forwarded.
func (p *Proxy) greylisted(req *sip.Request, in *inbound) bool {
	if p.o.Greylist == nil || in.up || in.from.lis.network != "udp" || req.Method == sip.ACK || req.Method == sip.CANCEL {
		return false
	}
	if p.o.Greylist.Greylist(in.from.remote.Addr(), txnKey(req, in), in.at).Action == engine.Pass {
		return false
	}
	p.m.drop(dropGreylist)
	return true
}

// txnKey hashes what names req's client transaction (RFC 3261 §17.2.3)
// and its sender: source address and port, top Via branch, Call-ID, CSeq
// number and method. A retransmission repeats all of them; a new request
// changes the branch and the CSeq.
func txnKey(req *sip.Request, in *inbound) uint64 {
	var h maphash.Hash
	h.SetSeed(greySeed)
	b := in.from.remote.Addr().As16()
	_, _ = h.Write(b[:])
	var port [2]byte
	port[0], port[1] = byte(in.from.remote.Port()>>8), byte(in.from.remote.Port())
	_, _ = h.Write(port[:])
	if v := req.Via(); v != nil {
		br, _ := v.Params.Get("branch")
		_, _ = h.WriteString(br)
	}
	_ = h.WriteByte(0)
	if c := req.CallID(); c != nil {
		_, _ = h.WriteString(string(*c))
	}
	_ = h.WriteByte(0)
	if c := req.CSeq(); c != nil {
		var buf [20]byte
		_, _ = h.Write(strconv.AppendUint(buf[:0], uint64(c.SeqNo), 10))
		_, _ = h.WriteString(string(c.MethodName))
	}
	return h.Sum64()
}
