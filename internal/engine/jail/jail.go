// Package jail is the registration/auth-failure jail with mod_cti's
// register_failure semantics: a list of rules {findtime, maxretry, banmode,
// bantime}; a rule trips at the maxretry-th failure of one key within
// findtime. Banmode ip keys by address; ip_account keys by address and
// account, so one phone's typo bans only that account from that address.
//
// A Jail is not safe for concurrent use; the engine serialises calls.
// Its state is bounded: each rule tracks at most MaxKeys keys.
package jail

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

// MaxRules is how many rules a Jail holds (one bit each in Fail's result).
const MaxRules = 64

// Mode is a rule's banmode.
type Mode uint8

// The banmodes.
const (
	// IPAccount bans one account from one address (mod_cti banmode 1).
	IPAccount Mode = iota
	// IP bans the address.
	IP
)

// ParseMode parses "ip" or "ip_account".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "ip":
		return IP, nil
	case "ip_account":
		return IPAccount, nil
	}
	return 0, fmt.Errorf("jail: unknown banmode %q", s)
}

// Scope returns the decision scope a ban of this mode has.
func (m Mode) Scope() decision.Scope {
	if m == IP {
		return decision.ScopeIP
	}
	return decision.ScopeIPAccount
}

// Rule is one register_failure entry.
type Rule struct {
	FindTime time.Duration
	MaxRetry int
	Mode     Mode
	BanTime  time.Duration
}

type key struct {
	addr    netip.Addr
	account string
}

// Jail counts failures per key for each rule.
type Jail struct {
	rules   []Rule
	keys    []map[key][]time.Time
	maxKeys int
}

// New returns a Jail for rules, tracking at most maxKeys keys per rule.
func New(rules []Rule, maxKeys int) (*Jail, error) {
	if len(rules) == 0 || len(rules) > MaxRules {
		return nil, fmt.Errorf("jail: need 1 to %d rules, have %d", MaxRules, len(rules))
	}
	j := &Jail{rules: rules, maxKeys: max(maxKeys, 1)}
	for i, r := range rules {
		if r.FindTime <= 0 || r.MaxRetry < 1 || r.BanTime <= 0 {
			return nil, fmt.Errorf("jail: rule %d: findtime, maxretry and bantime must be positive", i)
		}
		j.keys = append(j.keys, make(map[key][]time.Time))
	}
	return j, nil
}

// Rules returns the jail's rules; the caller must not change them.
func (j *Jail) Rules() []Rule { return j.rules }

// Fail records a failure of account from addr at now and returns a mask
// with bit i set for each rule i that tripped. A tripped key starts over.
func (j *Jail) Fail(addr netip.Addr, account string, now time.Time) uint64 {
	return j.FailModes(addr, account, now, true, true, false)
}

// FailModes is Fail restricted to the ip_account rules (accountRules) and
// the ip rules (ipRules): a request that names an account several ways
// counts once per name for the ip_account rules and once in all for the
// ip rules.
//
// keep makes a tripped key keep its newest maxretry-1 failures instead of
// starting over: the first failure after the (shortened) ban of an
// unproven source trips again while the window still holds them.
func (j *Jail) FailModes(addr netip.Addr, account string, now time.Time, accountRules, ipRules, keep bool) uint64 {
	var tripped uint64
	for i, r := range j.rules {
		k := key{addr: addr}
		if r.Mode == IPAccount {
			if !accountRules {
				continue
			}
			k.account = account
		} else if !ipRules {
			continue
		}
		m := j.keys[i]
		ts, ok := m[k]
		if !ok && len(m) >= j.maxKeys {
			j.evict(m, now, r.FindTime)
		}
		n := 0
		for _, t := range ts {
			if now.Sub(t) < r.FindTime {
				ts[n] = t
				n++
			}
		}
		ts = append(ts[:n], now)
		if len(ts) >= r.MaxRetry {
			tripped |= 1 << i
			if !keep || r.MaxRetry < 2 {
				delete(m, k)
				continue
			}
			ts = ts[len(ts)-(r.MaxRetry-1):]
		}
		m[k] = ts
	}
	return tripped
}

// evict makes room in m: it drops keys with no failure within findtime, or
// one arbitrary key when every key is recent (counting then fails open).
func (j *Jail) evict(m map[key][]time.Time, now time.Time, findtime time.Duration) {
	for k, ts := range m {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= findtime {
			delete(m, k)
		}
	}
	if len(m) >= j.maxKeys {
		for k := range m {
			delete(m, k)
			break
		}
	}
}

// Succeeded clears the ip_account counters of account from addr: the phone
// got its password right (a successful REGISTER).
func (j *Jail) Succeeded(addr netip.Addr, account string) {
	for i, r := range j.rules {
		if r.Mode == IPAccount {
			delete(j.keys[i], key{addr, account})
		}
	}
}

// Forget clears counters: with an account, that account's ip_account keys
// from addr; without, every key of addr.
func (j *Jail) Forget(addr netip.Addr, account string) {
	for i := range j.rules {
		m := j.keys[i]
		if account != "" {
			delete(m, key{addr, account})
			continue
		}
		for k := range m {
			if k.addr == addr {
				delete(m, k)
			}
		}
	}
}

// Len returns how many keys the jail tracks over all rules.
func (j *Jail) Len() int {
	n := 0
	for _, m := range j.keys {
		n += len(m)
	}
	return n
}

// Repeats remembers how often each key was banned, so repeat offenders get
// longer bans (fail2ban's bantime.increment). It is safe for concurrent use.
type Repeats struct {
	mu      sync.Mutex
	m       map[decision.Key]repeat
	maxKeys int
}

type repeat struct {
	count int
	until time.Time
}

// NewRepeats returns an empty history bounded to maxKeys keys.
func NewRepeats(maxKeys int) *Repeats {
	return &Repeats{m: make(map[decision.Key]repeat), maxKeys: max(maxKeys, 1)}
}

// Next records a new ban of k at now and returns its duration and its
// count (1 for a first offence): base × factor^(count-1), capped at
// maxTime (or at base when base is longer). A key whose last ban ended
// more than maxTime ago starts again at 1.
func (r *Repeats) Next(k decision.Key, base time.Duration, factor float64, maxTime time.Duration, now time.Time) (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.m[k]
	if ok && now.Sub(rec.until) > maxTime {
		rec = repeat{}
	}
	if !ok && len(r.m) >= r.maxKeys {
		for k, v := range r.m {
			if now.Sub(v.until) > maxTime {
				delete(r.m, k)
			}
		}
		if len(r.m) >= r.maxKeys {
			for k := range r.m {
				delete(r.m, k)
				break
			}
		}
	}
	rec.count++
	limit := max(maxTime, base)
	d := limit
	if f := float64(base) * math.Pow(factor, float64(rec.count-1)); f < float64(limit) {
		d = time.Duration(f)
	}
	rec.until = now.Add(d)
	r.m[k] = rec
	return d, rec.count
}

// Forget drops the history of k.
func (r *Repeats) Forget(k decision.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, k)
}

// ForgetAddr drops the history of every key on addr.
func (r *Repeats) ForgetAddr(addr netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.m {
		if k.Prefix.Addr() == addr {
			delete(r.m, k)
		}
	}
}
