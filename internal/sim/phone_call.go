package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// phoneSDP is a minimal RFC 4566 offer; no media is ever sent.
func phoneSDP(host string, dir string) []byte {
	return fmt.Appendf(nil, "v=0\r\no=- 2 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=%s\r\n",
		host, host, dir)
}

// Call places a call to number through the target: INVITE, answer the 407
// challenge with credentials (RFC 3261 §22.3), wait for 200, ACK, put the
// call on hold with a re-INVITE offering a=sendonly (RFC 3264 §8.4), keep
// it for hold, then BYE. It returns nil once the BYE was answered, or a
// *StatusError (wrapped) when the call was rejected.
func (p *Phone) Call(ctx context.Context, number string, hold time.Duration) error {
	<-p.ready
	p.note(func(r *PhoneReport) { r.CallsPlaced++ })
	err := p.call(ctx, number, hold)
	if err != nil {
		err = fmt.Errorf("sim: phone %s: call %s: %w", p.cfg.Account, number, err)
		p.noteError(err)
	}
	return err
}

func (p *Phone) call(ctx context.Context, number string, hold time.Duration) error {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: number, Host: p.domain})
	req.SetDestination(p.cfg.Target.String())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.Account, Host: p.domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: p.domain}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("User-Agent", p.cfg.UserAgent))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(phoneSDP(p.local.Addr().String(), "sendrecv"))

	dlg, err := p.outDlg.WriteInvite(ctx, req)
	if err != nil {
		return err
	}
	defer dlg.Close()
	wctx, stop := forceCancel(ctx)
	defer stop()
	err = dlg.WaitAnswer(wctx, sipgo.AnswerOptions{Username: p.cfg.Account, Password: p.cfg.Password})
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		p.note(func(r *PhoneReport) { r.CallCodes[de.Res.StatusCode]++ })
		return &StatusError{Code: de.Res.StatusCode, Reason: de.Res.Reason}
	}
	if err != nil {
		return err
	}
	p.note(func(r *PhoneReport) { r.CallCodes[dlg.InviteResponse.StatusCode]++ })
	if err := dlg.Ack(ctx); err != nil {
		return fmt.Errorf("sending ACK: %w", err)
	}
	if err := p.hold(ctx, dlg); err != nil {
		p.noteError(fmt.Errorf("sim: phone %s: hold: %w", p.cfg.Account, err))
	}
	if !pause(ctx, hold) {
		return ctx.Err()
	}
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the guard in front may not answer a BYE
	}
	if dlg.LoadState() == sip.DialogStateEnded {
		// The far end hung up during hold.
		p.note(func(r *PhoneReport) { r.CallsAnswered++ })
		return nil
	}
	byeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := dlg.Bye(byeCtx); err != nil {
		return fmt.Errorf("sending BYE: %w", err)
	}
	p.note(func(r *PhoneReport) { r.CallsAnswered++ })
	return nil
}

// hold sends a re-INVITE with a=sendonly inside the dialog and ACKs its 2xx
// (RFC 3261 §14.1, RFC 3264 §8.4).
func (p *Phone) hold(ctx context.Context, dlg *sipgo.DialogClientSession) error {
	contact := dlg.InviteResponse.Contact()
	if contact == nil {
		return errors.New("200 without Contact")
	}
	req := sip.NewRequest(sip.INVITE, contact.Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(phoneSDP(p.local.Addr().String(), "sendonly"))
	res, err := dlg.Do(ctx, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	ack := sip.NewRequest(sip.ACK, contact.Address)
	cseq := &sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK}
	ack.AppendHeader(cseq)
	return dlg.WriteRequest(ack)
}

// onInvite answers a call from the target: 180, then 200 with SDP, then
// keeps the dialog until BYE or shutdown.
func (p *Phone) onInvite(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	dlg, err := p.inDlg.ReadInvite(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return
	}
	defer dlg.Close()
	if err := dlg.Respond(180, "Ringing", nil); err != nil {
		return
	}
	// RespondSDP waits for the ACK; a BYE racing ahead of it ends the
	// dialog instead, which still means the call was answered.
	if err := dlg.RespondSDP(phoneSDP(p.local.Addr().String(), "sendrecv")); err != nil && dlg.LoadState() != sip.DialogStateEnded {
		p.noteError(fmt.Errorf("sim: phone %s: answering: %w", p.cfg.Account, err))
		return
	}
	p.note(func(r *PhoneReport) { r.IncomingAnswered++ })
	select {
	case <-dlg.Context().Done():
		p.note(func(r *PhoneReport) { r.IncomingEnded++ })
	case <-ctx.Done():
	}
}

// onBye ends a call in either direction (RFC 3261 §15.1.2).
func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := p.inDlg.ReadBye(req, tx); err == nil {
		return
	}
	if err := p.outDlg.ReadBye(req, tx); err == nil {
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

// forceCancel returns a context for sipgo's WaitAnswer that ends with ctx
// but with sipgo.WaitAnswerForceCancelErr as its cause: WaitAnswer then
// returns at once instead of sending a CANCEL and waiting, without a
// context, up to 64×T1 (32 s) for its answer and the 487 — on shutdown,
// from a guard that is stopping too. Trade-off: a call whose ctx ends
// while ringing is abandoned without a CANCEL.
func forceCancel(ctx context.Context) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { cancel(sipgo.WaitAnswerForceCancelErr) })
	return wctx, func() { stop(); cancel(nil) }
}
