package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/testpeer"
)

// testStream is one node's stream and what it received.
type testStream struct {
	*Stream
	reg  *prometheus.Registry
	mu   sync.Mutex
	got  []string
	stop func()
}

func (ts *testStream) received() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.got...)
}

func startStream(t testing.TB, url, node string, queue int) *testStream {
	t.Helper()
	ts := &testStream{reg: prometheus.NewRegistry()}
	s, err := NewStream(StreamOptions{Config: Config{Redis: url, Node: node}, Name: "test", QueueMax: queue, Registry: ts.reg,
		Receive: func(from string, b []byte) {
			ts.mu.Lock()
			ts.got = append(ts.got, from+":"+string(b))
			ts.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Stream = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	var once sync.Once
	ts.stop = func() { once.Do(func() { cancel(); <-done; s.Close() }) }
	t.Cleanup(ts.stop)
	return ts
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Messages go to every other node in order, never back to their sender;
// hostile entries are counted and skipped; with Redis down messages wait
// in a bounded queue (the oldest dropped and counted) and arrive, in
// order, when Redis is back.
func TestStream(t *testing.T) {
	r := testpeer.StartRedis(t)
	a := startStream(t, r.URL(), "a", 3)
	b := startStream(t, r.URL(), "b", 3)
	waitFor(t, "both connected", func() bool { return a.Connected() && b.Connected() })
	a.Publish([]byte("1"))
	a.Publish([]byte("2"))
	waitFor(t, "b receives", func() bool { return len(b.received()) == 2 })
	if got := strings.Join(b.received(), ","); got != "a:1,a:2" {
		t.Errorf("b received %s", got)
	}
	for _, e := range [][]string{{"n", "bad name!", "m", "x"}, {"n", "evil", "m", strings.Repeat("x", 5000)}, {"m", "x"}} {
		if _, err := r.Do(append([]string{"XADD", "{tollguard}:test", "*"}, e...)...); err != nil {
			t.Fatal(err)
		}
	}
	if a.Publish(make([]byte, 5000)) {
		t.Error("an oversized message was queued")
	}
	waitFor(t, "garbage rejected", func() bool {
		return testutil.ToFloat64(a.m.msgs.WithLabelValues("test", "rejected")) == 3
	})
	if len(a.received()) != 0 {
		t.Errorf("a received its own messages or garbage: %v", a.received())
	}

	r.Stop()
	waitFor(t, "a sees Redis down", func() bool { a.Publish([]byte("probe")); time.Sleep(20 * time.Millisecond); return !a.Connected() })
	for i := range 5 {
		a.Publish(fmt.Appendf(nil, "down%d", i))
	}
	// The batch being added when Redis went away goes back in front of
	// the queue and, being oldest, is dropped first.
	waitFor(t, "the queue at its bound", func() bool { return a.Queued() == 3 })
	r.Start()
	waitFor(t, "queue sent", func() bool { return a.Queued() == 0 })
	waitFor(t, "b receives the queue", func() bool { return len(b.received()) >= 5 })
	if got := strings.Join(b.received()[2:], ","); got != "a:down2,a:down3,a:down4" {
		t.Errorf("after the outage b received %s, want the 3 newest in order", got)
	}
	if d := testutil.ToFloat64(a.m.msgs.WithLabelValues("test", "dropped")); d < 3 {
		t.Errorf("dropped = %v, want at least 3 (2 over the bound, 1 oversized)", d)
	}
}

// A node that was away reads what was added meanwhile, from the entry
// after the last it read.
func TestStreamResumes(t *testing.T) {
	r := testpeer.StartRedis(t)
	a := startStream(t, r.URL(), "a", 100)
	b := startStream(t, r.URL(), "b", 100)
	waitFor(t, "both connected", func() bool { return a.Connected() && b.Connected() })
	a.Publish([]byte("before"))
	waitFor(t, "b receives", func() bool { return len(b.received()) == 1 })
	// Cut b's connections only: Redis keeps the stream.
	if _, err := r.Do("CLIENT", "KILL", "SKIPME", "yes"); err != nil {
		t.Fatal(err)
	}
	a.Publish([]byte("while"))
	waitFor(t, "b catches up", func() bool { return len(b.received()) == 2 })
	if got := strings.Join(b.received(), ","); got != "a:before,a:while" {
		t.Errorf("b received %s", got)
	}
}
