package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
)

// errStop ends a chain scan early once a break is found.
var errStop = errors.New("stop")

// Verify implements Store. Every chain is checked on its own, with the
// key chainKey picks: in order, every checkpoint's signature; that the
// first record follows seq 0 or a checkpoint (records before it were
// purged); that sequence numbers have no gaps; that each record's hash is
// SHA-256(previous hash ‖ its canonical bytes); that each checkpoint's
// hash matches the record it signs (a chain recomputed after tampering
// fails here); and that no checkpoint signs a record beyond the last one
// (the tail was deleted).
func (s *sqlStore) Verify(ctx context.Context, nodes ...string) (VerifyReport, error) {
	if len(nodes) == 0 {
		var err error
		if nodes, err = s.db.chainNodes(ctx); err != nil {
			return VerifyReport{}, err
		}
		// A pinned node with nothing in the database is reported: its
		// whole chain may have been deleted.
		for n := range s.pinned {
			if !slices.Contains(nodes, n) {
				nodes = append(nodes, n)
			}
		}
		slices.Sort(nodes)
	}
	stored, err := s.db.nodeKeys(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	rep := VerifyReport{OK: true}
	for _, n := range nodes {
		c, err := s.verifyChain(ctx, n, stored)
		if err != nil {
			return VerifyReport{}, err
		}
		rep.OK = rep.OK && c.OK
		rep.Chains = append(rep.Chains, c)
	}
	return rep, nil
}

// verifyChain checks node's chain (see Verify).
func (s *sqlStore) verifyChain(ctx context.Context, node string, stored map[string][]byte) (ChainReport, error) {
	cps, err := s.db.checkpoints(ctx, node)
	if err != nil {
		return ChainReport{}, err
	}
	pub, src, problem := s.chainKey(node, stored)
	rep := ChainReport{Node: node, Checkpoints: len(cps), Key: src}
	if pub != nil {
		rep.PublicKey = keyText(pub)
	}
	bySeq := make(map[int64]*checkpoint, len(cps))
	for i := range cps {
		c := &cps[i]
		if pub == nil {
			return broken(rep, c.Seq, "no public key to check the checkpoints (pin the node's key in store.node_keys)"), nil
		}
		if !c.valid(pub) {
			return broken(rep, c.Seq, "checkpoint signature does not verify"), nil
		}
		bySeq[c.Seq] = c
	}
	var prev []byte
	var expect int64
	var buf []byte
	var bad *ChainReport
	err = s.db.scanChain(ctx, node, 0, func(r *row) error {
		if rep.Records == 0 {
			rep.FirstSeq, rep.FirstTime = r.Seq, microTime(r.TimeUS)
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
		rep.LastSeq, rep.LastTime = r.Seq, microTime(r.TimeUS)
		return nil
	})
	if bad != nil {
		return *bad, nil
	}
	if err != nil {
		return ChainReport{}, fmt.Errorf("verifying the chain of node %q: %w", node, err)
	}
	if n := len(cps); n > 0 && cps[n-1].Seq > rep.LastSeq {
		return broken(rep, rep.LastSeq+1, fmt.Sprintf("records %d to %d are missing (a checkpoint signs %d)", rep.LastSeq+1, cps[n-1].Seq, cps[n-1].Seq)), nil
	}
	if problem != "" {
		return broken(rep, 0, problem), nil
	}
	if pub == nil && rep.Records > 0 {
		return broken(rep, rep.FirstSeq, "no key checks this chain: no guard stored one for this node (records written by something other than a guard?)"), nil
	}
	if rep.Records == 0 && len(cps) == 0 && stored[node] == nil {
		// Asked for by name, or pinned: a node that ever started has at
		// least its key here.
		return broken(rep, 0, "no records, no checkpoints and no key of this node in the store (its chain was deleted, or it never started)"), nil
	}
	rep.OK = true
	return rep, nil
}

func broken(rep ChainReport, seq int64, reason string) ChainReport {
	rep.OK, rep.BrokenSeq, rep.Reason = false, seq, reason
	return rep
}

// checkpoints returns every checkpoint of node's chain in seq order.
func (d *db) checkpoints(ctx context.Context, node string) ([]checkpoint, error) {
	term, args := d.nodeTerm(node)
	rows, err := d.sql.QueryContext(ctx, d.rebind(`SELECT seq, hash, time_us, sig FROM checkpoints WHERE `+term+`1 = 1 ORDER BY seq`), args...)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	defer rows.Close()
	var out []checkpoint
	for rows.Next() {
		c := checkpoint{Node: node}
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
