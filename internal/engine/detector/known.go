package detector

import (
	"net/netip"
	"sync"
)

// PerAccount is how many registered addresses Known keeps per account.
const PerAccount = 8

// Known remembers the addresses each account registered from (most recent
// first, at most PerAccount per account, at most maxAccounts accounts).
// A registration proves an address: the PBX accepted credentials it
// challenged for. It is safe for concurrent use; reads take a read lock.
type Known struct {
	mu          sync.RWMutex
	maxAccounts int
	m           map[string][]netip.Addr
	addrs       map[netip.Addr]int // how many accounts list the address
}

// NewKnown returns an empty Known bounded to maxAccounts accounts.
func NewKnown(maxAccounts int) *Known {
	return &Known{maxAccounts: max(maxAccounts, 1), m: make(map[string][]netip.Addr), addrs: make(map[netip.Addr]int)}
}

// Registered records that account (normalised) registered from addr.
func (k *Known) Registered(addr netip.Addr, account string) {
	if !addr.IsValid() || account == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	list, ok := k.m[account]
	if !ok && len(k.m) >= k.maxAccounts {
		for a, l := range k.m {
			k.dropList(l)
			delete(k.m, a)
			break
		}
	}
	for i, a := range list {
		if a == addr {
			copy(list[1:i+1], list[:i])
			list[0] = addr
			return
		}
	}
	if len(list) < PerAccount {
		list = append(list, netip.Addr{})
	} else {
		k.dropList(list[len(list)-1:])
	}
	copy(list[1:], list)
	list[0] = addr
	k.addrs[addr]++
	k.m[account] = list
}

func (k *Known) dropList(l []netip.Addr) {
	for _, a := range l {
		if k.addrs[a]--; k.addrs[a] <= 0 {
			delete(k.addrs, a)
		}
	}
}

// Has reports whether account registered from addr before.
func (k *Known) Has(addr netip.Addr, account string) bool {
	if account == "" {
		return false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, a := range k.m[account] {
		if a == addr {
			return true
		}
	}
	return false
}

// HasAny reports whether any account registered from addr.
func (k *Known) HasAny(addr netip.Addr) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.addrs[addr] > 0
}

// Len returns how many accounts are remembered.
func (k *Known) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.m)
}
