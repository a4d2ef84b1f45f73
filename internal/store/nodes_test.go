package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
)

// legacyDatabase builds b's database as a tollguard from before nodes left
// it: the migrations up to version upTo only, and evs written the way
// that version wrote them (no node column, v1 hashes, a checkpoint
// signed with the data_dir key after every 5 records, one minute apart).
func legacyDatabase(t *testing.T, b backend, upTo int, evs []event.Event) {
	t.Helper()
	ctx := context.Background()
	key, err := loadKey(b.dir, true)
	if err != nil {
		t.Fatal(err)
	}
	d, rb := raw(t, b)
	dialect := "sqlite"
	if b.name == "postgres" {
		dialect = "postgres"
	}
	if v, err := migrateOn(ctx, d, dialect, rb, upTo); err != nil || v != upTo {
		t.Fatalf("old migrations: version %d, %v", v, err)
	}
	var prev []byte
	for i, ev := range evs {
		r, err := newRow(ev)
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = int64(i + 1)
		r.Hash, _ = r.chainHash(prev, nil)
		prev = r.Hash
		mustExec(t, d, rb(`INSERT INTO events (seq, time_us, kind, ip, port, account, call_id, code, rule, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			r.Seq, r.TimeUS, r.Kind, r.IP, r.Port, r.Account, r.CallID, r.Code, r.Rule, string(r.Data), r.Hash)
		if upTo >= 2 { // that version's writer kept the per-hour counts
			mustExec(t, d, rb(`INSERT INTO event_hours (hour, kind, rule, n) VALUES (?, ?, ?, 1)
				ON CONFLICT (hour, kind, rule) DO UPDATE SET n = event_hours.n + 1`), r.TimeUS/usPerHour, r.Kind, r.Rule)
		}
		if r.Seq%5 == 0 {
			cp := checkpoint{Seq: r.Seq, Hash: r.Hash, TimeUS: t0.Add(time.Duration(r.Seq/5) * time.Minute).UnixMicro()}
			cp.sign(key)
			mustExec(t, d, rb(`INSERT INTO checkpoints (seq, hash, time_us, sig) VALUES (?, ?, ?, ?)`), cp.Seq, cp.Hash, cp.TimeUS, cp.Sig)
		}
	}
	if b.name == "sqlite" {
		mustExec(t, d, `PRAGMA wal_checkpoint(TRUNCATE)`)
		d.Close()
		for _, f := range []string{"tollguard.db", "tollguard.db-wal", "tollguard.db-shm"} {
			os.Chmod(filepath.Join(b.dir, f), 0o600)
		}
	}
	d.Close()
}

func authFailures(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = &event.AuthFailure{Meta: event.Meta{Time: t0.Add(time.Duration(i) * time.Second), Source: ap("203.0.113.7:5060")}, Account: "1001", Code: 403}
	}
	return out
}

// TestOldDatabaseUpgrades opens a database of each earlier schema with
// this version: its records stay as they were, verify with their v1
// hashes and old checkpoints, and the chain of node "" goes on from them.
func TestOldDatabaseUpgrades(t *testing.T) {
	for _, driver := range drivers {
		for _, upTo := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/from%d", driver, upTo), func(t *testing.T) {
				ctx := context.Background()
				b := newBackend(t, driver)
				legacyDatabase(t, b, upTo, authFailures(20))
				d, rb := raw(t, b)
				hashes := func() map[int64]string {
					m := map[int64]string{}
					rows, err := d.Query(`SELECT seq, hash FROM events`)
					if err != nil {
						t.Fatal(err)
					}
					defer rows.Close()
					for rows.Next() {
						var seq int64
						var h []byte
						rows.Scan(&seq, &h)
						m[seq] = fmt.Sprintf("%x", h)
					}
					return m
				}
				before := hashes()
				// Read-only reads it as it is (an old daemon still running, an
				// old backup): one chain, node "", checked with this host's key.
				ro, err := Open(ctx, b.cfg, b.dir, Options{ReadOnly: true})
				if err != nil {
					t.Fatalf("read-only open of a version %d database: %v", upTo, err)
				}
				rep, err := soleChain(ctx, ro)
				recs, qerr := ro.Query(ctx, Filter{Account: "1001"})
				named, nerr := ro.Query(ctx, Filter{Node: "a"})
				ro.Close()
				if err != nil || !rep.OK || rep.Records != 20 || rep.Checkpoints != 4 || rep.Key != KeyLocal {
					t.Fatalf("read-only verify of a version %d database: %+v, %v", upTo, rep, err)
				}
				if qerr != nil || len(recs) != 20 || recs[0].Node != "" || nerr != nil || len(named) != 0 {
					t.Fatalf("read-only queries of a version %d database: %d, %v; node a: %d, %v", upTo, len(recs), qerr, len(named), nerr)
				}
				clk := &clock{t: t0.Add(time.Hour)} // within retention
				s := b.open(t, Options{Now: clk.Now})
				after := hashes()
				for seq, h := range before {
					if after[seq] != h {
						t.Fatalf("record %d's hash changed in the migration", seq)
					}
				}
				rep, err = soleChain(ctx, s)
				if err != nil || !rep.OK || rep.Records != 20 || rep.Checkpoints != 4 || rep.Node != "" {
					t.Fatalf("upgraded chain: %+v, %v", rep, err)
				}
				checkRollup(t, s)
				s.Record(&event.Register{Meta: event.Meta{Time: t0.Add(time.Hour), Source: ap("198.51.100.2:5060")}, Account: "1002"})
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = b.open(t, Options{ReadOnly: true})
				rep, err = soleChain(ctx, s)
				if err != nil || !rep.OK || rep.Records != 21 || rep.Checkpoints != 5 {
					t.Fatalf("after a new record: %+v, %v", rep, err)
				}
				recs, err = s.Query(ctx, Filter{Kinds: []event.Kind{event.KindRegister}})
				if err != nil || len(recs) != 1 || recs[0].Seq != 21 || recs[0].Node != "" {
					t.Fatalf("new record: %+v, %v", recs, err)
				}
				// An old record changed after the upgrade is still named.
				mustExec(t, d, rb(`UPDATE events SET account = '1009' WHERE seq = ?`), 7)
				rep, err = soleChain(ctx, s)
				if err != nil || rep.OK || rep.BrokenSeq != 7 {
					t.Fatalf("tampered old record: %+v, %v", rep, err)
				}
			})
		}
	}
}

// openNode opens b's database as node name with its own data dir (its own
// key), as another guard sharing the database would.
func openNode(t *testing.T, b backend, name string, opts Options) (*sqlStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data-"+name)
	opts.Node = name
	s, err := Open(context.Background(), b.cfg, dir, opts)
	if err != nil {
		t.Fatalf("Open node %q: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*sqlStore), dir
}

// TestThreeNodesOnePostgres runs three writers (nodes a, b, c) on one
// real PostgreSQL database at once, each recording and banning from
// several goroutines and its checkpoints due on every batch: every chain
// verifies, events of all three are seen with their node, the per-hour
// counts match the events, and a record of b changed names b's record
// while a and c stay OK.
func TestThreeNodesOnePostgres(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "postgres")
	b.cfg.Checkpoint = config.Duration(time.Millisecond)
	b.cfg.FlushInterval = config.Duration(5 * time.Millisecond)
	nodes := []string{"a", "b", "c"}
	// The three open together: the migrations run once, under their lock.
	stores := make([]*sqlStore, len(nodes))
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			s, err := Open(ctx, b.cfg, filepath.Join(t.TempDir(), n), Options{Node: n, BatchSize: 64})
			if err != nil {
				errs[i] = err
				return
			}
			stores[i] = s.(*sqlStore)
			t.Cleanup(func() { s.Close() })
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %s: %v", nodes[i], err)
		}
	}
	const perWorker, workers = 400, 3
	for i, s := range stores {
		for w := range workers {
			wg.Go(func() {
				for j := range perWorker {
					at := t0.Add(time.Duration(j%7) * time.Hour).Add(time.Duration(w) * time.Second)
					src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(10*i + w)}), 5060)
					s.Record(&event.AuthFailure{Meta: event.Meta{Time: at, Source: src}, Account: fmt.Sprint(1000 + j%5), Code: 403})
					if j%100 == 0 {
						s.Record(&event.Verdict{Meta: event.Meta{Time: at, Source: src}, Rule: []string{"flood", "scanner"}[j%2], Action: "drop"})
					}
				}
			})
		}
	}
	wg.Wait()
	for _, s := range stores {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rd, _ := openNode(t, b, "a", Options{ReadOnly: true})
	rep, err := rd.Verify(ctx)
	if err != nil || !rep.OK || len(rep.Chains) != 3 {
		t.Fatalf("three chains: %+v, %v", rep, err)
	}
	want := int64(workers * (perWorker + perWorker/100))
	for i, c := range rep.Chains {
		if c.Node != nodes[i] || !c.OK || c.Records != want || c.FirstSeq != 1 || c.LastSeq != want || c.Checkpoints < 2 || c.Key != KeyDatabase {
			t.Errorf("chain %d: %+v, want node %s with %d records", i, c, nodes[i], want)
		}
	}
	recs, err := rd.Query(ctx, Filter{Limit: maxLimit})
	if err != nil || int64(len(recs)) != 3*want {
		t.Fatalf("query all: %d records, %v", len(recs), err)
	}
	seen := map[string]int64{}
	for _, r := range recs {
		seen[r.Node]++
	}
	if seen["a"] != want || seen["b"] != want || seen["c"] != want {
		t.Errorf("records per node: %v", seen)
	}
	onlyB, err := rd.Query(ctx, Filter{Node: "b", Limit: maxLimit})
	if err != nil || int64(len(onlyB)) != want {
		t.Fatalf("Filter{Node: b}: %d records, %v", len(onlyB), err)
	}
	for _, r := range onlyB {
		if r.Node != "b" {
			t.Fatalf("Filter{Node: b} returned a record of %q", r.Node)
		}
	}
	rw, _ := openNode(t, b, "d", Options{})
	checkRollup(t, rw) // counts of every node, concurrent upserts included
	rw.Close()

	d, rb := raw(t, b)
	mustExec(t, d, rb(`UPDATE events SET account = '9999' WHERE node = ? AND seq = ?`), "b", 77)
	rep, err = rd.Verify(ctx)
	if err != nil || rep.OK {
		t.Fatalf("tampered b: %+v, %v", rep, err)
	}
	if c := rep.Chain("b"); c.OK || c.BrokenSeq != 77 || !strings.Contains(c.Reason, "hash does not match") {
		t.Errorf("b: %+v, want broken at 77", c)
	}
	if !rep.Chain("a").OK || !rep.Chain("c").OK || !rep.Chain("d").OK {
		t.Errorf("a, c, d must verify: %+v", rep.Chains)
	}
	if one, err := rd.Verify(ctx, "c"); err != nil || !one.OK || len(one.Chains) != 1 || one.Chains[0].Node != "c" {
		t.Errorf("Verify(c): %+v, %v", one, err)
	}
	if none, err := rd.Verify(ctx, "typo"); err != nil || none.OK || !strings.Contains(none.Chain("typo").Reason, "no records") {
		t.Errorf("Verify(typo), a node never seen: %+v, %v", none, err)
	}
}

// TestSameNodeTwice: a second process opening a node already writing to
// the PostgreSQL database is refused with ErrNodeInUse, and goes once the
// first has closed. On either driver, a writer whose chain head moved
// under it (another process appended) fails its batches with
// ErrChainMoved rather than forking the chain.
func TestSameNodeTwice(t *testing.T) {
	ctx := context.Background()
	t.Run("postgres refused", func(t *testing.T) {
		b := newBackend(t, "postgres")
		s1, dir := openNode(t, b, "a", Options{})
		_, err := Open(ctx, b.cfg, dir, Options{Node: "a", NodeLockWait: 300 * time.Millisecond})
		if !errors.Is(err, ErrNodeInUse) || !strings.Contains(err.Error(), "127.0.0.1") {
			t.Fatalf("second writer of node a: %v, want ErrNodeInUse naming the holder", err)
		}
		// Another host (another key) under the same name, once a is gone.
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, b.cfg, t.TempDir(), Options{Node: "a"})
		if !errors.Is(err, ErrNodeInUse) || !strings.Contains(err.Error(), "another host uses this node name") {
			t.Fatalf("node a with another key: %v", err)
		}
		s2, err := Open(ctx, b.cfg, dir, Options{Node: "a"})
		if err != nil {
			t.Fatalf("node a again after the first closed: %v", err)
		}
		s2.Close()
	})
	eachBackend(t, func(t *testing.T, b backend) {
		s1 := b.open(t, Options{})
		s1.Record(authFailures(1)[0])
		if err := s1.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// Another writer moves the head, as a second process would.
		d, rb := raw(t, b)
		mustExec(t, d, rb(`UPDATE chain_heads SET seq = seq + 1 WHERE node = ?`), "")
		s1.Record(authFailures(2)[1])
		if err := s1.Flush(ctx); !errors.Is(err, ErrChainMoved) {
			t.Fatalf("commit after the head moved: %v, want ErrChainMoved", err)
		}
		var n int
		if err := d.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("events after the refused batch: %d, %v", n, err)
		}
	})
}

// TestNodeKeys: a bad node name is refused; a pinned key that is not the
// node's refuses its start; an attacker with write access to the database
// who rewrites a record, recomputes the chain, re-signs the checkpoints
// with a key of their own and stores that key passes a check that trusts
// the database's key (the trade-off of trust on first use), and is caught
// by a pinned key.
func TestNodeKeys(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, b backend) {
		if b.name == "sqlite" {
			b.cfg.DSN = filepath.Join(b.dir, "tollguard.db") // shared by the nodes' data dirs
		}
		if _, err := Open(ctx, b.cfg, b.dir, Options{Node: "../a"}); err == nil {
			t.Fatal("a bad node name was accepted")
		}
		s, dir := openNode(t, b, "a", Options{})
		for _, ev := range authFailures(10) {
			s.Record(ev)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		pub := s.key.Public().(ed25519.PublicKey)
		_, evil, _ := ed25519.GenerateKey(rand.Reader)
		evilPub := evil.Public().(ed25519.PublicKey)

		pinEvil := b
		pinEvil.cfg.NodeKeys = []config.NodeKey{{Node: "a", PublicKey: keyText(evilPub)}}
		if _, err := Open(ctx, pinEvil.cfg, dir, Options{Node: "a"}); err == nil || !strings.Contains(err.Error(), "pins key") {
			t.Fatalf("a writer whose key is not the pinned one: %v", err)
		}

		d, rb := raw(t, b)
		mustExec(t, d, rb(`UPDATE events SET data = REPLACE(data, '203.0.113.7', '203.0.113.8') WHERE node = ? AND seq = ?`), "a", 3)
		rehash(t, d, rb, 3)
		var last []byte
		var cpSeq, cpTime int64
		if err := d.QueryRow(rb(`SELECT seq, time_us FROM checkpoints WHERE node = ? ORDER BY seq DESC LIMIT 1`), "a").Scan(&cpSeq, &cpTime); err != nil {
			t.Fatal(err)
		}
		if err := d.QueryRow(rb(`SELECT hash FROM events WHERE node = ? AND seq = ?`), "a", cpSeq).Scan(&last); err != nil {
			t.Fatal(err)
		}
		cp := checkpoint{Node: "a", Seq: cpSeq, Hash: last, TimeUS: cpTime}
		cp.sign(evil)
		mustExec(t, d, rb(`UPDATE checkpoints SET hash = ?, sig = ? WHERE node = ? AND seq = ?`), cp.Hash, cp.Sig, "a", cpSeq)
		mustExec(t, d, rb(`UPDATE node_keys SET pub = ? WHERE node = ?`), []byte(evilPub), "a")

		tofu := b
		tofu.dir = t.TempDir() // a host with no key of its own for a
		rs, err := Open(ctx, tofu.cfg, tofu.dir, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := rs.Verify(ctx)
		rs.Close()
		if err != nil || !rep.OK || rep.Chain("a").Key != KeyDatabase {
			t.Fatalf("trust on first use cannot see a replaced key; got %+v, %v", rep, err)
		}
		pinned := b
		pinned.cfg.NodeKeys = []config.NodeKey{{Node: "a", PublicKey: keyText(pub)}}
		rs, err = Open(ctx, pinned.cfg, b.dir, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		rep, err = rs.Verify(ctx)
		c := rep.Chain("a")
		if err != nil || rep.OK || c.OK || c.Key != KeyPinned || c.BrokenSeq != cpSeq || !strings.Contains(c.Reason, "signature") {
			t.Fatalf("rewritten chain against the pinned key: %+v, %v", rep, err)
		}
	})
}

// TestPurgeSeveralNodes: on one database, each node's retention purge
// deletes whole checkpoint intervals of its own chain only; every chain
// still verifies and the per-hour counts (of all nodes) match the events.
func TestPurgeSeveralNodes(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, b backend) {
		if b.name == "sqlite" {
			b.cfg.DSN = filepath.Join(b.dir, "tollguard.db")
		}
		clk := &clock{t: t0}
		stores := map[string]*sqlStore{}
		for _, n := range []string{"a", "b"} {
			stores[n], _ = openNode(t, b, n, Options{Now: clk.Now})
		}
		// Checkpoints at seq 5, 10, 15, 20 of both chains, a minute apart.
		for i := range 20 {
			for _, n := range []string{"a", "b"} {
				stores[n].Record(&event.AuthFailure{Meta: event.Meta{Time: clk.Now(), Source: ap("203.0.113.7:5060")}, Account: n, Code: 403})
			}
			if i%5 == 4 {
				clk.Add(b.cfg.Checkpoint.D())
				for _, n := range []string{"a", "b"} {
					if err := stores[n].Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		n, err := stores["a"].Purge(ctx, t0.Add(2*time.Minute+time.Second))
		if err != nil || n != 10 {
			t.Fatalf("a's purge: %d, %v; want 10", n, err)
		}
		rep, err := stores["a"].Verify(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("after a's purge: %+v, %v", rep, err)
		}
		if a, bb := rep.Chain("a"), rep.Chain("b"); a.FirstSeq != 11 || a.LastSeq != 21 || bb.FirstSeq != 1 || bb.LastSeq != 20 {
			t.Fatalf("a's purge touched b, or missed a: a %+v, b %+v", a, bb)
		}
		checkRollup(t, stores["a"])
		if n, err := stores["b"].Purge(ctx, t0.Add(3*time.Minute+time.Second)); err != nil || n != 15 {
			t.Fatalf("b's purge: %d, %v; want 15", n, err)
		}
		rep, err = stores["b"].Verify(ctx)
		if err != nil || !rep.OK || rep.Chain("b").FirstSeq != 16 || rep.Chain("a").FirstSeq != 11 {
			t.Fatalf("after b's purge: %+v, %v", rep, err)
		}
		checkRollup(t, stores["b"])
	})
}

// TestForgedChain: whoever can write the database adds a chain for a node
// that never ran. Without a key it is reported; with a key and signed
// checkpoints of the attacker's it passes trust on first use, and is
// reported as soon as the operator pins the keys of their guards.
func TestForgedChain(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, b backend) {
		if b.name == "sqlite" {
			b.cfg.DSN = filepath.Join(b.dir, "tollguard.db")
		}
		s, _ := openNode(t, b, "a", Options{})
		for _, ev := range authFailures(5) {
			s.Record(ev)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		d, rb := raw(t, b)
		var prev []byte
		for i, ev := range authFailures(3) {
			r, _ := newRow(ev)
			r.Node, r.Seq = "z", int64(i+1)
			r.Hash, _ = r.chainHash(prev, nil)
			prev = r.Hash
			mustExec(t, d, rb(`INSERT INTO events (`+rowColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				r.Node, r.Seq, r.TimeUS, r.Kind, r.IP, r.Port, r.Account, r.CallID, r.Code, r.Rule, string(r.Data), r.Hash)
		}
		verify := func(pins ...config.NodeKey) VerifyReport {
			t.Helper()
			c := b.cfg
			c.NodeKeys = pins
			rs, err := Open(ctx, c, t.TempDir(), Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			rep, err := rs.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return rep
		}
		rep := verify()
		if z := rep.Chain("z"); rep.OK || z.OK || !strings.Contains(z.Reason, "no key") || !rep.Chain("a").OK {
			t.Fatalf("keyless forged chain: %+v", rep)
		}
		_, evil, _ := ed25519.GenerateKey(rand.Reader)
		cp := checkpoint{Node: "z", Seq: 3, Hash: prev, TimeUS: t0.UnixMicro()}
		cp.sign(evil)
		mustExec(t, d, rb(`INSERT INTO checkpoints (node, seq, hash, time_us, sig) VALUES (?, ?, ?, ?, ?)`), cp.Node, cp.Seq, cp.Hash, cp.TimeUS, cp.Sig)
		mustExec(t, d, rb(`INSERT INTO node_keys (node, pub, time_us) VALUES (?, ?, ?)`), "z", []byte(evil.Public().(ed25519.PublicKey)), t0.UnixMicro())
		if rep := verify(); !rep.OK || rep.Chain("z").Key != KeyDatabase {
			t.Fatalf("a forged chain with its own key passes trust on first use: %+v", rep)
		}
		rep = verify(config.NodeKey{Node: "a", PublicKey: keyText(s.key.Public().(ed25519.PublicKey))})
		if z := rep.Chain("z"); rep.OK || z.OK || !strings.Contains(z.Reason, "not pinned") || !rep.Chain("a").OK || rep.Chain("a").Key != KeyPinned {
			t.Fatalf("forged chain with pins set: %+v", rep)
		}
	})
}

// TestAloneThenNamed: a guard that ran alone (node "") and is then given
// a node name starts a new chain, and leaves its key for the old one, so
// a host without the key file verifies both.
func TestAloneThenNamed(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, b backend) {
		clk := &clock{t: t0}
		if b.name == "sqlite" {
			b.cfg.DSN = filepath.Join(b.dir, "tollguard.db")
		}
		legacyDatabase(t, b, 2, authFailures(10)) // its key is b.dir's
		s := b.open(t, Options{Now: clk.Now, Node: "a"})
		s.Record(authFailures(1)[0])
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		rs, err := Open(ctx, b.cfg, t.TempDir(), Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		rep, err := rs.Verify(ctx)
		if err != nil || !rep.OK || len(rep.Chains) != 2 || rep.Chain("").Records != 10 || rep.Chain("").Key != KeyDatabase || rep.Chain("a").Records != 1 {
			t.Fatalf("old chain and new: %+v, %v", rep, err)
		}
		// Its retention purges the old chain too (checkpoints at 5 and 10,
		// at t0+1m and t0+2m), and its own (a checkpoint at t0).
		s = b.open(t, Options{Now: clk.Now, Node: "a"})
		if n, err := s.Purge(ctx, t0.Add(90*time.Second)); err != nil || n != 6 {
			t.Fatalf("purge of both chains: %d, %v; want 5 + 1", n, err)
		}
		rep, err = rs.Verify(ctx)
		if err != nil || !rep.OK || rep.Chain("").FirstSeq != 6 || rep.Chain("a").FirstSeq != 2 {
			t.Fatalf("after the purge: %+v, %v", rep, err)
		}
		recs, err := rs.Query(ctx, Filter{Node: "a", Kinds: []event.Kind{event.KindAdmin}})
		if err != nil || len(recs) != 1 || !strings.Contains(recs[0].Event.(*event.Admin).Detail, `deleted 1 records through seq 1, 5 records of node "" (this guard's before it had a name) through seq 5`) {
			t.Fatalf("purge record: %+v, %v", recs, err)
		}
	})
}
