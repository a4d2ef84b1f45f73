// Package screen decides whether a ban that arrived from outside this node
// (a peer over Redis, a threat-intelligence feed) may be applied here.
//
// Bans made by this node's own engine are trusted; bans that arrive over a
// wire are data an attacker may have written (a Redis an attacker can reach,
// a poisoned or hijacked feed). A feed that lists a carrier's signalling
// address, 0.0.0.0/0 or the operator's own network must not take the call
// center offline, so every such ban passes a Policy first:
//
//   - the address or network must be valid and, when it is a network, no
//     broader than MinBits4 (IPv4) or MinBits6 (IPv6) bits;
//   - it must not touch the operator's allow list: a host ban on an allowed
//     address, or a network ban that overlaps an allowed network, is refused
//     (allow always wins, whatever the source);
//   - loopback, unspecified, multicast and link-local addresses are always
//     refused, and private (RFC 1918, RFC 4193) and shared (RFC 6598)
//     addresses too when RefuseInternal is set (public feeds never
//     legitimately list them).
package screen

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/tollguard/tollguard/internal/decision"
)

// Default prefix-length floors: a single ban may cover at most a /16 of
// IPv4 (65,536 addresses) or a /32 of IPv6 (a typical ISP allocation).
const (
	DefaultMinBits4 = 16
	DefaultMinBits6 = 32
)

// Reasons a ban is refused; Check wraps one of them.
var (
	ErrInvalid   = errors.New("invalid ban")
	ErrTooBroad  = errors.New("network broader than the allowed minimum prefix length")
	ErrAllowed   = errors.New("touches the allow list")
	ErrReserved  = errors.New("reserved address")
	ErrInternal  = errors.New("internal address")
	maxAccountSz = 256
)

// Policy screens decisions that arrived from outside. The zero value
// refuses nothing but invalid and reserved addresses; use New for the
// defaults.
type Policy struct {
	// Allow lists the operator's allow networks; a ban overlapping any of
	// them is refused.
	Allow []netip.Prefix
	// Allowed, when set, is consulted too (for example
	// (*decision.Lists).Allowed); for a network ban it is asked about the
	// network's first address.
	Allowed func(netip.Addr) bool
	// MinBits4 and MinBits6 are the shortest prefix lengths accepted.
	MinBits4, MinBits6 int
	// RefuseInternal refuses private and shared address space.
	RefuseInternal bool
}

// New returns a Policy with the default prefix floors and the given allow
// list.
func New(allow []netip.Prefix, allowed func(netip.Addr) bool) *Policy {
	return &Policy{Allow: allow, Allowed: allowed, MinBits4: DefaultMinBits4, MinBits6: DefaultMinBits6}
}

// Check returns nil when d may be applied, or an error wrapping one of the
// Err values saying why not. Unbans are checked for shape only: lifting a
// ban never harms an allowed address.
func (p *Policy) Check(d decision.Decision) error {
	if d.Type != decision.TypeBan && d.Type != decision.TypeUnban {
		return fmt.Errorf("%w: type %q", ErrInvalid, truncate(string(d.Type)))
	}
	if !d.Scope.Valid() {
		return fmt.Errorf("%w: scope %q", ErrInvalid, truncate(string(d.Scope)))
	}
	if len(d.Account) > maxAccountSz {
		return fmt.Errorf("%w: account longer than %d bytes", ErrInvalid, maxAccountSz)
	}
	switch d.Scope {
	case decision.ScopeAccount:
		if d.Account == "" {
			return fmt.Errorf("%w: account ban without an account", ErrInvalid)
		}
		return nil
	case decision.ScopeIPAccount:
		if d.Account == "" {
			return fmt.Errorf("%w: ip_account ban without an account", ErrInvalid)
		}
	}
	if !d.Prefix.IsValid() {
		return fmt.Errorf("%w: no address", ErrInvalid)
	}
	pfx := Norm(d.Prefix)
	if d.Scope != decision.ScopePrefix && pfx.Bits() != pfx.Addr().BitLen() {
		return fmt.Errorf("%w: %s ban on a network %s", ErrInvalid, d.Scope, pfx)
	}
	if d.Type == decision.TypeUnban {
		return nil
	}
	return p.CheckPrefix(pfx)
}

// CheckPrefix applies the address rules of Check to one address or network.
func (p *Policy) CheckPrefix(pfx netip.Prefix) error {
	if !pfx.IsValid() {
		return fmt.Errorf("%w: no address", ErrInvalid)
	}
	pfx = Norm(pfx)
	a := pfx.Addr()
	floor := p.MinBits6
	if a.Is4() {
		floor = p.MinBits4
	}
	if pfx.Bits() < floor {
		return fmt.Errorf("%w: %s (minimum /%d)", ErrTooBroad, pfx, floor)
	}
	if a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return fmt.Errorf("%w: %s", ErrReserved, pfx)
	}
	for _, r := range reserved {
		if r.Overlaps(pfx) {
			return fmt.Errorf("%w: %s overlaps %s", ErrReserved, pfx, r)
		}
	}
	if p.RefuseInternal {
		for _, r := range internal {
			if r.Overlaps(pfx) {
				return fmt.Errorf("%w: %s overlaps %s", ErrInternal, pfx, r)
			}
		}
	}
	for _, al := range p.Allow {
		if Norm(al).Overlaps(pfx) {
			return fmt.Errorf("%w: %s overlaps %s", ErrAllowed, pfx, al)
		}
	}
	if p.Allowed != nil && (p.Allowed(a) || p.Allowed(last(pfx))) {
		return fmt.Errorf("%w: %s", ErrAllowed, pfx)
	}
	return nil
}

// Internal reports whether a is in private, shared, loopback or link-local
// address space: an address that should not be shared with other
// organisations.
func Internal(a netip.Addr) bool {
	a = decision.Unmap(a)
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
		return true
	}
	for _, r := range internal {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// Norm unmaps an IPv4-mapped prefix and masks it.
func Norm(p netip.Prefix) netip.Prefix {
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() {
		a, bits = a.Unmap(), max(bits-96, 0)
	}
	return netip.PrefixFrom(a.WithZone(""), bits).Masked()
}

// last returns the last address in p.
func last(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

var (
	reserved = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("224.0.0.0/3"),
		netip.MustParsePrefix("::/8"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("ff00::/8"),
	}
	internal = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fc00::/7"),
	}
)

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
