package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// chained writes 20 events with a checkpoint after every 5 (seq 5, 10, 15,
// 20) and closes the store.
func chained(t *testing.T, b backend, clk *clock) {
	t.Helper()
	s := b.open(t, Options{Now: clk.Now})
	for i := range 20 {
		s.Record(&event.AuthFailure{Meta: event.Meta{Time: clk.Now(), Source: ap("203.0.113.7:5060")}, Account: "1001", Code: 403})
		if i%5 == 4 {
			clk.Add(b.cfg.Checkpoint.D())
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// raw opens the backend's database directly, as an attacker with file or
// database access would.
func raw(t testing.TB, b backend) (*sql.DB, func(string) string) {
	t.Helper()
	var d *sql.DB
	var err error
	if b.name == "postgres" {
		d, err = sql.Open("pgx", b.cfg.DSN)
	} else {
		d, err = sql.Open("sqlite", filepath.Join(b.dir, "tollguard.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, (&db{pg: b.name == "postgres"}).rebind
}

func mustExec(t testing.TB, d *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := d.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// forge inserts a record at seq whose hash is correct relative to the
// record before it, as an attacker who knows the format would.
func forge(t *testing.T, b backend, s *sqlStore, d *sql.DB, rebind func(string) string, seq int64) {
	t.Helper()
	var prev []byte
	if err := d.QueryRow(rebind(`SELECT hash FROM events WHERE seq = ?`), seq-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	r, err := newRow(&event.Register{Meta: event.Meta{Time: t0, Source: ap("198.51.100.2:5060")}, Account: "1001"})
	if err != nil {
		t.Fatal(err)
	}
	r.Seq = seq
	r.Hash, _ = r.chainHash(prev, nil)
	mustExec(t, d, rebind(`INSERT INTO events (`+rowColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.Node, r.Seq, r.TimeUS, r.Kind, r.IP, r.Port, r.Account, r.CallID, r.Code, r.Rule, string(r.Data), r.Hash)
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, b backend, d *sql.DB, rebind func(string) string)
		broken int64 // 0: the chain must verify
		reason string
	}{
		{"untouched", func(*testing.T, backend, *sql.DB, func(string) string) {}, 0, ""},
		{"data changed", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, rb(`UPDATE events SET data = REPLACE(data, '203.0.113.7', '203.0.113.8') WHERE seq = ?`), 7)
		}, 7, "hash does not match"},
		{"indexed column changed", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, rb(`UPDATE events SET ip = '10.9.9.9' WHERE seq = ?`), 7)
		}, 7, "hash does not match"},
		{"deleted", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, rb(`DELETE FROM events WHERE seq = ?`), 7)
		}, 7, "missing"},
		{"inserted in the middle", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, `UPDATE events SET seq = seq + 1000 WHERE seq > 6`)
			mustExec(t, d, `UPDATE events SET seq = seq - 999 WHERE seq > 1000`)
			forge(t, b, nil, d, rb, 7)
		}, 8, "hash does not match"},
		{"appended", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, rb(`INSERT INTO events (`+rowColumns+`) VALUES ('', 21, 0, 'admin', '', 0, '', '', 0, 'ban', '{}', ?)`), make([]byte, 32))
		}, 21, "hash does not match"},
		{"tail deleted", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, `DELETE FROM events WHERE seq > 12`)
		}, 13, "missing"},
		{"head deleted", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, `DELETE FROM events WHERE seq < 4`)
		}, 4, "no checkpoint anchors"},
		{"chain rewritten", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, rb(`UPDATE events SET data = REPLACE(data, '203.0.113.7', '203.0.113.8') WHERE seq = ?`), 7)
			rehash(t, d, rb, 7)
		}, 10, "checkpoint disagrees"},
		{"checkpoint forged", func(t *testing.T, b backend, d *sql.DB, rb func(string) string) {
			mustExec(t, d, rb(`UPDATE checkpoints SET time_us = time_us + 1 WHERE seq = ?`), 15)
		}, 15, "signature"},
	}
	for _, driver := range drivers {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				b := newBackend(t, driver)
				chained(t, b, &clock{t: t0})
				d, rb := raw(t, b)
				tt.tamper(t, b, d, rb)
				s := b.open(t, Options{ReadOnly: true})
				rep, err := soleChain(context.Background(), s)
				if err != nil {
					t.Fatal(err)
				}
				if tt.broken == 0 {
					if !rep.OK || rep.Records != 20 || rep.Checkpoints != 4 {
						t.Fatalf("untouched chain: %+v", rep)
					}
					return
				}
				if rep.OK || rep.BrokenSeq != tt.broken || !strings.Contains(rep.Reason, tt.reason) {
					t.Fatalf("got %+v, want broken at %d with %q", rep, tt.broken, tt.reason)
				}
			})
		}
	}
}

// rehash recomputes the hashes from seq on, as an attacker covering tracks.
func rehash(t *testing.T, d *sql.DB, rb func(string) string, from int64) {
	t.Helper()
	var prev []byte
	if err := d.QueryRow(rb(`SELECT hash FROM events WHERE seq = ?`), from-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	rows, err := d.Query(rb(`SELECT `+rowColumns+` FROM events WHERE seq >= ? ORDER BY seq`), from)
	if err != nil {
		t.Fatal(err)
	}
	var all []row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	rows.Close()
	for _, r := range all {
		r.Hash, _ = r.chainHash(prev, nil)
		prev = r.Hash
		mustExec(t, d, rb(`UPDATE events SET hash = ? WHERE seq = ?`), r.Hash, r.Seq)
	}
}

func TestPurgeKeepsChainVerifiable(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := &clock{t: t0}
		chained(t, b, clk) // checkpoints at seq 5, 10, 15, 20, one minute apart
		s := b.open(t, Options{Now: clk.Now})
		// Before the third checkpoint's time: records 1-10 go, 10 anchors.
		n, err := s.Purge(ctx, t0.Add(2*time.Minute+time.Second))
		if err != nil || n != 10 {
			t.Fatalf("Purge = %d, %v; want 10", n, err)
		}
		rep, err := soleChain(ctx, s)
		if err != nil || !rep.OK || rep.FirstSeq != 11 || rep.LastSeq != 21 {
			t.Fatalf("after purge: %+v, %v", rep, err)
		}
		checkRollup(t, s) // the per-hour counts lost the purged rows
		recs, err := s.Query(ctx, Filter{Kinds: []event.Kind{event.KindAdmin}})
		if err != nil || len(recs) != 1 || recs[0].Event.(*event.Admin).Action != "purge" {
			t.Fatalf("purge not recorded: %v %v", recs, err)
		}
		// Purging again deletes nothing new and still verifies.
		if n, err := s.Purge(ctx, t0.Add(2*time.Minute+time.Second)); err != nil || n != 0 {
			t.Fatalf("second Purge = %d, %v", n, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		d, rb := raw(t, b)
		mustExec(t, d, rb(`DELETE FROM events WHERE seq = ?`), 11)
		s = b.open(t, Options{ReadOnly: true})
		rep, err = soleChain(ctx, s)
		if err != nil || rep.OK || rep.BrokenSeq != 12 {
			t.Fatalf("deleting the first record after a purge: %+v, %v", rep, err)
		}
	})
}

// soleChain verifies every chain of s and returns the report of the only
// one (a report naming the count when there is not exactly one).
func soleChain(ctx context.Context, s Store) (ChainReport, error) {
	rep, err := s.Verify(ctx)
	if err != nil || len(rep.Chains) != 1 {
		return ChainReport{Reason: fmt.Sprintf("%d chains: %+v", len(rep.Chains), rep)}, err
	}
	if rep.OK != rep.Chains[0].OK {
		return ChainReport{Reason: fmt.Sprintf("report OK %v, chain OK %v", rep.OK, rep.Chains[0].OK)}, nil
	}
	return rep.Chains[0], nil
}
