// Package cluster shares bans between guard nodes through Redis.
//
// Every node keeps its own decision.Set and answers the packet path from
// it; Redis is never consulted per packet. A ban decided on one node is
// written to a Redis hash (the bans in force, one field per target) and
// its expiry to a sorted set, and published on a channel in the same Lua
// script, so the write and the notification cannot part. Every other node
// is subscribed and applies the ban through its decision.Applier as soon as
// the message arrives (well under 100 ms on a LAN; see BENCHMARKS.md).
//
// Why a hash plus pub/sub, not one of them alone: pub/sub alone loses
// everything published while a node is disconnected, and a hash alone must
// be polled. The hash is what a starting or reconnecting node loads (HSCAN,
// after subscribing, so nothing falls between the load and the first
// delta); the channel carries the deltas. The sorted set, scored by expiry,
// lets any node purge expired fields in one range query. All three keys
// share the hash tag {prefix}, so they live in one Redis Cluster slot and
// the script may touch them together.
//
// Echo storms cannot happen: a ban applied from Redis gets the Origin
// "cluster:<node>" and Node.Apply never publishes such a decision; the
// subscriber also drops messages whose node is its own name.
//
// Redis down: the node goes on alone (its own engine keeps banning into its
// own set), reports it through Status and the
// tollguard_cluster_connected gauge, keeps the decisions it made in a
// bounded pending map (the latest per target), and retries with
// exponential backoff. When Redis is back it subscribes, loads every ban in
// force (pulling what the others decided meanwhile) and pushes its pending
// decisions and, through Options.Local, the bans it made that Redis may
// have lost in a restart without persistence.
//
// Everything read from Redis is treated as hostile: entries are size-capped
// and shape-checked (malformed ones are counted and skipped) and every ban
// passes Options.Screen, so a Redis an attacker can write to still cannot
// ban an allowed address or 0.0.0.0/0.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/decision/screen"
)

// Options configures a Node.
type Options struct {
	// Config is the cluster section; Config.Node names this node.
	Config Config
	// Client overrides the client built from Config.Redis (tests).
	Client redis.UniversalClient
	// Apply receives the decisions of other nodes. It must not block.
	Apply decision.Applier
	// Screen is asked about every decision read from Redis; a non-nil
	// error refuses it (counted, logged). Use (*screen.Policy).Check with
	// the allow list so allow always wins. Default: screen.New(nil,
	// nil).Check (shape, reserved space, /16 and /32 floors).
	Screen func(decision.Decision) error
	// Local, when set, returns this node's bans in force (for example
	// (*decision.Set).List). They are pushed again on every (re)connect so
	// a Redis restarted without persistence learns them back.
	Local func() []decision.Decision
	// Logger is the structured logger; the component attribute is added.
	Logger *slog.Logger
	// Registry receives the metrics. Optional.
	Registry prometheus.Registerer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// RetryMin and RetryMax bound the reconnect backoff. Defaults 100 ms
	// and 5 s.
	RetryMin, RetryMax time.Duration
}

// Status is what a node knows about its link to the cluster.
type Status struct {
	Node      string    `json:"node"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Pending   int       `json:"pending"`
}

// Node is one guard's member of the cluster. Apply is safe for concurrent
// use; Run drives the Redis link.
type Node struct {
	cfg     Config
	client  redis.UniversalClient
	apply   decision.Applier
	screen  func(decision.Decision) error
	local   func() []decision.Decision
	log     *slog.Logger
	now     func() time.Time
	min     time.Duration
	max     time.Duration
	hash    string
	expiry  string
	channel string

	mu       sync.Mutex
	pending  map[decision.Key]decision.Decision
	received map[decision.Key]time.Time // bans in force here that came from the cluster, with expiry
	status   Status
	warned   bool // the current outage was logged
	kick     chan struct{}

	m metrics
}

var _ decision.Applier = (*Node)(nil)

// New returns a Node; it does not connect (Run does).
func New(o Options) (*Node, error) {
	cfg := o.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !cfg.Enabled() && o.Client == nil {
		return nil, errors.New("cluster: no redis URL")
	}
	if o.Apply == nil {
		return nil, errors.New("cluster: no applier for received decisions")
	}
	n := &Node{
		cfg: cfg, client: o.Client, apply: o.Apply, screen: o.Screen, local: o.Local,
		log: o.Logger, now: o.Now, min: o.RetryMin, max: o.RetryMax,
		hash:     "{" + cfg.KeyPrefix + "}:bans",
		expiry:   "{" + cfg.KeyPrefix + "}:bans:until",
		channel:  "{" + cfg.KeyPrefix + "}:bans:events",
		pending:  make(map[decision.Key]decision.Decision),
		received: make(map[decision.Key]time.Time),
		kick:     make(chan struct{}, 1),
	}
	if n.client == nil {
		c, err := NewClient(cfg.Redis)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		n.client = c
	}
	if n.screen == nil {
		n.screen = screen.New(nil, nil).Check
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "cluster", "node", cfg.Node)
	if n.now == nil {
		n.now = time.Now
	}
	if n.min <= 0 {
		n.min = 100 * time.Millisecond
	}
	if n.max < n.min {
		n.max = max(5*time.Second, n.min)
	}
	n.status = Status{Node: cfg.Node, Since: n.now()}
	if err := n.m.register(o.Registry); err != nil {
		return nil, err
	}
	return n, nil
}

// Apply queues a decision made on this node for the other nodes. It never
// blocks and never touches the network: Run publishes. Decisions received
// from the cluster or from a feed, and expired bans, are ignored.
func (n *Node) Apply(d decision.Decision) {
	if !shared(d, n.now()) {
		return
	}
	k := key(d)
	n.mu.Lock()
	if _, ok := n.pending[k]; !ok && len(n.pending) >= n.cfg.PendingMax {
		n.mu.Unlock()
		n.m.dropped.Inc()
		return
	}
	n.pending[k] = d
	delete(n.received, k) // decided here now: a later load must not lift it
	n.m.pending.Set(float64(len(n.pending)))
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Status returns the state of the link.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.status
	s.Pending = len(n.pending)
	return s
}

// Close closes the Redis client. Call it after Run has returned.
func (n *Node) Close() error { return n.client.Close() }

// Run keeps the node connected until ctx ends, then returns nil. A lost
// link is logged, reported in Status and retried with backoff; Run itself
// only returns when ctx is done.
func (n *Node) Run(ctx context.Context) error {
	wait := n.min
	for {
		start := time.Now()
		err := n.session(ctx)
		if ctx.Err() != nil {
			n.setConnected(false, nil)
			return nil
		}
		n.setConnected(false, err)
		if time.Since(start) > 10*n.max {
			wait = n.min
		}
		sleep := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
		wait = min(2*wait, n.max)
	}
}

func (n *Node) setConnected(up bool, err error) {
	n.mu.Lock()
	was := n.status.Connected
	n.status.Connected = up
	if was != up {
		n.status.Since = n.now()
	}
	if err != nil {
		n.status.LastError = err.Error()
	}
	first := !up && !was && err != nil && !n.warned
	n.warned = !up && (n.warned || first || was)
	n.mu.Unlock()
	switch {
	case up:
		n.m.connected.Set(1)
		if !was {
			n.log.Info("connected to redis; sharing bans")
		}
	case was:
		n.m.connected.Set(0)
		n.m.disconnects.Inc()
		n.log.Warn("lost redis; banning alone until it is back", "err", err)
	case first:
		n.log.Warn("cannot reach redis; banning alone until it answers", "err", err)
	}
}
