package sipfw

import (
	"errors"
	"strconv"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
)

// errMissingHeaders marks a request without Via, From, To, Call-ID or CSeq.
var errMissingHeaders = errors.New("missing mandatory header")

// branchPrefix starts the branch of every Via this proxy adds: the RFC 3261
// magic cookie (§8.1.1.7) and "tg".
const branchPrefix = "z9hG4bKtg"

// handle dispatches a parsed message. It runs on the read goroutine.
func (p *Proxy) handle(msg sip.Message, in *inbound) {
	switch m := msg.(type) {
	case *sip.Request:
		p.handleRequest(m, in)
	case *sip.Response:
		p.handleResponse(m, in)
	}
}

// handleRequest applies RFC 3261 §16.3 (validation), asks the Checker about
// requests from outside, and forwards per §16.6 toward the upstream or, for
// requests from the upstream, toward the phone's flow.
func (p *Proxy) handleRequest(req *sip.Request, in *inbound) {
	p.m.request(string(req.Method))
	if in.up {
		p.upstreamAlive(in.from.lis.route)
	}
	// RFC 3261 §16.3 step 1: without these the request can be neither
	// answered nor forwarded.
	if req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		p.malformed(nil, in.from.remote, errMissingHeaders)
		return
	}
	if !in.up && !validAddresses(req) {
		p.malformed(nil, in.from.remote, errBadAddress)
		return
	}
	var meta event.Meta
	var tap event.SIP
	initial := req.Method == sip.INVITE && !hasToTag(req)
	if !in.up {
		meta = event.Meta{Time: in.at, Source: in.from.remote, Transport: event.Transport(in.from.lis.transport), Listener: in.from.lis.url}
		extractSIP(req, &tap)
		v := p.o.Checker.Check(p.ctx, &event.Request{Meta: meta, SIP: tap})
		if v.Action == engine.Pass && initial {
			call := tap
			extractCall(req, &call, p.o.TokenHeader)
			v = p.o.Checker.Check(p.ctx, &event.CallAttempt{Meta: meta, SIP: call, Account: tap.Account(), Destination: tap.RURIUser})
		}
		if v.Action != engine.Pass {
			p.refuse(req, in, v)
			return
		}
		if p.greylisted(req, in) {
			return
		}
	}
	// RFC 3261 §16.3 step 2: a scheme the proxy does not understand.
	switch req.Recipient.Scheme {
	case "sip", "sips", "tel", "":
	default:
		p.reply(req, in, 416, "Unsupported URI Scheme")
		return
	}
	// RFC 3261 §16.3 step 3 and §16.6 step 3: Max-Forwards.
	if mf := req.MaxForwards(); mf != nil {
		if *mf == 0 {
			p.reply(req, in, 483, "Too Many Hops")
			return
		}
		mf.Dec()
	} else {
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
	}
	// RFC 3261 §16.3 step 4: loop detection.
	loop := loopHash(req)
	if p.looped(req, loop) {
		p.reply(req, in, 482, "Loop Detected")
		return
	}
	if hasToTag(req) {
		// RFC 3261 §12.2.1.1: a BYE from the middle needs a CSeq above
		// any the receiver saw from the side it speaks for.
		p.dialogs.sawRequest(req, in.up, in.from)
	}
	// RFC 3261 §16.4: remove the Route entries that name this proxy; the
	// one it recorded for the phone's side carries the phone's flow.
	target, routed := p.popRoutes(req)
	if in.up {
		p.toPhone(req, in, target, routed, loop)
		return
	}
	p.toUpstream(req, in, meta, tap, loop, initial)
}

// toUpstream forwards a request from outside to the PBX.
func (p *Proxy) toUpstream(req *sip.Request, in *inbound, meta event.Meta, tap event.SIP, loop uint64, initial bool) {
	isAck := req.Method == sip.ACK
	r := in.from.lis.route
	dst, ok := p.upstreamFlow(r)
	if !ok || (r.health.down.Load() && !isAck) {
		// The upstream is known to be down: answer at once (RFC 3261
		// §16.7 step 6 lets a proxy answer 503 for an unreachable hop).
		if !isAck {
			p.reply(req, in, 503, "Service Unavailable")
			p.tapFinal(meta, tap, 503, false, 0, initial)
		}
		return
	}
	// DESIGN key decision 8: the PBX learns the real source from
	// X-AUTH-IP; one that arrives from outside is a spoofing attempt, as is
	// any identity header the PBX may trust from its proxy.
	stripHeaders(req, p.strip)
	src := in.from.remote
	req.AppendHeader(sip.NewHeader("X-AUTH-IP", src.Addr().String()))
	req.AppendHeader(sip.NewHeader("X-AUTH-PORT", strconv.Itoa(int(src.Port()))))
	markReceived(req.Via(), src)
	tok := p.flows.encode(in.from)
	branch := p.branch(req, loop)
	if recordsRoute(req) {
		p.recordRoute(req, in.from.lis, r.inside, tok, true)
	}
	if req.Method == sip.REGISTER {
		// RFC 3327 §4.3: the PBX keeps this Path (FreeSWITCH: fs_path)
		// and routes requests for the phone back through its flow.
		req.PrependHeader(sip.NewHeader("Path", "<"+routeURI(r.inside, tok)+">"))
	}
	pushVia(req, r.inside, branch, tok)
	if !isAck {
		e := &pendingEntry{req: req, client: in.from, meta: meta, sip: tap, initial: initial,
			expires: -1, deadline: in.at.Add(p.o.UpstreamTimeout)}
		if req.Method == sip.REGISTER {
			e.expires = requestExpires(req)
		}
		if p.pending.add(pendingKey{branch: branch, cancel: req.Method == sip.CANCEL}, e) {
			p.m.evictions.WithLabelValues("pending").Inc()
		}
	}
	if initial {
		if p.dialogs.begin(tap.CallID, &dialog{meta: meta, sip: tap, start: in.at}) {
			p.m.evictions.WithLabelValues("dialog").Inc()
		}
	}
	if err := p.write(req, dst); err != nil {
		p.m.drop(dropSendError)
		p.log.Debug("forward to upstream failed", "error", err)
	} else {
		p.m.forwarded(in.at, p.now())
	}
	if req.Method == sip.BYE {
		p.endCall(req, in)
	}
}

// toPhone forwards a request from the PBX to the flow named by its Route
// (from Path or Record-Route). The token must verify and name a public
// listener of the PBX's own route: the PBX can reach the phones that came
// through the proxy on its route, and nothing else — a Request-URI naming
// another host is never followed, so a compromised or misconfigured PBX
// cannot turn the proxy into a relay, and one profile's PBX cannot reach
// another profile's phones or trunks.
func (p *Proxy) toPhone(req *sip.Request, in *inbound, target flow, routed bool, loop uint64) {
	if !routed || target.lis.url == "" || !sameRoute(target, in.from) {
		p.m.drop(dropNoRoute)
		p.reply(req, in, 404, "Not Found")
		return
	}
	if target.lis.network != "udp" && p.conns.get(target.remote) == nil {
		// RFC 5626 §5.3: the flow the phone registered on is gone.
		p.m.drop(dropNoRoute)
		p.reply(req, in, 430, "Flow Failed")
		return
	}
	markReceived(req.Via(), in.from.remote)
	tok := p.flows.encode(target)
	branch := p.branch(req, loop)
	if recordsRoute(req) {
		p.recordRoute(req, target.lis, in.from.lis.route.inside, tok, false)
	}
	pushVia(req, target.lis, branch, p.flows.encode(in.from))
	if req.Method == sip.INVITE && !hasToTag(req) {
		// Remembered by branch, so only an answer on this transaction,
		// from the flow it goes to, makes it a running call.
		o := &outInvite{callID: string(*req.CallID()), phone: target, start: in.at,
			sip: event.SIP{Method: "INVITE", CallID: capField(string(*req.CallID())),
				FromUser: capField(req.From().Address.User), ToUser: capField(req.To().Address.User),
				RURIUser: capField(req.Recipient.User)}}
		if c := req.Contact(); c != nil {
			o.contact = *c.Address.Clone()
		}
		if p.dialogs.beginInbound(branch, o) {
			p.m.evictions.WithLabelValues("dialog").Inc()
		}
	}
	if err := p.write(req, target); err != nil {
		p.m.drop(dropSendError)
		p.log.Debug("forward to phone failed", "error", err)
	} else {
		p.m.forwarded(in.at, p.now())
	}
	if req.Method == sip.BYE {
		p.endCall(req, in)
	}
}

// refuse carries out a Reject or Drop verdict on a request from outside.
func (p *Proxy) refuse(req *sip.Request, in *inbound, v engine.Verdict) {
	if v.Action == engine.Drop {
		p.m.drop(dropVerdict)
		return
	}
	code := v.Code
	if code < 300 || code > 699 {
		code = 403
	}
	if v.Policy != "" && req.Method != sip.ACK {
		// RFC 3326 §2: a call policy refusal names its rule, so the
		// caller's logs tell it from the PBX's own refusals. Other
		// rules stay unnamed: a scanner learns nothing from them.
		p.m.reject(code)
		res := sip.NewResponseFromRequest(req, code, statusText(code), nil)
		res.AppendHeader(sip.NewHeader("Reason", "SIP;cause="+strconv.Itoa(code)+";text=\""+v.Rule+" "+v.Policy+"\""))
		if err := p.write(res, in.from); err != nil {
			p.m.drop(dropSendError)
		}
		return
	}
	p.reply(req, in, code, "")
}

// reply answers req statelessly (RFC 3261 §16.11 lets a stateless proxy
// answer itself) over the flow it came on. ACKs are never answered (RFC
// 3261 §17.1.1.3); the would-be answer is counted as a drop.
func (p *Proxy) reply(req *sip.Request, in *inbound, code int, reason string) {
	if req.Method == sip.ACK {
		p.m.drop(dropAckRefused)
		return
	}
	p.respond(req, in.from, code, reason)
}

// respond sends a locally generated response to req over f.
func (p *Proxy) respond(req *sip.Request, f flow, code int, reason string) {
	p.m.reject(code)
	if reason == "" {
		reason = statusText(code)
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if err := p.write(res, f); err != nil {
		p.m.drop(dropSendError)
	}
}

// hasToTag reports whether req is inside a dialog (RFC 3261 §12.2).
func hasToTag(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}

// recordsRoute reports whether the proxy records its route on req: requests
// that create dialogs (RFC 3261 §16.6 step 4, RFC 6665 §4.1.2.1, RFC 3515).
func recordsRoute(req *sip.Request) bool {
	switch req.Method {
	case sip.INVITE, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER:
		return !hasToTag(req)
	}
	return false
}

// recordRoute adds this proxy's Record-Route (RFC 3261 §16.6 step 4). When
// the phone's side and the PBX's side differ in address or transport it adds
// two (RFC 5658 §4), the phone-facing one carrying the phone's flow token so
// in-dialog requests from the PBX find the phone behind its NAT. The entry
// facing the next hop goes on top.
func (p *Proxy) recordRoute(req *sip.Request, phoneSide, inside *listener, tok string, towardUpstream bool) {
	outer := &sip.RecordRouteHeader{Address: routeAddr(phoneSide, tok)}
	if sameFace(phoneSide, inside) {
		req.PrependHeader(outer)
		return
	}
	inner := &sip.RecordRouteHeader{Address: routeAddr(inside, "")}
	if towardUpstream {
		req.PrependHeader(outer)
		req.PrependHeader(inner)
		return
	}
	req.PrependHeader(inner)
	req.PrependHeader(outer)
}

// sameFace reports whether two listeners are one address on one transport.
func sameFace(a, b *listener) bool {
	return a.network == b.network && a.advHost == b.advHost && a.advPort == b.advPort
}

// routeAddr is a loose-routing URI (RFC 3261 §19.1.1 lr) for l, with user
// as its user part. A WebSocket listener is "transport=ws", under the sips
// scheme for wss:// (RFC 7118 §5.2).
func routeAddr(l *listener, user string) sip.Uri {
	scheme, tp := "sip", l.network
	switch l.network {
	case "wss":
		scheme, tp = "sips", "ws"
	}
	return sip.Uri{Scheme: scheme, User: user, Host: l.advHost, Port: l.advPort,
		UriParams: sip.HeaderParams{{K: "transport", V: tp}, {K: "lr"}}}
}

// routeURI renders routeAddr as text.
func routeURI(l *listener, user string) string {
	u := routeAddr(l, user)
	return u.String()
}

// pushVia adds this proxy's Via on top (RFC 3261 §16.6 step 8). tgf names
// the flow the response must return on, so responses are routed without
// state (§16.11); rport asks the next hop to answer to the source port
// (RFC 3581 §3).
func pushVia(req *sip.Request, l *listener, branch, tgf string) {
	req.PrependHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: l.viaProto,
		Host: l.advHost, Port: l.advPort,
		Params: sip.HeaderParams{{K: "branch", V: branch}, {K: "tgf", V: tgf}, {K: "rport"}}})
}
