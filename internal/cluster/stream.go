package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// StreamOptions configures a Stream.
type StreamOptions struct {
	// Config is the cluster section; Config.Node names this node.
	Config Config
	// Client overrides the client built from Config.Redis (tests).
	Client redis.UniversalClient
	// Name names the stream: its key is {prefix}:<Name> and its metrics'
	// stream label is Name. Letters, digits, '.', '_', '-'.
	Name string
	// Receive gets every other node's message, in order, on one
	// goroutine, with the node that sent it. The payload comes from
	// Redis: the receiver must treat it as hostile. Required.
	Receive func(node string, payload []byte)
	// QueueMax bounds the messages kept while Redis is down (default
	// 4096); beyond it the oldest are dropped and counted.
	QueueMax int
	// MaxLen trims the stream to about this many entries (default
	// 100,000).
	MaxLen int64
	// Backfill is how far back a starting node reads (default: nothing
	// older than its start).
	Backfill time.Duration
	// Logger and Registry are optional.
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Stream carries small messages from every node to every other through a
// Redis stream (XADD, XREAD): the cluster's failures and call counters.
//
// Why a Redis stream and not pub/sub: a stream keeps what was added while
// a reader was away, so a node whose link dropped reads what it missed
// from its last entry ID when it is back; pub/sub would lose it. What a
// node sends while Redis itself is down waits in a bounded queue (oldest
// dropped first, counted) and is added when Redis is back, each message
// keeping the time its sender put in it, so the receivers apply it at that
// time. A Redis restarted empty loses the entries, not the queue.
//
// Publish never blocks and never touches the network; Run adds the queue
// in pipelined batches and reads the others' entries (XREAD BLOCK, so a
// message arrives within a millisecond or two on a LAN).
type Stream struct {
	client   redis.UniversalClient
	node     string
	name     string
	key      string
	receive  func(string, []byte)
	queueMax int
	maxLen   int64
	backfill time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu        sync.Mutex
	queue     [][]byte
	inflight  int // messages of the batch being added
	kick      chan struct{}
	connected bool

	m streamMetrics
}

// maxStreamMessage bounds one payload, sent or read.
const maxStreamMessage = 4096

// NewStream returns a Stream; it does not connect (Run does).
func NewStream(o StreamOptions) (*Stream, error) {
	cfg := o.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !nodeName.MatchString(o.Name) {
		return nil, fmt.Errorf("cluster: stream name %q: want letters, digits, '.', '_' or '-'", o.Name)
	}
	if o.Receive == nil {
		return nil, errors.New("cluster: stream without a receiver")
	}
	s := &Stream{client: o.Client, node: cfg.Node, name: o.Name, key: "{" + cfg.KeyPrefix + "}:" + o.Name,
		receive: o.Receive, queueMax: o.QueueMax, maxLen: o.MaxLen, backfill: o.Backfill, log: o.Logger, now: o.Now,
		kick: make(chan struct{}, 1)}
	if s.client == nil {
		if !cfg.Enabled() {
			return nil, errors.New("cluster: no redis URL")
		}
		c, err := NewClient(cfg.Redis)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		s.client = c
	}
	if s.queueMax <= 0 {
		s.queueMax = 4096
	}
	if s.maxLen <= 0 {
		s.maxLen = 100_000
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "cluster", "stream", o.Name)
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.m.register(o.Registry, o.Name); err != nil {
		return nil, err
	}
	return s, nil
}

// Publish queues payload for the other nodes and reports whether it was
// queued (false: larger than 4 KiB). It never blocks: when the queue is
// full the oldest message is dropped and counted.
func (s *Stream) Publish(payload []byte) bool {
	if len(payload) > maxStreamMessage {
		s.m.msgs.WithLabelValues(s.name, "dropped").Inc()
		return false
	}
	s.mu.Lock()
	if len(s.queue) >= s.queueMax {
		s.queue = s.queue[1:]
		s.m.msgs.WithLabelValues(s.name, "dropped").Inc()
	}
	s.queue = append(s.queue, payload)
	s.m.queued.WithLabelValues(s.name).Set(float64(len(s.queue)))
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return true
}

// Connected reports whether the last exchange with Redis succeeded.
func (s *Stream) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Queued returns the messages waiting for Redis (including a batch
// being added).
func (s *Stream) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + s.inflight
}

// Close closes the Redis client. Call it after Run has returned.
func (s *Stream) Close() error { return s.client.Close() }

// Run adds the queue to the stream and reads the other nodes' entries
// until ctx ends, then returns nil. A lost link is retried with backoff;
// the reader resumes after the last entry it read.
func (s *Stream) Run(ctx context.Context) error {
	// An explicit start ID, not "$": nothing added between Run and the
	// first XREAD is missed.
	last := strconv.FormatInt(s.now().Add(-s.backfill).UnixMilli(), 10) + "-0"

	done := make(chan struct{})
	go func() { defer close(done); s.writer(ctx) }()
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		res, err := s.client.XRead(ctx, &redis.XReadArgs{Streams: []string{s.key, last}, Count: 512, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			s.setConnected(true, nil)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.setConnected(false, err)
			select {
			case <-ctx.Done():
			case <-time.After(wait/2 + rand.N(wait/2+1)):
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		s.setConnected(true, nil)
		for _, st := range res {
			for _, m := range st.Messages {
				last = m.ID
				s.deliver(m.Values)
			}
		}
	}
	<-done
	return nil
}

// deliver checks one entry (it comes from Redis: hostile) and hands it to
// the receiver unless this node sent it.
func (s *Stream) deliver(v map[string]any) {
	node, _ := v["n"].(string)
	payload, _ := v["m"].(string)
	if !nodeName.MatchString(node) || payload == "" || len(payload) > maxStreamMessage {
		s.m.msgs.WithLabelValues(s.name, "rejected").Inc()
		return
	}
	if node == s.node {
		return
	}
	s.m.msgs.WithLabelValues(s.name, "received").Inc()
	s.receive(node, []byte(payload))
}

// writer adds queued messages in pipelined batches until ctx ends. A
// batch that fails goes back to the front of the queue (what no longer
// fits is dropped, oldest first) and is retried once a second.
func (s *Stream) writer(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
		for ctx.Err() == nil {
			s.mu.Lock()
			n := min(len(s.queue), 256)
			batch := s.queue[:n:n]
			s.queue = s.queue[n:]
			s.inflight = n
			s.mu.Unlock()
			if n == 0 {
				break
			}
			pipe := s.client.Pipeline()
			for _, b := range batch {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.key, MaxLen: s.maxLen, Approx: true, Values: []any{"n", s.node, "m", b}})
			}
			_, err := pipe.Exec(ctx)
			if err != nil {
				s.requeue(batch)
				s.setConnected(false, err)
				break
			}
			s.m.msgs.WithLabelValues(s.name, "published").Add(float64(n))
			s.mu.Lock()
			s.inflight = 0
			s.m.queued.WithLabelValues(s.name).Set(float64(len(s.queue)))
			s.mu.Unlock()
		}
	}
}

// requeue puts a failed batch back in front of the queue.
func (s *Stream) requeue(batch [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = 0
	q := append(batch, s.queue...)
	if over := len(q) - s.queueMax; over > 0 {
		q = q[over:]
		s.m.msgs.WithLabelValues(s.name, "dropped").Add(float64(over))
	}
	s.queue = q
	s.m.queued.WithLabelValues(s.name).Set(float64(len(s.queue)))
}

func (s *Stream) setConnected(up bool, err error) {
	s.mu.Lock()
	was := s.connected
	s.connected = up
	s.mu.Unlock()
	if up == was {
		return
	}
	if up {
		s.m.connected.WithLabelValues(s.name).Set(1)
		s.log.Info("stream connected", "queued", s.Queued())
		return
	}
	s.m.connected.WithLabelValues(s.name).Set(0)
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	s.log.Warn("stream lost redis; counting alone and queueing until it is back", "err", strings.TrimSpace(msg))
}

type streamMetrics struct {
	msgs      *prometheus.CounterVec
	queued    *prometheus.GaugeVec
	connected *prometheus.GaugeVec
}

func (m *streamMetrics) register(reg prometheus.Registerer, name string) error {
	m.msgs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_cluster_stream_messages_total",
		Help: "Messages of a cluster stream (failures, calls) by direction: published, received, dropped (queue full or oversized), rejected (malformed)."},
		[]string{"stream", "direction"})
	m.queued = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tollguard_cluster_stream_queued",
		Help: "Messages of a cluster stream waiting for Redis."}, []string{"stream"})
	m.connected = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tollguard_cluster_stream_connected",
		Help: "1 while a cluster stream reaches Redis, 0 while this node counts alone."}, []string{"stream"})
	if reg == nil {
		return nil
	}
	if err := reg.Register(m.msgs); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("cluster: registering stream metrics: %w", err)
		}
		m.msgs = are.ExistingCollector.(*prometheus.CounterVec)
	}
	if err := reg.Register(m.queued); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("cluster: registering stream metrics: %w", err)
		}
		m.queued = are.ExistingCollector.(*prometheus.GaugeVec)
	}
	if err := reg.Register(m.connected); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("cluster: registering stream metrics: %w", err)
		}
		m.connected = are.ExistingCollector.(*prometheus.GaugeVec)
	}
	for _, d := range []string{"published", "received", "dropped", "rejected"} {
		m.msgs.WithLabelValues(name, d)
	}
	m.connected.WithLabelValues(name)
	m.queued.WithLabelValues(name)
	return nil
}
