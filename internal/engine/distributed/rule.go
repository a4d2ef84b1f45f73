package distributed

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
)

// Name is the rule of the detector's decisions and verdicts.
const Name = "distributed"

// Rule is the distributed detector as the engine sees it.
//
// Failures of one account from max_sources distinct addresses within
// findtime lock the account (a ScopeAccount decision, stored like any ban)
// for locktime. A lock must not lock the real phones out, so during a lock:
//
//   - an address the account registered from (detector.Known, reloaded
//     from the store at start) passes as always;
//   - a new address may try: its first failure bans it for the account
//     (ip_account, for locktime), a success makes it known;
//   - at most new_sources new addresses are let in per findtime: an address
//     takes a slot with its first request (so a burst from many addresses
//     cannot overrun the bound while answers are in flight) and gives it
//     back when it registers; beyond that, new addresses are refused (403)
//     until a slot frees. The addresses that tripped the lock are refused.
//
// A 40-address spray of 2 guesses each on one account reaches the PBX at
// most 2×(max_sources-1)+1 times before the lock, plus new_sources per
// findtime after it (14 with the defaults in the first 10 minutes).
type Rule struct {
	findTime, lockTime time.Duration
	newSources         int

	mu    sync.Mutex
	core  *Detector
	locks map[string]*lockState
}

type lockState struct {
	failed   []netip.Addr // refused for the rest of the lock
	admitted []admission  // new addresses let in, for the budget
	until    time.Time
}

type admission struct {
	addr netip.Addr
	at   time.Time
}

// maxLockFailed bounds the addresses remembered per lock.
const maxLockFailed = 1024

var (
	_ detector.Detector   = (*Rule)(nil)
	_ detector.OnRequest  = (*Rule)(nil)
	_ detector.OnFailure  = (*Rule)(nil)
	_ detector.OnRegister = (*Rule)(nil)
)

// Compile builds the detector from its config section; maxAccounts bounds
// the tracked accounts.
func Compile(c config.Distributed, maxAccounts int) (*Rule, error) {
	if c.NewSources < 0 {
		return nil, fmt.Errorf("distributed: new_sources must not be negative")
	}
	core, err := New(c.FindTime.D(), c.MaxSources, maxAccounts)
	if err != nil {
		return nil, err
	}
	return &Rule{findTime: c.FindTime.D(), lockTime: c.LockTime.D(), newSources: c.NewSources, core: core,
		locks: map[string]*lockState{}}, nil
}

// Name implements detector.Detector.
func (r *Rule) Name() string { return Name }

// Request refuses (403) a request from a new address for a locked account
// when the address already failed during the lock or the budget of new
// addresses is spent. Any name the request uses for the account counts.
func (r *Rule) Request(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	for i := range in.Names.Len() {
		name := in.Names.At(i)
		if _, ok := sh.Set.AccountLocked(name, in.Now); !ok || sh.Known.Has(in.Src, name) {
			continue
		}
		r.mu.Lock()
		ls := r.lock(name, in.Now)
		failed := slices.Contains(ls.failed, in.Src)
		spent := !failed && !r.admit(ls, in.Src, in.Now)
		r.mu.Unlock()
		switch {
		case failed:
			out.Set(detector.Verdict{Action: detector.Reject, Code: 403, Rule: Name, Reason: "account locked: this address failed on it"})
			return
		case spent:
			out.Set(detector.Verdict{Action: detector.Reject, Code: 403, Rule: Name, Reason: "account locked for new addresses"})
			return
		}
	}
}

// Failure counts the failure per account name; during a lock it bans a
// new address for the account at its first failure.
func (r *Rule) Failure(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	host := decision.HostPrefix(in.Src)
	for i := range in.Names.Len() {
		name := in.Names.At(i)
		if _, ok := sh.Set.AccountLocked(name, in.Now); ok {
			if sh.Known.Has(in.Src, name) {
				continue // the phone's own failure: the jail's business
			}
			r.mu.Lock()
			ls := r.lock(name, in.Now)
			if !slices.Contains(ls.failed, in.Src) && len(ls.failed) < maxLockFailed {
				ls.failed = append(ls.failed, in.Src)
			}
			r.mu.Unlock()
			if _, banned := sh.Set.BannedAccount(in.Src, name, in.Now); !banned {
				out.Ban(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: host, Account: name,
					Origin: decision.OriginEngine, Rule: Name, Reason: "failure from a new address while the account is locked",
					At: in.Now, Until: in.Now.Add(r.lockTime), Count: 1})
			}
			continue
		}
		r.mu.Lock()
		srcs := r.core.FailSources(in.Src, name, in.Now)
		if srcs != nil {
			r.locks[name] = &lockState{failed: srcs, until: in.Now.Add(r.lockTime)}
		}
		r.mu.Unlock()
		if srcs != nil {
			out.Ban(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: name, Origin: decision.OriginEngine,
				Rule: Name, Reason: "auth failures from distributed.max_sources addresses", At: in.Now,
				Until: in.Now.Add(r.lockTime), Count: 1})
		}
	}
}

// lock returns name's lock state, creating it for a lock placed before a
// restart or a reload. Expired states are dropped on the way.
func (r *Rule) lock(name string, now time.Time) *lockState {
	ls, ok := r.locks[name]
	if !ok || !now.Before(ls.until) {
		if len(r.locks) >= r.core.maxAccounts {
			for a, l := range r.locks {
				if !now.Before(l.until) {
					delete(r.locks, a)
				}
			}
		}
		ls = &lockState{until: now.Add(r.lockTime)}
		r.locks[name] = ls
	}
	return ls
}

// admit reports whether src may try: it holds a slot already, or one is
// free (then it takes it). Slots older than findtime are freed.
func (r *Rule) admit(ls *lockState, src netip.Addr, now time.Time) bool {
	n := 0
	held := false
	for _, a := range ls.admitted {
		if now.Sub(a.at) < r.findTime {
			held = held || a.addr == src
			ls.admitted[n] = a
			n++
		}
	}
	ls.admitted = ls.admitted[:n]
	if held {
		return true
	}
	if n >= r.newSources {
		return false
	}
	ls.admitted = append(ls.admitted, admission{src, now})
	return true
}

// Registered gives back the slot of a new address that registered the
// account (it is known from now on).
func (r *Rule) Registered(sh *detector.Shared, in *detector.Input, _ *detector.Out) {
	for i := range in.Names.Len() {
		name := in.Names.At(i)
		if _, ok := sh.Set.AccountLocked(name, in.Now); !ok {
			continue
		}
		r.mu.Lock()
		if ls, ok := r.locks[name]; ok {
			ls.admitted = slices.DeleteFunc(ls.admitted, func(a admission) bool { return a.addr == in.Src })
		}
		r.mu.Unlock()
	}
}

// Forget implements detector.Detector: an account's counters and lock
// state.
func (r *Rule) Forget(_ netip.Addr, account string) {
	if account == "" {
		return
	}
	r.mu.Lock()
	r.core.Forget(account)
	delete(r.locks, account)
	r.mu.Unlock()
}
