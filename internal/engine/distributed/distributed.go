// Package distributed detects one account failing from many source
// addresses (a botnet guessing one extension's password, each address
// staying under the per-address jail), and remembers where each account
// registered successfully so that the real phone keeps working while the
// account is locked for new addresses.
//
// Neither type is safe for concurrent use; the engine serialises calls.
// State is bounded by the maxAccounts given to the constructors.
package distributed

import (
	"fmt"
	"net/netip"
	"time"
)

type seen struct {
	addr netip.Addr
	at   time.Time
}

// Detector counts distinct failing sources per account.
type Detector struct {
	findTime    time.Duration
	max         int
	maxAccounts int
	m           map[string][]seen
}

// New returns a Detector that trips when maxSources distinct addresses
// fail on one account within findTime.
func New(findTime time.Duration, maxSources, maxAccounts int) (*Detector, error) {
	if findTime <= 0 || maxSources < 2 {
		return nil, fmt.Errorf("distributed: findtime must be positive and max_sources at least 2")
	}
	return &Detector{findTime: findTime, max: maxSources, maxAccounts: max(maxAccounts, 1), m: make(map[string][]seen)}, nil
}

// Fail records a failure of account from addr and reports whether the
// account has now failed from max_sources distinct addresses within
// findtime. An account that trips starts over.
func (d *Detector) Fail(addr netip.Addr, account string, now time.Time) bool {
	return d.FailSources(addr, account, now) != nil
}

// FailSources is Fail returning, when the account trips, the addresses
// that failed on it within findtime (nil otherwise).
func (d *Detector) FailSources(addr netip.Addr, account string, now time.Time) []netip.Addr {
	list, ok := d.m[account]
	if !ok && len(d.m) >= d.maxAccounts {
		for a, l := range d.m {
			if len(l) == 0 || now.Sub(l[len(l)-1].at) >= d.findTime {
				delete(d.m, a)
			}
		}
		if len(d.m) >= d.maxAccounts {
			for a := range d.m {
				delete(d.m, a)
				break
			}
		}
	}
	n := 0
	found := false
	for _, s := range list {
		if now.Sub(s.at) >= d.findTime {
			continue
		}
		if s.addr == addr {
			s.at, found = now, true
		}
		list[n] = s
		n++
	}
	list = list[:n]
	if !found {
		list = append(list, seen{addr, now})
	}
	if len(list) >= d.max {
		delete(d.m, account)
		out := make([]netip.Addr, len(list))
		for i, s := range list {
			out[i] = s.addr
		}
		return out
	}
	d.m[account] = list
	return nil
}

// Forget clears account's counters.
func (d *Detector) Forget(account string) { delete(d.m, account) }
