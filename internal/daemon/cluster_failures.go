package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tollguard/tollguard/internal/cluster"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
)

// failureShare makes the nodes' authentication-failure counters add up
// (cluster.share_failures): each node adds the failures its own sources
// saw to the Redis stream {prefix}:failures (cluster.Stream), and feeds the
// other nodes' failures to its engine at the time they happened. So the
// jail, the enumeration and the distributed rules count a guess spread
// over N nodes as one node would, and each node bans by itself (and
// shares the ban as any other).
//
// Why a stream of failures and not shared counters: the engine's detectors
// keep their counters in memory and stay pure (no I/O on the packet path,
// none for a source with no history); a failure is already the slow path,
// and queueing it costs the packet path nothing (a bounded queue, one
// goroutine). Failures a node sees while Redis is down wait in that queue
// (cluster.stream_queue; the oldest are dropped and counted beyond it)
// and are added when Redis is back, with their own times: the receivers
// count them in the windows they fall in, and ignore those older than the
// longest findtime. Every node holds the whole cluster's recent failures.
// Received failures never reach the store (the node that saw them stored
// them) nor the stream again (they bypass the recorder), so nothing
// echoes.
type failureShare struct {
	stream *cluster.Stream
	node   string
	g      *Guard
	// maxAge is the longest findtime of the rules that count failures:
	// an older failure counts nowhere.
	maxAge time.Duration
}

// maxFailureMessage bounds a message read from the stream.
const maxFailureMessage = 4096

// maxClockSkew is how far in the future another node's time may be: later
// ones are refused, earlier ones taken as now.
const maxClockSkew = time.Minute

// failureMessage is the wire format on {prefix}:failures; the failure
// keeps the time its node saw it.
type failureMessage struct {
	V       int                `json:"v"`
	Failure *event.AuthFailure `json:"failure"`
}

func newFailureShare(g *Guard, cfg *config.Config) (*failureShare, error) {
	f := &failureShare{node: g.shr.node.Status().Node, g: g, maxAge: failureWindow(cfg)}
	s, err := cluster.NewStream(cluster.StreamOptions{Config: cfg.Cluster.Config, Name: "failures", Receive: f.receive,
		QueueMax: cfg.Cluster.StreamQueue, Backfill: f.maxAge, Logger: g.log, Registry: g.reg, Now: g.now})
	if err != nil {
		return nil, err
	}
	f.stream = s
	return f, nil
}

// failureWindow is the longest findtime of the jail, enumeration and
// distributed rules (at least a minute).
func failureWindow(cfg *config.Config) time.Duration {
	w := max(time.Minute, cfg.Enumeration.FindTime.D(), cfg.Distributed.FindTime.D())
	for _, r := range cfg.Jail.RegisterFailure {
		w = max(w, r.FindTime.D())
	}
	return w
}

// record wraps the store's recorder: every failure this node's sources saw
// is also queued for the other nodes. It never blocks.
func (f *failureShare) record(next recordFunc) recordFunc {
	return func(ev event.Event) {
		next(ev)
		a, ok := ev.(*event.AuthFailure)
		if !ok || a.Stale {
			return
		}
		c := *a
		if c.Time.IsZero() {
			c.Time = f.g.now()
		}
		b, err := json.Marshal(failureMessage{V: 1, Failure: &c})
		if err != nil {
			return
		}
		f.stream.Publish(b)
	}
}

// run adds the queue and feeds received failures to the engine until ctx
// ends.
func (f *failureShare) run(ctx context.Context) { _ = f.stream.Run(ctx) }

// receive checks one message (it comes from Redis: hostile) and hands the
// failure to the engine at the time it happened: one from the future (past
// the allowed clock skew) or older than the longest findtime is ignored.
// The engine never bans an allowed address, whatever it is told.
func (f *failureShare) receive(node string, payload []byte) {
	var m failureMessage
	if len(payload) > maxFailureMessage || json.Unmarshal(payload, &m) != nil || m.V != 1 || m.Failure == nil ||
		!m.Failure.Source.Addr().IsValid() || node == f.node {
		return
	}
	a := m.Failure
	now := f.g.now()
	switch {
	case a.Time.IsZero() || a.Time.After(now.Add(maxClockSkew)) || now.Sub(a.Time) >= f.maxAge:
		return
	case a.Time.After(now):
		a.Time = now
	}
	a.Listener = cluster.OriginPrefix + node
	a.Stale = false
	f.g.eng.Check(context.Background(), a)
}
