package sipfw

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// probeBranch starts the branch of the OPTIONS probes sent while the
// upstream is down.
const probeBranch = branchPrefix + "probe"

// upstreamHealth tracks whether the PBX answers. It goes down when a
// request waits UpstreamTimeout and nothing at all came from the PBX since
// that request was sent — one datagram lost under load must not turn every
// caller away — and up again on any message from the PBX; while down,
// requests get 503 at once and the sweeper probes the PBX with OPTIONS.
type upstreamHealth struct {
	down      atomic.Bool
	heard     atomic.Int64 // UnixNano of the last message from the PBX
	lastProbe atomic.Int64
	seq       atomic.Uint32
}

func (p *Proxy) upstreamAlive(r *upstream) {
	r.health.heard.Store(p.now().UnixNano())
	if r.health.down.Load() && r.health.down.CompareAndSwap(true, false) {
		p.m.upstream.WithLabelValues(r.name).Set(1)
		p.log.Info("upstream answering again", "route", r.name, "upstream", r.url)
	}
}

func (p *Proxy) upstreamDown(r *upstream) {
	if r.health.down.CompareAndSwap(false, true) {
		p.m.upstream.WithLabelValues(r.name).Set(0)
		p.log.Warn("upstream not answering", "route", r.name, "upstream", r.url, "timeout", p.o.UpstreamTimeout)
	}
}

// UpstreamState is one route's upstream and whether it answers.
type UpstreamState struct {
	Route, URL string
	Up         bool
}

// Upstreams returns every route's upstream health, the default route
// first, as tollguard_sipfw_upstream_up shows it. It never blocks.
func (p *Proxy) Upstreams() []UpstreamState {
	out := make([]UpstreamState, 0, len(p.routes))
	for _, r := range p.routes {
		out = append(out, UpstreamState{Route: r.name, URL: r.url, Up: !r.health.down.Load()})
	}
	return out
}

// upstreamFlow is the flow requests to r's PBX take. For a TCP upstream it
// is the dialled connection; without one it starts a dial and reports
// false.
func (p *Proxy) upstreamFlow(r *upstream) (flow, bool) {
	f := flow{lis: r.inside, remote: r.addr}
	if r.net == "udp" {
		return f, true
	}
	if p.conns.get(r.addr) != nil {
		return f, true
	}
	r.dialer.kick()
	return f, false
}

// upstreamDialer keeps one TCP connection to a route's PBX, dialled in the
// background so no read loop waits on connect.
type upstreamDialer struct {
	p       *Proxy
	r       *upstream
	dialing atomic.Bool
}

func (d *upstreamDialer) kick() {
	if !d.dialing.CompareAndSwap(false, true) {
		return
	}
	p, r := d.p, d.r
	go func() {
		defer d.dialing.Store(false)
		ctx, cancel := context.WithTimeout(p.ctx, time.Second)
		defer cancel()
		var dl net.Dialer
		c, err := dl.DialContext(ctx, "tcp", r.addr.String())
		if err != nil {
			p.upstreamDown(r)
			return
		}
		sc := newStreamConn(c, r.inside, r.addr, true)
		if _, ok := p.conns.add(sc); !ok {
			_ = c.Close()
			return
		}
		p.upstreamAlive(r)
		go p.readStream(p.ctx, sc)
	}()
}

// sweep expires pending requests and probes a down upstream until ctx is
// done. A request the PBX never answered gets 503 (RFC 3261 §16.7 step 6).
func (p *Proxy) sweep(ctx context.Context) {
	tick := min(p.o.UpstreamTimeout/4, 50*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := p.now()
		for _, e := range p.pending.expire(now) {
			r := e.client.lis.route
			if sent := e.deadline.Add(-p.o.UpstreamTimeout); r.health.heard.Load() < sent.UnixNano() {
				p.upstreamDown(r)
			}
			if e.req.Method == sip.ACK {
				continue
			}
			// The forwarded request is shared with the read loop that sent
			// it: answer from a copy without our Via.
			req := e.req.Clone()
			req.RemoveHeader("Via")
			p.respond(req, e.client, 503, "Service Unavailable")
			meta := e.meta
			meta.Time = now
			p.tapFinal(meta, e.sip, 503, false, 0, e.initial)
		}
		timedOut, due := p.dialogs.expire(now, ringTTL+p.o.UpstreamTimeout)
		for _, d := range timedOut {
			if d.outbound {
				p.callEnded(d, now, "timeout")
			}
		}
		for _, id := range due {
			go p.hangupDue(id)
		}
		for _, r := range p.routes {
			if r.health.down.Load() && now.UnixNano()-r.health.lastProbe.Load() >= int64(probeInterval) {
				r.health.lastProbe.Store(now.UnixNano())
				p.probe(r)
			}
		}
	}
}

// probe sends an OPTIONS to r's upstream (RFC 3261 §11); any answer
// marks it up again.
func (p *Proxy) probe(r *upstream) {
	dst, ok := p.upstreamFlow(r)
	if !ok {
		return
	}
	n := r.health.seq.Add(1)
	ns := strconv.FormatUint(uint64(n), 10)
	host := r.inside.advHost
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: r.addr.Addr().String(), Port: int(r.addr.Port())})
	req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: r.inside.viaProto,
		Host: host, Port: r.inside.advPort, Params: sip.HeaderParams{{K: "branch", V: probeBranch + ns}, {K: "rport"}}})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "tollguard", Host: host},
		Params: sip.HeaderParams{{K: "tag", V: "probe" + ns}}})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: r.addr.Addr().String(), Port: int(r.addr.Port())}})
	cid := sip.CallIDHeader("tollguard-probe-" + ns + "@" + host)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: n, MethodName: sip.OPTIONS})
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	if err := p.write(req, dst); err != nil {
		p.log.Debug("upstream probe failed", "error", err)
	}
}
