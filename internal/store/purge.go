package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// Purge implements Store. It purges this node's chain and, for a guard
// that ran alone before it had a node name, its old chain "" too (the one
// whose stored key is this guard's: no other writer can append to it).
func (s *sqlStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	if s.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	chains, err := s.purgeChains(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	var detail []string
	for _, node := range chains {
		seqs, err := s.db.anchorsBefore(ctx, node, before)
		if err != nil {
			return total, err
		}
		var n int64
		for _, anchor := range seqs {
			k, err := s.db.purgeThrough(ctx, node, anchor)
			n += k
			s.m.purged.Add(float64(k))
			if err != nil {
				return total + n, err
			}
		}
		total += n
		if n > 0 {
			of := ""
			if node != s.opts.Node {
				of = fmt.Sprintf(" of node %q (this guard's before it had a name)", node)
			}
			detail = append(detail, fmt.Sprintf("%d records%s through seq %d", n, of, seqs[len(seqs)-1]))
		}
	}
	if total > 0 {
		ev := &event.Admin{
			Meta:  event.Meta{Time: s.now()},
			Actor: "retention", Action: "purge",
			Detail: fmt.Sprintf("deleted %s (older than %s)", strings.Join(detail, ", "), before.UTC().Format(time.RFC3339)),
		}
		if err := s.writeThrough(ctx, syncReq{evs: []event.Event{ev}}); err != nil {
			return total, fmt.Errorf("recording the purge: %w", err)
		}
	}
	return total, nil
}

// purgeChains are the chains this writer purges: its own, and chain ""
// when this named node holds its key.
func (s *sqlStore) purgeChains(ctx context.Context) ([]string, error) {
	chains := []string{s.opts.Node}
	if s.opts.Node == "" {
		return chains, nil
	}
	var k []byte
	err := s.db.sql.QueryRowContext(ctx, `SELECT pub FROM node_keys WHERE node = ''`).Scan(&k)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("purge: reading the key of node \"\": %w", err)
	case bytes.Equal(k, s.key.Public().(ed25519.PublicKey)):
		chains = append(chains, "")
	}
	return chains, nil
}

// anchorsBefore lists, in order, node's checkpoints written before t that
// still have records at or below them.
func (d *db) anchorsBefore(ctx context.Context, node string, t time.Time) ([]int64, error) {
	var first sql.NullInt64
	if err := d.sql.QueryRowContext(ctx, d.rebind(`SELECT MIN(seq) FROM events WHERE node = ?`), node).Scan(&first); err != nil {
		return nil, fmt.Errorf("purge: reading the first record: %w", err)
	}
	if !first.Valid {
		return nil, nil
	}
	rows, err := d.sql.QueryContext(ctx, d.rebind(`SELECT seq FROM checkpoints WHERE node = ? AND time_us < ? AND seq >= ? ORDER BY seq`), node, t.UnixMicro(), first.Int64)
	if err != nil {
		return nil, fmt.Errorf("purge: reading checkpoints: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, fmt.Errorf("purge: reading checkpoints: %w", err)
		}
		out = append(out, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("purge: reading checkpoints: %w", err)
	}
	return out, nil
}

// purgeThrough deletes node's records up to and including its checkpoint
// at seq, and its older checkpoints, in one transaction: whatever happens,
// the first remaining record follows a checkpoint. Only the node's own
// writer purges its chain (it holds the chain), so two purges never
// subtract the same rows from the per-hour counts.
func (d *db) purgeThrough(ctx context.Context, node string, seq int64) (int64, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	defer tx.Rollback()
	// The per-hour counts lose what is purged (the purged rows grouped),
	// one row at a time in the writers' order (hourKeys) so a purge and
	// the other nodes' batches never wait on each other in a cycle.
	rows, err := tx.QueryContext(ctx, d.rebind(`SELECT time_us / 3600000000, kind, rule, COUNT(*) FROM events WHERE node = ? AND seq <= ? GROUP BY 1, 2, 3`), node, seq)
	if err != nil {
		return 0, fmt.Errorf("purge through %d: per-hour counts: %w", seq, err)
	}
	counts := map[hourKey]int64{}
	for rows.Next() {
		var k hourKey
		var n int64
		if err := rows.Scan(&k.hour, &k.kind, &k.rule, &n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("purge through %d: per-hour counts: %w", seq, err)
		}
		counts[k] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("purge through %d: per-hour counts: %w", seq, err)
	}
	for _, k := range sortedHours(counts) {
		if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE event_hours SET n = n - ? WHERE hour = ? AND kind = ? AND rule = ?`), counts[k], k.hour, k.kind, k.rule); err != nil {
			return 0, fmt.Errorf("purge through %d: per-hour counts: %w", seq, err)
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM event_hours WHERE hour = ? AND kind = ? AND rule = ? AND n <= 0`), k.hour, k.kind, k.rule); err != nil {
			return 0, fmt.Errorf("purge through %d: per-hour counts: %w", seq, err)
		}
	}
	res, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM events WHERE node = ? AND seq <= ?`), node, seq)
	if err != nil {
		return 0, fmt.Errorf("purge through %d: %w", seq, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge through %d: %w", seq, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM checkpoints WHERE node = ? AND seq < ?`), node, seq); err != nil {
		return 0, fmt.Errorf("purge through %d: %w", seq, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("purge through %d: %w", seq, err)
	}
	return n, nil
}

// retain runs the retention purge at start and every PurgeEvery until ctx
// ends.
func (s *sqlStore) retain(ctx context.Context) {
	t := time.NewTicker(s.opts.PurgeEvery)
	defer t.Stop()
	for {
		n, err := s.Purge(ctx, s.now().Add(-s.cfg.Retention.D()))
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			s.log.Error("retention purge failed", "err", err)
		case n > 0:
			s.log.Info("retention purge", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
