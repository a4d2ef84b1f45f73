package store

import (
	"context"
	"errors"
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

// TestCommitReplyLost: a batch is committed but its reply is lost (the
// session dropped after COMMIT reached the server), so the writer counts
// it as failed. The next batch finds the head where the lost one left it,
// continues the chain from there, and the chain verifies with both.
func TestCommitReplyLost(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t, Options{})
		orig, calls := s.db.commit, 0
		s.db.commit = func(ctx context.Context, bt *batch) error {
			err := orig(ctx, bt)
			if calls++; calls == 1 && err == nil {
				return errors.New("connection reset after COMMIT")
			}
			return err
		}
		evs := authFailures(3)
		s.Record(evs[0])
		if err := s.Flush(ctx); err == nil {
			t.Fatal("the first batch's lost reply was not reported")
		}
		s.Record(evs[1])
		s.Record(evs[2])
		if err := s.Flush(ctx); err != nil {
			t.Fatalf("the batch after a lost reply: %v", err)
		}
		rep, err := soleChain(ctx, s)
		if err != nil || !rep.OK || rep.Records != 3 {
			t.Fatalf("chain after a lost reply: %+v, %v", rep, err)
		}
	})
}
