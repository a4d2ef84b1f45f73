package decision

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Set is the in-memory set of bans in force. It is safe for concurrent use;
// lookups take a read lock and never allocate. Expired entries stop matching
// at once and are removed by Sweep.
type Set struct {
	mu       sync.RWMutex
	ips      map[netip.Addr]Decision
	pairs    map[pair]Decision
	accounts map[string]Decision
	prefixes []Decision // few: deny lists and IPv6 network bans
}

type pair struct {
	addr    netip.Addr
	account string
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{
		ips:      make(map[netip.Addr]Decision),
		pairs:    make(map[pair]Decision),
		accounts: make(map[string]Decision),
	}
}

// Apply implements Applier: a ban is added (replacing one with the same
// key), an unban removes every ban with the decision's key; an unban of
// ScopeIP with an empty Account also removes that address's ip_account bans.
func (s *Set) Apply(d Decision) {
	if d.Type == TypeKill {
		return // not a ban: the wiring's teardown acts on it
	}
	if d.Type == TypeUnban {
		s.Remove(d.Key(), d.Scope == ScopeIP)
		return
	}
	s.Add(d)
}

// Add places d. The address in d.Prefix is normalised.
func (s *Set) Add(d Decision) {
	d.Prefix = normPrefix(d.Prefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch d.Scope {
	case ScopeIP:
		s.ips[d.Prefix.Addr()] = d
	case ScopeIPAccount:
		s.pairs[pair{d.Prefix.Addr(), d.Account}] = d
	case ScopeAccount:
		s.accounts[d.Account] = d
	case ScopePrefix:
		i := slices.IndexFunc(s.prefixes, func(o Decision) bool { return o.Prefix == d.Prefix })
		if i >= 0 {
			s.prefixes[i] = d
		} else {
			s.prefixes = append(s.prefixes, d)
		}
	}
}

// Remove lifts the bans with key k and returns them. With allAccounts and
// ScopeIP, every ip_account ban of that address is lifted too.
func (s *Set) Remove(k Key, allAccounts bool) []Decision {
	k.Prefix = normPrefix(k.Prefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Decision
	switch k.Scope {
	case ScopeIP:
		if d, ok := s.ips[k.Prefix.Addr()]; ok {
			out = append(out, d)
			delete(s.ips, k.Prefix.Addr())
		}
		if allAccounts {
			for p, d := range s.pairs {
				if p.addr == k.Prefix.Addr() {
					out = append(out, d)
					delete(s.pairs, p)
				}
			}
		}
	case ScopeIPAccount:
		p := pair{k.Prefix.Addr(), k.Account}
		if d, ok := s.pairs[p]; ok {
			out = append(out, d)
			delete(s.pairs, p)
		}
	case ScopeAccount:
		if d, ok := s.accounts[k.Account]; ok {
			out = append(out, d)
			delete(s.accounts, k.Account)
		}
	case ScopePrefix:
		s.prefixes = slices.DeleteFunc(s.prefixes, func(d Decision) bool {
			if d.Prefix == k.Prefix {
				out = append(out, d)
				return true
			}
			return false
		})
	}
	return out
}

// Banned reports the ban in force at now on every request from a (an ip ban
// or a prefix ban that contains a).
func (s *Set) Banned(a netip.Addr, now time.Time) (Decision, bool) {
	a = Unmap(a)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d, ok := s.ips[a]; ok && !d.Expired(now) {
		return d, true
	}
	for _, d := range s.prefixes {
		if d.Prefix.Contains(a) && !d.Expired(now) {
			return d, true
		}
	}
	return Decision{}, false
}

// BannedAccount reports the ip_account ban in force at now on account from a.
func (s *Set) BannedAccount(a netip.Addr, account string, now time.Time) (Decision, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.pairs) == 0 {
		return Decision{}, false
	}
	if d, ok := s.pairs[pair{Unmap(a), account}]; ok && !d.Expired(now) {
		return d, true
	}
	return Decision{}, false
}

// AccountLocked reports the account-scope lock in force at now on account.
func (s *Set) AccountLocked(account string, now time.Time) (Decision, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d, ok := s.accounts[account]; ok && !d.Expired(now) {
		return d, true
	}
	return Decision{}, false
}

// List returns every ban in force at now, soonest expiry last.
func (s *Set) List(now time.Time) []Decision {
	s.mu.RLock()
	out := make([]Decision, 0, len(s.ips)+len(s.pairs)+len(s.accounts)+len(s.prefixes))
	for _, d := range s.ips {
		out = append(out, d)
	}
	for _, d := range s.pairs {
		out = append(out, d)
	}
	for _, d := range s.accounts {
		out = append(out, d)
	}
	out = append(out, s.prefixes...)
	s.mu.RUnlock()
	out = slices.DeleteFunc(out, func(d Decision) bool { return d.Expired(now) })
	slices.SortFunc(out, func(a, b Decision) int { return b.At.Compare(a.At) })
	return out
}

// Len returns how many entries the set holds, expired ones not yet swept
// included.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ips) + len(s.pairs) + len(s.accounts) + len(s.prefixes)
}

// Sweep removes the bans expired at now and returns them.
func (s *Set) Sweep(now time.Time) []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Decision
	for k, d := range s.ips {
		if d.Expired(now) {
			out = append(out, d)
			delete(s.ips, k)
		}
	}
	for k, d := range s.pairs {
		if d.Expired(now) {
			out = append(out, d)
			delete(s.pairs, k)
		}
	}
	for k, d := range s.accounts {
		if d.Expired(now) {
			out = append(out, d)
			delete(s.accounts, k)
		}
	}
	s.prefixes = slices.DeleteFunc(s.prefixes, func(d Decision) bool {
		if d.Expired(now) {
			out = append(out, d)
			return true
		}
		return false
	})
	return out
}

func normPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	a := p.Addr()
	bits := p.Bits()
	if a.Is4In6() {
		a = a.Unmap()
		bits -= 96
		if bits < 0 {
			bits = 0
		}
	}
	return netip.PrefixFrom(a.WithZone(""), bits).Masked()
}
