package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tollguard/tollguard/internal/cluster"
	"github.com/tollguard/tollguard/internal/event"
)

// failureShare makes the nodes' authentication-failure counters add up
// (cluster.share_failures): each node publishes the failures its own
// sources saw on a Redis channel, and feeds the other nodes' failures to
// its engine as if it had seen them. So the jail, the enumeration and the
// distributed rules count a guess spread over N nodes as one node would,
// and each node bans by itself (and shares the ban as any other).
//
// Why a stream of failures and not shared counters: the engine's detectors
// keep their counters in memory and stay pure (no I/O on the packet path,
// none for a source with no history); a failure is already the slow path,
// one PUBLISH per failure costs the packet path nothing (a bounded queue,
// one goroutine), and nothing in the detectors changes. The cost: pub/sub
// is fire-and-forget, so failures published while Redis or a node is down
// are lost to the others (each node still counts its own, as it did
// alone), and every node holds the whole cluster's recent failures.
// Received failures never reach the store (the node that saw them stored
// them) nor the channel again (they bypass the recorder), so nothing
// echoes.
type failureShare struct {
	client  redis.UniversalClient
	channel string
	node    string
	g       *Guard
	log     *slog.Logger
	q       chan []byte
	m       *prometheus.CounterVec
}

// failureQueue bounds the failures waiting for Redis; beyond it they are
// counted on this node only.
const failureQueue = 4096

// maxFailureMessage bounds a message read from the channel.
const maxFailureMessage = 4096

// failureMessage is the wire format on {prefix}:failures.
type failureMessage struct {
	V       int                `json:"v"`
	Node    string             `json:"node"`
	Failure *event.AuthFailure `json:"failure"`
}

func newFailureShare(g *Guard, c cluster.Config) (*failureShare, error) {
	client, err := cluster.NewClient(c.Redis)
	if err != nil {
		return nil, err
	}
	prefix := c.KeyPrefix
	if prefix == "" {
		prefix = cluster.DefaultKeyPrefix
	}
	f := &failureShare{client: client, channel: "{" + prefix + "}:failures", node: g.shr.node.Status().Node, g: g,
		log: g.log.With("component", "cluster"), q: make(chan []byte, failureQueue),
		m: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_cluster_failures_total",
			Help: "Authentication failures shared between nodes, by direction (published, received, dropped, rejected)."},
			[]string{"direction"})}
	if err := g.reg.Register(f.m); err != nil {
		client.Close()
		return nil, err
	}
	return f, nil
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
		b, err := json.Marshal(failureMessage{V: 1, Node: f.node, Failure: a})
		if err != nil {
			return
		}
		select {
		case f.q <- b:
		default:
			f.m.WithLabelValues("dropped").Inc()
		}
	}
}

// run publishes the queue and feeds received failures to the engine until
// ctx ends. go-redis resubscribes by itself after a lost link.
func (f *failureShare) run(ctx context.Context) {
	ps := f.client.Subscribe(ctx, f.channel)
	defer ps.Close()
	go f.publish(ctx)
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			f.receive(msg.Payload)
		}
	}
}

func (f *failureShare) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-f.q:
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := f.client.Publish(pctx, f.channel, b).Err()
			cancel()
			if err != nil {
				f.m.WithLabelValues("dropped").Inc()
				continue
			}
			f.m.WithLabelValues("published").Inc()
		}
	}
}

// receive checks one message (it comes from Redis: hostile) and hands the
// failure to the engine, stamped with this node's clock. The engine never
// bans an allowed address, whatever it is told.
func (f *failureShare) receive(payload string) {
	var m failureMessage
	if len(payload) > maxFailureMessage || json.Unmarshal([]byte(payload), &m) != nil || m.V != 1 || m.Failure == nil ||
		!m.Failure.Source.Addr().IsValid() || m.Node == "" {
		f.m.WithLabelValues("rejected").Inc()
		return
	}
	if m.Node == f.node {
		return
	}
	a := m.Failure
	a.Time = f.g.now()
	a.Listener = cluster.OriginPrefix + m.Node
	a.Stale = false
	f.m.WithLabelValues("received").Inc()
	f.g.eng.Check(context.Background(), a)
}
