package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqlitePath is the database file: store.dsn, or <data_dir>/tollguard.db.
func sqlitePath(dsn, dataDir string) string {
	if dsn != "" {
		return dsn
	}
	return filepath.Join(dataDir, "tollguard.db")
}

// openSQLite opens the database in WAL mode. Every connection waits up to
// 5 s for a lock and starts write transactions IMMEDIATE, so the writer and
// the retention purge queue behind each other instead of failing.
func openSQLite(ctx context.Context, path string, readOnly bool) (*db, error) {
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
	} else {
		if err := mkdirPrivate(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("creating store directory: %w", err)
		}
		// A new database is created here, 0600, so SQLite opens an
		// existing file and gives its -wal and -shm the same mode.
		if err := createPrivate(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL in WAL mode loses nothing when the process dies; only an OS
	// crash or power cut can lose the last commits. Bans commit FULL.
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	}
	q.Set("_txlock", "immediate")
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(4)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	d := &db{sql: sdb}
	d.backup = func(ctx context.Context, to string) error {
		if _, err := sdb.ExecContext(ctx, `VACUUM INTO ?`, to); err != nil {
			return fmt.Errorf("VACUUM INTO %s: %w", to, err)
		}
		return nil
	}
	return d, nil
}

// sqliteCommitter returns the batch commit on a connection of its own.
func sqliteCommitter(ctx context.Context, d *db) (func(context.Context, *batch) error, func() error, error) {
	conn, err := d.sql.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the writer connection: %w", err)
	}
	commit := func(ctx context.Context, b *batch) (err error) {
		if len(b.bans) > 0 {
			// Bans are never lost: this commit reaches the disk.
			if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
				return err
			}
			defer func() {
				if _, e := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); e != nil && err == nil {
					err = e
				}
			}()
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := d.advanceHead(ctx, sqlTx{tx}, b); err != nil {
			return err
		}
		if len(b.rows) > 0 {
			st, err := tx.PrepareContext(ctx, `INSERT INTO events (`+rowColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return err
			}
			for i := range b.rows {
				r := &b.rows[i]
				if _, err := st.ExecContext(ctx, r.Node, r.Seq, r.TimeUS, r.Kind, r.IP, r.Port, r.Account, r.CallID, r.Code, r.Rule, string(r.Data), r.Hash); err != nil {
					st.Close()
					return err
				}
			}
			st.Close()
			if err := d.addHours(ctx, tx, b.rows); err != nil {
				return err
			}
		}
		if err := d.applyBans(ctx, tx, b.bans); err != nil {
			return err
		}
		if err := d.insertCheckpoint(ctx, tx, b.cp); err != nil {
			return err
		}
		return tx.Commit()
	}
	return commit, conn.Close, nil
}
