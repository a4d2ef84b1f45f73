package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollguard/tollguard/internal/decision"
)

// BenchmarkPropagation measures how long a ban decided on node a takes to
// be applied on nodes b and c (three nodes, one real redis-server on
// loopback). It reports the median and 99th percentile over every
// (ban, receiving node) pair. Record it with:
//
//	go test -run '^$' -bench Propagation -benchtime 1000x ./internal/cluster/
func BenchmarkPropagation(b *testing.B) {
	r := startRedis(b)
	a, nb, nc := startNode(b, r.URL(), "a"), startNode(b, r.URL(), "b"), startNode(b, r.URL(), "c")
	waitConnected(b, a, nb, nc)
	var lat []time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		addr := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
		d := ipBan(addr.String(), time.Hour)
		wb, wc := nb.expect(d.Key()), nc.expect(d.Key())
		start := time.Now()
		a.ban(d)
		for _, w := range []<-chan struct{}{wb, wc} {
			select {
			case <-w:
				lat = append(lat, time.Since(start))
			case <-time.After(10 * time.Second):
				b.Fatalf("ban %d never arrived", i)
			}
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	}
}

// BenchmarkCounterAdd measures one shared counter addition against a real
// redis-server and reports the Redis commands it costs (INFO
// total_commands_processed before and after, less the INFO calls).
func BenchmarkCounterAdd(b *testing.B) {
	r := startRedis(b)
	cl, err := NewClient(r.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	trips := &roundTrips{}
	cl.AddHook(trips)
	c, err := NewCounter(CounterOptions{Client: cl, Name: "jail", Window: time.Minute, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, shared := c.Add(ctx, "warm", 1); !shared {
		b.Fatal("redis not answering")
	}
	before, err := r.Commands()
	if err != nil {
		b.Fatal(err)
	}
	trips.n.Store(0)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, shared := c.Add(ctx, fmt.Sprint(i%1000), 1); !shared {
			b.Fatal("fell back to local counting")
		}
	}
	after, err := r.Commands()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before-1)/float64(i), "redis-cmds/op")
	b.ReportMetric(float64(trips.n.Load())/float64(i), "round-trips/op")
}

// roundTrips counts the commands and pipelines the client sends.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// BenchmarkApply is the cost Node.Apply adds to the decision path: a map
// write under a mutex, no network.
func BenchmarkApply(b *testing.B) {
	n, err := New(Options{Config: Config{Redis: "redis://127.0.0.1:1", Node: "a", PendingMax: 1 << 30},
		Apply: decision.ApplierFunc(func(decision.Decision) {})})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	d := ipBan("192.0.2.1", time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		n.Apply(d)
	}
}
