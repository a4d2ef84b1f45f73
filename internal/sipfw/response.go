package sipfw

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
)

// handleResponse routes a response back by its Via (RFC 3261 §16.7 step 3,
// §16.11): the top Via must be this proxy's; it is removed and the response
// goes to the flow the Via's tgf parameter names, else to the next Via's
// received/rport. Final responses to requests from outside are tapped.
func (p *Proxy) handleResponse(res *sip.Response, in *inbound) {
	p.m.response(res.StatusCode)
	if in.up {
		p.upstreamAlive()
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
	if strings.HasPrefix(branch, probeBranch) {
		return // an answer to the upstream probe: the upstream is alive
	}
	tok, _ := via.Params.Get("tgf")
	res.RemoveHeader("Via")
	next := res.Via()
	if next == nil {
		p.m.drop(dropStray)
		return
	}
	dst, ok := decodeFlow(tok, p.listeners)
	if !ok {
		dst, ok = p.viaFlow(next)
	}
	if !ok {
		p.m.drop(dropNoRoute)
		return
	}
	// Tap first: a ban the final answer triggers (the third wrong password)
	// is in force before the client reads that answer, so its next request
	// cannot slip past the ban.
	if in.up {
		p.tapResponse(res, branch, in)
	}
	if err := p.write(res, dst); err != nil {
		p.m.drop(dropSendError)
		p.log.Debug("forward response failed", "error", err)
	} else {
		p.m.forwarded(in.at, p.now())
	}
}

// viaFlow is the fallback return path: the Via's received and rport (RFC
// 3581 §4) on the first public listener of its transport.
func (p *Proxy) viaFlow(v *sip.ViaHeader) (flow, bool) {
	host := v.Host
	if r, ok := v.Params.Get("received"); ok && r != "" {
		host = r
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return flow{}, false
	}
	port := v.Port
	if r, ok := v.Params.Get("rport"); ok && r != "" {
		if n, err := strconv.Atoi(r); err == nil {
			port = n
		}
	}
	if port <= 0 || port > 65535 {
		port = 5060
	}
	network := strings.ToLower(v.Transport)
	for _, l := range p.listeners {
		if l.url != "" && l.network == network {
			return flow{lis: l, remote: netip.AddrPortFrom(a.Unmap(), uint16(port))}, true
		}
	}
	return flow{}, false
}

// tapResponse hands the final response to a request from outside to the
// Checker, with the event Classify derives from it.
func (p *Proxy) tapResponse(res *sip.Response, branch string, in *inbound) {
	k := pendingKey{branch: branch, cancel: res.CSeq().MethodName == sip.CANCEL}
	if res.StatusCode < 200 {
		p.pending.provisional(k, in.at)
		return
	}
	e, ok := p.pending.final(k)
	if !ok {
		return // a retransmitted final response, or its entry was evicted
	}
	stale := (res.StatusCode == 401 || res.StatusCode == 407) && isStale(res)
	expires := 0
	if e.sip.Method == "REGISTER" && res.StatusCode < 300 {
		expires = grantedExpires(res, e.expires)
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
	case *event.CallAnswered:
		p.dialogs.answer(tap.CallID, meta.Time)
	case *event.CallEnded:
		if d, ok := p.dialogs.end(tap.CallID); ok {
			e.Duration = meta.Time.Sub(d.start)
		}
	}
	p.o.Checker.Check(p.ctx, ev)
}
