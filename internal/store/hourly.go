package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// HourCount is how many events of one kind and rule fell in one hour.
type HourCount struct {
	// Hour is the start of the hour, UTC.
	Hour  time.Time `json:"hour"`
	Kind  string    `json:"kind"`
	Rule  string    `json:"rule,omitempty"`
	Count int64     `json:"count"`
}

// Aggregator is implemented by the stores that can count events per hour
// (both drivers). The console's overview uses it.
type Aggregator interface {
	// Hourly counts the committed events in [since, until) grouped by hour
	// (UTC), kind and rule, oldest hour first. kinds, when not empty,
	// restricts the kinds counted.
	Hourly(ctx context.Context, since, until time.Time, kinds []string) ([]HourCount, error)
}

var (
	_ Aggregator = (*sqlStore)(nil)
	_ Aggregator = (*HourlyCache)(nil)
)

// usPerHour is one hour in the time_us column's unit.
const usPerHour = int64(time.Hour / time.Microsecond)

// hourKey is one row of event_hours.
type hourKey struct {
	hour       int64
	kind, rule string
}

// sortedHours returns the keys of counts in one total order. Every
// transaction that changes event_hours (each node's batches, the purges)
// touches its rows in this order, so writers sharing a PostgreSQL
// database queue on a row instead of deadlocking.
func sortedHours(counts map[hourKey]int64) []hourKey {
	keys := make([]hourKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b hourKey) int {
		return cmp.Or(cmp.Compare(a.hour, b.hour), strings.Compare(a.kind, b.kind), strings.Compare(a.rule, b.rule))
	})
	return keys
}

// addHours adds a batch's rows to the per-hour counts (event_hours), in
// the batch's transaction: one upsert per hour, kind and rule present,
// in sortedHours order. Counts are of every node's events together.
func (d *db) addHours(ctx context.Context, tx execer, rows []row) error {
	counts := map[hourKey]int64{}
	for i := range rows {
		counts[hourKey{rows[i].TimeUS / usPerHour, rows[i].Kind, rows[i].Rule}]++
	}
	q := d.rebind(`INSERT INTO event_hours (hour, kind, rule, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (hour, kind, rule) DO UPDATE SET n = event_hours.n + excluded.n`)
	for _, k := range sortedHours(counts) {
		if _, err := tx.ExecContext(ctx, q, k.hour, k.kind, k.rule, counts[k]); err != nil {
			return fmt.Errorf("counting events per hour: %w", err)
		}
	}
	return nil
}

// Hourly implements Aggregator. For whole hours it reads the per-hour
// counts the batch writer keeps (event_hours); otherwise, or on a
// read-only store (which does not migrate), one GROUP BY over the
// events_time index range, integer division bucketing time_us into hours.
func (s *sqlStore) Hourly(ctx context.Context, since, until time.Time, kinds []string) ([]HourCount, error) {
	q := `SELECT time_us / ? AS h, kind, rule, COUNT(*) FROM events WHERE time_us >= ? AND time_us < ?`
	args := []any{usPerHour, since.UnixMicro(), until.UnixMicro()}
	if s.rollup && since.UnixMicro()%usPerHour == 0 && until.UnixMicro()%usPerHour == 0 {
		q = `SELECT hour, kind, rule, n FROM event_hours WHERE hour >= ? AND hour < ?`
		args = []any{since.UnixMicro() / usPerHour, until.UnixMicro() / usPerHour}
	}
	if len(kinds) > 0 {
		q += ` AND kind IN (`
		for i, k := range kinds {
			if i > 0 {
				q += `, `
			}
			q += `?`
			args = append(args, k)
		}
		q += `)`
	}
	if s.rollup && since.UnixMicro()%usPerHour == 0 && until.UnixMicro()%usPerHour == 0 {
		q += ` AND n > 0 ORDER BY hour, kind, rule`
	} else {
		q += ` GROUP BY h, kind, rule ORDER BY h, kind, rule`
	}
	rows, err := s.db.sql.QueryContext(ctx, s.db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("counting events per hour: %w", err)
	}
	defer rows.Close()
	var out []HourCount
	for rows.Next() {
		var h, n int64
		var c HourCount
		if err := rows.Scan(&h, &c.Kind, &c.Rule, &n); err != nil {
			return nil, fmt.Errorf("counting events per hour: %w", err)
		}
		c.Hour, c.Count = time.UnixMicro(h*usPerHour).UTC(), n
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting events per hour: %w", err)
	}
	return out, nil
}

// HourlyCache is an Aggregator that keeps the counts of settled hours in
// memory: an hour that ended more than Settle ago is counted once and
// served from memory afterwards, so a 30-day overview re-reads only the
// last hours. An event recorded later than Settle with an older time (a
// replayed log) is not in a cached hour's count until the cache is reset.
// It is safe for concurrent use.
type HourlyCache struct {
	src    Aggregator
	now    func() time.Time
	settle time.Duration
	keep   time.Duration

	mu    sync.Mutex
	kinds string
	hours map[int64][]HourCount // hour start (Unix s) → counts; present = cached
}

// NewHourlyCache wraps src. now nil means time.Now. Hours are final
// 2 hours after they end; cached hours older than 40 days are dropped.
func NewHourlyCache(src Aggregator, now func() time.Time) *HourlyCache {
	if now == nil {
		now = time.Now
	}
	return &HourlyCache{src: src, now: now, settle: 2 * time.Hour, keep: 40 * 24 * time.Hour, hours: map[int64][]HourCount{}}
}

// Hourly implements Aggregator: since and until are widened to whole
// hours; settled hours missing from the cache are counted in one query,
// the unsettled tail is always counted afresh.
func (c *HourlyCache) Hourly(ctx context.Context, since, until time.Time, kinds []string) ([]HourCount, error) {
	since, until = since.UTC().Truncate(time.Hour), until.UTC().Add(time.Hour-1).Truncate(time.Hour)
	final := c.now().UTC().Add(-c.settle).Truncate(time.Hour)
	key := strings.Join(kinds, ",")

	c.mu.Lock()
	if key != c.kinds {
		c.kinds, c.hours = key, map[int64][]HourCount{}
	}
	for h := range c.hours {
		if time.Unix(h, 0).Before(final.Add(-c.keep)) {
			delete(c.hours, h)
		}
	}
	var missFrom, missTo time.Time
	for h := since; h.Before(until) && h.Before(final); h = h.Add(time.Hour) {
		if _, ok := c.hours[h.Unix()]; !ok {
			if missFrom.IsZero() {
				missFrom = h
			}
			missTo = h.Add(time.Hour)
		}
	}
	c.mu.Unlock()

	if !missFrom.IsZero() {
		got, err := c.src.Hourly(ctx, missFrom, missTo, kinds)
		if err != nil {
			return nil, err
		}
		fill := map[int64][]HourCount{}
		for _, hc := range got {
			fill[hc.Hour.Unix()] = append(fill[hc.Hour.Unix()], hc)
		}
		c.mu.Lock()
		if key == c.kinds {
			for h := missFrom; h.Before(missTo); h = h.Add(time.Hour) {
				c.hours[h.Unix()] = fill[h.Unix()]
			}
		}
		c.mu.Unlock()
	}
	var tail []HourCount
	if until.After(final) {
		var err error
		if tail, err = c.src.Hourly(ctx, maxTime(since, final), until, kinds); err != nil {
			return nil, err
		}
	}
	var out []HourCount
	c.mu.Lock()
	for h := since; h.Before(until) && h.Before(final); h = h.Add(time.Hour) {
		out = append(out, c.hours[h.Unix()]...)
	}
	c.mu.Unlock()
	return append(out, tail...), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
