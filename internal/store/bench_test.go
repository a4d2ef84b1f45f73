package store

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// BenchmarkIngest measures sustained ingest: events go through the queue
// (waiting when it is full, so none are dropped) and the timer stops after
// Close has committed the last one. One op is one event.
func BenchmarkIngest(b *testing.B) {
	for _, driver := range drivers {
		b.Run(driver, func(b *testing.B) {
			be := newBackend(b, driver)
			s := be.open(b, Options{})
			ev := &event.AuthFailure{Meta: event.Meta{Time: t0, Source: ap("203.0.113.7:5060"), Transport: "udp"},
				SIP:     event.SIP{Method: "REGISTER", CallID: "a84b4c76e66710", FromUser: "1001", ToUser: "1001", UserAgent: "friendly-scanner", Path: []string{"udp 203.0.113.7:5060"}},
				Account: "1001", Code: 403}
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for b.Loop() {
				s.queue <- ev
				n++
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkQueryByIP queries one attacker's newest 100 events among
// TOLLGUARD_BENCH_ROWS rows (default 200000; the target is 10M) spread over
// 65536 sources. Building the table is not timed.
func BenchmarkQueryByIP(b *testing.B) {
	rows := 200000
	if v := os.Getenv("TOLLGUARD_BENCH_ROWS"); v != "" {
		var err error
		if rows, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	for _, driver := range drivers {
		b.Run(driver, func(b *testing.B) {
			be := newBackend(b, driver)
			s := be.open(b, Options{BatchSize: 8192, QueueSize: 1 << 17})
			built := time.Now()
			for i := range rows {
				a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
				s.queue <- &event.AuthFailure{Meta: event.Meta{Time: t0.Add(time.Duration(i) * time.Millisecond), Source: netip.AddrPortFrom(a, 5060)},
					Account: strconv.Itoa(1000 + i%500), Code: 403}
			}
			if err := s.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: built %d rows in %v", driver, rows, time.Since(built).Round(time.Millisecond))
			ip := netip.MustParseAddr("198.18.1.2")
			b.ReportAllocs()
			for b.Loop() {
				recs, err := s.Query(context.Background(), Filter{IP: ip, Limit: 100})
				if err != nil || len(recs) == 0 {
					b.Fatalf("Query: %d records, %v", len(recs), err)
				}
			}
		})
	}
}
