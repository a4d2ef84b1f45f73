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
	"github.com/tollguard/tollguard/internal/decision"
)

// BanService is what the daemon offers the ban routes. Methods are called on
// the request's goroutine and may block on the store; they must honour ctx.
// Errors wrapping ErrInvalid become 400 and ErrNotFound 404, with the
// error's text shown to the operator; any other error is a 500 whose text
// is logged, not shown.
type BanService interface {
	// Summary returns the jail settings, recent failures (newest first) and
	// the bans in force, like mod_cti's `cti show baninfo`.
	Summary(ctx context.Context) (BanSummary, error)
	// Ban places an operator ban and returns it. req is already validated:
	// IP is valid and unmapped, For is positive, Account and Reason are
	// clean text.
	Ban(ctx context.Context, req BanRequest) (decision.Decision, error)
	// Unban lifts the bans on ip: with account, the ip_account ban of that
	// account only; without, the ip ban and every ip_account ban of ip. It
	// returns the decisions lifted, none (and no error) if nothing was in
	// force. actor is recorded with the unban.
	Unban(ctx context.Context, ip netip.Addr, account string, actor string) ([]decision.Decision, error)
}

// ErrInvalid marks a BanService error caused by the request (an address in
// the allow list, ...): the route answers 400.
var ErrInvalid = errors.New("invalid request")

// ErrNotFound marks a BanService error for something that does not exist:
// the route answers 404.
var ErrNotFound = errors.New("not found")

// BanSummary is GET /api/v1/bans.
type BanSummary struct {
	// Now is the daemon's clock when the summary was taken; clients compute
	// remaining ban time against it, not their own clock.
	Now time.Time `json:"now"`
	// Jail lists the register_failure rules in force.
	Jail []JailRule `json:"jail"`
	// Failures lists recent authentication failures, newest first.
	Failures []Failure `json:"failures"`
	// Bans lists the bans in force.
	Bans []decision.Decision `json:"bans"`
	// Cluster is one line on the link to the other guards; empty when
	// this guard runs alone.
	Cluster string `json:"cluster,omitempty"`
}

// JailRule is one register_failure rule as the daemon applies it.
type JailRule struct {
	// Name identifies the rule in decisions: "register_failure[0]".
	Name     string   `json:"name"`
	FindTime Duration `json:"findtime"`
	MaxRetry int      `json:"maxretry"`
	// BanMode is "ip" or "ip_account".
	BanMode string   `json:"banmode"`
	BanTime Duration `json:"bantime"`
}

// Failure is one authentication failure in the history.
type Failure struct {
	Time    time.Time  `json:"time"`
	Address netip.Addr `json:"address"`
	Account string     `json:"account,omitempty"`
	// Code is the SIP status that refused it (401, 403, 404, 407), if known.
	Code int `json:"code,omitempty"`
}

// BanRequest is an operator ban as the service receives it.
type BanRequest struct {
	IP netip.Addr
	// Account, when set, bans only that account from IP (ip_account scope).
	Account string
	// For is the ban's length; always positive.
	For    time.Duration
	Reason string
	// Actor is the operator identity (see Actor).
	Actor string
}

// BanBody is the JSON body of POST /api/v1/bans.
type BanBody struct {
	IP      string `json:"ip"`
	Account string `json:"account,omitempty"`
	// For is a duration ("90m", "24h", "7d"); empty means DefaultBanFor.
	For    string `json:"for,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// BanReply is the answer to POST /api/v1/bans.
type BanReply struct {
	Ban decision.Decision `json:"ban"`
}

// UnbanReply is the answer to DELETE /api/v1/bans/{ip}.
type UnbanReply struct {
	Lifted []decision.Decision `json:"lifted"`
}

// Limits on operator input.
const (
	// DefaultBanFor is the length of an operator ban without "for".
	DefaultBanFor = 24 * time.Hour
	// MaxBanFor caps an operator ban.
	MaxBanFor = 3650 * 24 * time.Hour
	// MaxAccountLen caps an account name (a SIP user part).
	MaxAccountLen = 128
	// MaxReasonLen caps a ban reason.
	MaxReasonLen = 256
)

func (s *Server) mountBans(b BanService) {
	s.Mount("GET /api/v1/bans", func(w http.ResponseWriter, r *http.Request) {
		sum, err := b.Summary(r.Context())
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		if sum.Now.IsZero() {
			sum.Now = s.now()
		}
		// Empty lists render as [], not null, for scripts.
		if sum.Jail == nil {
			sum.Jail = []JailRule{}
		}
		if sum.Failures == nil {
			sum.Failures = []Failure{}
		}
		if sum.Bans == nil {
			sum.Bans = []decision.Decision{}
		}
		WriteJSON(w, http.StatusOK, sum)
	})
	s.Mount("POST /api/v1/bans", func(w http.ResponseWriter, r *http.Request) {
		var body BanBody
		if err := DecodeJSON(r, &body); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		req, err := body.Request()
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		req.Actor = Actor(r)
		Annotate(r, "ban", banTarget(req.IP, req.Account), fmt.Sprintf("for=%s reason=%q", req.For, req.Reason))
		d, err := b.Ban(r.Context(), req)
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusCreated, BanReply{Ban: d})
	})
	s.Mount("DELETE /api/v1/bans/{ip}", func(w http.ResponseWriter, r *http.Request) {
		ip, err := ParseIP(r.PathValue("ip"))
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		account := r.URL.Query().Get("account")
		if err := CheckText("account", account, MaxAccountLen); err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		Annotate(r, "unban", banTarget(ip, account), "")
		lifted, err := b.Unban(r.Context(), ip, account, Actor(r))
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		if len(lifted) == 0 {
			WriteError(w, http.StatusNotFound, "no ban in force on "+banTarget(ip, account))
			return
		}
		Annotate(r, "unban", banTarget(ip, account), fmt.Sprintf("lifted=%d", len(lifted)))
		WriteJSON(w, http.StatusOK, UnbanReply{Lifted: lifted})
	})
}

// Request validates b and converts it.
func (b BanBody) Request() (BanRequest, error) {
	ip, err := ParseIP(b.IP)
	if err != nil {
		return BanRequest{}, err
	}
	if err := CheckText("account", b.Account, MaxAccountLen); err != nil {
		return BanRequest{}, err
	}
	if err := CheckText("reason", b.Reason, MaxReasonLen); err != nil {
		return BanRequest{}, err
	}
	d := DefaultBanFor
	if b.For != "" {
		d, err = config.ParseDuration(strings.TrimSpace(b.For))
		if err != nil {
			return BanRequest{}, fmt.Errorf("for: %s is not a duration (use 90m, 24h or 7d)", quoteCap(b.For, 40))
		}
		if d <= 0 || d > MaxBanFor {
			return BanRequest{}, fmt.Errorf("for: %s is out of range (more than 0, at most 3650d)", quoteCap(b.For, 40))
		}
	}
	return BanRequest{IP: ip, Account: b.Account, For: d, Reason: b.Reason}, nil
}

// ParseIP parses a single IPv4 or IPv6 address for a ban, normalising
// ::ffff:a.b.c.d to a.b.c.d. Prefixes, zones and the unspecified address
// are refused. The error is meant for the client.
func ParseIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errors.New("ip is missing")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		hint := ""
		if strings.Contains(s, "/") {
			hint = " (a single address, not a CIDR)"
		}
		return netip.Addr{}, fmt.Errorf("ip %s is not an IP address%s", quoteCap(s, 64), hint)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("ip %s must not carry a zone", quoteCap(s, 64))
	}
	a = decision.Unmap(a)
	if a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("ip %s is the unspecified address", a)
	}
	return a, nil
}

// banTarget renders ip or account@ip.
func banTarget(ip netip.Addr, account string) string {
	if account == "" {
		return ip.String()
	}
	return account + "@" + ip.String()
}

// serviceError maps a service error to a response.
func (s *Server) serviceError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		WriteError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, context.Canceled):
		WriteError(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		s.log.Error("admin API request failed", "route", r.Pattern, "err", err)
		WriteError(w, http.StatusInternalServerError, "internal error (see the tollguard log)")
	}
}
