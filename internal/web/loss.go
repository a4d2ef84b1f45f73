package web

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/rates"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/users"
)

// Querier reads stored events (store.Store implements it).
type Querier interface {
	Query(ctx context.Context, f store.Filter) ([]store.Record, error)
}

// Pricer prices a connected call: what billsec to destination (as dialled)
// cost, in currency; false when the rate table has no row for it.
type Pricer func(destination string, billsec time.Duration) (cost rates.Amount, currency string, ok bool)

// lossLimit caps the events one loss page reads per kind; beyond it the
// reply says it is truncated.
const lossLimit = 100000

// LossDay is one UTC day and currency of the loss page.
type LossDay struct {
	Day      string `json:"day"` // 2006-01-02, UTC
	Currency string `json:"currency"`
	// Prevented is the sum of the loss estimates of refused calls
	// (call-policy verdicts other than "pass"); Refused counts them.
	Prevented string `json:"prevented"`
	Refused   int    `json:"refused"`
	// Incurred is what connected calls to priced destinations cost at the
	// rate table; Connected counts them.
	Incurred  string `json:"incurred"`
	Connected int    `json:"connected"`
}

// LossReply is GET /ui/loss.
type LossReply struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Available is false when the console has no event store.
	Available bool `json:"available"`
	// Rates is false when no rate table is configured: nothing incurred
	// can be priced.
	Rates bool `json:"rates"`
	// Truncated is true when a kind had more than lossLimit events in the
	// range; the sums cover the most recent ones.
	Truncated bool      `json:"truncated"`
	Days      []LossDay `json:"days"`
	Totals    []LossDay `json:"totals"` // one per currency, Day empty
}

type lossAcc struct {
	prevented, incurred rates.Amount
	refused, connected  int
}

// loss is GET /ui/loss?days=N (1 to 30, default 7): the estimated loss
// prevented and incurred per UTC day, from the stored events.
func (c *Console) loss(w http.ResponseWriter, r *http.Request, _ users.Session) {
	days := 7
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 30 {
			writeError(w, http.StatusBadRequest, "days must be a number from 1 to 30")
			return
		}
		days = n
	}
	until := c.now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	var price Pricer
	if c.o.Prices != nil {
		price = c.o.Prices()
	}
	rep := LossReply{Since: until.Add(-time.Duration(days) * 24 * time.Hour), Until: until, Rates: price != nil,
		Days: []LossDay{}, Totals: []LossDay{}}
	if c.o.Events == nil {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	rep.Available = true
	type key struct{ day, cur string }
	acc := map[key]*lossAcc{}
	get := func(t time.Time, cur string) *lossAcc {
		k := key{t.UTC().Format(time.DateOnly), cur}
		if acc[k] == nil {
			acc[k] = &lossAcc{}
		}
		return acc[k]
	}
	f := store.Filter{Kinds: []event.Kind{event.KindVerdict}, Since: rep.Since, Until: rep.Until, Limit: lossLimit}
	recs, err := c.o.Events.Query(r.Context(), f)
	if err != nil {
		c.log.Error("loss: reading verdicts", "err", err)
		writeError(w, http.StatusInternalServerError, "reading events failed (see the tollguard log)")
		return
	}
	rep.Truncated = len(recs) >= lossLimit
	for _, rec := range recs {
		v, ok := rec.Event.(*event.Verdict)
		if !ok || v.Loss == "" || v.Action == "pass" {
			continue
		}
		amt, cur, ok := parseLoss(v.Loss)
		if !ok {
			continue
		}
		a := get(rec.Time, cur)
		a.prevented += amt
		a.refused++
	}
	if price != nil {
		f.Kinds = []event.Kind{event.KindCallEnded}
		recs, err := c.o.Events.Query(r.Context(), f)
		if err != nil {
			c.log.Error("loss: reading calls", "err", err)
			writeError(w, http.StatusInternalServerError, "reading events failed (see the tollguard log)")
			return
		}
		rep.Truncated = rep.Truncated || len(recs) >= lossLimit
		for _, rec := range recs {
			e, ok := rec.Event.(*event.CallEnded)
			if !ok || e.Billsec <= 0 || e.Destination == "" {
				continue
			}
			cost, cur, ok := price(e.Destination, e.Billsec)
			if !ok {
				continue
			}
			a := get(rec.Time, cur)
			a.incurred += cost
			a.connected++
		}
	}
	tot := map[string]*lossAcc{}
	for k, a := range acc {
		rep.Days = append(rep.Days, LossDay{Day: k.day, Currency: k.cur, Prevented: a.prevented.String(), Refused: a.refused,
			Incurred: a.incurred.String(), Connected: a.connected})
		if tot[k.cur] == nil {
			tot[k.cur] = &lossAcc{}
		}
		t := tot[k.cur]
		t.prevented += a.prevented
		t.incurred += a.incurred
		t.refused += a.refused
		t.connected += a.connected
	}
	for cur, a := range tot {
		rep.Totals = append(rep.Totals, LossDay{Currency: cur, Prevented: a.prevented.String(), Refused: a.refused,
			Incurred: a.incurred.String(), Connected: a.connected})
	}
	sort.Slice(rep.Days, func(i, j int) bool {
		if rep.Days[i].Day != rep.Days[j].Day {
			return rep.Days[i].Day > rep.Days[j].Day
		}
		return rep.Days[i].Currency < rep.Days[j].Currency
	})
	sort.Slice(rep.Totals, func(i, j int) bool { return rep.Totals[i].Currency < rep.Totals[j].Currency })
	writeJSON(w, http.StatusOK, rep)
}

// parseLoss reads a verdict's loss estimate ("12.00 USD").
func parseLoss(s string) (rates.Amount, string, bool) {
	num, cur, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || cur == "" {
		return 0, "", false
	}
	a, err := rates.ParseAmount(num)
	if err != nil || a < 0 {
		return 0, "", false
	}
	return a, cur, true
}
