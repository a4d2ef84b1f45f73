package sipfw

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
)

// FNV-1a, inlined so hashing strings does not allocate.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvStr(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	h ^= 0xff // field separator
	h *= fnvPrime
	return h
}

// loopHash covers the fields RFC 3261 §16.6 step 8 names for loop
// detection — Request-URI, Call-ID, From tag and CSeq number — but not the
// method, so a CANCEL matches its INVITE, and not the To tag: the ACK to a
// non-2xx answer gains the To tag yet must keep its INVITE's branch
// (§17.1.1.3), and the branch of a stateless proxy is derived from this hash
// (§16.11). Call-ID and CSeq number still tell in-dialog requests apart.
func loopHash(req *sip.Request) uint64 {
	h := uint64(fnvOffset)
	u := &req.Recipient
	h = fnvStr(h, u.Scheme)
	h = fnvStr(h, u.User)
	h = fnvStr(h, u.Host)
	h = fnvStr(h, strconv.Itoa(u.Port))
	h = fnvStr(h, string(*req.CallID()))
	ft, _ := req.From().Params.Get("tag")
	h = fnvStr(h, ft)
	h = fnvStr(h, strconv.FormatUint(uint64(req.CSeq().SeqNo), 10))
	return h
}

// branch is the deterministic branch of the Via this proxy adds (RFC 3261
// §16.11): the loop hash, then a hash of the incoming top Via's branch and
// sent-by, so retransmissions and a CANCEL get the same value as the
// original, and distinct client transactions get distinct values.
func (p *Proxy) branch(req *sip.Request, loop uint64) string {
	h := uint64(fnvOffset) ^ loop
	if v := req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		h = fnvStr(h, b)
		h = fnvStr(h, v.Host)
		h = fnvStr(h, strconv.Itoa(v.Port))
	}
	var buf [64]byte
	out := append(buf[:0], branchPrefix...)
	out = strconv.AppendUint(out, loop, 36)
	out = append(out, '.')
	out = strconv.AppendUint(out, h, 36)
	return string(out)
}

// looped reports whether req already carries a Via this proxy added with
// the same loop hash: the request came back unchanged (RFC 3261 §16.3 step
// 4). A Via of ours with another loop hash is a legitimate spiral.
func (p *Proxy) looped(req *sip.Request, loop uint64) bool {
	var buf [16]byte
	want := strconv.AppendUint(buf[:0], loop, 36)
	for _, h := range req.Headers() {
		v, ok := h.(*sip.ViaHeader)
		if !ok || !p.isSelf(v.Host, v.Port, v.Transport) {
			continue
		}
		b, _ := v.Params.Get("branch")
		rest, ok := strings.CutPrefix(b, branchPrefix)
		if !ok {
			continue
		}
		lp, _, _ := strings.Cut(rest, ".")
		if lp == string(want) {
			return true
		}
	}
	return false
}

// isSelf reports whether host:port names one of this proxy's listeners.
func (p *Proxy) isSelf(host string, port int, transport string) bool {
	host = strings.Trim(host, "[]")
	if port == 0 {
		port = 5060
		if strings.EqualFold(transport, "tls") {
			port = 5061
		}
	}
	for _, l := range p.listeners {
		if port != l.advPort {
			continue
		}
		if host == l.advHost || host == l.bind.Addr().String() {
			return true
		}
	}
	for _, r := range p.routes {
		if host == r.inside.advHost && port == r.inside.advPort {
			return true
		}
	}
	return false
}

// popRoutes removes the Route entries naming this proxy (RFC 3261 §16.4)
// and returns the flow token one of them carried.
func (p *Proxy) popRoutes(req *sip.Request) (flow, bool) {
	var f flow
	found := false
	for {
		r := req.Route()
		if r == nil {
			break
		}
		tp, _ := r.Address.UriParams.Get("transport")
		if !p.isSelf(r.Address.Host, r.Address.Port, tp) {
			break
		}
		if !found {
			f, found = p.flows.decode(r.Address.User, p.listeners)
		}
		req.RemoveHeader("Route")
	}
	return f, found
}

// statusText is the reason phrase for the codes the proxy generates.
func statusText(code int) string {
	switch code {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 416:
		return "Unsupported URI Scheme"
	case 430:
		return "Flow Failed"
	case 482:
		return "Loop Detected"
	case 483:
		return "Too Many Hops"
	case 486:
		return "Busy Here"
	case 503:
		return "Service Unavailable"
	}
	if code >= 200 && code < 300 {
		return "OK"
	}
	return "Rejected"
}

// endCall forgets the call a BYE on its way through ends, and emits
// CallEnded for a call from a phone. A running call ends only for a BYE
// from one of its own legs (see dialogTable.bye).
func (p *Proxy) endCall(req *sip.Request, in *inbound) {
	d, ok := p.dialogs.bye(req, in.up, in.from)
	if !ok || !d.outbound {
		return
	}
	p.callEnded(d, in.at, "bye")
}

// callEnded emits CallEnded for d, a call from a phone, ended at at.
func (p *Proxy) callEnded(d *dialog, at time.Time, cause string) {
	ev := &event.CallEnded{Meta: d.meta, SIP: d.sip, Account: d.sip.Account(), Destination: d.sip.RURIUser,
		Duration: at.Sub(d.start), Cause: cause}
	ev.Time = at
	if !d.answered.IsZero() {
		ev.Billsec = at.Sub(d.answered)
	}
	p.o.Checker.Check(p.ctx, ev)
}
