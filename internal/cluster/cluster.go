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
	"net"
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

// session runs one connection: subscribe, load, push, then relay until the
// link fails (an error) or ctx ends (nil).
func (n *Node) session(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps := n.client.Subscribe(sctx, n.channel)
	defer ps.Close()
	if _, err := ps.Receive(sctx); err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	if err := loadScripts(sctx, n.client); err != nil {
		return err
	}
	if _, err := n.purge(sctx); err != nil {
		return err
	}
	own, err := n.load(sctx)
	if err != nil {
		return err
	}
	n.requeueLocal(own)
	if err := n.flush(sctx); err != nil {
		return err
	}
	n.setConnected(true, nil)

	msgs := make(chan string, 1024)
	errc := make(chan error, 1)
	go n.read(sctx, ps, msgs, errc)
	sweep := time.NewTicker(30 * time.Second)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case p := <-msgs:
			n.receive(p)
		case <-n.kick:
			if err := n.flush(sctx); err != nil {
				return err
			}
		case <-sweep.C:
			if _, err := n.purge(sctx); err != nil {
				return err
			}
			n.forgetExpired()
		}
	}
}

// read relays published messages until the subscription fails. A quiet
// channel is probed with PING so a dead peer is noticed within seconds.
func (n *Node) read(ctx context.Context, ps *redis.PubSub, msgs chan<- string, errc chan<- error) {
	for {
		v, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				if err = ps.Ping(ctx); err == nil {
					continue
				}
			}
			errc <- fmt.Errorf("receiving: %w", err)
			return
		}
		if m, ok := v.(*redis.Message); ok {
			select {
			case msgs <- m.Payload:
			case <-ctx.Done():
				return
			}
		}
	}
}

// load applies every ban in force in Redis, then lifts the bans received
// earlier that Redis no longer holds: they were lifted (or expired) while
// this node was not listening. It returns the keys of this node's own bans
// that Redis still holds.
func (n *Node) load(ctx context.Context) (map[decision.Key]bool, error) {
	seen := map[decision.Key]bool{}
	own := map[decision.Key]bool{}
	var cursor uint64
	for {
		kv, next, err := n.client.HScan(ctx, n.hash, cursor, "", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("loading bans: %w", err)
		}
		for i := 1; i < len(kv); i += 2 {
			switch k, mine, ok := n.receive(kv[i]); {
			case ok && mine:
				own[k] = true
			case ok:
				seen[k] = true
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	n.mu.Lock()
	var gone []decision.Key
	for k := range n.received {
		if !seen[k] {
			gone = append(gone, k)
			delete(n.received, k)
		}
	}
	n.mu.Unlock()
	for _, k := range gone {
		n.apply.Apply(decision.Decision{Type: decision.TypeUnban, Scope: k.Scope, Prefix: k.Prefix, Account: k.Account,
			Origin: OriginPrefix + n.cfg.Node, Rule: "cluster", Reason: "lifted while disconnected", At: n.now()})
	}
	return own, nil
}

// receive screens and applies one ban read from Redis. It returns the
// ban's key, whether this node made it, and true when the entry is a valid
// ban still in force (for another node's: applied, or refused by the
// screen; this node's own are never applied again).
func (n *Node) receive(payload string) (k decision.Key, mine, ok bool) {
	m, err := decode([]byte(payload))
	if err != nil {
		n.m.rejected.WithLabelValues("malformed").Inc()
		n.log.Debug("skipping a malformed entry", "err", err)
		return decision.Key{}, false, false
	}
	d := m.local()
	k = key(d)
	live := d.Type == decision.TypeBan && !d.Expired(n.now())
	if m.Node == n.cfg.Node {
		return k, true, live
	}
	if d.Type == decision.TypeBan && !live {
		n.m.rejected.WithLabelValues("expired").Inc()
		return decision.Key{}, false, false
	}
	if err := n.screen(d); err != nil {
		n.m.rejected.WithLabelValues("refused").Inc()
		n.log.Warn("refusing a ban from the cluster", "from", m.Node, "err", err)
		return k, false, true
	}
	n.mu.Lock()
	if d.Type == decision.TypeBan {
		if _, had := n.received[k]; !had && len(n.received) >= n.cfg.MaxRemoteBans {
			n.mu.Unlock()
			n.m.rejected.WithLabelValues("over_cap").Inc()
			return k, false, true
		}
		n.received[k] = d.Until
	} else {
		delete(n.received, k)
	}
	n.mu.Unlock()
	n.m.received.Inc()
	n.apply.Apply(d)
	return k, false, live
}

// forgetExpired drops expired bans from the record of received ones.
func (n *Node) forgetExpired() {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, until := range n.received {
		if !until.IsZero() && !now.Before(until) {
			delete(n.received, k)
		}
	}
}

// requeueLocal queues this node's own bans in force that Redis does not
// hold (it restarted without persistence, or lost them), unless a newer
// decision for the same target is already pending.
func (n *Node) requeueLocal(present map[decision.Key]bool) {
	if n.local == nil {
		return
	}
	now := n.now()
	ds := n.local()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, d := range ds {
		if !shared(d, now) || d.Type != decision.TypeBan || present[key(d)] {
			continue
		}
		if _, ok := n.pending[key(d)]; ok || len(n.pending) >= n.cfg.PendingMax {
			continue
		}
		n.pending[key(d)] = d
	}
	n.m.pending.Set(float64(len(n.pending)))
}

// flush publishes the pending decisions in pipelined batches. What could
// not be sent goes back to pending unless a newer decision replaced it.
func (n *Node) flush(ctx context.Context) error {
	n.mu.Lock()
	batch := n.pending
	n.pending = make(map[decision.Key]decision.Decision, len(batch))
	n.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	now := n.now()
	var sent int
	var err error
	todo := make([]decision.Decision, 0, len(batch))
	for _, d := range batch {
		if !(d.Type == decision.TypeBan && d.Expired(now)) {
			todo = append(todo, d)
		}
	}
	for len(todo) > 0 && err == nil {
		chunk := todo[:min(len(todo), 512)]
		if err = n.publish(ctx, chunk); err == nil {
			sent += len(chunk)
			todo = todo[len(chunk):]
		}
	}
	n.m.published.Add(float64(sent))
	n.mu.Lock()
	for _, d := range todo {
		if _, newer := n.pending[key(d)]; !newer {
			n.pending[key(d)] = d
		}
	}
	n.m.pending.Set(float64(len(n.pending)))
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("publishing %d decisions: %w", len(todo), err)
	}
	return nil
}

// publish runs the publish script for each decision in one pipeline.
func (n *Node) publish(ctx context.Context, ds []decision.Decision) error {
	pipe := n.client.Pipeline()
	for _, d := range ds {
		msg, err := encode(n.cfg.Node, d)
		if err != nil {
			n.log.Error("not sharing a decision", "err", err)
			continue
		}
		all, match := "0", ""
		if d.Type == decision.TypeUnban && d.Scope == decision.ScopeIP {
			all = "1"
			match = field(decision.Key{Scope: decision.ScopeIPAccount, Prefix: d.Prefix}) + "*"
		}
		publishScript.EvalSha(ctx, pipe, []string{n.hash, n.expiry},
			field(d.Key()), msg, string(d.Type), score(d), n.channel, all, match)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	return nil
}

// purge deletes expired bans from Redis; any node may do it.
func (n *Node) purge(ctx context.Context) (int, error) {
	total := 0
	for {
		k, err := purgeScript.EvalSha(ctx, n.client, []string{n.hash, n.expiry}, n.now().UnixMilli()).Int()
		if err != nil {
			return total, fmt.Errorf("purging expired bans: %w", err)
		}
		total += k
		if k < purgeBatch {
			return total, nil
		}
	}
}
