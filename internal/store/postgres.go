package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres connects through pgx's database/sql adapter.
func openPostgres(ctx context.Context, dsn string) (*db, error) {
	sdb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening postgres: %w", err)
	}
	sdb.SetMaxOpenConns(8)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return &db{sql: sdb, pg: true}, nil
}

var copyColumns = []string{"node", "seq", "time_us", "kind", "ip", "port", "account", "call_id", "code", "rule", "data", "hash"}

// postgresCommitter returns the batch commit on a connection of its own:
// the events go in with COPY, bans and the checkpoint in the same
// transaction. The connection holds node's chain lock (a session advisory
// lock) for its life: a second process with the same node name is
// refused with ErrNodeInUse instead of forking the chain. When the server
// drops the session (restart, failover), the failed batch is reported and
// the next commit opens a new connection and takes the lock again without
// waiting: if another writer of the node got it meanwhile, commits fail
// with ErrNodeInUse, and the head check keeps the chain whole either way.
func postgresCommitter(ctx context.Context, d *db, node string, wait time.Duration) (func(context.Context, *batch) error, func() error, error) {
	w := &pgWriter{d: d, node: node}
	conn, err := d.sql.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the writer connection: %w", err)
	}
	if err := lockChain(ctx, conn, node, wait); err != nil {
		conn.Close()
		return nil, nil, err
	}
	w.conn = conn
	return w.commit, w.close, nil
}

// pgWriter is the writer's connection; used by the writer goroutine only.
type pgWriter struct {
	d    *db
	node string
	conn *sql.Conn // nil after the session was lost
}

func (w *pgWriter) commit(ctx context.Context, b *batch) error {
	if w.conn == nil {
		conn, err := w.d.sql.Conn(ctx)
		if err != nil {
			return fmt.Errorf("reconnecting the writer: %w", err)
		}
		if err := lockChain(ctx, conn, w.node, 0); err != nil {
			conn.Close()
			return err
		}
		w.conn = conn
	}
	err := w.conn.Raw(func(dc any) error { return w.d.pgCommit(ctx, dc.(*stdlib.Conn).Conn(), b) })
	if err != nil && w.lost() {
		w.conn.Close()
		w.conn = nil
	}
	return err
}

// lost reports whether the writer's session is gone.
func (w *pgWriter) lost() bool {
	dead := true
	w.conn.Raw(func(dc any) error {
		dead = dc.(*stdlib.Conn).Conn().IsClosed()
		return nil
	})
	return dead
}

func (w *pgWriter) close() error {
	if w.conn == nil {
		return nil
	}
	return w.conn.Close()
}

// pgCommit writes b in one transaction on pc.
func (d *db) pgCommit(ctx context.Context, pc *pgx.Conn, b *batch) error {
	tx, err := pc.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := d.advanceHead(ctx, pgxExec{tx}, b); err != nil {
		return err
	}
	if len(b.rows) > 0 {
		src := pgx.CopyFromSlice(len(b.rows), func(i int) ([]any, error) {
			r := &b.rows[i]
			return []any{r.Node, r.Seq, r.TimeUS, r.Kind, r.IP, int64(r.Port), r.Account, r.CallID, int64(r.Code), r.Rule, string(r.Data), r.Hash}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, copyColumns, src); err != nil {
			return err
		}
		if err := d.addHours(ctx, pgxExec{tx}, b.rows); err != nil {
			return err
		}
	}
	if err := d.applyBans(ctx, pgxExec{tx}, b.bans); err != nil {
		return err
	}
	if err := d.insertCheckpoint(ctx, pgxExec{tx}, b.cp); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// lockChain takes node's chain lock on conn, retrying for up to wait (the
// server may not have noticed yet that a crashed writer's session is
// gone). When another session keeps it, the error names that session's
// client address and start.
func lockChain(ctx context.Context, conn *sql.Conn, node string, wait time.Duration) error {
	key := chainLockKey(node)
	deadline := time.Now().Add(wait)
	for {
		var locked bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
			return fmt.Errorf("taking the chain lock of node %q: %w", node, err)
		}
		if locked {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	holder := "another session"
	var addr sql.NullString
	var since sql.NullTime
	// A bigint advisory lock shows as classid (high 32 bits), objid (low).
	err := conn.QueryRowContext(ctx, `SELECT host(a.client_addr), a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid::bigint = $1 AND l.objid::bigint = $2 LIMIT 1`,
		int64(uint64(key)>>32), int64(uint64(key)&0xffffffff)).Scan(&addr, &since)
	if err == nil {
		holder = fmt.Sprintf("a session from %s since %s", cmp.Or(addr.String, "a local socket"), since.Time.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("node %q: %w: %s holds its chain lock (give each guard sharing this database its own cluster.node)", node, ErrNodeInUse, holder)
}

// pgxExec adapts a pgx.Tx to execer.
type pgxExec struct{ tx pgx.Tx }

func (p pgxExec) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	_, err := p.tx.Exec(ctx, q, args...)
	return nil, err
}

func (p pgxExec) scanRow(ctx context.Context, q string, args []any, dest ...any) error {
	err := p.tx.QueryRow(ctx, q, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}
