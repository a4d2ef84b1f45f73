package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Blaster floods a target with one prebuilt OPTIONS request from a single
// source address, as fast as it can or at a fixed rate, and never reads an
// answer. It is the banned-source flood: the guard should drop every packet
// in its read filter.
type Blaster struct {
	// Source is the flooding address; every sender binds its own port on it.
	Source netip.Addr
	// Target receives the flood.
	Target netip.AddrPort
	// Senders is the number of sending goroutines; zero means 1.
	Senders int
	// Rate is packets per second over all senders; zero means unpaced.
	Rate int
	// Duration bounds the flood; required.
	Duration time.Duration
}

// Run floods until Duration passed or ctx ended and returns the number of
// packets sent.
func (b Blaster) Run(ctx context.Context) (int64, error) {
	if b.Duration <= 0 {
		return 0, fmt.Errorf("bench: blaster: duration must be positive")
	}
	n := max(b.Senders, 1)
	pkt := floodPacket(b.Source, b.Target)
	conns := make([]*net.UDPConn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp4", netip.AddrPortFrom(b.Source, 0).String())
		if err != nil {
			return 0, fmt.Errorf("bench: blaster: binding %s: %w", b.Source, err)
		}
		conns = append(conns, pc.(*net.UDPConn))
	}
	var sent atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(b.Duration)
	for _, c := range conns {
		wg.Go(func() {
			var per time.Duration // time between bursts of 32 for this sender
			if b.Rate > 0 {
				per = time.Duration(float64(time.Second) * 32 * float64(n) / float64(b.Rate))
			}
			next := start
			for ctx.Err() == nil {
				now := time.Now()
				if now.After(end) {
					return
				}
				if per > 0 {
					if d := next.Sub(now); d > 0 {
						time.Sleep(d)
					}
					next = next.Add(per)
				}
				for range 32 {
					if _, err := c.WriteToUDPAddrPort(pkt, b.Target); err != nil {
						// ECONNREFUSED from an ICMP error or a full
						// buffer: count nothing, keep going.
						once.Do(func() { firstErr = err })
						continue
					}
					sent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if sent.Load() == 0 && firstErr != nil {
		return 0, fmt.Errorf("bench: blaster: sending: %w", firstErr)
	}
	return sent.Load(), nil
}

// floodPacket is a well-formed OPTIONS request such as a flood sends.
func floodPacket(src netip.Addr, dst netip.AddrPort) []byte {
	return fmt.Appendf(nil, "OPTIONS sip:100@%[2]s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %[1]s:5060;branch=z9hG4bKflood1;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:100@%[2]s>;tag=flood1\r\n"+
		"To: <sip:100@%[2]s>\r\n"+
		"Call-ID: flood1\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"User-Agent: flood\r\n"+
		"Content-Length: 0\r\n\r\n", src, dst.Addr())
}
