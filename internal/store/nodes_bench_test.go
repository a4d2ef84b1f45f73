package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// BenchmarkIngestNodes is BenchmarkIngest with 1 and 3 nodes writing to
// one PostgreSQL database at once (each its own store, writer and chain):
// the cost of the per-node head check and of the shared per-hour counts.
// One op is one event of any node; events/s is all nodes together.
func BenchmarkIngestNodes(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("postgres/nodes=%d", nodes), func(b *testing.B) {
			be := newBackend(b, "postgres")
			stores := make([]*sqlStore, nodes)
			for i := range stores {
				s, err := Open(context.Background(), be.cfg, filepath.Join(b.TempDir(), fmt.Sprint(i)), Options{Node: fmt.Sprintf("n%d", i)})
				if err != nil {
					b.Fatal(err)
				}
				stores[i] = s.(*sqlStore)
			}
			ev := &event.AuthFailure{Meta: event.Meta{Time: t0, Source: ap("203.0.113.7:5060"), Transport: "udp"},
				SIP:     event.SIP{Method: "REGISTER", CallID: "a84b4c76e66710", FromUser: "1001", ToUser: "1001", UserAgent: "friendly-scanner", Path: []string{"udp 203.0.113.7:5060"}},
				Account: "1001", Code: 403}
			feeds := make([]chan struct{}, nodes)
			var wg sync.WaitGroup
			for i, s := range stores {
				feeds[i] = make(chan struct{}, 1024)
				wg.Go(func() {
					for range feeds[i] {
						s.queue <- ev
					}
				})
			}
			start := time.Now()
			n := 0
			for b.Loop() {
				feeds[n%nodes] <- struct{}{}
				n++
			}
			for _, f := range feeds {
				close(f)
			}
			wg.Wait()
			for _, s := range stores {
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkMigrateNodes times migration 0003 (nodes) on a database an
// older version left with TOLLGUARD_BENCH_ROWS events (default 200000,
// about 400 bytes of JSON each): PostgreSQL adds the column in place and
// rebuilds the primary key; SQLite copies the tables. Building the old
// database is not timed. Run with -benchtime 1x.
func BenchmarkMigrateNodes(b *testing.B) {
	rows := benchRows(b)
	data := `{"time":"2026-03-01T12:00:00Z","source":"198.18.0.1:5060","transport":"udp","sip":{"method":"REGISTER","call_id":"a84b4c76e66710@198.18.0.1","from_user":"1001","to_user":"1001","user_agent":"friendly-scanner","path":["udp 198.18.0.1:5060"]},"account":"1001","code":403}`
	data += strings.Repeat(" ", max(0, 400-len(data)))
	for _, driver := range drivers {
		b.Run(driver, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				be := newBackend(b, driver)
				d, rb := raw(b, be)
				dialect := driver
				if _, err := migrateOn(context.Background(), d, dialect, rb, 2); err != nil {
					b.Fatal(err)
				}
				fill := `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
INSERT INTO events (seq, time_us, kind, ip, port, account, call_id, code, rule, data, hash)
SELECT i, 1772366400000000 + i * 1000, 'auth_failure', '198.18.0.1', 5060, '1001', 'a84b4c76e66710@198.18.0.1', 403, '', ?, randomblob(32) FROM s`
				if driver == "postgres" {
					fill = `INSERT INTO events (seq, time_us, kind, ip, port, account, call_id, code, rule, data, hash)
SELECT i, 1772366400000000 + i * 1000, 'auth_failure', '198.18.0.1', 5060, '1001', 'a84b4c76e66710@198.18.0.1', 403, '', $2, sha256(i::text::bytea) FROM generate_series(1, $1::bigint) AS i`
				}
				if _, err := d.Exec(fill, rows, data); err != nil {
					b.Fatal(err)
				}
				if driver == "postgres" {
					mustExec(b, d, `VACUUM ANALYZE events`)
				}
				b.StartTimer()
				start := time.Now()
				if v, err := migrateOn(context.Background(), d, dialect, rb, 0); err != nil || v != 3 {
					b.Fatalf("migrating: version %d, %v", v, err)
				}
				b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
				b.StopTimer()
				d.Close()
			}
		})
	}
}

// benchRows is TOLLGUARD_BENCH_ROWS, default 200000.
func benchRows(b *testing.B) int {
	rows := 200000
	if v := os.Getenv("TOLLGUARD_BENCH_ROWS"); v != "" {
		var err error
		if rows, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	return rows
}
