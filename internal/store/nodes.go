package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/tollguard/tollguard/internal/config"
)

// nodeName is a node's name: the cluster's rule, or "" for a guard alone.
var nodeName = regexp.MustCompile(`^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckNode reports whether name can name a node's chain: empty, or 1-63
// letters, digits, '.', '_' and '-' starting with a letter or a digit.
func CheckNode(name string) error {
	if !nodeName.MatchString(name) {
		return fmt.Errorf("node name %q: want 1-63 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

// chainLockKey is the PostgreSQL advisory lock that the writer of node's
// chain holds for as long as its connection lives (released by the server
// when the process dies, so a restart never waits for a stale lease).
func chainLockKey(node string) int64 {
	sum := sha256.Sum256([]byte("tollguard-chain\x00" + node))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// migrationLockKey serialises the migrations of nodes starting together.
var migrationLockKey = func() int64 {
	sum := sha256.Sum256([]byte("tollguard-migrate"))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}()

// claimChain, in one transaction, finds node's chain head in the events
// (or its newest checkpoint once every record was purged), records it as
// the head the writer's commits check (chain_heads), and stores pub as the
// node's checkpoint key if the node has none yet (trust on first use).
// A different key already stored for the node refuses the start: another
// host writes under this name, or its store.key was replaced.
func (d *db) claimChain(ctx context.Context, node string, pub ed25519.PublicKey, nowUS int64) (int64, []byte, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("claiming the chain of node %q: %w", node, err)
	}
	defer tx.Rollback()
	seq, h, err := d.lastRow(ctx, tx, node)
	if err != nil {
		return 0, nil, err
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO chain_heads (node, seq, hash) VALUES (?, ?, ?)
ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`), node, seq, nonNil(h)); err != nil {
		return 0, nil, fmt.Errorf("claiming the chain of node %q: %w", node, err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO node_keys (node, pub, time_us) VALUES (?, ?, ?) ON CONFLICT (node) DO NOTHING`),
		node, []byte(pub), nowUS); err != nil {
		return 0, nil, fmt.Errorf("storing the key of node %q: %w", node, err)
	}
	var stored []byte
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT pub FROM node_keys WHERE node = ?`), node).Scan(&stored); err != nil {
		return 0, nil, fmt.Errorf("reading the key of node %q: %w", node, err)
	}
	if !bytes.Equal(stored, pub) {
		return 0, nil, fmt.Errorf("node %q: %w: its chain is signed with key %s and this data_dir's %s is %s; "+
			"another host uses this node name (give it its own cluster.node), or the key file was replaced",
			node, ErrNodeInUse, keyText(stored), KeyFile, keyText(pub))
	}
	if node != "" {
		if err := d.adoptAloneChain(ctx, tx, pub, nowUS); err != nil {
			return 0, nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("claiming the chain of node %q: %w", node, err)
	}
	return seq, h, nil
}

// adoptAloneChain stores pub as the key of the chain of node "" when that
// chain has no key yet and its newest checkpoint verifies with pub: a
// guard that ran alone and now has a node name (same data_dir, same key)
// leaves its old chain checkable from any host.
func (d *db) adoptAloneChain(ctx context.Context, tx *sql.Tx, pub ed25519.PublicKey, nowUS int64) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM node_keys WHERE node = ''`).Scan(&n); err != nil || n > 0 {
		return err
	}
	c := checkpoint{}
	err := tx.QueryRowContext(ctx, `SELECT seq, hash, time_us, sig FROM checkpoints WHERE node = '' ORDER BY seq DESC LIMIT 1`).Scan(&c.Seq, &c.Hash, &c.TimeUS, &c.Sig)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the checkpoints of node \"\": %w", err)
	}
	if !c.valid(pub) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO node_keys (node, pub, time_us) VALUES ('', ?, ?) ON CONFLICT (node) DO NOTHING`), []byte(pub), nowUS); err != nil {
		return fmt.Errorf("storing the key of node \"\": %w", err)
	}
	return nil
}

// keyText is a public key as store.node_keys takes it.
func keyText(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// nodeKeys returns the checkpoint keys the nodes stored, by node.
func (d *db) nodeKeys(ctx context.Context) (map[string][]byte, error) {
	if d.legacy {
		return map[string][]byte{}, nil
	}
	rows, err := d.sql.QueryContext(ctx, `SELECT node, pub FROM node_keys`)
	if err != nil {
		return nil, fmt.Errorf("reading node keys: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var n string
		var k []byte
		if err := rows.Scan(&n, &k); err != nil {
			return nil, fmt.Errorf("reading node keys: %w", err)
		}
		out[n] = k
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading node keys: %w", err)
	}
	return out, nil
}

// chainNodes lists, sorted, every node with records, checkpoints, a head
// or a key in the database.
func (d *db) chainNodes(ctx context.Context) ([]string, error) {
	if d.legacy {
		return []string{""}, nil
	}
	rows, err := d.sql.QueryContext(ctx, `SELECT node FROM chain_heads UNION SELECT node FROM node_keys
UNION SELECT node FROM checkpoints UNION SELECT DISTINCT node FROM events`)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("listing chains: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// pinnedKeys parses store.node_keys.
func pinnedKeys(ks []config.NodeKey) (map[string]ed25519.PublicKey, error) {
	out := make(map[string]ed25519.PublicKey, len(ks))
	for _, k := range ks {
		if err := CheckNode(k.Node); err != nil {
			return nil, fmt.Errorf("store.node_keys: %w", err)
		}
		pub, err := config.ParseNodeKey(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("store.node_keys: node %q: %w", k.Node, err)
		}
		out[k.Node] = pub
	}
	return out, nil
}

// chainKey returns the key that checks node's checkpoints and where it
// came from: a pinned key (store.node_keys), else this host's own key for
// its own node, else the key the node stored (trust on first use).
// problem is set when a pinned or local key exists and the database holds
// another one: the database's key was replaced.
func (s *sqlStore) chainKey(node string, stored map[string][]byte) (pub ed25519.PublicKey, src, problem string) {
	switch {
	case s.pinned[node] != nil:
		pub, src = s.pinned[node], KeyPinned
	case node == s.opts.Node && s.key != nil:
		pub, src = s.key.Public().(ed25519.PublicKey), KeyLocal
	}
	db := stored[node]
	if pub == nil {
		if db == nil {
			return nil, "", ""
		}
		if len(s.pinned) > 0 {
			// With pins, every node of the operator's is pinned: a chain
			// that is not may have been put there by whoever can write the
			// database, key included.
			problem = "this node's key is not pinned in store.node_keys (pin it, or the chain is not one of your guards')"
		}
		return ed25519.PublicKey(db), KeyDatabase, problem
	}
	if db != nil && !bytes.Equal(db, pub) {
		problem = fmt.Sprintf("the key stored in the database for this node (%s) is not the %s one: it was replaced", keyText(db), src)
	}
	return pub, src, problem
}

// schemaVersion is the database's migration version (0 before any).
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return int(v.Int64), nil
}
