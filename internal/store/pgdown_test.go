package store

import (
	"context"
	"testing"
	"time"
)

// TestPostgresSessionLost: the server drops every session of the store
// (a PostgreSQL restart, a failover, an idle timeout). The batch in
// flight fails; the writer reconnects, takes its node's chain lock again
// and goes on with the same chain, which verifies.
func TestPostgresSessionLost(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "postgres")
	s, _ := openNode(t, b, "a", Options{})
	for _, ev := range authFailures(5) {
		s.Record(ev)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := raw(t, b)
	mustExec(t, d, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for n := 0; ; n++ {
		s.Record(authFailures(6)[5])
		if err = s.Flush(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer never recovered after %d tries: %v", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The lock is held again: a second writer of a is still refused.
	if _, err := Open(ctx, b.cfg, t.TempDir(), Options{Node: "a", NodeLockWait: 100 * time.Millisecond}); err == nil {
		t.Fatal("a second writer of node a was accepted after the reconnect")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rs, _ := openNode(t, b, "a", Options{ReadOnly: true})
	rep, err := rs.Verify(ctx)
	if err != nil || !rep.OK || rep.Chain("a").Records < 6 {
		t.Fatalf("after the reconnect: %+v, %v", rep, err)
	}
}
