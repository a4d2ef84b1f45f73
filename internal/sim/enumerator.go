package sim

import (
	"context"
	"strconv"
)

// Enumerator looks for valid extensions like sipvicious svwar: one
// REGISTER without credentials per candidate extension. An extension is
// reported as found when the answer differs from "not found" (200, 401 or
// 407); a PBX that challenges every name, as FreeSWITCH does, therefore
// looks as if every extension existed.
type Enumerator struct {
	Attack
	// Extensions are the candidates, tried in order.
	Extensions []string
	// Domain is the SIP domain; empty means the target IP.
	Domain string
	// UserAgent is sent in every request; empty means "friendly-scanner",
	// svwar's default.
	UserAgent string
	// Method is REGISTER (default), OPTIONS or INVITE: svwar's -m.
	Method string
	// FromUser is the From user; empty means the candidate itself, as
	// svwar does. A caller dialling numbers sets an extension here.
	FromUser string
}

// Extensions returns the decimal extensions from first to last inclusive.
func Extensions(first, last int) []string {
	var out []string
	for i := first; i <= last; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// Run probes the extensions and reports the answers. It stops early when
// the target goes silent or ctx ends.
func (e Enumerator) Run(ctx context.Context) (AttackReport, error) {
	t := newTally("enumerator", e.Attack)
	p, err := newPeer(ctx, e.Source, e.Target)
	if err != nil {
		return t.done(), err
	}
	defer p.Close()
	domain := domainOr(e.Domain, e.Target)
	ua := e.UserAgent
	if ua == "" {
		ua = ScannerUserAgent
	}
	method := e.Method
	if method == "" {
		method = "REGISTER"
	}
	for _, ext := range e.Extensions {
		uri := "sip:" + domain
		if method != "REGISTER" {
			uri = "sip:" + ext + "@" + domain
		}
		from := e.FromUser
		if from == "" {
			from = ext
		}
		req := rawRequest{Method: method, URI: uri, FromUser: from, ToUser: ext,
			Domain: domain, UserAgent: ua, CallID: randHex(12), CSeq: 1}
		res, err := p.exchange(ctx, req, e.timeout())
		code := statusCode(res)
		stop, fatal := t.record(code, err)
		if fatal != nil {
			return t.done(), fatal
		}
		if code == 200 || code == 401 || code == 407 {
			t.r.Found = append(t.r.Found, ext)
		}
		if code == 200 && method == "INVITE" {
			t.r.Connected++
		}
		if stop || !pause(ctx, e.Interval) {
			break
		}
	}
	return t.done(), nil
}
