package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/teardown"
)

// CallService is what the call routes need: the running calls, ending one,
// and a deadline on one (sipfw.Proxy implements it). HangupCall blocks
// until both sides answered or ctx ends; an unknown call is an error
// wrapping teardown.ErrNoCall.
type CallService interface {
	teardown.Lister
	HangupCall(ctx context.Context, id string) error
	SetDeadline(id string, at time.Time) error
}

// CallRecord is one running call as GET /api/v1/calls returns it.
type CallRecord struct {
	ID        string         `json:"id"`
	Account   string         `json:"account,omitempty"`
	From      string         `json:"from,omitempty"`
	To        string         `json:"to,omitempty"`
	Source    netip.AddrPort `json:"source"`
	Direction string         `json:"direction"`
	Start     time.Time      `json:"start"`
	Answer    time.Time      `json:"answer"`
	// Duration is the time connected so far, in whole seconds.
	Duration int64     `json:"duration"`
	Deadline time.Time `json:"deadline,omitzero"`
}

// CallsReply is GET /api/v1/calls.
type CallsReply struct {
	Now time.Time `json:"now"`
	// Masked is true when phone numbers are masked (the default).
	Masked bool         `json:"masked"`
	Calls  []CallRecord `json:"calls"`
}

// HangupReply answers POST /api/v1/calls/{id}/hangup.
type HangupReply struct {
	ID     string `json:"id"`
	Result string `json:"result"`
}

// DeadlineBody is POST /api/v1/calls/{id}/deadline.
type DeadlineBody struct {
	// After is a duration from now ("90s", "2h"); the call is cut then.
	After string `json:"after"`
}

// DeadlineReply answers POST /api/v1/calls/{id}/deadline.
type DeadlineReply struct {
	ID       string    `json:"id"`
	Deadline time.Time `json:"deadline"`
}

// MaxCallIDLen caps a Call-ID in a route (the proxy keeps at most 256
// bytes of one).
const MaxCallIDLen = 256

// MaxDeadline caps a deadline set through the API.
const MaxDeadline = 7 * 24 * time.Hour

// MountCalls adds the call routes: GET /api/v1/calls (unmask=true shows
// phone numbers, audited as for events), POST /api/v1/calls/{id}/hangup
// (200 when both sides confirmed, 404 for an unknown call, 502 when a side
// refused or never answered: the BYEs were sent and the call is forgotten
// either way) and POST /api/v1/calls/{id}/deadline. Hangups and deadlines
// are audited as admin actions.
func (s *Server) MountCalls(c CallService) {
	s.Mount("GET /api/v1/calls", func(w http.ResponseWriter, r *http.Request) {
		unmask, ok := s.unmask(w, r, "calls")
		if !ok {
			return
		}
		now := s.now()
		rep := CallsReply{Now: now, Masked: !unmask, Calls: []CallRecord{}}
		for _, k := range c.Calls() {
			rec := CallRecord{ID: k.ID, Account: k.Account, From: k.From, To: k.To, Source: k.Source,
				Direction: k.Direction, Start: k.Start, Answer: k.Answer, Deadline: k.Deadline,
				Duration: int64(k.Duration(now) / time.Second)}
			if !unmask {
				rec.Account, rec.From, rec.To = store.MaskNumber(rec.Account), store.MaskNumber(rec.From), store.MaskNumber(rec.To)
			}
			rep.Calls = append(rep.Calls, rec)
		}
		WriteJSON(w, http.StatusOK, rep)
	})
	s.Mount("POST /api/v1/calls/{id}/hangup", func(w http.ResponseWriter, r *http.Request) {
		id, ok := callID(w, r)
		if !ok {
			return
		}
		Annotate(r, "hangup", id, "")
		err := c.HangupCall(r.Context(), id)
		switch {
		case errors.Is(err, teardown.ErrNoCall):
			WriteError(w, http.StatusNotFound, "no running call "+quoteCap(id, 80))
		case err != nil:
			Annotate(r, "hangup", id, capText(err.Error(), 300))
			WriteError(w, http.StatusBadGateway, "BYE sent to both sides, but: "+err.Error())
		default:
			WriteJSON(w, http.StatusOK, HangupReply{ID: id, Result: "ok"})
		}
	})
	s.Mount("POST /api/v1/calls/{id}/deadline", func(w http.ResponseWriter, r *http.Request) {
		id, ok := callID(w, r)
		if !ok {
			return
		}
		var body DeadlineBody
		if err := DecodeJSON(r, &body); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		d, err := config.ParseDuration(strings.TrimSpace(body.After))
		if err != nil || d <= 0 || d > MaxDeadline {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("after: %s is not a duration between 0 and 7d", quoteCap(body.After, 40)))
			return
		}
		at := s.now().Add(d)
		Annotate(r, "call_deadline", id, "after="+d.String())
		if err := c.SetDeadline(id, at); err != nil {
			if errors.Is(err, teardown.ErrNoCall) {
				WriteError(w, http.StatusNotFound, "no running call "+quoteCap(id, 80))
				return
			}
			s.serviceError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, DeadlineReply{ID: id, Deadline: at})
	})
}

// callID reads and checks the {id} of a call route; on failure it has
// answered 400.
func callID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if id == "" {
		WriteError(w, http.StatusBadRequest, "call id is missing")
		return "", false
	}
	if err := CheckText("call id", id, MaxCallIDLen); err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	return id, true
}
