package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestCounterAddsUpAcrossNodes(t *testing.T) {
	r := startRedis(t)
	clock := &fakeClock{time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	mk := func() *Counter {
		cl, err := NewClient(r.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		c, err := NewCounter(CounterOptions{Client: cl, Name: "jail", Window: time.Minute, Now: clock.now, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b, c := mk(), mk(), mk()
	ctx := context.Background()
	var last int64
	for i, n := range []*Counter{a, b, c, a, b, c} {
		v, shared := n.Add(ctx, "192.0.2.9", 1)
		if !shared {
			t.Fatalf("add %d was not shared", i)
		}
		last = v
	}
	if last != 6 {
		t.Fatalf("six failures over three nodes counted as %d", last)
	}
	if v, _ := a.Add(ctx, "192.0.2.10", 1); v != 1 {
		t.Fatalf("another key starts at %d, want 1", v)
	}
	// Half a window later the first window weighs half: 6×0.5 + 1 = 4.
	clock.t = clock.t.Add(90 * time.Second)
	if v, _ := b.Add(ctx, "192.0.2.9", 1); v != 4 {
		t.Fatalf("after 1.5 windows: %d, want 4", v)
	}
	// Two windows later everything has left.
	clock.t = clock.t.Add(2 * time.Minute)
	if v, _ := c.Add(ctx, "192.0.2.9", 1); v != 1 {
		t.Fatalf("after the window passed: %d, want 1", v)
	}
	// The buckets expire in Redis by themselves.
	if ttl, err := r.Do("PTTL", "{tollguard:c:jail:192.0.2.9}:"+strconv.FormatInt(clock.t.UnixNano()/int64(time.Minute), 10)); err != nil || ttl == ":-1" || ttl == ":-2" {
		t.Fatalf("PTTL = %s, %v; want an expiry", ttl, err)
	}
}

func TestCounterFallsBackWhenRedisIsDown(t *testing.T) {
	r := startRedis(t)
	cl, err := NewClient(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reg := prometheus.NewRegistry()
	c, err := NewCounter(CounterOptions{Client: cl, Name: "enum", Window: time.Minute, Timeout: time.Second, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, shared := c.Add(ctx, "k", 1); !shared {
		t.Fatal("not shared while redis is up")
	}
	r.Stop()
	v1, shared := c.Add(ctx, "k", 1)
	v2, _ := c.Add(ctx, "k", 1)
	if shared || v1 != 1 || v2 != 2 {
		t.Fatalf("while down: %d, %d, shared=%v; want local 1, 2", v1, v2, shared)
	}
	if f := metric(t, c.failures); f != 1 {
		t.Fatalf("failures = %v, want 1 (no retry for a second after a failure)", f)
	}
	if l := metric(t, c.calls.WithLabelValues("enum", "local")); l != 2 {
		t.Fatalf("local adds = %v, want 2", l)
	}
}

func TestLocalWindow(t *testing.T) {
	clock := &fakeClock{time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	c, err := NewCounter(CounterOptions{Name: "x", Window: 10 * time.Second, Now: clock.now, MaxLocalKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		name string
		adv  time.Duration
		key  string
		n    int64
		want int64
	}{
		{"first", 0, "a", 3, 3},
		{"same window", 5 * time.Second, "a", 1, 4},
		{"next window: 4 × 0.8 rounded up, plus 1", 7 * time.Second, "a", 1, 4 + 1},
		{"a second key", 0, "b", 1, 1},
		{"a third key when full is not remembered", 0, "c", 5, 5},
		{"still not remembered", 0, "c", 5, 5},
		{"window long gone", 30 * time.Second, "a", 2, 2},
	}
	for _, s := range steps {
		clock.t = clock.t.Add(s.adv)
		if got, shared := c.Add(ctx, s.key, s.n); got != s.want || shared {
			t.Fatalf("%s: Add = %d (shared %v), want %d", s.name, got, shared, s.want)
		}
	}
}

func TestEstimateRoundsUp(t *testing.T) {
	for _, c := range []struct {
		cur, prev int64
		frac      float64
		want      int64
	}{{0, 10, 0, 10}, {1, 10, 0.5, 6}, {0, 3, 0.5, 2}, {2, 0, 0.9, 2}, {0, 10, 0.99, 1}} {
		if got := estimate(c.cur, c.prev, c.frac); got != c.want {
			t.Errorf("estimate(%d, %d, %v) = %d, want %d", c.cur, c.prev, c.frac, got, c.want)
		}
	}
}
