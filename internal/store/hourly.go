package store

import (
	"context"
	"fmt"
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

var _ Aggregator = (*sqlStore)(nil)

// usPerHour is one hour in the time_us column's unit.
const usPerHour = int64(time.Hour / time.Microsecond)

// Hourly implements Aggregator with one GROUP BY over the events_time
// index range: integer division buckets time_us into hours.
func (s *sqlStore) Hourly(ctx context.Context, since, until time.Time, kinds []string) ([]HourCount, error) {
	q := `SELECT time_us / ? AS h, kind, rule, COUNT(*) FROM events WHERE time_us >= ? AND time_us < ?`
	args := []any{usPerHour, since.UnixMicro(), until.UnixMicro()}
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
	q += ` GROUP BY h, kind, rule ORDER BY h, kind, rule`
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
