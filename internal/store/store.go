// Package store persists everything the guard sees and decides: events,
// verdicts, bans and admin actions, in a SHA-256 hash chain with signed
// checkpoints, on SQLite (embedded default) or PostgreSQL.
//
// One goroutine writes: Record only enqueues, and the writer commits batches
// every store.flush_interval (or sooner when a batch fills). Bans are
// written through. Close drains the queue and writes a final checkpoint.
package store

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// Store is the event store. Its methods are safe for concurrent use.
type Store interface {
	// Record enqueues ev for the batch writer and returns at once; it never
	// blocks. When the queue is full, or the store is closed or read-only,
	// ev is dropped and counted (tollguard_store_events_dropped_total).
	// The store keeps ev: the caller must not change it afterwards.
	Record(ev event.Event)
	// Flush blocks until every event recorded before the call is
	// committed, or ctx ends.
	Flush(ctx context.Context) error
	// SaveBan persists a ban and records a Ban event in the chain, in one
	// committed transaction, before it returns (write-through). Saving a
	// ban with the key of an existing one replaces it.
	SaveBan(ctx context.Context, d decision.Decision) error
	// DeleteBan lifts the bans with the key of the unban decision d and
	// records an Unban event (actor d.Origin, reason d.Reason), committed
	// before it returns. Like decision.Set.Apply, an unban of ScopeIP also
	// lifts that address's ip_account bans.
	DeleteBan(ctx context.Context, d decision.Decision) error
	// ActiveBans returns the bans in force at now, for the daemon to reload
	// at start with their remaining time. Expired bans are not returned and
	// are deleted.
	ActiveBans(ctx context.Context, now time.Time) ([]decision.Decision, error)
	// Query returns the committed records matching f, newest first.
	// Events still queued in the writer are not seen.
	Query(ctx context.Context, f Filter) ([]Record, error)
	// Verify walks the hash chain and the signed checkpoints of each node
	// named (every chain in the store when none is) and reports, per
	// chain, the first broken record. A broken chain is a report with OK
	// false, not an error; errors are failures to read.
	Verify(ctx context.Context, nodes ...string) (VerifyReport, error)
	// Purge deletes this node's records older than before, up to the
	// newest signed checkpoint written before that time, which stays as
	// the chain's anchor. Other nodes' chains are left to their nodes. It deletes one checkpoint interval per transaction so writes
	// are not stalled, and returns how many records it deleted.
	Purge(ctx context.Context, before time.Time) (int64, error)
	// Backup writes a consistent copy of the store, mode 0600, to the file
	// name (see CheckBackupName) in the backup directory (BackupDir) while
	// the store is in use (SQLite VACUUM INTO), and returns its path. It
	// never writes elsewhere, never overwrites and never follows a link;
	// refusals wrap ErrBackupRefused. PostgreSQL returns ErrUnsupported:
	// use pg_dump.
	Backup(ctx context.Context, name string) (string, error)
	// Close stops accepting events, drains the queue, commits it, writes a
	// final checkpoint and closes the database. It is safe to call twice.
	Close() error
}

// ErrUnsupported is returned by operations a backend does not provide.
var ErrUnsupported = errors.New("not supported by this store driver")

// ErrNodeInUse is returned by Open when another process is writing the
// chain of the same node name to the database: two writers would fork
// it. Give each guard its own cluster.node.
var ErrNodeInUse = errors.New("another process is writing this node's chain")

// ErrChainMoved is the error of a batch commit that found the node's chain
// head elsewhere than this writer left it: another process appended to
// the chain. The batch is not written (the chain never forks); the
// writer keeps failing until restarted, and OnCommit reports it.
var ErrChainMoved = errors.New("the chain head moved under this writer (another process writes the same node)")

// ErrReadOnly is returned by writes to a store opened with Options.ReadOnly.
var ErrReadOnly = errors.New("store is open read-only")

// Options are the dependencies and tuning of a Store. The zero value works.
type Options struct {
	// Logger receives the store's log; nil discards it.
	Logger *slog.Logger
	// Registry receives the store's metrics; nil registers none.
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReadOnly opens the store for queries, verification and backups only
	// (the CLI while the daemon runs): no writer, no retention, no
	// checkpoints, no migrations.
	ReadOnly bool
	// QueueSize bounds the events waiting for the writer. Default 65536.
	QueueSize int
	// BatchSize is the most events committed in one transaction.
	// Default 2048.
	BatchSize int
	// PurgeEvery is how often retention runs. Default 1h.
	PurgeEvery time.Duration
	// Node names this store's writer: its events carry it and it appends
	// to that node's hash chain only (config.Config.StoreNode: "" for a
	// guard alone). Several processes may share one PostgreSQL database
	// with different names; a second process with a name already writing
	// is refused (ErrNodeInUse). 0-63 letters, digits, '.', '_', '-'.
	Node string
	// NodeLockWait is how long Open waits for the chain lock of Node on
	// PostgreSQL before it refuses with ErrNodeInUse: a guard restarted
	// right after it died waits for the server to drop the old session.
	// Default 10s.
	NodeLockWait time.Duration
	// OnCommit, when set, is called by the writer after each batch commit
	// with its error (nil: written), so the daemon can tell the people on
	// duty when the store stops or starts writing again. It must not block.
	OnCommit func(err error)
}

// Record is one stored event.
type Record struct {
	// Node is the node that recorded it ("" for a guard alone).
	Node string `json:"node"`
	// Seq is the record's position in its node's chain, from 1.
	Seq int64 `json:"seq"`
	// Time is the event's time, to the microsecond, in UTC.
	Time time.Time `json:"time"`
	// Kind is the event's kind.
	Kind event.Kind `json:"-"`
	// IP is the source address (for bans without a source, the banned
	// address); invalid when none.
	IP netip.Addr `json:"-"`
	// Account, CallID, Code and Rule are the indexed columns.
	Account string `json:"account,omitempty"`
	CallID  string `json:"call_id,omitempty"`
	Code    int    `json:"code,omitempty"`
	Rule    string `json:"rule,omitempty"`
	// Event is the full typed event; the caller owns it.
	Event event.Event `json:"-"`
	// Hash is the record's chain hash.
	Hash []byte `json:"-"`
}

// Filter selects records. Zero fields do not filter.
type Filter struct {
	// Node selects one node's events; "" means every node's.
	Node    string
	IP      netip.Addr
	Account string
	CallID  string
	Kinds   []event.Kind
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// Limit caps the result; 0 means 1000. At most 100000.
	Limit int
}

// VerifyReport is the outcome of Verify: one report per chain.
type VerifyReport struct {
	// OK is true when every chain checked out.
	OK bool `json:"ok"`
	// Chains are the chains checked, by node name.
	Chains []ChainReport `json:"chains"`
}

// Chain returns the report of node's chain (OK false, Reason set, when
// it was not checked).
func (r VerifyReport) Chain(node string) ChainReport {
	for _, c := range r.Chains {
		if c.Node == node {
			return c
		}
	}
	return ChainReport{Node: node, Reason: "not checked"}
}

// Key sources of a ChainReport: where the public key that checked the
// chain's checkpoints came from.
const (
	// KeyPinned is store.node_keys.
	KeyPinned = "pinned"
	// KeyLocal is this host's <data_dir>/store.key (the chain of the
	// node this config names).
	KeyLocal = "local"
	// KeyDatabase is the key the node stored at its first start: trust on
	// first use; whoever can write the database can replace it.
	KeyDatabase = "database"
)

// ChainReport is the outcome of verifying one node's chain.
type ChainReport struct {
	// Node is the chain's node ("" for a guard alone).
	Node string `json:"node"`
	// OK is true when every record and checkpoint checked out.
	OK bool `json:"ok"`
	// Key says where the public key came from (KeyPinned, KeyLocal,
	// KeyDatabase; empty when there was none) and PublicKey is that key,
	// base64, to pin in store.node_keys.
	Key       string `json:"key,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
	// Records is how many records were checked; FirstSeq and LastSeq the
	// range present (0 when empty).
	Records  int64 `json:"records"`
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// FirstTime and LastTime are those records' times.
	FirstTime time.Time `json:"first_time,omitzero"`
	LastTime  time.Time `json:"last_time,omitzero"`
	// Checkpoints is how many signed checkpoints were checked.
	Checkpoints int `json:"checkpoints"`
	// BrokenSeq is the first broken record's sequence number and Reason
	// says what is wrong with it; both empty when OK.
	BrokenSeq int64  `json:"broken_seq,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

const (
	defaultQueueSize  = 1 << 16
	defaultBatchSize  = 2048
	defaultLimit      = 1000
	maxLimit          = 100000
	defaultPurgeEvery = time.Hour
	defaultLockWait   = 10 * time.Second
)
