package pbx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// sdp returns a minimal RFC 4566 session description offering PCMU on
// addr. No media is ever sent; the SDP only completes the offer/answer.
func sdp(host string, port int) []byte {
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
		host, host, port)
}

// onInvite authenticates the caller with a 407 challenge (RFC 3261 §22.3,
// as FreeSWITCH does with auth-calls), then answers numbers matching the
// answer pattern with 200 OK and a minimal SDP and keeps the dialog until
// BYE. Other numbers get 404 (RFC 3261 §21.4.5).
func (p *PBX) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil && req.To().Params.Has("tag") {
		// Re-INVITE inside a dialog (e.g. hold): accept with our SDP.
		p.onReInvite(req, tx)
		return
	}
	if !p.authorize(req, tx, "Proxy-Authorization", 407) {
		return
	}
	callee := req.Recipient.User
	if !p.answer.MatchString(callee) {
		p.stats.rejected.Add(1)
		respond(tx, sip.NewResponseFromRequest(req, 404, "Not Found", nil))
		return
	}
	dlg, err := p.dialogs.ReadInvite(req, tx)
	if err != nil {
		respond(tx, sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return
	}
	defer dlg.Close()
	if err := dlg.Respond(180, "Ringing", nil); err != nil {
		return
	}
	host := p.addr.Addr().String()
	// RespondSDP waits for the ACK; a BYE racing ahead of it ends the
	// dialog instead, which still means the call was answered.
	if err := dlg.RespondSDP(sdp(host, 4000)); err != nil && dlg.LoadState() != sip.DialogStateEnded {
		p.log.Debug("answer not confirmed", "callee", quote(callee), "error", err)
		return
	}
	p.stats.answered.Add(1)
	p.countOrigin(req, true)
	p.log.Debug("call answered", "callee", quote(callee), "source", req.Source())
	select {
	case <-dlg.Context().Done():
	case <-p.runCtx.Done():
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = dlg.Bye(ctx)
	}
}

// onReInvite answers an in-dialog INVITE with 200 and our SDP, so that a
// phone putting the call on hold gets a normal answer.
func (p *PBX) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	if _, err := p.dialogs.MatchDialogRequest(req); err != nil {
		respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	res := sip.NewSDPResponseFromRequest(req, sdp(p.addr.Addr().String(), 4000))
	c := p.contact()
	res.AppendHeader(&c)
	respond(tx, res)
}

func (p *PBX) onAck(req *sip.Request, tx sip.ServerTransaction) {
	_ = p.dialogs.ReadAck(req, tx)
}

// onBye ends an answered call (RFC 3261 §15.1.2); a BYE for no known
// dialog gets 481.
func (p *PBX) onBye(req *sip.Request, tx sip.ServerTransaction) {
	dlg, err := p.dialogs.MatchDialogRequest(req)
	if err != nil {
		respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	// Counted before the 200 goes out so that a caller who saw the 200
	// also sees the counter.
	p.stats.ended.Add(1)
	_ = dlg.ReadBye(req, tx)
}

// ErrNotRegistered is returned by Call when the account has no live binding.
var ErrNotRegistered = errors.New("account not registered")

// Call places a call from the PBX to the registered phone of account: an
// INVITE to the registered Contact, routed through the binding's Path when
// one was recorded (RFC 3327 §5.3: the Path becomes the Route set). It
// returns once the phone answered, the ACK was sent and the call was hung
// up again with BYE, or with an error when the phone rejected the call, did
// not answer before ctx ended, or the account is not registered.
func (p *PBX) Call(ctx context.Context, account string) error {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return fmt.Errorf("pbx: calling %s: %w", account, ctx.Err())
	}
	b, ok := p.binding(account)
	if !ok {
		return fmt.Errorf("pbx: calling %s: %w", account, ErrNotRegistered)
	}
	var target sip.Uri
	if err := sip.ParseUri(strings.Trim(b.Contact, "<>"), &target); err != nil {
		return fmt.Errorf("pbx: calling %s: contact %s: %w", account, quote(b.Contact), err)
	}
	req := sip.NewRequest(sip.INVITE, target)
	req.SetBody(sdp(p.addr.Addr().String(), 4000))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := &sip.FromHeader{DisplayName: "PBX", Address: sip.Uri{Scheme: "sip", User: "pbx", Host: p.auth.realm}}
	from.Params = sip.NewParams()
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: account, Host: p.auth.realm}, Params: sip.NewParams()})
	for _, r := range b.Path {
		// RFC 3261 §12.2.1.1 / RFC 3327 §5.3: the Path is used as a
		// pre-loaded Route set, nearest proxy first.
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	ua := sipgo.DialogUA{Client: p.client, ContactHDR: p.contact()}
	dlg, err := ua.WriteInvite(ctx, req)
	if err != nil {
		return fmt.Errorf("pbx: calling %s: sending INVITE: %w", account, err)
	}
	defer dlg.Close()
	// When ctx ends, give up at once: sipgo's CANCEL would wait up to
	// 64×T1 (32 s) without a context for answers that, on shutdown, the
	// stopping guard never sends.
	wctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer context.AfterFunc(ctx, func() { cancel(sipgo.WaitAnswerForceCancelErr) })()
	defer cancel(nil)
	if err := dlg.WaitAnswer(wctx, sipgo.AnswerOptions{}); err != nil {
		return fmt.Errorf("pbx: calling %s: %w", account, err)
	}
	if err := dlg.Ack(ctx); err != nil {
		return fmt.Errorf("pbx: calling %s: sending ACK: %w", account, err)
	}
	p.stats.placed.Add(1)
	if err := dlg.Bye(ctx); err != nil {
		return fmt.Errorf("pbx: calling %s: sending BYE: %w", account, err)
	}
	return nil
}
