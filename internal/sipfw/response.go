package sipfw

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
)

// forgedCharge is how many extra requests a forged response counts as
// toward the source's flood limit (engine.Gate): a response naming this
// proxy with a token it did not mint is never sent by a working client, so
// a source that keeps sending them is banned at a fifth of the rate a
// request flood needs. The trade-off: a forged UDP source address can
// spend that budget for a victim faster; the allow list protects trunks.
const forgedCharge = 4

// handleResponse routes a response back along the transaction the proxy
// forwarded (RFC 3261 §16.7 step 3, §16.11). The top Via must be this
// proxy's and carry a flow token that verifies (tgf); it is removed and:
//   - a response from the PBX goes to the client flow the token names;
//   - a response from outside goes to the PBX, and only when the token
//     names the PBX (the proxy forwarded the PBX's request to that client).
//
// Nothing else is relayed: no Via received/rport fallback, so a forged
// response cannot make the proxy reflect to an address of its choosing.
// Final responses to requests from outside are tapped.
func (p *Proxy) handleResponse(res *sip.Response, in *inbound) {
	p.m.response(res.StatusCode)
	if in.up {
		p.upstreamAlive(in.from.lis.route)
	}
	via := res.Via()
	if via == nil || res.CSeq() == nil {
		p.malformed(nil, in.from.remote, errMissingHeaders)
		return
	}
	branch, _ := via.Params.Get("branch")
	if !strings.HasPrefix(branch, branchPrefix) || !p.isSelf(via.Host, via.Port, via.Transport) {
		p.m.drop(dropStray)
		return
	}
	if in.up && strings.HasPrefix(branch, probeBranch) {
		return // an answer to the upstream probe: the upstream is alive
	}
	if isByeBranch(branch) {
		p.byeAnswered(res, branch, in) // the proxy's own BYE: never relayed
		return
	}
	tok, _ := via.Params.Get("tgf")
	dst, ok := p.flows.decode(tok, p.listeners)
	switch {
	case !ok:
	case !sameRoute(dst, in.from):
		// A token minted on another route's listener: one profile's PBX
		// never answers another's clients, nor a client another's PBX.
		ok = false
	case in.up:
		// To a client of a request the proxy forwarded to the PBX.
		ok = dst.lis.url != "" && !isUpstreamFlow(dst)
	default:
		// From a client, to a request the PBX sent through the proxy.
		if ok = isUpstreamFlow(dst); ok {
			dst, ok = p.upstreamFlow(dst.lis.route)
			if !ok {
				p.m.drop(dropNoRoute)
				return
			}
		}
	}
	if !ok {
		p.forged(in)
		return
	}
	res.RemoveHeader("Via")
	if res.Via() == nil {
		p.m.drop(dropStray)
		return
	}
	// Tap first: a ban the final answer triggers (the third wrong password)
	// is in force before the client reads that answer, so its next request
	// cannot slip past the ban.
	if in.up {
		p.tapResponse(res, branch, in)
	} else if res.StatusCode >= 200 && res.CSeq().MethodName == sip.INVITE {
		p.answerInbound(res, branch, in)
	}
	if err := p.write(res, dst); err != nil {
		p.m.drop(dropSendError)
		p.log.Debug("forward response failed", "error", err)
	} else {
		p.m.forwarded(in.at, p.now())
	}
}

// isUpstreamFlow reports whether f is the PBX of its listener's route.
func isUpstreamFlow(f flow) bool {
	return f.remote == f.lis.route.addr && f.lis.network == f.lis.route.net
}

// forged drops a response that names this proxy but no transaction it
// forwarded, and charges a source outside forgedCharge requests of its
// flood budget.
func (p *Proxy) forged(in *inbound) {
	p.m.drop(dropForged)
	if in.up {
		return
	}
	src := in.from.remote.Addr()
	// Every charge counts, even once the source is over a limit: a
	// stranger's drops (flood.stranger_limit) still lead to its ban, and a
	// banned source's charges end at the ban lookup.
	for range forgedCharge {
		p.o.Gate.Admit(src, in.at)
	}
}

// tapResponse hands the final response to a request from outside to the
// Checker, with the event Classify derives from it.
func (p *Proxy) tapResponse(res *sip.Response, branch string, in *inbound) {
	k := pendingKey{branch: branch, cancel: res.CSeq().MethodName == sip.CANCEL}
	if res.StatusCode < 200 {
		if e, first := p.pending.provisional(k, in.at, res.StatusCode); first {
			// RFC 3261 §21.1: a provisional other than 100 comes from the
			// UAS side: the PBX took the call past authentication.
			meta := e.meta
			meta.Time = in.at
			p.o.Checker.Check(p.ctx, &event.CallRinging{Meta: meta, SIP: e.sip, Account: e.sip.Account(), Destination: e.sip.RURIUser, Code: res.StatusCode})
		}
		return
	}
	e, ok := p.pending.final(k)
	if !ok {
		return // a retransmitted final response, or its entry was evicted
	}
	if e.initial && res.StatusCode < 300 {
		// The PBX answered a call on a transaction the proxy forwarded:
		// it is running, in the table before CallAnswered is checked.
		p.answerOutbound(e, res, in.at)
	}
	stale := (res.StatusCode == 401 || res.StatusCode == 407) && isStale(res)
	expires := 0
	if e.sip.Method == "REGISTER" && res.StatusCode < 300 {
		expires = grantedExpires(res, e.expires)
		if e.client.lis.network != "udp" {
			// A phone registered on this connection: it keeps it open
			// with keep-alives and is never evicted for a newcomer.
			p.conns.setRegistered(e.client.remote, expires > 0, p.o.RegisteredIdle)
		}
	}
	meta := e.meta
	meta.Time = in.at
	p.tapFinal(meta, e.sip, res.StatusCode, stale, expires, e.initial)
}

// tapFinal emits the Response event for a final answer to a request from
// outside, then its derived event. Only an initial INVITE's answer starts
// or ends a call: a re-INVITE's failure does not end the dialog.
func (p *Proxy) tapFinal(meta event.Meta, tap event.SIP, code int, stale bool, expires int, initial bool) {
	r := &event.Response{Meta: meta, SIP: tap, Code: code, Stale: stale, Expires: expires}
	p.o.Checker.Check(p.ctx, r)
	if tap.Method == "INVITE" && !initial {
		return
	}
	ev := event.Classify(r)
	switch e := ev.(type) {
	case nil:
		return
	case *event.CallEnded:
		if d, ok := p.dialogs.end(tap.CallID); ok {
			e.Duration = meta.Time.Sub(d.start)
		}
	}
	p.o.Checker.Check(p.ctx, ev)
}
