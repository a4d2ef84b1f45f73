package sim

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/icholy/digest"
)

// probeTimeout bounds each of RegisterOnce's transactions: a first
// request held by a greylisting guard passes at its retransmission T1
// later, one that gets no answer by then is dropped.
const probeTimeout = 2 * time.Second

// ProbeResult is the final answer to one authenticated REGISTER.
type ProbeResult struct {
	Code  int  // final status code of the request with credentials
	Stale bool // the answer was a challenge with stale=true
}

// RegisterOnce sends one REGISTER from source as a phone does
// (retransmitted per RFC 3261 Timer E until answered, at most
// probeTimeout), takes the 401 challenge,
// calls between (when not nil; tests use it to age the nonce) and sends the
// REGISTER again with credentials for account and password. It reports the
// final answer to the second request.
func RegisterOnce(ctx context.Context, source netip.Addr, target netip.AddrPort, domain, account, password string, between func()) (ProbeResult, error) {
	p, err := newPeer(ctx, source, target)
	if err != nil {
		return ProbeResult{}, err
	}
	defer p.Close()
	domain = domainOr(domain, target)
	uri := "sip:" + domain
	req := rawRequest{Method: "REGISTER", URI: uri, FromUser: account, ToUser: account,
		Domain: domain, CallID: randHex(12), CSeq: 1}
	res, err := p.transact(ctx, req, probeTimeout)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("sim: probe: %w", err)
	}
	if res.StatusCode != 401 {
		return ProbeResult{Code: res.StatusCode}, nil
	}
	auth, err := authorization(res, "REGISTER", uri, account, password)
	if err != nil {
		return ProbeResult{}, err
	}
	if between != nil {
		between()
	}
	req.CSeq, req.Extra = 2, []string{auth}
	res, err = p.transact(ctx, req, probeTimeout)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("sim: probe: %w", err)
	}
	out := ProbeResult{Code: res.StatusCode}
	if h := res.GetHeader("WWW-Authenticate"); h != nil {
		if chal, err := digest.ParseChallenge(h.Value()); err == nil {
			out.Stale = chal.Stale
		}
	}
	return out, nil
}
