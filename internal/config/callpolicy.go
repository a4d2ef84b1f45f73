package config

import (
	"fmt"
	"strings"
)

// CallPolicy holds the call rules (the call_policy detector): which calls
// are refused or flagged before they reach the PBX, and which running
// calls are cut.
type CallPolicy struct {
	// DefaultCountry is the ISO 3166 region national numbers are read in
	// ("CN"). Empty: numbers must be dialled in international form to be
	// recognised as public numbers.
	DefaultCountry string `yaml:"default_country"`
	// Rates is a rate file (destination prefix → cost per minute) for
	// spend limits and loss estimates. Empty: no prices.
	Rates string `yaml:"rates"`
	// ExpectedDuration is the call length a loss estimate assumes (cost
	// per minute × this). Default 10m.
	ExpectedDuration Duration `yaml:"expected_duration"`
	// Rules are checked in order; the first that blocks decides.
	Rules []CallRule `yaml:"rules"`
}

// CallRule is one call rule. A call is judged by a rule when it matches
// Match and does not match Except.
type CallRule struct {
	Name   string    `yaml:"name"`
	Match  CallMatch `yaml:"match"`
	Except CallMatch `yaml:"except"`
	// Warn limits flag a call (event and alert) and let it through.
	Warn CallLimits `yaml:"warn"`
	// Block limits refuse a call (403), or cut it (call_duration).
	Block CallLimits `yaml:"block"`
	// Action is what a matching call gets without counting: "" (only the
	// limits act) or "reject" (every matching call is refused). "kill"
	// refuses like a block and also ends the account's running calls
	// when a block limit trips.
	Action string `yaml:"action"`
	// Mode is enforce (default) or shadow: record what would have been
	// refused and let the call through.
	Mode string `yaml:"mode"`
	// Ban, when set, also bans what a refused call came from: "ip" (the
	// address) or "ip_account" (the account from that address), for
	// BanTime (default 1h).
	Ban     string   `yaml:"ban"`
	BanTime Duration `yaml:"bantime"`
}

// CallMatch selects calls. Every key that is set must match; an empty
// CallMatch matches every call (in Except: none).
type CallMatch struct {
	// Destinations are prefixes ("+44", "0044", "00", "+") or classes
	// (international, premium, satellite, high_risk) of the dialled
	// number, read in E.164 with default_country.
	Destinations []string `yaml:"destinations"`
	// Accounts are account names; "*" is every account.
	Accounts []string `yaml:"accounts"`
	// Sources are CIDRs of the caller's address.
	Sources []Prefix `yaml:"sources"`
	// Hours is a daily time range "HH:MM-HH:MM" (local time of the
	// guard; a range may wrap midnight).
	Hours string `yaml:"hours"`
	// Days is a day range "mon-fri" or a list "sat,sun".
	Days string `yaml:"days"`
}

// CallLimits are the counters a rule watches; zero is no limit.
type CallLimits struct {
	// CallsPerMinute counts calls in the last 60 s.
	CallsPerMinute int `yaml:"calls_per_minute"`
	// Concurrent counts the account's answered calls still running.
	Concurrent int `yaml:"concurrent"`
	// SequentialSameNumber counts calls in a row to one number.
	SequentialSameNumber int `yaml:"sequential_same_number"`
	// DistinctDestinationsPerHour counts different numbers in the last hour.
	DistinctDestinationsPerHour int `yaml:"distinct_destinations_per_hour"`
	// CallsPerDay counts calls in the last 24 h.
	CallsPerDay int `yaml:"calls_per_day"`
	// CallDuration cuts an answered call when it passes (block only).
	CallDuration Duration `yaml:"call_duration"`
	// SpendPerHour and SpendPerDay are money (decimal, in the rate file's
	// currency) spent by ended calls in the last hour or 24 h.
	SpendPerHour string `yaml:"spend_per_hour"`
	SpendPerDay  string `yaml:"spend_per_day"`
}

// Lockdown is the emergency switch (tollguard lockdown on|off): while on,
// only AllowAccounts may place calls.
type Lockdown struct {
	AllowAccounts []string `yaml:"allow_accounts"`
}

// CallTokens lists accounts whose calls must carry a one-time TOTP code.
type CallTokens struct {
	Accounts []string `yaml:"accounts"`
	// Header carries the code. Default X-Call-Token.
	Header string `yaml:"header"`
}

// Media is the media policy of calls.
type Media struct {
	// SRTPRequired refuses (488) offers without SRTP for these callers.
	SRTPRequired SRTPRequired `yaml:"srtp_required"`
}

// SRTPRequired names the callers whose offers must be SRTP: accounts
// ("*" for all) and listener URLs as in sip.listen.
type SRTPRequired struct {
	Accounts  []string `yaml:"accounts"`
	Listeners []string `yaml:"listeners"`
}

// validateCallPolicy checks what can be checked without the call_policy
// detector (which checks destinations, hours, days and amounts when it
// compiles).
func (c *Config) validateCallPolicy() error {
	bad := func(path, msg, hint string) error { return &Error{Path: path, Msg: msg, Hint: hint} }
	cp := c.CallPolicy
	if cp.ExpectedDuration <= 0 {
		return bad("call_policy.expected_duration", "must be positive", "default 10m")
	}
	seen := map[string]bool{}
	for i, r := range cp.Rules {
		at := fmt.Sprintf("call_policy.rules[%d]", i)
		if r.Name == "" || len(r.Name) > 64 || strings.Trim(r.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return bad(at+".name", fmt.Sprintf("%q: want 1 to 64 letters, digits, '.', '_' or '-'", r.Name), "a short name shown in events and the 403's Reason header")
		}
		if seen[r.Name] {
			return bad(at+".name", fmt.Sprintf("duplicate rule name %q", r.Name), "names must be unique")
		}
		seen[r.Name] = true
		switch r.Action {
		case "", "reject", "kill":
		default:
			return bad(at+".action", fmt.Sprintf("unknown action %q", r.Action), "reject or kill (or leave empty: only the limits act)")
		}
		switch r.Mode {
		case "", "enforce", "shadow":
		default:
			return bad(at+".mode", fmt.Sprintf("unknown mode %q", r.Mode), "enforce or shadow")
		}
		switch r.Ban {
		case "", "ip", "ip_account":
		default:
			return bad(at+".ban", fmt.Sprintf("unknown ban %q", r.Ban), "ip or ip_account")
		}
		if r.BanTime < 0 {
			return bad(at+".bantime", "must not be negative", "default 1h")
		}
		if r.Warn.CallDuration != 0 {
			return bad(at+".warn.call_duration", "only block cuts calls", "move it to block")
		}
		if r.Action == "" && r.Block == (CallLimits{}) && r.Warn == (CallLimits{}) {
			return bad(at, "neither action nor limits", "add action: reject, or warn/block limits")
		}
	}
	if h := c.CallTokens.Header; !isHeaderName(h) {
		return bad("call_tokens.header", fmt.Sprintf("%q is not a header name", h), "e.g. X-Call-Token")
	}
	return nil
}
