package jail

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
)

// Name prefixes the jail's rule names: "register_failure[0]".
const Name = "register_failure"

// RuleBan is the verdict rule of a request refused by an ip_account ban
// already in force.
const RuleBan = "ban"

// Detector is the jail as an engine detector: it counts failures per
// (address, name) for the ip_account rules, for every name a request uses
// for the account, and per address for the ip rules; it refuses a request
// that names an account banned from its address under any name.
//
// The ip rules (fail2ban's recidive) skip failures of accounts that
// registered from the address before: a phone whose password changed is
// the ip_account rules' business, so two stale phones do not ban their
// office; the ip rules catch one address guessing accounts it never had.
type Detector struct {
	mu      sync.Mutex
	j       *Jail
	repeats *Repeats
	factor  float64
	maxTime time.Duration
	names   []string // "register_failure[i]", rendered once
	reasons []string
	hasIP   bool
}

var (
	_ detector.Detector   = (*Detector)(nil)
	_ detector.OnRequest  = (*Detector)(nil)
	_ detector.OnFailure  = (*Detector)(nil)
	_ detector.OnRegister = (*Detector)(nil)
)

// Compile builds the jail from its config section. repeats is the ban
// history, kept by the engine across reloads; maxKeys bounds each rule's
// counters.
func Compile(c config.Jail, repeats *Repeats, maxKeys int) (*Detector, error) {
	if c.Factor < 1 {
		return nil, fmt.Errorf("jail: factor must be at least 1")
	}
	if c.MaxTime <= 0 {
		return nil, fmt.Errorf("jail: maxtime must be positive")
	}
	d := &Detector{repeats: repeats, factor: c.Factor, maxTime: c.MaxTime.D()}
	var rules []Rule
	for i, e := range c.RegisterFailure {
		m, err := ParseMode(e.BanMode)
		if err != nil {
			return nil, fmt.Errorf("jail.register_failure[%d]: %w", i, err)
		}
		d.hasIP = d.hasIP || m == IP
		d.names = append(d.names, fmt.Sprintf("%s[%d]", Name, i))
		d.reasons = append(d.reasons, fmt.Sprintf("%d auth failures within %s (banmode %s)", e.MaxRetry, e.FindTime.D(), e.BanMode))
		rules = append(rules, Rule{FindTime: e.FindTime.D(), MaxRetry: e.MaxRetry, Mode: m, BanTime: e.BanTime.D()})
	}
	var err error
	if d.j, err = New(rules, maxKeys); err != nil {
		return nil, err
	}
	return d, nil
}

// Name implements detector.Detector.
func (d *Detector) Name() string { return Name }

// Request refuses (403, rule "ban") a request from an address where any
// name it uses for an account is banned.
func (d *Detector) Request(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	if b, ok := sh.BannedAccount(in.Src, &in.Names, in.Now); ok {
		out.Set(detector.Verdict{Action: detector.Reject, Code: 403, Rule: RuleBan, Reason: b.Rule})
	}
}

// Failure counts the failure under every name and bans per tripped rule.
func (d *Detector) Failure(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	host := decision.HostPrefix(in.Src)
	ipRules := d.hasIP && !sh.Known.Has(in.Src, in.Account)
	d.mu.Lock()
	defer d.mu.Unlock()
	n := max(in.Names.Len(), 1)
	for i := range n {
		name := ""
		if in.Names.Len() > 0 {
			name = in.Names.At(i)
		}
		tripped := d.j.FailModes(in.Src, name, in.Now, true, ipRules && i == 0, !in.Proven)
		for r, rule := range d.j.Rules() {
			if tripped&(1<<r) == 0 {
				continue
			}
			k := decision.Key{Scope: rule.Mode.Scope(), Prefix: host}
			if rule.Mode == IPAccount {
				k.Account = name
				if _, ok := sh.Set.BannedAccount(in.Src, name, in.Now); ok {
					continue
				}
			} else if _, ok := sh.Set.Banned(in.Src, in.Now); ok || out.HasIPBan() {
				continue
			}
			dur, cnt := d.repeats.Next(k, rule.BanTime, d.factor, d.maxTime, in.Now)
			out.Ban(decision.Decision{Type: decision.TypeBan, Scope: k.Scope, Prefix: host, Account: k.Account,
				Origin: decision.OriginEngine, Rule: d.names[r], Reason: d.reasons[r], At: in.Now, Until: in.Now.Add(dur), Count: cnt})
		}
	}
}

// Registered clears the ip_account counters of every name from the
// address: the phone got its password right.
func (d *Detector) Registered(_ *detector.Shared, in *detector.Input, _ *detector.Out) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range in.Names.Len() {
		d.j.Succeeded(in.Src, in.Names.At(i))
	}
}

// Forget implements detector.Detector; it also clears the ban history.
func (d *Detector) Forget(addr netip.Addr, account string) {
	if !addr.IsValid() {
		return
	}
	d.mu.Lock()
	d.j.Forget(addr, account)
	d.mu.Unlock()
	if account == "" {
		d.repeats.ForgetAddr(addr)
	} else {
		d.repeats.Forget(decision.Key{Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(addr), Account: account})
	}
}
