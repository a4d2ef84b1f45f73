package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

//go:embed migrations
var migrations embed.FS

// conner is what migrate runs on: a *sql.DB or one *sql.Conn.
type conner interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// migrate applies the embedded migrations/<dialect>/NNNN_name.sql files
// newer than the version recorded in schema_version, one transaction each,
// in order. It returns the resulting version. On PostgreSQL it holds an
// advisory lock while it runs, so nodes starting together on one database
// migrate it once, one after the other; each migration also re-reads the
// version inside its transaction and is skipped when another process
// applied it first.
func migrate(ctx context.Context, sdb *sql.DB, dialect string, rebind func(string) string) (int, error) {
	if dialect != "postgres" {
		return migrateOn(ctx, sdb, dialect, rebind, 0)
	}
	conn, err := sdb.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrating: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return 0, fmt.Errorf("migrating: taking the migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
	return migrateOn(ctx, conn, dialect, rebind, 0)
}

// migrateOn applies the migrations on db up to version upTo (0: all).
func migrateOn(ctx context.Context, db conner, dialect string, rebind func(string) string, upTo int) (int, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return 0, fmt.Errorf("creating schema_version: %w", err)
	}
	var cur int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	dir := "migrations/" + dialect
	files, err := fs.Glob(migrations, dir+"/*.sql")
	if err != nil {
		return 0, fmt.Errorf("listing migrations: %w", err)
	}
	slices.Sort(files)
	for _, f := range files {
		name := strings.TrimPrefix(f, dir+"/")
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return cur, fmt.Errorf("migration %s: name must start with a number: %w", name, err)
		}
		if v <= cur || (upTo > 0 && v > upTo) {
			continue
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return cur, fmt.Errorf("reading migration %s: %w", name, err)
		}
		if err := applyMigration(ctx, db, string(body), v, rebind); err != nil {
			return cur, fmt.Errorf("applying migration %s: %w", name, err)
		}
		cur = v
	}
	return cur, nil
}

func applyMigration(ctx context.Context, db conner, body string, v int, rebind func(string) string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if cur, err := schemaVersion(ctx, tx); err != nil {
		return err
	} else if cur >= v {
		return nil // another process applied it
	}
	// Statements are split on ";": migrations must not put one inside a
	// string literal. Comment lines are removed first.
	for _, stmt := range strings.Split(stripComments(body), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, rebind(`INSERT INTO schema_version (version) VALUES (?)`), v); err != nil {
		return err
	}
	return tx.Commit()
}

func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}
