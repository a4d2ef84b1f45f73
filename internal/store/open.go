package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// Open opens (creating and migrating if needed) the store cfg describes,
// loads or creates the checkpoint signing key <dataDir>/store.key, and
// starts the batch writer and the retention purge. With opts.ReadOnly it
// only opens the database and reads the key.
//
// The key, the SQLite database and its -wal and -shm files are created
// with mode 0600, and dataDir with 0700. Open refuses to start when one
// of those files exists and group or others may read or write it, or when
// group or others may write dataDir: the error says the chmod to run.
func Open(ctx context.Context, cfg config.Store, dataDir string, opts Options) (Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.QueueSize = cmpOr(opts.QueueSize, defaultQueueSize)
	opts.BatchSize = cmpOr(opts.BatchSize, defaultBatchSize)
	opts.PurgeEvery = cmpOr(opts.PurgeEvery, defaultPurgeEvery)
	def := config.Default().Store
	cfg.Retention = cmpOr(cfg.Retention, def.Retention)
	cfg.Checkpoint = cmpOr(cfg.Checkpoint, def.Checkpoint)
	cfg.FlushInterval = cmpOr(cfg.FlushInterval, def.FlushInterval)

	if err := checkDataDir(dataDir); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	private := []string{filepath.Join(dataDir, KeyFile)}
	var dbPath string
	if cfg.Driver == "" || cfg.Driver == "sqlite" {
		dbPath = sqlitePath(cfg.DSN, dataDir)
		private = append(private, dbPath, dbPath+"-wal", dbPath+"-shm")
	}
	if err := checkPrivateFiles(private...); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	key, err := loadKey(dataDir, !opts.ReadOnly)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	var d *db
	var commit func(context.Context, *batch) error
	var closeConn func() error
	switch cfg.Driver {
	case "", "sqlite":
		d, err = openSQLite(ctx, sqlitePath(cfg.DSN, dataDir), opts.ReadOnly)
	case "postgres":
		d, err = openPostgres(ctx, cfg.DSN)
	default:
		err = fmt.Errorf("unknown driver %q", cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	s := &sqlStore{db: d, log: opts.Logger.With("component", "store"), now: opts.Now, key: key, cfg: cfg, opts: opts,
		backupDir: BackupDir(cfg, dataDir), dbPath: dbPath}
	s.m = newMetrics(opts.Registry, func() float64 { return float64(len(s.queue)) })
	if opts.ReadOnly {
		return s, nil
	}
	fail := func(err error) (Store, error) {
		d.sql.Close()
		return nil, fmt.Errorf("opening store: %w", err)
	}
	dialect := "sqlite"
	if d.pg {
		dialect = "postgres"
	}
	if _, err := migrate(ctx, d.sql, dialect, d.rebind); err != nil {
		return fail(err)
	}
	s.rollup = true
	if s.seq, s.prev, err = d.lastRow(ctx); err != nil {
		return fail(err)
	}
	if d.pg {
		commit, closeConn, err = postgresCommitter(ctx, d)
	} else {
		commit, closeConn, err = sqliteCommitter(ctx, d)
	}
	if err != nil {
		return fail(err)
	}
	d.commit = commit
	s.closeConn = closeConn
	if s.cpSeq, _, err = d.lastCheckpointAnchor(ctx); err != nil {
		closeConn()
		return fail(err)
	}
	s.lastCP = s.now()
	s.queue = make(chan event.Event, opts.QueueSize)
	s.syncs = make(chan syncReq)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.run()
	bgCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.bg.Go(func() { s.retain(bgCtx) })
	return s, nil
}

// cmpOr returns v, or def when v is zero or negative.
func cmpOr[T ~int | ~int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ActiveBans implements Store.
func (s *sqlStore) ActiveBans(ctx context.Context, now time.Time) ([]decision.Decision, error) {
	return s.db.activeBans(ctx, now, !s.opts.ReadOnly)
}

// Query implements Store.
func (s *sqlStore) Query(ctx context.Context, f Filter) ([]Record, error) {
	return s.db.query(ctx, f)
}
