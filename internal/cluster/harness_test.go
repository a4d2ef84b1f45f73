package cluster

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/decision/screen"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// testNode is one in-process guard node: its own ban set, fed by its own
// engine (the test calls ban) and by the cluster.
type testNode struct {
	*Node
	set  *decision.Set
	reg  *prometheus.Registry
	stop func()

	mu      sync.Mutex
	waiters map[decision.Key]chan struct{}
}

// Apply records decisions arriving from the cluster into the set and wakes
// anyone waiting for them.
func (tn *testNode) applyReceived(d decision.Decision) {
	tn.set.Apply(d)
	tn.mu.Lock()
	if ch, ok := tn.waiters[d.Key()]; ok {
		close(ch)
		delete(tn.waiters, d.Key())
	}
	tn.mu.Unlock()
}

// expect returns a channel closed when a decision for k arrives.
func (tn *testNode) expect(k decision.Key) <-chan struct{} {
	ch := make(chan struct{})
	tn.mu.Lock()
	tn.waiters[k] = ch
	tn.mu.Unlock()
	return ch
}

// ban is what the node's engine does: apply locally, then share.
func (tn *testNode) ban(d decision.Decision) {
	tn.set.Apply(d)
	tn.Node.Apply(d)
}

type nodeOpt func(*Options)

func startNode(t testing.TB, url, name string, opts ...nodeOpt) *testNode {
	t.Helper()
	tn := &testNode{set: decision.NewSet(), reg: prometheus.NewRegistry(), waiters: map[decision.Key]chan struct{}{}}
	o := Options{
		Config:   Config{Redis: url, Node: name},
		Apply:    decision.ApplierFunc(tn.applyReceived),
		Screen:   screen.New([]netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, nil).Check,
		Local:    func() []decision.Decision { return tn.set.List(time.Now()) },
		Registry: tn.reg,
		RetryMin: 20 * time.Millisecond,
		RetryMax: 200 * time.Millisecond,
	}
	for _, f := range opts {
		f(&o)
	}
	n, err := New(o)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	tn.Node = n
	tn.resume()
	t.Cleanup(func() { tn.pause(); _ = n.Close() })
	return tn
}

// resume starts Run; pause stops it and waits (the node stops listening,
// as if its link were cut, but keeps its client).
func (tn *testNode) resume() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tn.Run(ctx); close(done) }()
	tn.stop = func() { cancel(); <-done }
}

func (tn *testNode) pause() {
	if tn.stop != nil {
		tn.stop()
		tn.stop = nil
	}
}

// eventually polls cond for up to 10 s; it bounds a wait, it does not time
// anything.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitConnected(t testing.TB, nodes ...*testNode) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, n.cfg.Node+" connected", func() bool { return n.Status().Connected })
	}
}

func ipBan(addr string, d time.Duration) decision.Decision {
	now := time.Now()
	return decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP,
		Prefix: decision.HostPrefix(netip.MustParseAddr(addr)), Origin: decision.OriginEngine,
		Rule: "jail", Reason: "register failures", At: now, Until: now.Add(d)}
}

func banned(n *testNode, addr string) bool {
	_, ok := n.set.Banned(netip.MustParseAddr(addr), time.Now())
	return ok
}

func metric(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

func startRedis(t testing.TB) *testpeer.Redis { return testpeer.StartRedis(t) }
