package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/users"
)

// OverviewReply is GET /ui/overview: per-hour counts of the kinds the
// overview charts (verdicts and bans by rule, registrations, call
// attempts) over the last Days days.
type OverviewReply struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Available is false when the store cannot count per hour.
	Available bool              `json:"available"`
	Hours     []store.HourCount `json:"hours"`
}

// overviewKinds are the kinds the overview counts.
var overviewKinds = []string{"verdict", "ban", "register", "auth_failure", "call_attempt"}

// overview is GET /ui/overview?days=N (1 to 30, default 1).
func (c *Console) overview(w http.ResponseWriter, r *http.Request, _ users.Session) {
	days := 1
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 30 {
			writeError(w, http.StatusBadRequest, "days must be a number from 1 to 30")
			return
		}
		days = n
	}
	until := c.now().UTC().Truncate(time.Hour).Add(time.Hour)
	rep := OverviewReply{Since: until.Add(-time.Duration(days) * 24 * time.Hour), Until: until, Hours: []store.HourCount{}}
	if c.o.Hourly != nil {
		hours, err := c.o.Hourly.Hourly(r.Context(), rep.Since, rep.Until, overviewKinds)
		if err != nil {
			c.log.Error("overview counts", "err", err)
			writeError(w, http.StatusInternalServerError, "counting events failed (see the tollguard log)")
			return
		}
		rep.Available = true
		if hours != nil {
			rep.Hours = hours
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// Warm counts the overview's widest range (30 days) once, so a caching
// Aggregator (store.HourlyCache) answers the first page view from memory.
// Errors are logged; it returns when the count is done or ctx ends.
func (c *Console) Warm(ctx context.Context) {
	if c.o.Hourly == nil {
		return
	}
	until := c.now().UTC().Truncate(time.Hour).Add(time.Hour)
	if _, err := c.o.Hourly.Hourly(ctx, until.Add(-30*24*time.Hour), until, overviewKinds); err != nil && ctx.Err() == nil {
		c.log.Warn("warming the overview counts", "err", err)
	}
}
