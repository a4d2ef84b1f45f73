// Package honeypot bans any source that names an account no real device
// uses (config honeypot.accounts): in a request's account names, its To or
// Request-URI user, an authentication failure or a registration. The names
// are compared after detector.Normalize, so "Test", "te%73t" and " test"
// are one account.
package honeypot

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/detector"
)

// Name is the rule of the detector's decisions and verdicts.
const Name = "honeypot"

// Detector is the honeypot rule. It holds no per-source state.
type Detector struct {
	accounts map[string]struct{}
	banTime  time.Duration
}

var (
	_ detector.Detector   = (*Detector)(nil)
	_ detector.OnRequest  = (*Detector)(nil)
	_ detector.OnFailure  = (*Detector)(nil)
	_ detector.OnRegister = (*Detector)(nil)
)

// Compile builds the detector from its config section.
func Compile(c config.Honeypot) (*Detector, error) {
	if c.BanTime <= 0 {
		return nil, fmt.Errorf("honeypot: bantime must be positive")
	}
	d := &Detector{accounts: map[string]struct{}{}, banTime: c.BanTime.D()}
	for i, a := range c.Accounts {
		n := detector.Normalize(a)
		if n == "" {
			return nil, fmt.Errorf("honeypot.accounts[%d]: empty account", i)
		}
		d.accounts[n] = struct{}{}
	}
	return d, nil
}

// Name implements detector.Detector.
func (d *Detector) Name() string { return Name }

func (d *Detector) any(ns *detector.Names) bool {
	for i := range ns.Len() {
		if _, ok := d.accounts[ns.At(i)]; ok {
			return true
		}
	}
	return false
}

func (d *Detector) ban(sh *detector.Shared, in *detector.Input, out *detector.Out, reason string) {
	if b, ok := sh.IPBan(in.Src, in.Now, Name, reason, d.banTime); ok {
		out.Ban(b)
	}
	out.Set(detector.Verdict{Action: detector.Drop, Rule: Name, Reason: "honeypot account"})
}

// Request drops a request naming a honeypot account anywhere, and bans its
// source when the source is proven: a lone datagram's source can be forged
// (DESIGN key decision 9), so from an unproven source only the datagram is
// lost. An attacker who goes on to guess the honeypot's password is banned
// by Failure.
func (d *Detector) Request(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	if len(d.accounts) == 0 || !d.any(&in.Names) && !d.any(&in.Targets) {
		return
	}
	if !in.Proven {
		out.Set(detector.Verdict{Action: detector.Drop, Rule: Name, Reason: "honeypot account"})
		return
	}
	d.ban(sh, in, out, "request for a honeypot account")
}

// Failure bans an authentication attempt on a honeypot account.
func (d *Detector) Failure(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	if len(d.accounts) > 0 && d.any(&in.Names) {
		d.ban(sh, in, out, "auth attempt on a honeypot account")
	}
}

// Registered bans a registration of a honeypot account.
func (d *Detector) Registered(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	if len(d.accounts) > 0 && d.any(&in.Names) {
		d.ban(sh, in, out, "registration of a honeypot account")
	}
}

// Forget implements detector.Detector (no state).
func (d *Detector) Forget(netip.Addr, string) {}
