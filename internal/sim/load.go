package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MaxLoadCount bounds Load.Count so a typo cannot exhaust memory.
const MaxLoadCount = 10_000_000

// Load is a benchmark load generator: it sends requests at a fixed rate,
// spread over many loopback source addresses, and measures the round-trip
// time of each request to its final response. With two targets (say the
// guard and the PBX directly) requests alternate between them in one run,
// so both see the same machine load and the difference is the added
// latency. Before the measured requests each source completes one OPTIONS
// transaction with each target as a phone would (the same datagram
// retransmitted on RFC 3261 Timer E until answered, at most greetTimeout):
// a guard that greylists new addresses holds that first request for one
// T1, and the measured requests after it show the steady state. The
// measured requests are not retransmitted; unanswered ones count as lost.
type Load struct {
	// Targets receive the requests, alternating; one or two entries.
	Targets []netip.AddrPort
	// Rate is requests per second over all targets; required.
	Rate int
	// Count is the total number of requests; required, at most MaxLoadCount.
	Count int
	// Duration, when set, stops sending after this long even if Count
	// requests were not sent yet.
	Duration time.Duration
	// Sources is how many source addresses to send from; zero means 64.
	Sources int
	// SourceBase is the first source address; zero means 127.1.0.1.
	SourceBase netip.Addr
	// Method is OPTIONS (default) or REGISTER.
	Method string
	// Drain is how long to wait for late answers after the last request;
	// zero means 1 s.
	Drain time.Duration
}

// TargetResult is what one target did during a load run.
type TargetResult struct {
	Target   netip.AddrPort
	Sent     int
	Answered int
	Lost     int
	Codes    map[int]int
	Latency  Histogram
	// Greeting is the time each source's first transaction with the
	// target took to its answer, retransmissions included (see Load);
	// Ungreeted counts sources it never answered.
	Greeting  Histogram
	Ungreeted int
}

// String summarises the result on one line.
func (r *TargetResult) String() string {
	return fmt.Sprintf("%s sent %d answered %d lost %d codes %v latency %s",
		r.Target, r.Sent, r.Answered, r.Lost, r.Codes, r.Latency.String())
}

// LoadResult is the outcome of Load.Run.
type LoadResult struct {
	Targets []*TargetResult
	// Elapsed is the time spent sending.
	Elapsed time.Duration
	// MaxLag is the largest delay of a send behind its schedule; a large
	// value means the generator could not keep the rate.
	MaxLag time.Duration
}

// Run sends the load and returns the measurements. It returns early, with
// what was measured so far, when ctx ends.
func (l Load) Run(ctx context.Context) (LoadResult, error) {
	if len(l.Targets) == 0 || len(l.Targets) > 2 {
		return LoadResult{}, errors.New("sim: load: want one or two targets")
	}
	if l.Rate <= 0 || l.Count <= 0 || l.Count > MaxLoadCount {
		return LoadResult{}, fmt.Errorf("sim: load: rate %d and count %d must be positive (count at most %d)", l.Rate, l.Count, MaxLoadCount)
	}
	method := l.Method
	switch method {
	case "":
		method = "OPTIONS"
	case "OPTIONS", "REGISTER":
	default:
		return LoadResult{}, fmt.Errorf("sim: load: method %q: want OPTIONS or REGISTER", method)
	}
	nsrc := l.Sources
	if nsrc <= 0 {
		nsrc = 64
	}
	drain := l.Drain
	if drain <= 0 {
		drain = time.Second
	}
	srcs := &Sources{Base: l.SourceBase}
	if !srcs.Base.IsValid() {
		srcs.Base = netip.AddrFrom4([4]byte{127, 1, 0, 1})
	}

	// Per request: send offset, then RTT+1 and status once answered.
	sentAt := make([]atomic.Int64, l.Count)
	rtt := make([]atomic.Int64, l.Count)
	codes := make([]atomic.Int32, l.Count)
	var answered atomic.Int64
	var start time.Time // set once every socket is bound, before readers run

	conns := make([]*net.UDPConn, 0, nsrc)
	var readers sync.WaitGroup
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	var started sync.WaitGroup
	started.Add(1)
	for range nsrc {
		pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp4", netip.AddrPortFrom(srcs.Next(), 0).String())
		if err != nil {
			return LoadResult{}, fmt.Errorf("sim: load: binding source: %w", err)
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		_ = c.SetReadBuffer(1 << 20)
		readers.Go(func() {
			started.Wait()
			buf := make([]byte, 65535)
			for {
				n, _, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				now := time.Since(start)
				code := responseStatus(buf[:n])
				seq, ok := callIDSeq(buf[:n], "lg")
				if code < 200 || !ok || seq >= l.Count {
					continue
				}
				if rtt[seq].CompareAndSwap(0, int64(now)-sentAt[seq].Load()+1) {
					codes[seq].Store(int32(code))
					answered.Add(1)
				}
			}
		})
	}

	greetings := l.greet(ctx, conns)
	start = time.Now()
	started.Done()
	interval := time.Second / time.Duration(l.Rate)
	var maxLag time.Duration
	sent := 0
	buf := make([]byte, 0, 1024)
	for i := range l.Count {
		due := time.Duration(i) * interval
		if l.Duration > 0 && due > l.Duration {
			break
		}
		if ahead := due - time.Since(start); ahead > 100*time.Microsecond {
			if !pause(ctx, ahead) {
				break
			}
		} else if ctx.Err() != nil {
			break
		}
		c := conns[i%nsrc]
		target := l.Targets[i%len(l.Targets)]
		buf = appendLoadRequest(buf[:0], method, i, c.LocalAddr().String(), target)
		now := time.Since(start)
		maxLag = max(maxLag, now-due)
		sentAt[i].Store(int64(now))
		if _, err := c.WriteToUDPAddrPort(buf, target); err != nil {
			return LoadResult{}, fmt.Errorf("sim: load: sending: %w", err)
		}
		sent++
	}
	elapsed := time.Since(start)
	deadline := time.Now().Add(drain)
	for answered.Load() < int64(sent) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}

	res := LoadResult{Elapsed: elapsed, MaxLag: maxLag}
	for k, t := range l.Targets {
		tr := &TargetResult{Target: t, Codes: map[int]int{}}
		for _, g := range greetings[k] {
			if g < 0 {
				tr.Ungreeted++
			} else {
				tr.Greeting.Record(g)
			}
		}
		res.Targets = append(res.Targets, tr)
	}
	for i := range sent {
		tr := res.Targets[i%len(l.Targets)]
		tr.Sent++
		d := rtt[i].Load()
		if d == 0 {
			tr.Lost++
			continue
		}
		tr.Answered++
		tr.Codes[int(codes[i].Load())]++
		tr.Latency.Record(time.Duration(d - 1))
	}
	return res, nil
}

// appendLoadRequest renders request seq; its Call-ID starts with "lg<seq>"
// so that answers can be matched without a full parse.
func appendLoadRequest(b []byte, method string, seq int, local string, target netip.AddrPort) []byte {
	host := target.Addr().String()
	s := strconv.Itoa(seq)
	b = append(b, method...)
	b = append(b, " sip:"...)
	b = append(b, host...)
	b = append(b, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	b = append(b, local...)
	b = append(b, ";branch=z9hG4bKlg"...)
	b = append(b, s...)
	b = append(b, ";rport\r\nMax-Forwards: 70\r\nFrom: <sip:load@"...)
	b = append(b, host...)
	b = append(b, ">;tag=lg"...)
	b = append(b, s...)
	b = append(b, "\r\nTo: <sip:load@"...)
	b = append(b, host...)
	b = append(b, ">\r\nCall-ID: lg"...)
	b = append(b, s...)
	b = append(b, "-load\r\nCSeq: 1 "...)
	b = append(b, method...)
	b = append(b, "\r\nContact: <sip:load@"...)
	b = append(b, local...)
	b = append(b, ">\r\nUser-Agent: tollguard-sim-load\r\nContent-Length: 0\r\n\r\n"...)
	return b
}

// greetTimeout bounds each source's first transaction with a target.
const greetTimeout = 4 * time.Second

// greet has every conn complete one OPTIONS transaction with each target,
// all sources at once, retransmitting like a phone (peer.transact). It
// returns the time each took, by target and source; -1 when unanswered.
func (l Load) greet(ctx context.Context, conns []*net.UDPConn) [][]time.Duration {
	out := make([][]time.Duration, len(l.Targets))
	var wg sync.WaitGroup
	for k, t := range l.Targets {
		out[k] = make([]time.Duration, len(conns))
		for j, c := range conns {
			wg.Go(func() {
				p := &peer{conn: c, local: c.LocalAddr().(*net.UDPAddr).AddrPort(), target: t, buf: make([]byte, 65535)}
				dom := t.Addr().String()
				req := rawRequest{Method: "OPTIONS", URI: "sip:" + dom, FromUser: "load", ToUser: "load", Domain: dom,
					UserAgent: "tollguard-load", CallID: "greet-" + randHex(8), CSeq: 1}
				began := time.Now()
				if _, err := p.transact(ctx, req, greetTimeout); err != nil {
					out[k][j] = -1
					return
				}
				out[k][j] = time.Since(began)
			})
		}
		wg.Wait() // one target at a time: a socket has one reader
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Time{})
	}
	return out
}
