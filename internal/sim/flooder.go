package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Flooder sends requests at a fixed rate without waiting for answers, as a
// flood or a fast scanner does, and counts the answers as they come back.
type Flooder struct {
	Attack
	// Rate is requests per second; zero means 200.
	Rate int
	// Count bounds the number of requests; zero means 1000.
	Count int
	// Method is the SIP method to send; empty means OPTIONS.
	Method string
	// UserAgent is sent in every request; empty means "friendly-scanner".
	UserAgent string
}

// Run floods until Count requests are sent, the target has been silent for
// Attack.Silence requests and Attack.Timeout, or ctx ends. Answers that
// arrive up to Attack.Timeout after the last request are counted.
func (f Flooder) Run(ctx context.Context) (AttackReport, error) {
	t := newTally("flooder", f.Attack)
	p, err := newPeer(ctx, f.Source, f.Target)
	if err != nil {
		return t.done(), err
	}
	rate, count := f.Rate, f.Count
	if rate <= 0 {
		rate = 200
	}
	if count <= 0 {
		count = 1000
	}
	method := f.Method
	if method == "" {
		method = "OPTIONS"
	}
	ua := f.UserAgent
	if ua == "" {
		ua = ScannerUserAgent
	}
	answered := make([]atomic.Int32, count) // status code per request
	var lastAnswer atomic.Int64             // unix nanos of the latest answer
	var lastSeq atomic.Int64                // highest answered sequence number
	lastSeq.Store(-1)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := p.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			code := responseStatus(buf[:n])
			seq, ok := callIDSeq(buf[:n], "fl")
			if code < 200 || !ok || seq >= count {
				continue
			}
			if answered[seq].CompareAndSwap(0, int32(code)) {
				lastAnswer.Store(time.Now().UnixNano())
				for {
					cur := lastSeq.Load()
					if int64(seq) <= cur || lastSeq.CompareAndSwap(cur, int64(seq)) {
						break
					}
				}
			}
		}
	})

	interval := time.Second / time.Duration(rate)
	start := time.Now()
	lastAnswer.Store(start.UnixNano())
	domain := f.Target.Addr().String()
	sent := 0
	for i := range count {
		if !pause(ctx, time.Until(start.Add(time.Duration(i)*interval))) {
			break
		}
		req := rawRequest{Method: method, URI: "sip:100@" + domain, FromUser: "100", ToUser: "100",
			Domain: domain, UserAgent: ua, CallID: fmt.Sprintf("fl%d-%s", i, randHex(4)), CSeq: 1}
		if _, err := p.conn.WriteToUDPAddrPort(req.bytes(p.local), p.target); err != nil {
			p.Close()
			wg.Wait()
			return t.done(), fmt.Errorf("sim: flooder: sending: %w", err)
		}
		sent++
		// Silenced: no answer for a whole timeout, and at least Silence
		// requests after the last answered one are older than the timeout.
		overdue := int64(i) - int64(f.timeout()/interval) - lastSeq.Load()
		quiet := time.Since(time.Unix(0, lastAnswer.Load()))
		if !f.Persist && overdue >= int64(f.silence()) && quiet > f.timeout() {
			break
		}
	}
	pause(ctx, f.timeout())
	p.Close()
	wg.Wait()

	last := int(lastSeq.Load())
	for i := range sent {
		if code := int(answered[i].Load()); code != 0 {
			t.r.Answers[code]++
		} else {
			t.r.Unanswered++
		}
	}
	t.r.Sent = sent
	if sent-1-last >= f.silence() {
		t.run, t.runFrom = t.limit, last+1
		t.runAt = time.Duration(last+1) * interval
	}
	return t.done(), nil
}
