package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// counterScript adds ARGV[1] to the current window's bucket (KEYS[1]),
// sets its expiry on first use (ARGV[2] ms) and returns the bucket and the
// previous window's bucket (KEYS[2]): one round trip per Add.
var counterScript = redis.NewScript(`
local cur = redis.call('INCRBY', KEYS[1], ARGV[1])
if cur == tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local prev = redis.call('GET', KEYS[2])
return {cur, tonumber(prev or '0') or 0}
`)

// CounterOptions configures a Counter.
type CounterOptions struct {
	// Client is the shared Redis; nil counts locally only.
	Client redis.UniversalClient
	// Name separates counters (for example "jail" or "calls_per_minute");
	// it becomes part of the Redis keys and the metric label.
	Name string
	// KeyPrefix is Config.KeyPrefix. Default "tollguard".
	KeyPrefix string
	// Window is the sliding window's length. Required.
	Window time.Duration
	// Timeout bounds one Redis call. Default 50 ms: a counter sits near
	// the packet path and must not stall it.
	Timeout time.Duration
	// MaxLocalKeys bounds the local fallback's memory. Default 100,000.
	MaxLocalKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Registry receives the metrics. Optional.
	Registry prometheus.Registerer
}

// Counter counts events per key over a sliding window, shared by every
// node through Redis, so an attack spread over N nodes adds up as on one.
//
// The window is approximated Cloudflare-style with two fixed buckets: the
// estimate is current + previous × (the part of the previous bucket still
// inside the window). Each Add is one EVALSHA (INCRBY, PEXPIRE on first
// use, GET) in one round trip.
//
// When Redis fails, Add counts in a local window of the same shape and
// does not try Redis again for a second; the counts made alone are not
// merged back (an attack seen only while Redis was down is judged by this
// node alone, as without a cluster). Callers on the packet path should ask
// only about keys that already have local history, so a source with none
// costs no round trip.
type Counter struct {
	client  redis.UniversalClient
	name    string
	prefix  string
	window  time.Duration
	timeout time.Duration
	now     func() time.Time
	retryAt atomic.Int64

	mu       sync.Mutex
	local    map[string]*buckets
	maxLocal int

	calls    *prometheus.CounterVec
	failures prometheus.Counter
}

type buckets struct {
	start     int64 // index of the current window
	cur, prev int64
}

// NewCounter returns a Counter.
func NewCounter(o CounterOptions) (*Counter, error) {
	if o.Window <= 0 {
		return nil, errors.New("cluster: counter window must be positive")
	}
	if !nodeName.MatchString(o.Name) {
		return nil, fmt.Errorf("cluster: counter name %q: want letters, digits, '.', '_' or '-'", o.Name)
	}
	c := &Counter{client: o.Client, name: o.Name, prefix: o.KeyPrefix, window: o.Window,
		timeout: o.Timeout, now: o.Now, maxLocal: o.MaxLocalKeys, local: make(map[string]*buckets)}
	if c.prefix == "" {
		c.prefix = DefaultKeyPrefix
	}
	if c.timeout <= 0 {
		c.timeout = 50 * time.Millisecond
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxLocal <= 0 {
		c.maxLocal = 100_000
	}
	c.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_cluster_counter_adds_total",
		Help: "Counter additions, by counter and where they were counted (shared, local)."}, []string{"counter", "where"})
	c.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_cluster_counter_failures_total",
		Help:        "Counter additions that fell back to local counting because Redis failed.",
		ConstLabels: prometheus.Labels{"counter": o.Name}})
	if o.Registry != nil {
		for _, col := range []prometheus.Collector{c.calls, c.failures} {
			if err := o.Registry.Register(col); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					if cv, ok := are.ExistingCollector.(*prometheus.CounterVec); ok && col == c.calls {
						c.calls = cv
						continue
					}
				}
				return nil, fmt.Errorf("cluster: registering counter metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Add counts n events for key and returns the estimated number in the
// last Window, across the cluster when Redis answers, and whether the
// answer is shared (false: counted locally).
func (c *Counter) Add(ctx context.Context, key string, n int64) (int64, bool) {
	now := c.now()
	idx := now.UnixNano() / int64(c.window)
	frac := float64(now.UnixNano()%int64(c.window)) / float64(c.window)
	if c.client != nil && now.UnixNano() >= c.retryAt.Load() {
		tctx, cancel := context.WithTimeout(ctx, c.timeout)
		tag := "{" + c.prefix + ":c:" + c.name + ":" + key + "}:"
		v, err := counterScript.EvalSha(tctx, c.client,
			[]string{tag + strconv.FormatInt(idx, 10), tag + strconv.FormatInt(idx-1, 10)},
			n, (2 * c.window).Milliseconds()).Int64Slice()
		cancel()
		if err == nil && len(v) == 2 {
			c.calls.WithLabelValues(c.name, "shared").Inc()
			return estimate(v[0], v[1], frac), true
		}
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if counterScript.Load(ctx, c.client).Err() == nil {
				return c.Add(ctx, key, n)
			}
		}
		c.failures.Inc()
		c.retryAt.Store(now.Add(time.Second).UnixNano())
	}
	c.calls.WithLabelValues(c.name, "local").Inc()
	return c.addLocal(key, n, idx, frac), false
}

func (c *Counter) addLocal(key string, n, idx int64, frac float64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.local[key]
	if !ok {
		if len(c.local) >= c.maxLocal {
			for k, o := range c.local {
				if o.start < idx-1 {
					delete(c.local, k)
				}
			}
		}
		if len(c.local) >= c.maxLocal {
			return n
		}
		b = &buckets{start: idx}
		c.local[key] = b
	}
	switch {
	case b.start == idx-1:
		b.prev, b.cur, b.start = b.cur, 0, idx
	case b.start < idx-1:
		b.prev, b.cur, b.start = 0, 0, idx
	}
	b.cur += n
	return estimate(b.cur, b.prev, frac)
}

// estimate weighs the previous bucket by the part of it still inside the
// window, rounding up so a limit of N is never passed by rounding.
func estimate(cur, prev int64, frac float64) int64 {
	w := float64(prev) * (1 - frac)
	e := cur + int64(w)
	if float64(int64(w)) < w {
		e++
	}
	return e
}
