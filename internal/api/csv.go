package api

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tollguard/tollguard/internal/safetext"
)

// EventsCSVHeader is the column order of the events CSV export (the
// command line's `events --csv` and the console's download).
var EventsCSVHeader = []string{"seq", "time", "kind", "source", "transport", "account", "from", "to", "ruri", "user_agent", "call_id", "code", "rule", "detail", "hash", "node"}

// WriteEventsCSV writes records as CSV. Every cell goes through
// safetext.CSVCell: control and bidi characters are escaped, and cells a
// spreadsheet would run as a formula are prefixed with a quote (CSV
// injection): attackers choose user agents, accounts and Call-IDs. JSON is
// the faithful export.
func WriteEventsCSV(w io.Writer, recs []EventRecord) error {
	cw := csv.NewWriter(w)
	cw.Write(EventsCSVHeader)
	for _, r := range recs {
		code := ""
		if r.Code != 0 {
			code = strconv.Itoa(r.Code)
		}
		row := []string{strconv.FormatInt(r.Seq, 10), r.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), r.Kind, r.Source, r.Transport,
			r.Account, r.From, r.To, r.RURI, r.UserAgent, r.CallID, code, r.Rule, r.Summary, r.Hash, r.Node}
		for i, c := range row {
			row[i] = safetext.CSVCell(c)
		}
		cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	return nil
}

// mountExport adds GET /api/v1/events.csv: the filters of GET
// /api/v1/events, answered as a CSV download.
func (s *Server) mountExport(st EventStore) {
	s.Mount("GET /api/v1/events.csv", func(w http.ResponseWriter, r *http.Request) {
		out, _, ok := s.queryEvents(w, r, st, "events.csv")
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="tollguard-events.csv"`)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if err := WriteEventsCSV(w, out); err != nil {
			s.log.Debug("writing CSV export", "err", err)
		}
	})
}
