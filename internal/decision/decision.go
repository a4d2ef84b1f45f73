// Package decision defines what the engine and operators decide (bans and
// their lifts) and the in-memory ban set every enforcer consults.
//
// A Decision is data: it is logged, stored, replicated and applied by
// enforcers. The Set is the authoritative in-memory view for one node; the
// inline proxy reads it on every packet, so lookups are lock-free for readers
// of the common "nothing banned here" case and never allocate.
package decision

import (
	"fmt"
	"net/netip"
	"time"
)

// Scope says what a decision applies to.
type Scope string

// The scopes.
const (
	// ScopeIP applies to every request from one address.
	ScopeIP Scope = "ip"
	// ScopeIPAccount applies to one account from one address only, so a
	// phone's typo does not ban a whole office behind the same NAT.
	ScopeIPAccount Scope = "ip_account"
	// ScopePrefix applies to a whole prefix (IPv6 /64, deny lists).
	ScopePrefix Scope = "prefix"
	// ScopeAccount applies to one account from addresses it has not
	// registered from before (distributed guessing lock).
	ScopeAccount Scope = "account"
	// ScopeCall applies to one running call (Decision.CallID); only
	// TypeKill uses it.
	ScopeCall Scope = "call"
)

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool {
	switch s {
	case ScopeIP, ScopeIPAccount, ScopePrefix, ScopeAccount:
		return true
	}
	return false
}

// Type says whether a decision places or lifts a ban.
type Type string

// The decision types.
const (
	TypeBan   Type = "ban"
	TypeUnban Type = "unban"
	// TypeKill ends running calls: of an account (ScopeAccount), of an
	// address (ScopeIP) or one call (ScopeCall). With Until in the future
	// it is a deadline: the call is ended when Until passes
	// (call_duration). It places no ban: the ban set and the store's ban
	// table ignore it; the wiring hands it to the teardown, off the packet
	// path.
	TypeKill Type = "kill"
)

// Origin values used by the project.
const (
	OriginEngine = "engine"
	OriginAdmin  = "admin"
	OriginConfig = "config"
	OriginStore  = "store"
)

// Decision is one ban or unban.
type Decision struct {
	Type  Type  `json:"type"`
	Scope Scope `json:"scope"`
	// Prefix is the address or network the decision applies to; for ScopeIP
	// and ScopeIPAccount it is a single address (/32 or /128). It is the zero
	// Prefix for ScopeAccount.
	Prefix netip.Prefix `json:"prefix"`
	// Account is set for ScopeIPAccount and ScopeAccount.
	Account string `json:"account,omitempty"`
	// Origin is who decided: "engine", "admin", "config".
	Origin string `json:"origin"`
	// Rule names the rule that fired ("register_failure[0]", "scanner",
	// "flood", "admin").
	Rule string `json:"rule"`
	// Reason is a short human explanation.
	Reason string `json:"reason,omitempty"`
	// At is when the decision was taken.
	At time.Time `json:"at"`
	// Until is when a ban expires. The zero time means never.
	Until time.Time `json:"until"`
	// Count is how many times this key has been banned, this ban included
	// (repeat offenders get longer bans).
	Count int `json:"count,omitempty"`
	// Unproven is set when the source address behind the ban is not
	// proven (a UDP datagram's source can be forged): such a ban is
	// enforced inline only, is short, and enforcers outside the process
	// (the fail2ban log, nftables) must skip it.
	Unproven bool `json:"unproven,omitempty"`
	// CallID names the call of a ScopeCall kill.
	CallID string `json:"call_id,omitempty"`
}

// Key identifies what a decision applies to; two decisions with the same Key
// replace each other.
type Key struct {
	Scope   Scope
	Prefix  netip.Prefix
	Account string
}

// Key returns d's key.
func (d Decision) Key() Key { return Key{Scope: d.Scope, Prefix: d.Prefix, Account: d.Account} }

// Expired reports whether d is no longer in force at now.
func (d Decision) Expired(now time.Time) bool {
	return !d.Until.IsZero() && !now.Before(d.Until)
}

// Target renders what d applies to, for logs and tables: "203.0.113.7",
// "1001@203.0.113.7", "2001:db8::/64", "1001".
func (d Decision) Target() string {
	switch d.Scope {
	case ScopeCall:
		return d.CallID
	case ScopeIPAccount:
		return d.Account + "@" + d.Prefix.Addr().String()
	case ScopeAccount:
		return d.Account
	case ScopeIP:
		return d.Prefix.Addr().String()
	default:
		return d.Prefix.String()
	}
}

// String renders d in one line.
func (d Decision) String() string {
	return fmt.Sprintf("%s %s %s rule=%s", d.Type, d.Scope, d.Target(), d.Rule)
}

// Unmap normalises an address: IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes the
// IPv4 address and any zone is dropped, so one host has one key.
func Unmap(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// HostPrefix returns the single-address prefix of a (after Unmap).
func HostPrefix(a netip.Addr) netip.Prefix {
	a = Unmap(a)
	return netip.PrefixFrom(a, a.BitLen())
}

// Applier receives decisions. Apply must not block: it is called from the
// engine on the packet path. Implementations queue slow work.
type Applier interface {
	Apply(d Decision)
}

// ApplierFunc adapts a function to Applier.
type ApplierFunc func(Decision)

// Apply implements Applier.
func (f ApplierFunc) Apply(d Decision) { f(d) }

// Fanout applies a decision to each Applier in order.
type Fanout []Applier

// Apply implements Applier.
func (f Fanout) Apply(d Decision) {
	for _, a := range f {
		a.Apply(d)
	}
}
