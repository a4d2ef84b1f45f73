package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/tollguard/tollguard/internal/cluster"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/callpolicy"
)

// callShare makes the call policy's per-account limits hold across nodes
// (cluster.share_calls): every call this node counts, every cost it adds
// and every change of an account's running calls goes to the Redis stream
// {prefix}:calls (cluster.Stream), and the other nodes' go into this
// engine's windows at their own times (engine.PeerCall). Running calls
// are announced again every callpolicy.PeerLease/3; a node that stops
// announcing (dead mid-call, or cut off from Redis) stops counting on the
// others after callpolicy.PeerLease, so its calls cannot hold an account's
// concurrent slots for ever. Redis down: each node judges with what it
// counted itself (plus the other nodes' calls it had already heard of),
// queues its events (cluster.stream_queue), and adds them when Redis is
// back; the others count them at their own times.
//
// Trade-off, chosen over a Redis round trip at each INVITE: a call is
// counted when the PBX lets it past authentication, hundreds of
// milliseconds after its INVITE, so a synchronous read could not make a
// limit exact either; the stream lags about a millisecond and the packet
// path never waits on Redis. The cost: whoever can write to Redis can add
// calls to an account's counters and so have its calls refused (never a
// ban of an allowed address, never more than the rules refuse), and fill
// a rule's account table (bounded; counting then fails open), as with
// the failures.
type callShare struct {
	stream *cluster.Stream
	g      *Guard
}

// callBackfill is how far back a starting node reads the other nodes'
// counter changes: the longest window (calls_per_day, spend_per_day), so a
// node restarted mid-day knows what the others counted (its own counts
// before the restart are lost, as alone). The stream's length (about
// 100,000 entries) may bound it first.
const callBackfill = 24 * time.Hour

// callMessage is the wire format on {prefix}:calls.
type callMessage struct {
	V     int              `json:"v"`
	Event callpolicy.Event `json:"e"`
}

func newCallShare(g *Guard, cfg *config.Config) (*callShare, error) {
	c := &callShare{g: g}
	s, err := cluster.NewStream(cluster.StreamOptions{Config: cfg.Cluster.Config, Name: "calls", Receive: c.receive,
		QueueMax: cfg.Cluster.StreamQueue, Backfill: callBackfill, Logger: g.log, Registry: g.reg, Now: g.now})
	if err != nil {
		return nil, err
	}
	c.stream = s
	return c, nil
}

// share queues one of this node's counter changes. It never blocks.
func (c *callShare) share(ev callpolicy.Event) {
	b, err := json.Marshal(callMessage{V: 1, Event: ev})
	if err != nil {
		return
	}
	c.stream.Publish(b)
}

// receive applies another node's counter change (hostile input: the
// engine checks the rule, the account, the time and the value).
func (c *callShare) receive(node string, payload []byte) {
	var m callMessage
	if len(payload) > maxFailureMessage || json.Unmarshal(payload, &m) != nil || m.V != 1 {
		return
	}
	c.g.eng.PeerCall(node, m.Event)
}

// run carries the stream and announces this node's running calls every
// PeerLease/3 until ctx ends.
func (c *callShare) run(ctx context.Context) {
	go func() {
		t := time.NewTicker(callpolicy.PeerLease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, ev := range c.g.eng.CallRunning() {
					c.share(ev)
				}
			}
		}
	}()
	_ = c.stream.Run(ctx)
}
