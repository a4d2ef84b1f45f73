package api

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// PolicyService is what the call policy routes need: the lockdown switch,
// the pre-call check and call token secrets. Errors wrapping ErrInvalid
// become 400.
type PolicyService interface {
	// Lockdown returns the lockdown state.
	Lockdown(ctx context.Context) (LockdownState, error)
	// SetLockdown turns lockdown on or off, persistently; with hangup,
	// the running calls of accounts not on lockdown.allow_accounts are
	// ended (asynchronously; Hangups says how many were asked to end).
	SetLockdown(ctx context.Context, on, hangup bool, actor string) (LockdownState, error)
	// CheckCall answers the pre-call check, counted like an inline call.
	CheckCall(ctx context.Context, account string, ip netip.Addr, destination string) CheckReply
	// NewToken creates (or replaces) account's call token secret.
	NewToken(ctx context.Context, account string) (TokenReply, error)
}

// LockdownState is GET /api/v1/lockdown.
type LockdownState struct {
	On bool `json:"on"`
	// Since is when it was last switched (zero: never).
	Since time.Time `json:"since,omitzero"`
	// AllowAccounts may place calls during lockdown.
	AllowAccounts []string `json:"allow_accounts"`
	// Hangups is how many running calls a --hangup asked to end.
	Hangups int `json:"hangups,omitempty"`
}

// LockdownBody is PUT /api/v1/lockdown.
type LockdownBody struct {
	On     bool `json:"on"`
	Hangup bool `json:"hangup,omitempty"`
}

// CheckReply is GET /api/v1/check/call.
type CheckReply struct {
	// Result is "allow" or "deny".
	Result string `json:"result"`
	// Code is the SIP status the inline proxy would answer (403, 488).
	Code   int    `json:"code,omitempty"`
	Rule   string `json:"rule,omitempty"`
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason,omitempty"`
	Mode   string `json:"mode,omitempty"`
	Loss   string `json:"loss,omitempty"`
}

// TokenReply is POST /api/v1/tokens/{account}: the new secret, shown once.
type TokenReply struct {
	Account string `json:"account"`
	Secret  string `json:"secret"`
	URI     string `json:"uri"`
	// Listed is false when the account is not in call_tokens.accounts
	// (its calls need no token until it is added).
	Listed bool `json:"listed"`
}

// MountPolicy registers the call policy routes:
//
//	GET  /api/v1/lockdown                      state
//	PUT  /api/v1/lockdown                      {"on":true,"hangup":true}
//	GET  /api/v1/check/call?account=&ip=&destination=   allow | deny
//	POST /api/v1/tokens/{account}              new call token secret
func (s *Server) MountPolicy(p PolicyService) {
	s.Mount("GET /api/v1/lockdown", func(w http.ResponseWriter, r *http.Request) {
		st, err := p.Lockdown(r.Context())
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, st)
	})
	s.Mount("PUT /api/v1/lockdown", func(w http.ResponseWriter, r *http.Request) {
		var b LockdownBody
		if err := DecodeJSON(r, &b); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		st, err := p.SetLockdown(r.Context(), b.On, b.Hangup, Actor(r))
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, st)
	})
	s.Mount("GET /api/v1/check/call", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		account, dest := q.Get("account"), q.Get("destination")
		ip, err := netip.ParseAddr(q.Get("ip"))
		switch {
		case err != nil:
			WriteError(w, http.StatusBadRequest, "ip: not an address: "+quoteCap(q.Get("ip"), 64))
			return
		case CheckText("account", account, 128) != nil || account == "":
			WriteError(w, http.StatusBadRequest, "account: required, at most 128 printable bytes")
			return
		case CheckText("destination", dest, 128) != nil || dest == "":
			WriteError(w, http.StatusBadRequest, "destination: required, at most 128 printable bytes")
			return
		}
		WriteJSON(w, http.StatusOK, p.CheckCall(r.Context(), account, ip.Unmap(), dest))
	})
	s.Mount("POST /api/v1/tokens/{account}", func(w http.ResponseWriter, r *http.Request) {
		account := r.PathValue("account")
		if err := CheckText("account", account, 128); err != nil || account == "" {
			WriteError(w, http.StatusBadRequest, "account: required, at most 128 printable bytes")
			return
		}
		rep, err := p.NewToken(r.Context(), account)
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, rep)
	})
}
