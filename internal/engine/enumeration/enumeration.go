// Package enumeration detects one source failing on many distinct accounts
// (extension enumeration, or a password list sprayed over extensions). The
// source is banned by address whatever its User-Agent.
//
// A Detector is not safe for concurrent use; the engine serialises calls.
// State is bounded: at most MaxSources sources, each with at most
// max_accounts accounts.
package enumeration

import (
	"fmt"
	"net/netip"
	"time"
)

type seen struct {
	account string
	at      time.Time
}

// Detector counts distinct failing accounts per source.
type Detector struct {
	findTime   time.Duration
	max        int
	maxSources int
	m          map[netip.Addr][]seen
}

// New returns a Detector that trips when maxAccounts distinct accounts
// fail from one source within findTime.
func New(findTime time.Duration, maxAccounts, maxSources int) (*Detector, error) {
	if findTime <= 0 || maxAccounts < 2 {
		return nil, fmt.Errorf("enumeration: findtime must be positive and max_accounts at least 2")
	}
	return &Detector{findTime: findTime, max: maxAccounts, maxSources: max(maxSources, 1), m: make(map[netip.Addr][]seen)}, nil
}

// Fail records a failure of account from addr and reports whether addr has
// now failed on max_accounts distinct accounts within findtime. A source
// that trips starts over.
func (d *Detector) Fail(addr netip.Addr, account string, now time.Time) bool {
	list, ok := d.m[addr]
	if !ok && len(d.m) >= d.maxSources {
		d.evict(now)
	}
	n := 0
	found := false
	for _, s := range list {
		if now.Sub(s.at) >= d.findTime {
			continue
		}
		if s.account == account {
			s.at, found = now, true
		}
		list[n] = s
		n++
	}
	list = list[:n]
	if !found {
		list = append(list, seen{account, now})
	}
	if len(list) >= d.max {
		delete(d.m, addr)
		return true
	}
	d.m[addr] = list
	return false
}

func (d *Detector) evict(now time.Time) {
	for a, l := range d.m {
		if len(l) == 0 || now.Sub(l[len(l)-1].at) >= d.findTime {
			delete(d.m, a)
		}
	}
	if len(d.m) >= d.maxSources {
		for a := range d.m {
			delete(d.m, a)
			break
		}
	}
}

// Forget clears addr's counters.
func (d *Detector) Forget(addr netip.Addr) { delete(d.m, addr) }

// Len returns how many sources are tracked.
func (d *Detector) Len() int { return len(d.m) }
