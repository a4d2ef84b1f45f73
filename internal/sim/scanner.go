package sim

import (
	"context"
	"strconv"
)

// ScannerUserAgent is the User-Agent sent by Scanner, the one svmap uses
// and most scanner blocklists match.
const ScannerUserAgent = "friendly-scanner"

// Scanner probes the target with OPTIONS like sipvicious svmap: User-Agent
// "friendly-scanner" and From display name "sipvicious".
type Scanner struct {
	Attack
	// Probes is how many requests to send; zero means 3.
	Probes int
	// Method is OPTIONS (default), REGISTER or INVITE: svmap's -m.
	Method string
}

// Run sends the probes and reports the answers. It stops early when the
// target goes silent (Attack.Silence) or ctx ends.
func (s Scanner) Run(ctx context.Context) (AttackReport, error) {
	t := newTally("scanner", s.Attack)
	p, err := newPeer(ctx, s.Source, s.Target)
	if err != nil {
		return t.done(), err
	}
	defer p.Close()
	probes := s.Probes
	if probes <= 0 {
		probes = 3
	}
	host := s.Target.Addr().String()
	callID := randHex(12)
	method := s.Method
	if method == "" {
		method = "OPTIONS"
	}
	for i := range probes {
		req := rawRequest{
			Method: method, URI: "sip:100@" + host,
			FromUser: "100", FromDisplay: "sipvicious", ToUser: "100", Domain: "1.1.1.1",
			UserAgent: ScannerUserAgent, CallID: callID + strconv.Itoa(i), CSeq: 1,
			Extra: []string{"Accept: application/sdp"},
		}
		res, err := p.exchange(ctx, req, s.timeout())
		code := statusCode(res)
		stop, fatal := t.record(code, err)
		if fatal != nil {
			return t.done(), fatal
		}
		if stop || !pause(ctx, s.Interval) {
			break
		}
	}
	return t.done(), nil
}
