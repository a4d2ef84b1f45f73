package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

// db is what the two drivers share: database/sql for reads and small
// writes, and a driver-specific batch commit.
type db struct {
	sql *sql.DB
	pg  bool
	// legacy is set on a read-only store of a database an older version
	// left (schema before nodes): every record is node "" and there are
	// no heads or stored keys. Reads only.
	legacy bool
	// commit writes one batch in one transaction on the writer's
	// connection.
	commit func(ctx context.Context, b *batch) error
	// backup copies the database into path, an empty file; nil when the
	// driver has no file copy.
	backup func(ctx context.Context, path string) error
}

// batch is what the writer commits in one transaction: rows appended to
// node's chain, whose head must be (fromSeq, fromHash) when the
// transaction starts and is (toSeq, toHash) after it.
type batch struct {
	rows []row
	bans []banOp
	cp   *checkpoint

	node             string
	fromSeq, toSeq   int64
	fromHash, toHash []byte
}

// banOp saves d, or deletes the bans with d's key when del is set.
type banOp struct {
	del bool
	d   decision.Decision
}

// cols is rowColumns as this database can answer them.
func (d *db) cols() string {
	if d.legacy {
		return `'' AS ` + rowColumns
	}
	return rowColumns
}

// nodeTerm is the WHERE term (followed by AND) and argument selecting
// node's rows.
func (d *db) nodeTerm(node string) (string, []any) {
	switch {
	case !d.legacy:
		return `node = ? AND `, []any{node}
	case node == "":
		return ``, nil
	}
	return `1 = 0 AND `, nil
}

// rebind turns ? placeholders into $1, $2 … for PostgreSQL.
func (d *db) rebind(q string) string {
	if !d.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// execer is a *sql.Tx or anything else that runs statements.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// txer is a transaction of either driver: statements, and one-row
// queries scanned into dest (sql.ErrNoRows when there is none).
type txer interface {
	execer
	scanRow(ctx context.Context, q string, args []any, dest ...any) error
}

// sqlTx adapts a *sql.Tx to txer.
type sqlTx struct{ *sql.Tx }

func (t sqlTx) scanRow(ctx context.Context, q string, args []any, dest ...any) error {
	return t.QueryRowContext(ctx, q, args...).Scan(dest...)
}

// advanceHead checks, inside the batch transaction, that b's node's chain
// head is where this writer left it, and moves it to the batch's last
// record. On PostgreSQL the head row stays locked (FOR UPDATE) until the
// commit, so two transactions on one chain queue instead of forking it;
// a head found elsewhere fails the batch with ErrChainMoved.
func (d *db) advanceHead(ctx context.Context, tx txer, b *batch) error {
	if len(b.rows) == 0 && b.cp == nil {
		return nil
	}
	q := `SELECT seq, hash FROM chain_heads WHERE node = ?`
	if d.pg {
		q += ` FOR UPDATE`
	}
	var seq int64
	var h []byte
	err := tx.scanRow(ctx, d.rebind(q), []any{b.node}, &seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("node %q: %w: its head row is gone", b.node, ErrChainMoved)
	}
	if err != nil {
		return fmt.Errorf("reading the chain head of node %q: %w", b.node, err)
	}
	if seq != b.fromSeq || !bytes.Equal(h, b.fromHash) {
		return fmt.Errorf("node %q: %w: at %d, this writer is at %d", b.node, ErrChainMoved, seq, b.fromSeq)
	}
	if b.toSeq == b.fromSeq {
		return nil
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE chain_heads SET seq = ?, hash = ? WHERE node = ?`), b.toSeq, nonNil(b.toHash), b.node); err != nil {
		return fmt.Errorf("moving the chain head of node %q: %w", b.node, err)
	}
	return nil
}

// head reads node's chain head as the last commit left it.
func (d *db) head(ctx context.Context, node string) (int64, []byte, error) {
	var seq int64
	var h []byte
	if err := d.sql.QueryRowContext(ctx, d.rebind(`SELECT seq, hash FROM chain_heads WHERE node = ?`), node).Scan(&seq, &h); err != nil {
		return 0, nil, fmt.Errorf("reading the chain head of node %q: %w", node, err)
	}
	return seq, h, nil
}

// nonNil makes a nil hash an empty one (the head of an empty chain), for
// NOT NULL columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// applyBans runs ban operations inside the batch transaction.
func (d *db) applyBans(ctx context.Context, tx execer, ops []banOp) error {
	for _, op := range ops {
		k := banKey(op.d)
		if op.del {
			q, args := `DELETE FROM bans WHERE scope = ? AND prefix = ? AND account = ?`, []any{string(k.Scope), prefixText(k.Prefix), k.Account}
			if k.Scope == decision.ScopeIP {
				q, args = `DELETE FROM bans WHERE prefix = ? AND (scope = 'ip' OR scope = 'ip_account')`, []any{prefixText(k.Prefix)}
			}
			if _, err := tx.ExecContext(ctx, d.rebind(q), args...); err != nil {
				return fmt.Errorf("deleting ban %s: %w", op.d.Target(), err)
			}
			continue
		}
		data, err := json.Marshal(op.d)
		if err != nil {
			return fmt.Errorf("encoding ban: %w", err)
		}
		_, err = tx.ExecContext(ctx, d.rebind(`INSERT INTO bans (scope, prefix, account, until_us, data) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (scope, prefix, account) DO UPDATE SET until_us = excluded.until_us, data = excluded.data`),
			string(k.Scope), prefixText(k.Prefix), k.Account, untilUS(op.d.Until), string(data))
		if err != nil {
			return fmt.Errorf("saving ban %s: %w", op.d.Target(), err)
		}
	}
	return nil
}

// insertCheckpoint stores cp inside the batch transaction.
func (d *db) insertCheckpoint(ctx context.Context, tx execer, cp *checkpoint) error {
	if cp == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO checkpoints (node, seq, hash, time_us, sig) VALUES (?, ?, ?, ?, ?)`),
		cp.Node, cp.Seq, cp.Hash, cp.TimeUS, cp.Sig)
	if err != nil {
		return fmt.Errorf("writing checkpoint at %s%d: %w", nodePrefix(cp.Node), cp.Seq, err)
	}
	return nil
}

// banKey normalises a decision's key the way decision.Set does.
func banKey(d decision.Decision) decision.Key {
	k := d.Key()
	switch k.Scope {
	case decision.ScopeIP, decision.ScopeIPAccount:
		if k.Prefix.IsValid() {
			k.Prefix = decision.HostPrefix(k.Prefix.Addr())
		}
	case decision.ScopePrefix:
		k.Prefix = netip.PrefixFrom(decision.Unmap(k.Prefix.Addr()), k.Prefix.Bits()).Masked()
	}
	return k
}

func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func untilUS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// lastRow returns the newest record of node's chain: its seq and hash,
// or the newest checkpoint's when every record has been purged, or 0 and
// nil.
func (d *db) lastRow(ctx context.Context, q querier, node string) (int64, []byte, error) {
	var seq int64
	var h []byte
	err := q.QueryRowContext(ctx, d.rebind(`SELECT seq, hash FROM events WHERE node = ? ORDER BY seq DESC LIMIT 1`), node).Scan(&seq, &h)
	if err == sql.ErrNoRows {
		return d.lastCheckpointAnchor(ctx, q, node)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading the last record of node %q: %w", node, err)
	}
	return seq, h, nil
}

// lastCheckpointAnchor returns node's newest checkpoint's seq and hash, or
// 0 and nil.
func (d *db) lastCheckpointAnchor(ctx context.Context, q querier, node string) (int64, []byte, error) {
	var seq int64
	var h []byte
	err := q.QueryRowContext(ctx, d.rebind(`SELECT seq, hash FROM checkpoints WHERE node = ? ORDER BY seq DESC LIMIT 1`), node).Scan(&seq, &h)
	if err == sql.ErrNoRows {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading the last checkpoint of node %q: %w", node, err)
	}
	return seq, h, nil
}

// querier is a *sql.DB, *sql.Conn or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// activeBans returns the bans in force at now; with cleanup it first
// deletes the expired ones.
func (d *db) activeBans(ctx context.Context, now time.Time, cleanup bool) ([]decision.Decision, error) {
	if cleanup {
		q := d.rebind(`DELETE FROM bans WHERE until_us <> 0 AND until_us <= ?`)
		if _, err := d.sql.ExecContext(ctx, q, now.UnixMicro()); err != nil {
			return nil, fmt.Errorf("deleting expired bans: %w", err)
		}
	}
	rows, err := d.sql.QueryContext(ctx, d.rebind(`SELECT data FROM bans WHERE until_us = 0 OR until_us > ? ORDER BY scope, prefix, account`), now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("reading bans: %w", err)
	}
	defer rows.Close()
	var out []decision.Decision
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("reading bans: %w", err)
		}
		var dec decision.Decision
		if err := json.Unmarshal([]byte(data), &dec); err != nil {
			return nil, fmt.Errorf("decoding ban: %w", err)
		}
		out = append(out, dec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading bans: %w", err)
	}
	return out, nil
}
