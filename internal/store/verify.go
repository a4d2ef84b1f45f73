package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
)

// errStop ends a chain scan early once a break is found.
var errStop = errors.New("stop")

// Verify implements Store. It checks, in order: every checkpoint's
// signature; that the first record follows seq 0 or a checkpoint (records
// before it were purged); that sequence numbers have no gaps; that each
// record's hash is SHA-256(previous hash ‖ its canonical bytes); that each
// checkpoint's hash matches the record it signs (a chain recomputed after
// tampering fails here); and that no checkpoint signs a record beyond the
// last one (the tail was deleted).
func (s *sqlStore) Verify(ctx context.Context) (VerifyReport, error) {
	cps, err := s.db.checkpoints(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	pub := s.key.Public().(ed25519.PublicKey)
	rep := VerifyReport{Checkpoints: len(cps)}
	bySeq := make(map[int64]*checkpoint, len(cps))
	for i := range cps {
		c := &cps[i]
		if !c.valid(pub) {
			return broken(rep, c.Seq, "checkpoint signature does not verify"), nil
		}
		bySeq[c.Seq] = c
	}
	var prev []byte
	var expect int64
	var buf []byte
	var bad *VerifyReport
	err = s.db.scanChain(ctx, 0, func(r *row) error {
		if rep.Records == 0 {
			rep.FirstSeq = r.Seq
			switch c, ok := bySeq[r.Seq-1]; {
			case r.Seq == 1:
			case ok:
				prev = c.Hash
			default:
				b := broken(rep, r.Seq, fmt.Sprintf("records before %d are missing and no checkpoint anchors seq %d", r.Seq, r.Seq-1))
				bad = &b
				return errStop
			}
			expect = r.Seq
		}
		if r.Seq != expect {
			b := broken(rep, expect, fmt.Sprintf("record %d is missing (deleted); the next record is %d", expect, r.Seq))
			bad = &b
			return errStop
		}
		var h []byte
		h, buf = r.chainHash(prev, buf)
		if !bytes.Equal(h, r.Hash) {
			b := broken(rep, r.Seq, "hash does not match the record and its predecessor (record changed, inserted or reordered)")
			bad = &b
			return errStop
		}
		if c, ok := bySeq[r.Seq]; ok && !bytes.Equal(c.Hash, h) {
			b := broken(rep, r.Seq, "signed checkpoint disagrees with the chain (records at or before this one were rewritten)")
			bad = &b
			return errStop
		}
		prev, expect = h, r.Seq+1
		rep.Records++
		rep.LastSeq = r.Seq
		return nil
	})
	if bad != nil {
		return *bad, nil
	}
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verifying the chain: %w", err)
	}
	if n := len(cps); n > 0 && cps[n-1].Seq > rep.LastSeq {
		return broken(rep, rep.LastSeq+1, fmt.Sprintf("records %d to %d are missing (a checkpoint signs %d)", rep.LastSeq+1, cps[n-1].Seq, cps[n-1].Seq)), nil
	}
	rep.OK = true
	return rep, nil
}

func broken(rep VerifyReport, seq int64, reason string) VerifyReport {
	rep.OK, rep.BrokenSeq, rep.Reason = false, seq, reason
	return rep
}

// checkpoints returns every checkpoint in seq order.
func (d *db) checkpoints(ctx context.Context) ([]checkpoint, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT seq, hash, time_us, sig FROM checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	defer rows.Close()
	var out []checkpoint
	for rows.Next() {
		var c checkpoint
		if err := rows.Scan(&c.Seq, &c.Hash, &c.TimeUS, &c.Sig); err != nil {
			return nil, fmt.Errorf("reading checkpoints: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	return out, nil
}
