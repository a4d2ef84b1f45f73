package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/forensics"
	"github.com/tollguard/tollguard/internal/store"
)

// EventStore is what the event routes need from the store (store.Store
// implements it).
type EventStore interface {
	Query(ctx context.Context, f store.Filter) ([]store.Record, error)
	Backup(ctx context.Context, name string) (string, error)
}

// EventRecord is one stored event as GET /api/v1/events returns it: the
// columns a table shows, and the whole event under "event".
type EventRecord struct {
	// Node is the guard that recorded it ("" for a guard alone); Seq is
	// its place in that node's chain.
	Node      string    `json:"node"`
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Source    string    `json:"source,omitempty"`
	Transport string    `json:"transport,omitempty"`
	Account   string    `json:"account,omitempty"`
	From      string    `json:"from,omitempty"`
	To        string    `json:"to,omitempty"`
	RURI      string    `json:"ruri,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	Code      int       `json:"code,omitempty"`
	Rule      string    `json:"rule,omitempty"`
	// Summary says what happened in a few words ("billsec 80s",
	// "reject 403", "until 2026-03-01T13:00:00Z").
	Summary string          `json:"summary,omitempty"`
	Hash    string          `json:"hash"`
	Event   json.RawMessage `json:"event"`
}

// EventsReply is GET /api/v1/events.
type EventsReply struct {
	// Masked is true when phone numbers are masked (the default).
	Masked  bool          `json:"masked"`
	Records []EventRecord `json:"records"`
}

// InvestigateReply is GET /api/v1/investigate.
type InvestigateReply struct {
	Masked bool `json:"masked"`
	// Truncated is true when the window held more events than one report
	// reads; the report covers the newest ones.
	Truncated bool             `json:"truncated"`
	Report    forensics.Report `json:"report"`
}

// BackupBody is POST /api/v1/backup.
type BackupBody struct {
	// Name is a new file name in the daemon's backup directory
	// (store.backup_dir, default <data_dir>/backups), not a path: see
	// store.CheckBackupName.
	Name string `json:"name"`
}

// BackupReply answers POST /api/v1/backup.
type BackupReply struct {
	// Path is where the daemon wrote the backup, on its host.
	Path string `json:"path"`
}

// backupRefused is the one answer to every refused backup name, whether
// it is malformed, taken, or the backup directory is unusable: the client
// learns nothing about which paths exist; the daemon's log says which.
const backupRefused = "backup refused: name must be a new file name in the backup directory " +
	"(letters, digits, '.', '_' and '-', starting with a letter or a digit, at most 128 bytes); " +
	"the daemon's log says why"

// investigateLimit bounds the events one report reads.
const investigateLimit = 100000

// MountEvents adds the event-store routes: GET /api/v1/events (filters
// node, ip, account, call_id, kind (comma list), since, until (a duration
// back from now, or RFC 3339), limit, unmask), GET /api/v1/investigate
// (since, node, unmask) and POST /api/v1/backup. Phone numbers are masked unless
// unmask=true, which is itself recorded as an admin action through
// Options.Audit (and refused when there is no Audit). GET
// /api/v1/events.csv answers the same filters as a CSV download.
func (s *Server) MountEvents(st EventStore) {
	s.mountExport(st)
	s.Mount("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		recs, unmask, ok := s.queryEvents(w, r, st, "events")
		if !ok {
			return
		}
		WriteJSON(w, http.StatusOK, EventsReply{Masked: !unmask, Records: recs})
	})
	s.Mount("GET /api/v1/investigate", func(w http.ResponseWriter, r *http.Request) {
		since, err := s.parseWhen(r.URL.Query().Get("since"), 24*time.Hour)
		if err != nil {
			WriteError(w, http.StatusBadRequest, "since: "+err.Error())
			return
		}
		node := r.URL.Query().Get("node")
		if err := store.CheckNode(node); err != nil {
			WriteError(w, http.StatusBadRequest, "node: "+err.Error())
			return
		}
		unmask, ok := s.unmask(w, r, "investigate")
		if !ok {
			return
		}
		recs, err := st.Query(r.Context(), store.Filter{Node: node, Since: since, Limit: investigateLimit})
		if err != nil {
			s.log.Error("querying events", "err", err)
			WriteError(w, http.StatusInternalServerError, "querying the event store failed (see the daemon's log)")
			return
		}
		rep := InvestigateReply{Masked: !unmask, Truncated: len(recs) == investigateLimit, Report: forensics.Analyze(recs, forensics.Options{})}
		if !unmask {
			rep.Report.Mask()
		}
		WriteJSON(w, http.StatusOK, rep)
	})
	s.Mount("POST /api/v1/backup", func(w http.ResponseWriter, r *http.Request) {
		var b BackupBody
		if err := DecodeJSON(r, &b); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		Annotate(r, "backup", capText(b.Name, 200), "")
		path, err := st.Backup(r.Context(), b.Name)
		switch {
		case err == nil:
			WriteJSON(w, http.StatusOK, BackupReply{Path: path})
		case errors.Is(err, store.ErrBackupRefused):
			s.log.Warn("backup refused", "name", capText(b.Name, 200), "err", err)
			WriteError(w, http.StatusBadRequest, backupRefused)
		case errors.Is(err, store.ErrUnsupported):
			WriteError(w, http.StatusNotImplemented, "backup is not supported by this store driver: use pg_dump for postgres")
		default:
			s.log.Error("backup failed", "name", capText(b.Name, 200), "err", err)
			WriteError(w, http.StatusInternalServerError, "backup failed (see the daemon's log)")
		}
	})
}

// unmask reads unmask=true and records it as an admin action. ok is false
// when the answer was already written (bad value, no audit).
func (s *Server) unmask(w http.ResponseWriter, r *http.Request, what string) (unmask, ok bool) {
	v := r.URL.Query().Get("unmask")
	if v == "" {
		return false, true
	}
	unmask, err := strconv.ParseBool(v)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "unmask must be true or false")
		return false, false
	}
	if !unmask {
		return false, true
	}
	if s.opts.Audit == nil {
		WriteError(w, http.StatusForbidden, "unmasking needs an audit log, and this server has none")
		return false, false
	}
	a := event.Admin{Actor: Actor(r), Action: "unmask", Target: what, Detail: capText(r.URL.RawQuery, 500)}
	a.Time = s.now()
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a.Source = netip.AddrPortFrom(decision.Unmap(ap.Addr()), ap.Port())
	}
	a.Listener = "admin"
	s.opts.Audit(context.WithoutCancel(r.Context()), a)
	return true, true
}

// eventFilter parses the query of GET /api/v1/events.
func (s *Server) eventFilter(q url.Values) (store.Filter, error) {
	var f store.Filter
	f.Node = q.Get("node")
	if err := store.CheckNode(f.Node); err != nil {
		return f, fmt.Errorf("node: %s is not a node name", quoteCap(f.Node, 70))
	}
	if v := q.Get("ip"); v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return f, fmt.Errorf("ip: %s is not an IP address", quoteCap(v, 60))
		}
		f.IP = decision.Unmap(a)
	}
	f.Account, f.CallID = q.Get("account"), q.Get("call_id")
	for _, k := range strings.FieldsFunc(q.Get("kind"), func(r rune) bool { return r == ',' }) {
		kind, ok := event.ParseKind(strings.TrimSpace(k))
		if !ok {
			return f, fmt.Errorf("kind: unknown kind %s", quoteCap(k, 40))
		}
		f.Kinds = append(f.Kinds, kind)
	}
	var err error
	if f.Since, err = s.parseWhen(q.Get("since"), 0); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = s.parseWhen(q.Get("until"), 0); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return f, fmt.Errorf("limit: %s is not a positive number", quoteCap(v, 20))
		}
	}
	return f, nil
}

// parseWhen reads a duration back from now ("24h", "7d") or an RFC 3339
// time; empty means def back from now, or the zero time when def is 0.
func (s *Server) parseWhen(v string, def time.Duration) (time.Time, error) {
	if v == "" {
		if def == 0 {
			return time.Time{}, nil
		}
		return s.now().Add(-def), nil
	}
	if d, err := config.ParseDuration(v); err == nil {
		return s.now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is neither a duration (24h, 7d) nor an RFC 3339 time", quoteCap(v, 40))
	}
	return t, nil
}

// eventRecord flattens r for the API.
func eventRecord(r *store.Record) EventRecord {
	out := EventRecord{Node: r.Node, Seq: r.Seq, Time: r.Time, Kind: r.Kind.String(), Account: r.Account, CallID: r.CallID,
		Code: r.Code, Rule: r.Rule, Hash: fmt.Sprintf("%x", r.Hash)}
	m := r.Event.Base()
	if m.Source.IsValid() {
		out.Source = m.Source.String()
	} else if r.IP.IsValid() {
		out.Source = r.IP.String()
	}
	out.Transport = string(m.Transport)
	sip := func(s *event.SIP) {
		out.From, out.To, out.RURI, out.UserAgent = s.FromUser, s.ToUser, s.RURIUser, s.UserAgent
	}
	switch e := r.Event.(type) {
	case *event.Request:
		sip(&e.SIP)
		out.Summary = e.Method
	case *event.Response:
		sip(&e.SIP)
		out.Summary = fmt.Sprintf("%s %d", e.Method, e.Code)
	case *event.AuthFailure:
		sip(&e.SIP)
		out.Summary = fmt.Sprintf("%s refused %d", e.Method, e.Code)
	case *event.Register:
		sip(&e.SIP)
		out.Summary = fmt.Sprintf("expires %ds", e.Expires)
	case *event.CallAttempt:
		sip(&e.SIP)
		out.To, out.Summary = e.Destination, "to "+e.Destination
	case *event.CallAnswered:
		sip(&e.SIP)
		out.To, out.Summary = e.Destination, "answered"
	case *event.CallRinging:
		sip(&e.SIP)
		out.To, out.Summary = e.Destination, fmt.Sprintf("ringing %d", e.Code)
	case *event.CallEnded:
		sip(&e.SIP)
		out.To = e.Destination
		out.Summary = fmt.Sprintf("%s duration %s billsec %s", e.Cause, e.Duration, e.Billsec)
	case *event.Verdict:
		sip(&e.SIP)
		out.Summary = strings.TrimSpace(e.Action + " " + e.Reason)
		if e.Mode == "shadow" || e.Mode == "warn" {
			out.Summary += " (" + e.Mode + ")"
		}
		if e.Counters != "" {
			out.Summary += " [" + e.Counters + "]"
		}
		if e.Loss != "" {
			out.Summary += " loss≈" + e.Loss
		}
	case *event.Ban:
		out.Summary = fmt.Sprintf("%s %s by %s until %s: %s", e.Scope, e.Value, e.Actor, untilText(e.Until), e.Reason)
	case *event.Unban:
		out.Summary = fmt.Sprintf("%s %s by %s: %s", e.Scope, e.Value, e.Actor, e.Reason)
	case *event.Admin:
		out.Summary = strings.TrimSpace(fmt.Sprintf("%s %s %s %s", e.Actor, e.Action, e.Target, e.Detail))
	}
	out.Event, _ = json.Marshal(r.Event)
	return out
}

func untilText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// queryEvents answers the events filters of r (see MountEvents): the
// matching records, masked unless unmask=true (audited as action), and
// false when it has already answered with an error.
func (s *Server) queryEvents(w http.ResponseWriter, r *http.Request, st EventStore, action string) ([]EventRecord, bool, bool) {
	f, err := s.eventFilter(r.URL.Query())
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return nil, false, false
	}
	unmask, ok := s.unmask(w, r, action)
	if !ok {
		return nil, false, false
	}
	recs, err := st.Query(r.Context(), f)
	if err != nil {
		s.log.Error("querying events", "err", err)
		WriteError(w, http.StatusInternalServerError, "querying the event store failed (see the daemon's log)")
		return nil, false, false
	}
	out := make([]EventRecord, 0, len(recs))
	for i := range recs {
		if !unmask {
			recs[i].Mask()
		}
		out = append(out, eventRecord(&recs[i]))
	}
	return out, unmask, true
}
