package sim

import (
	"context"
	"fmt"
	"strconv"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// maxChallenges bounds the 401 rounds of one REGISTER: the first challenge
// plus one stale=true renewal (RFC 2617 §3.2.1) plus one spare.
const maxChallenges = 3

// Register registers the phone's Contact for Expires seconds (RFC 3261
// §10.2), answering 401 challenges with digest credentials. Refreshes reuse
// the Call-ID with a higher CSeq (§10.2.4). It returns a *StatusError for a
// final failure response (403 for a wrong password or unknown account).
func (p *Phone) Register(ctx context.Context) error {
	return p.register(ctx, p.cfg.Expires)
}

// Unregister removes the phone's binding (Expires: 0, RFC 3261 §10.2.2).
func (p *Phone) Unregister(ctx context.Context) error {
	return p.register(ctx, 0)
}

func (p *Phone) register(ctx context.Context, expires int) error {
	<-p.ready
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: p.domain})
	req.SetDestination(p.cfg.Target.String())
	aor := sip.Uri{Scheme: "sip", User: p.cfg.Account, Host: p.domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	callID := sip.CallIDHeader(p.callID)
	req.AppendHeader(&callID)
	p.mu.Lock()
	p.cseq += 10
	cseq := p.cseq
	p.mu.Unlock()
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	c := p.contact
	req.AppendHeader(&c)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.AppendHeader(sip.NewHeader("User-Agent", p.cfg.UserAgent))
	p.note(func(r *PhoneReport) { r.Registers++ })

	res, err := p.client.Do(ctx, req)
	for i := 0; err == nil && res.StatusCode == 401 && i < maxChallenges; i++ {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.cfg.Account, Password: p.cfg.Password})
	}
	if err != nil {
		err = fmt.Errorf("sim: phone %s: register: %w", p.cfg.Account, err)
		p.noteError(err)
		return err
	}
	p.mu.Lock()
	if req.CSeq().SeqNo > p.cseq {
		p.cseq = req.CSeq().SeqNo
	}
	p.report.RegisterCodes[res.StatusCode]++
	if res.StatusCode == 200 {
		p.report.Registered++
	}
	p.mu.Unlock()
	if res.StatusCode != 200 {
		return fmt.Errorf("sim: phone %s: register: %w", p.cfg.Account, &StatusError{Code: res.StatusCode, Reason: res.Reason})
	}
	return nil
}
