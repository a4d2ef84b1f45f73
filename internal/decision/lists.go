package decision

import "net/netip"

// Lists holds the operator's static allow and deny CIDRs. Allowed addresses
// are never banned by any rule; denied ones are always dropped. A Lists value
// is immutable once built; reloads swap in a new one.
type Lists struct {
	allow []netip.Prefix
	deny  []netip.Prefix
}

// NewLists builds Lists from allow and deny prefixes; addresses are normalised.
func NewLists(allow, deny []netip.Prefix) *Lists {
	l := &Lists{}
	for _, p := range allow {
		l.allow = append(l.allow, normPrefix(p))
	}
	for _, p := range deny {
		l.deny = append(l.deny, normPrefix(p))
	}
	return l
}

// Allowed reports whether a is in an allow prefix.
func (l *Lists) Allowed(a netip.Addr) bool { return l != nil && contains(l.allow, Unmap(a)) }

// Denied reports whether a is in a deny prefix and not allowed.
func (l *Lists) Denied(a netip.Addr) bool {
	if l == nil {
		return false
	}
	a = Unmap(a)
	return contains(l.deny, a) && !contains(l.allow, a)
}

// AddAllow returns a copy of l that also allows p (used for the upstream's
// address, which is never banned).
func (l *Lists) AddAllow(p ...netip.Prefix) *Lists {
	n := &Lists{deny: l.deny}
	n.allow = append(append([]netip.Prefix(nil), l.allow...), p...)
	for i := range n.allow[len(l.allow):] {
		n.allow[len(l.allow)+i] = normPrefix(n.allow[len(l.allow)+i])
	}
	return n
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
