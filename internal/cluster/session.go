package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollguard/tollguard/internal/decision"
)

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
