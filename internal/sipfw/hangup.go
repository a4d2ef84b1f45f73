package sipfw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/teardown"
)

var (
	_ teardown.Teardown = (*Proxy)(nil)
	_ teardown.Lister   = (*Proxy)(nil)
)

// byeBranch starts the branch of every BYE the proxy sends itself. The '-'
// never occurs in a forwarded branch (base 36 after branchPrefix), so a
// response on a forwarded transaction is never taken for one of these.
const byeBranch = branchPrefix + "-bye."

// Teardown timing. A BYE over UDP is retransmitted from T1, doubling up to
// T2 (RFC 3261 §17.1.2.2, Timer E); a hangup without a deadline of its own
// waits byeTimeout for both answers.
const (
	byeT1      = 500 * time.Millisecond
	byeT2      = 4 * time.Second
	byeTimeout = 4 * time.Second
)

// Hangup causes, the values of the cause label of
// tollguard_sipfw_hangups_total and of CallEnded.Cause.
const (
	causeRequest  = "hangup"   // HangupCall, HangupSource, HangupAccount
	causeDeadline = "deadline" // SetDeadline's limit passed
)

// byeTxn is a BYE the proxy sent, waiting for its final response.
type byeTxn struct {
	to   flow
	up   bool     // sent to the PBX
	done chan int // the final status, once
}

// byeTable holds the proxy's own BYE transactions by branch.
type byeTable struct {
	mu sync.Mutex
	m  map[string]*byeTxn
}

func (t *byeTable) add(branch string, x *byeTxn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]*byeTxn)
	}
	t.m[branch] = x
}

func (t *byeTable) remove(branch string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, branch)
}

func (t *byeTable) get(branch string) (*byeTxn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x, ok := t.m[branch]
	return x, ok
}

// byeAnswered consumes a response to one of the proxy's own BYEs: it is
// never relayed. Only a response on a branch the proxy sent, from the side
// it was sent to, counts; anything else is a forged response.
func (p *Proxy) byeAnswered(res *sip.Response, branch string, in *inbound) {
	x, ok := p.byes.get(branch)
	if !ok || x.up != in.up || !x.up && !sameFlow(x.to, in.from) {
		p.forged(in)
		return
	}
	if res.StatusCode < 200 {
		return
	}
	select {
	case x.done <- res.StatusCode:
	default: // a retransmitted final response
	}
}

// answerOutbound records the call a phone placed, now that the PBX sent a
// 2xx on the transaction e the proxy forwarded.
func (p *Proxy) answerOutbound(e *pendingEntry, res *sip.Response, at time.Time) {
	caller := leg{flow: e.client}
	if c := e.req.Contact(); c != nil {
		caller.target = *c.Address.Clone()
	}
	up, _ := p.upstreamFlow()
	d := &dialog{meta: e.meta, sip: e.sip, start: e.meta.Time, answered: at, outbound: true,
		caller: caller, callee: leg{flow: up, up: true}}
	p.confirmDialog(d, res)
}

// answerInbound records the call the PBX placed to a phone, when the 2xx
// came on the branch the proxy sent the INVITE with, from the flow it was
// sent to. Anything else leaves the table alone.
func (p *Proxy) answerInbound(res *sip.Response, branch string, in *inbound) {
	o, ok := p.dialogs.takeInbound(branch, in.from)
	if !ok || res.StatusCode >= 300 {
		return
	}
	up, _ := p.upstreamFlow()
	caller := leg{flow: up, up: true, target: o.contact}
	d := &dialog{meta: event.Meta{Time: o.start, Source: p.upAddr, Transport: event.Transport(p.upNet)},
		sip: o.sip, start: o.start, answered: in.at, caller: caller, callee: leg{flow: in.from}}
	p.confirmDialog(d, res)
}

// confirmDialog fills both legs of d from the 2xx to its initial INVITE
// (RFC 3261 §12.1.1, §12.1.2) and stores it. The route set toward the
// callee is the Record-Route entries above this proxy's, reversed; toward
// the caller, those below them, in order (§12.1.1: the UAS keeps them in
// order, §12.1.2: the UAC reverses them).
func (p *Proxy) confirmDialog(d *dialog, res *sip.Response) {
	from, to, cid := res.From(), res.To(), res.CallID()
	if from == nil || to == nil || cid == nil {
		return
	}
	d.callID = string(*cid)
	above, below := p.splitRecordRoute(res)
	slices.Reverse(above)
	d.callee.route, d.caller.route = above, below
	d.caller.addr, d.callee.addr = *from.Address.Clone(), *to.Address.Clone()
	d.caller.tag, _ = from.Params.Get("tag")
	d.callee.tag, _ = to.Params.Get("tag")
	if d.caller.tag == "" || d.callee.tag == "" {
		return // RFC 3261 §8.2.6.2, §12.1.1: no dialog without both tags
	}
	d.caller.cseq = res.CSeq().SeqNo
	d.callee.target = d.callee.addr
	if c := res.Contact(); c != nil {
		d.callee.target = *c.Address.Clone()
	}
	if d.caller.target.Host == "" {
		d.caller.target = d.caller.addr
	}
	if p.dialogs.confirm(d) {
		p.m.evictions.WithLabelValues("call").Inc()
	}
}

// splitRecordRoute returns the Record-Route entries of res above this
// proxy's own (added on the callee's side) and below them (on the
// caller's side), each in header order.
func (p *Proxy) splitRecordRoute(res *sip.Response) (above, below []sip.Uri) {
	seenSelf := false
	for _, h := range res.Headers() {
		rr, ok := h.(*sip.RecordRouteHeader)
		if !ok {
			continue
		}
		tp, _ := rr.Address.UriParams.Get("transport")
		if p.isSelf(rr.Address.Host, rr.Address.Port, tp) {
			seenSelf = true
			below = below[:0]
			continue
		}
		if seenSelf {
			below = append(below, *rr.Address.Clone())
		} else {
			above = append(above, *rr.Address.Clone())
		}
	}
	if !seenSelf {
		return nil, nil // the proxy is not on the route: no hop sits between it and either side
	}
	return above, below
}

// buildBye is the BYE the proxy sends to leg to on behalf of leg as (RFC
// 3261 §15.1.1, built as §12.2.1.1 says a UA builds a request inside a
// dialog): Request-URI the remote target, Route the route set (strict
// routing, a first hop without lr, puts that hop in the Request-URI and
// the target last), From as's URI and tag, To to's, CSeq above the highest
// as ever sent, a new branch.
func (p *Proxy) buildBye(d *dialog, to, as *leg, lis *listener, branch string) *sip.Request {
	ruri, route := to.target, to.route
	if len(route) > 0 && !route[0].UriParams.Has("lr") {
		ruri = route[0]
		route = append(slices.Clone(route[1:]), to.target)
	}
	req := sip.NewRequest(sip.BYE, *ruri.Clone())
	req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: lis.viaProto,
		Host: lis.advHost, Port: lis.advPort, Params: sip.HeaderParams{{K: "branch", V: branch}, {K: "rport"}}})
	for _, r := range route {
		req.AppendHeader(&sip.RouteHeader{Address: *r.Clone()})
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.FromHeader{Address: *as.addr.Clone(), Params: sip.HeaderParams{{K: "tag", V: as.tag}}})
	req.AppendHeader(&sip.ToHeader{Address: *to.addr.Clone(), Params: sip.HeaderParams{{K: "tag", V: to.tag}}})
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	as.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: as.cseq, MethodName: sip.BYE})
	// RFC 3326: why the call ended; Q.850 cause 16 is normal clearing.
	req.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=16;text="call ended by tollguard"`))
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	return req
}

// newByeBranch returns a fresh branch for one of the proxy's BYEs.
func newByeBranch() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return byeBranch + hex.EncodeToString(b[:])
}

// Calls returns the running calls through the proxy, oldest answer first.
func (p *Proxy) Calls() []teardown.Call { return p.dialogs.list() }

// SetDeadline has the proxy end callID when at passes (call_duration): the
// sweep sends the BYEs within a tick of at, whether or not anyone is
// watching. A zero at clears it. The call is in the table before its
// CallAnswered event reaches the Checker, so a detector may set the
// deadline from Check. Unknown calls are an error wrapping
// teardown.ErrNoCall.
func (p *Proxy) SetDeadline(callID string, at time.Time) error {
	if !p.dialogs.setDeadline(callID, at) {
		return fmt.Errorf("sipfw: deadline for %s: %w", capq(callID), teardown.ErrNoCall)
	}
	return nil
}

// HangupCall ends a running call by sending a BYE to each side, built from
// that side's dialog state, over its flow; it waits for both final
// responses (until ctx ends, at most byeTimeout when ctx has no deadline)
// and consumes them. The call leaves the table at once, so a second
// request for it gets teardown.ErrNoCall. A side that answers 2xx or 481
// (it had already ended the dialog) is done; any other answer, or none,
// is reported in the error. Nothing is retried after the BYE's own
// retransmissions.
func (p *Proxy) HangupCall(ctx context.Context, callID string) error {
	d, ok := p.dialogs.take(callID)
	if !ok {
		return fmt.Errorf("sipfw: hangup %s: %w", capq(callID), teardown.ErrNoCall)
	}
	return p.hangup(ctx, d, causeRequest)
}

// HangupSource ends every running call whose phone side is addr (the
// caller's source for calls from phones, the phone called for calls from
// the PBX), concurrently, and returns how many it tried.
func (p *Proxy) HangupSource(ctx context.Context, addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	return p.hangupAll(ctx, p.dialogs.matching(func(d *dialog) bool {
		return d.phoneLeg().flow.remote.Addr() == addr
	}))
}

// HangupAccount ends every running call placed by account from a phone
// (its digest user, else its From user), concurrently, and returns how
// many it tried.
func (p *Proxy) HangupAccount(ctx context.Context, account string) (int, error) {
	if account == "" {
		return 0, errors.New("sipfw: hangup: empty account")
	}
	return p.hangupAll(ctx, p.dialogs.matching(func(d *dialog) bool {
		return d.outbound && d.sip.Account() == account
	}))
}

// maxParallelHangups bounds the calls one HangupSource or HangupAccount
// ends at a time.
const maxParallelHangups = 64

func (p *Proxy) hangupAll(ctx context.Context, ids []string) (int, error) {
	errs := make([]error, len(ids))
	sem := make(chan struct{}, maxParallelHangups)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := p.HangupCall(ctx, id); !errors.Is(err, teardown.ErrNoCall) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return len(ids), errors.Join(errs...)
}

// hangupDue ends a call whose deadline passed.
func (p *Proxy) hangupDue(callID string) {
	d, ok := p.dialogs.take(callID)
	if !ok {
		return
	}
	if err := p.hangup(p.ctx, d, causeDeadline); err != nil {
		p.log.Info("call over its deadline not cleanly ended", "call_id", capField(callID), "err", err)
	}
}

// hangup sends the two BYEs of d and waits for their answers.
func (p *Proxy) hangup(ctx context.Context, d *dialog, cause string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, byeTimeout)
		defer cancel()
	}
	var errCallee, errCaller error
	var wg sync.WaitGroup
	wg.Go(func() { errCallee = p.sendBye(ctx, d, &d.callee, &d.caller) })
	wg.Go(func() { errCaller = p.sendBye(ctx, d, &d.caller, &d.callee) })
	wg.Wait()
	err := errors.Join(errCaller, errCallee)
	result := "ok"
	if err != nil {
		result = "failed"
		err = fmt.Errorf("sipfw: hangup %s: %w", capq(d.callID), err)
	}
	p.m.hangups.WithLabelValues(cause, result).Inc()
	p.log.Info("call ended by the proxy", "call_id", capField(d.callID), "cause", cause, "result", result)
	if d.outbound {
		p.callEnded(d, p.now(), cause)
	}
	return err
}

// sendBye sends the BYE for leg to (impersonating as) and waits for its
// final response. The PBX's side is always reached through the upstream,
// whatever its Contact names, and a phone's through the flow its call
// came on: a 2xx naming a third party's Contact cannot aim the BYE there.
func (p *Proxy) sendBye(ctx context.Context, d *dialog, to, as *leg) error {
	side := "caller"
	if to == &d.callee {
		side = "callee"
	}
	dst, up := to.flow, to.up
	if up {
		var ok bool
		if dst, ok = p.upstreamFlow(); !ok {
			return fmt.Errorf("%s (the PBX): no connection", side)
		}
	}
	branch := newByeBranch()
	req := p.buildBye(d, to, as, dst.lis, branch)
	x := &byeTxn{to: dst, up: up, done: make(chan int, 1)}
	p.byes.add(branch, x)
	defer p.byes.remove(branch)
	retrans := byeT1
	timer := time.NewTimer(retrans)
	defer timer.Stop()
	for {
		if err := p.write(req, dst); err != nil {
			return fmt.Errorf("%s: sending BYE: %w", side, err)
		}
		if dst.lis.network != "udp" {
			timer.Stop()
		}
		select {
		case code := <-x.done:
			if code < 300 || code == 481 {
				return nil
			}
			return fmt.Errorf("%s answered BYE with %d", side, code)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer BYE: %w", side, ctx.Err())
		case <-timer.C:
			retrans = min(2*retrans, byeT2)
			timer.Reset(retrans)
		}
	}
}

// isByeBranch reports whether branch is one of the proxy's own BYEs.
func isByeBranch(branch string) bool { return strings.HasPrefix(branch, byeBranch) }
