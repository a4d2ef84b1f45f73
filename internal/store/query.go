package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"strings"
)

const rowColumns = `node, seq, time_us, kind, ip, port, account, call_id, code, rule, data, hash`

// query implements Store.Query. The terms ip <> ” and the like let both
// engines use the partial indexes with a bound parameter.
func (d *db) query(ctx context.Context, f Filter) ([]Record, error) {
	var where []string
	var args []any
	add := func(term string, v any) {
		where = append(where, term)
		args = append(args, v)
	}
	if f.Node != "" {
		if d.legacy {
			return nil, nil // every record is node ""
		}
		add(`node = ? AND node <> ''`, f.Node)
	}
	if f.IP.IsValid() {
		add(`ip = ? AND ip <> ''`, f.IP.Unmap().WithZone("").String())
	}
	if f.Account != "" {
		add(`account = ? AND account <> ''`, column(f.Account))
	}
	if f.CallID != "" {
		add(`call_id = ? AND call_id <> ''`, column(f.CallID))
	}
	if !f.Since.IsZero() {
		add(`time_us >= ?`, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add(`time_us < ?`, f.Until.UnixMicro())
	}
	if len(f.Kinds) > 0 {
		marks := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			marks[i] = "?"
			args = append(args, k.String())
		}
		where = append(where, `kind IN (`+strings.Join(marks, ", ")+`)`)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	q := `SELECT ` + d.cols() + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY time_us DESC, seq DESC, node DESC LIMIT ?`
	args = append(args, limit)
	rows, err := d.sql.QueryContext(ctx, d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("querying events: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		rec, err := r.record()
		if err != nil {
			return nil, fmt.Errorf("record %s%d: %w", nodePrefix(r.Node), r.Seq, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("querying events: %w", err)
	}
	return out, nil
}

// scanRow reads one row selected with rowColumns.
func scanRow(rows *sql.Rows) (row, error) {
	var r row
	var data string
	var port, code int64
	if err := rows.Scan(&r.Node, &r.Seq, &r.TimeUS, &r.Kind, &r.IP, &port, &r.Account, &r.CallID, &code, &r.Rule, &data, &r.Hash); err != nil {
		return row{}, fmt.Errorf("reading events: %w", err)
	}
	r.Port, r.Code, r.Data = int(port), int(code), []byte(data)
	return r, nil
}

// record decodes r for callers.
func (r *row) record() (Record, error) {
	ev, err := decodeEvent(r.Kind, r.Data)
	if err != nil {
		return Record{}, err
	}
	rec := Record{
		Node: r.Node, Seq: r.Seq, Time: microTime(r.TimeUS), Kind: ev.Kind(),
		Account: r.Account, CallID: r.CallID, Code: r.Code, Rule: r.Rule,
		Event: ev, Hash: r.Hash,
	}
	if r.IP != "" {
		if a, err := netip.ParseAddr(r.IP); err == nil {
			rec.IP = a
		}
	}
	return rec, nil
}

// nodePrefix is "NODE:" to name a record of a named node's chain, "" for
// the chain of a guard alone.
func nodePrefix(node string) string {
	if node == "" {
		return ""
	}
	return node + ":"
}

// scanChain calls fn for every record of node's chain with seq > after,
// in seq order, a page at a time so no read transaction stays open long.
func (d *db) scanChain(ctx context.Context, node string, after int64, fn func(r *row) error) error {
	const page = 5000
	for {
		term, args := d.nodeTerm(node)
		rows, err := d.sql.QueryContext(ctx, d.rebind(`SELECT `+d.cols()+` FROM events WHERE `+term+`seq > ? ORDER BY seq LIMIT ?`), append(args, after, page)...)
		if err != nil {
			return fmt.Errorf("reading the chain after %d: %w", after, err)
		}
		n := 0
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return err
			}
			n++
			after = r.Seq
			if err := fn(&r); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("reading the chain: %w", err)
		}
		if n < page {
			return nil
		}
	}
}
