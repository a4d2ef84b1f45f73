package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// sqlStore implements Store on either driver.
type sqlStore struct {
	db  *db
	log *slog.Logger
	now func() time.Time
	key ed25519.PrivateKey // nil when read-only without a key file
	m   *metrics
	// pinned are the public keys of store.node_keys, by node.
	pinned map[string]ed25519.PublicKey
	cfg    config.Store
	opts   Options
	// backupDir is where Backup writes (BackupDir); dbPath the SQLite
	// database file, empty for PostgreSQL.
	backupDir, dbPath string
	// rollup is true once the migrations ran (not read-only): Hourly reads
	// the event_hours table.
	rollup bool

	mu     sync.RWMutex // guards closed against Record and the sync calls
	closed bool
	queue  chan event.Event
	syncs  chan syncReq
	stop   chan struct{}
	done   chan struct{} // closed when the writer has exited
	bg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
	// closeConn releases the writer's connection.
	closeConn func() error
	err       error

	// Writer state, owned by the writer goroutine.
	seq    int64
	prev   []byte
	cpSeq  int64
	lastCP time.Time
	// lost is the head a failed batch would have left: when a commit's
	// reply is lost with the session, the batch may have been written.
	lost *chainHead
	rows []row
	buf  []byte
}

// chainHead is a chain's last seq and hash.
type chainHead struct {
	seq  int64
	hash []byte
}

// syncReq is a write-through request: evs and ops committed together.
type syncReq struct {
	evs  []event.Event
	ops  []banOp
	done chan error
}

var errClosed = errors.New("store is closed")

// flushReq travels through the queue behind the events recorded before it,
// so Flush commits exactly those.
type flushReq struct {
	event.Meta
	done chan error
}

func (*flushReq) Kind() event.Kind { return 0 }

// Flush implements Store.
func (s *sqlStore) Flush(ctx context.Context) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	req := &flushReq{done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	select {
	case s.queue <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Record implements Store.
func (s *sqlStore) Record(ev event.Event) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || s.queue == nil {
		s.m.dropped.Inc()
		return
	}
	select {
	case s.queue <- ev:
	default:
		s.m.dropped.Inc()
	}
}

// SaveBan implements Store.
func (s *sqlStore) SaveBan(ctx context.Context, d decision.Decision) error {
	if d.At.IsZero() {
		d.At = s.now()
	}
	ev := &event.Ban{
		Meta:  event.Meta{Time: d.At},
		Scope: string(d.Scope), Value: banValue(d), Account: d.Account,
		Rule: d.Rule, Reason: d.Reason, Until: d.Until, Actor: d.Origin,
	}
	if err := s.writeThrough(ctx, syncReq{evs: []event.Event{ev}, ops: []banOp{{d: d}}}); err != nil {
		return fmt.Errorf("saving ban %s: %w", d.Target(), err)
	}
	return nil
}

// DeleteBan implements Store.
func (s *sqlStore) DeleteBan(ctx context.Context, d decision.Decision) error {
	if d.At.IsZero() {
		d.At = s.now()
	}
	ev := &event.Unban{
		Meta:  event.Meta{Time: d.At},
		Scope: string(d.Scope), Value: banValue(d), Account: d.Account,
		Reason: d.Reason, Actor: d.Origin,
	}
	if err := s.writeThrough(ctx, syncReq{evs: []event.Event{ev}, ops: []banOp{{del: true, d: d}}}); err != nil {
		return fmt.Errorf("deleting ban %s: %w", d.Target(), err)
	}
	return nil
}

// banValue is the Value of a Ban or Unban event: the address, network or
// account the decision applies to.
func banValue(d decision.Decision) string {
	switch d.Scope {
	case decision.ScopeIP, decision.ScopeIPAccount:
		return decision.Unmap(d.Prefix.Addr()).String()
	case decision.ScopeAccount:
		return d.Account
	}
	return d.Prefix.String()
}

// writeThrough hands req to the writer and waits for its commit.
func (s *sqlStore) writeThrough(ctx context.Context, req syncReq) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	req.done = make(chan error, 1)
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return errClosed
	}
	select {
	case s.syncs <- req:
	case <-s.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer goroutine.
func (s *sqlStore) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.FlushInterval.D())
	defer tick.Stop()
	pending := make([]event.Event, 0, s.opts.BatchSize)
	for {
		select {
		case ev := <-s.queue:
			pending = s.take(pending, ev)
		case req := <-s.syncs:
			err := s.flush(append(pending, req.evs...), req.ops, false)
			pending = pending[:0]
			req.done <- err
		case <-tick.C:
			// Everything recorded before the tick goes into this flush.
			pending = s.drain(pending, len(s.queue))
			if len(pending) > 0 || s.checkpointDue(false) {
				s.flush(pending, nil, false)
				pending = pending[:0]
			}
		case <-s.stop:
			pending = s.drain(pending, -1)
			if err := s.flush(pending, nil, true); err != nil {
				s.err = err
			}
			return
		}
	}
}

// take adds ev to pending, flushing when the batch is full or ev is a
// Flush request.
func (s *sqlStore) take(pending []event.Event, ev event.Event) []event.Event {
	if f, ok := ev.(*flushReq); ok {
		f.done <- s.flush(pending, nil, false)
		return pending[:0]
	}
	pending = append(pending, ev)
	if len(pending) >= s.opts.BatchSize {
		s.flush(pending, nil, false)
		return pending[:0]
	}
	return pending
}

// drain takes up to n queued events (all of them when n < 0) without
// waiting.
func (s *sqlStore) drain(pending []event.Event, n int) []event.Event {
	for ; n != 0; n-- {
		select {
		case ev := <-s.queue:
			pending = s.take(pending, ev)
		default:
			return pending
		}
	}
	return pending
}

// checkpointDue reports whether a checkpoint should be written now.
func (s *sqlStore) checkpointDue(final bool) bool {
	if s.seq == s.cpSeq {
		return false
	}
	return final || s.now().Sub(s.lastCP) >= s.cfg.Checkpoint.D()
}

// flush commits evs and ops in one transaction, chained after the last
// committed record. On failure the chain state is unchanged and the events
// are counted as dropped.
func (s *sqlStore) flush(evs []event.Event, ops []banOp, final bool) error {
	start := time.Now()
	s.rows = s.rows[:0]
	seq, prev := s.seq, s.prev
	for _, ev := range evs {
		r, err := newRow(ev)
		if err != nil {
			s.m.errors.Inc()
			s.log.Error("dropping an event that cannot be encoded", "kind", ev.Kind().String(), "err", err)
			continue
		}
		if ev.Base().Time.IsZero() {
			r.TimeUS = s.now().UnixMicro()
		}
		seq++
		r.Node, r.Seq = s.opts.Node, seq
		r.Hash, s.buf = r.chainHash(prev, s.buf)
		prev = r.Hash
		s.rows = append(s.rows, r)
	}
	b := &batch{rows: s.rows, bans: ops, node: s.opts.Node, fromSeq: s.seq, fromHash: s.prev, toSeq: seq, toHash: prev}
	now := s.now()
	if seq != s.cpSeq && (final || now.Sub(s.lastCP) >= s.cfg.Checkpoint.D()) {
		b.cp = &checkpoint{Node: s.opts.Node, Seq: seq, Hash: prev, TimeUS: now.UnixMicro()}
		b.cp.sign(s.key)
	}
	if len(b.rows) == 0 && len(b.bans) == 0 && b.cp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.db.commit(ctx, b)
	if errors.Is(err, ErrChainMoved) && s.lost != nil {
		lost := *s.lost
		s.lost = nil
		if seq, h, herr := s.db.head(ctx, s.opts.Node); herr == nil && seq == lost.seq && bytes.Equal(h, lost.hash) {
			// The batch reported failed had been committed: its reply was
			// lost with the session. The chain is whole; go on from it.
			s.log.Warn("a batch reported as failed had been committed; continuing the chain from it", "seq", seq)
			s.seq, s.prev = seq, h
			return s.flush(evs, ops, final)
		}
	}
	if err != nil && len(b.rows) > 0 {
		s.lost = &chainHead{b.toSeq, b.toHash}
	} else if err == nil {
		s.lost = nil
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(err)
	}
	if err != nil {
		s.m.errors.Inc()
		s.m.dropped.Add(float64(len(b.rows)))
		s.log.Error("store write failed", "records", len(b.rows), "err", err)
		return fmt.Errorf("writing %d records: %w", len(b.rows), err)
	}
	s.seq, s.prev = seq, prev
	if b.cp != nil {
		s.cpSeq, s.lastCP = b.cp.Seq, now
		s.m.checkpoints.Inc()
	}
	s.m.written.Add(float64(len(b.rows)))
	s.m.batch.Observe(time.Since(start).Seconds())
	return nil
}

// Close implements Store.
func (s *sqlStore) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		if s.cancel != nil {
			s.cancel()
		}
		s.bg.Wait()
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		if s.closeConn != nil {
			s.closeConn()
		}
		if err := s.db.sql.Close(); err != nil && s.err == nil {
			s.err = fmt.Errorf("closing store: %w", err)
		}
	})
	return s.err
}
