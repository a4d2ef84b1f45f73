package store

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// Open opens (creating and migrating if needed) the store cfg describes,
// loads or creates the checkpoint signing key <dataDir>/store.key, claims
// the chain of opts.Node (refusing with ErrNodeInUse when another process
// writes it, or when the node's stored key is not this one), and starts
// the batch writer and the retention purge. With opts.ReadOnly it only
// opens the database (one an older version left is read as it is: one
// chain, node "") and reads the key if there is one.
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
	opts.NodeLockWait = cmpOr(opts.NodeLockWait, defaultLockWait)
	def := config.Default().Store
	cfg.Retention = cmpOr(cfg.Retention, def.Retention)
	cfg.Checkpoint = cmpOr(cfg.Checkpoint, def.Checkpoint)
	cfg.FlushInterval = cmpOr(cfg.FlushInterval, def.FlushInterval)

	if err := CheckNode(opts.Node); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	pinned, err := pinnedKeys(cfg.NodeKeys)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
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
	if opts.ReadOnly && errors.Is(err, fs.ErrNotExist) {
		// A host that only verifies (a shared database, a copy) needs no
		// key of its own: the chains are checked with pinned or stored
		// keys.
		key, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	if p := pinned[opts.Node]; p != nil && key != nil && !p.Equal(key.Public()) {
		return nil, fmt.Errorf("opening store: store.node_keys pins key %s for node %q, and %s in %s is %s",
			keyText(p), opts.Node, KeyFile, dataDir, keyText(key.Public().(ed25519.PublicKey)))
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
	s := &sqlStore{db: d, log: opts.Logger.With("component", "store", "node", opts.Node), now: opts.Now, key: key, pinned: pinned,
		cfg: cfg, opts: opts, backupDir: BackupDir(cfg, dataDir), dbPath: dbPath}
	s.m = newMetrics(opts.Registry, func() float64 { return float64(len(s.queue)) })
	fail := func(err error) (Store, error) {
		d.sql.Close()
		return nil, fmt.Errorf("opening store: %w", err)
	}
	if opts.ReadOnly {
		// Read-only does not migrate: a database an older version left
		// (an old daemon still running, an old backup) is read as it is,
		// one chain of node "".
		v, err := schemaVersion(ctx, d.sql)
		if err != nil {
			return fail(err)
		}
		d.legacy = v < nodesVersion
		return s, nil
	}
	if _, err := migrate(ctx, d.sql, dialectOf(d), d.rebind); err != nil {
		return fail(err)
	}
	s.rollup = true
	if d.pg {
		commit, closeConn, err = postgresCommitter(ctx, d, opts.Node, opts.NodeLockWait)
	} else {
		commit, closeConn, err = sqliteCommitter(ctx, d)
	}
	if err != nil {
		return fail(err)
	}
	d.commit = commit
	s.closeConn = closeConn
	if s.seq, s.prev, err = d.claimChain(ctx, opts.Node, key.Public().(ed25519.PublicKey), opts.Now().UnixMicro()); err != nil {
		closeConn()
		return fail(err)
	}
	if s.cpSeq, _, err = d.lastCheckpointAnchor(ctx, d.sql, opts.Node); err != nil {
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

// nodesVersion is the migration that added nodes (0003_nodes).
const nodesVersion = 3

// dialectOf names d's migrations directory.
func dialectOf(d *db) string {
	if d.pg {
		return "postgres"
	}
	return "sqlite"
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
