package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Account is one SIP account's credentials.
type Account struct {
	User     string
	Password string
}

// DemoAccounts returns the accounts the demo PBX is provisioned with and the
// demo phones use. Passwords meet the default password policy (length ≥ 6,
// three character classes).
func DemoAccounts() []Account {
	return []Account{
		{User: "1001", Password: "Tg-demo-1001!"},
		{User: "1002", Password: "Tg-demo-1002!"},
		{User: "1003", Password: "Tg-demo-1003!"},
		{User: "1004", Password: "Tg-demo-1004!"},
	}
}

// AccountMap turns accounts into the user → password map pbx.Options takes.
func AccountMap(accounts []Account) map[string]string {
	m := make(map[string]string, len(accounts))
	for _, a := range accounts {
		m[a.User] = a.Password
	}
	return m
}

// CommonPasswords is the Cracker's default guess list: the kind of list
// svcrack is run with.
var CommonPasswords = []string{
	"1234", "12345", "123456", "1234567", "12345678", "password", "admin", "0000",
	"1111", "qwerty", "abc123", "100", "101", "1000", "1001", "1002", "sip", "voip",
	"test", "pass", "secret", "letmein", "welcome", "000000", "111111", "654321",
}

// AttackerKinds lists the attacker names Scenario.Attackers accepts.
var AttackerKinds = []string{"scanner", "cracker", "enumerator", "flooder"}

// Scenario describes a mixed run of legitimate phones and attackers.
type Scenario struct {
	// Target is the SIP server or guard, "udp://ip:port".
	Target string
	// Domain is the SIP domain; empty means the target IP.
	Domain string
	// Accounts are the credentials phones use, round robin; empty means
	// DemoAccounts.
	Accounts []Account
	// Phones is how many phones register and place calls.
	Phones int
	// TypoPhones is how many further phones use a wrong password (a user's
	// typo): they try to register once per call interval.
	TypoPhones int
	// Attackers names the attackers to run, each from its own address:
	// scanner, cracker, enumerator, flooder (repeat a name for more).
	Attackers []string
	// Duration bounds the whole run; zero means 20 s.
	Duration time.Duration
	// CallEvery is the pause between a phone's calls; zero means 5 s.
	CallEvery time.Duration
	// Number is the number phones call; empty means "00441632960123".
	Number string
	// Hold is how long each call stays up; zero means 1 s.
	Hold time.Duration
	// SourceBase is the first source address; zero means 127.0.0.10.
	SourceBase netip.Addr
	// Logger receives progress logs; nil discards them.
	Logger *slog.Logger
}

// Report is the outcome of a scenario.
type Report struct {
	Target  netip.AddrPort
	Phones  []PhoneReport
	Attacks []AttackReport
	Errors  []string
	Elapsed time.Duration
}

// String renders the report as lines for a terminal.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "target %s, %v\n", r.Target, r.Elapsed.Round(time.Millisecond))
	for _, p := range r.Phones {
		b.WriteString("  " + p.String() + "\n")
	}
	for _, a := range r.Attacks {
		b.WriteString("  " + a.String() + "\n")
	}
	for _, e := range r.Errors {
		b.WriteString("  error: " + e + "\n")
	}
	return b.String()
}

// Run plays the scenario against its target and returns what every party
// saw. It returns an error only for an invalid scenario or when no source
// address could be bound; failures of individual calls and registrations
// are part of the report.
func Run(ctx context.Context, s Scenario) (Report, error) {
	target, err := ParseTarget(s.Target)
	if err != nil {
		return Report{}, err
	}
	for _, a := range s.Attackers {
		if !slices.Contains(AttackerKinds, a) {
			return Report{}, fmt.Errorf("sim: unknown attacker %q (want one of %s)", a, strings.Join(AttackerKinds, ", "))
		}
	}
	if s.Duration <= 0 {
		s.Duration = 20 * time.Second
	}
	if s.CallEvery <= 0 {
		s.CallEvery = 5 * time.Second
	}
	if s.Hold <= 0 {
		s.Hold = time.Second
	}
	if s.Number == "" {
		s.Number = "00441632960123"
	}
	if len(s.Accounts) == 0 {
		s.Accounts = DemoAccounts()
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	log := s.Logger.With("component", "sim")
	ctx, cancel := context.WithTimeout(ctx, s.Duration)
	defer cancel()
	srcs := &Sources{Base: s.SourceBase}
	start := time.Now()

	var (
		mu      sync.Mutex
		rep     = Report{Target: target}
		wg      sync.WaitGroup
		phones  []*Phone
		onError = func(err error) {
			mu.Lock()
			defer mu.Unlock()
			rep.Errors = append(rep.Errors, err.Error())
		}
	)
	for i := range s.Phones + s.TypoPhones {
		acc := s.Accounts[i%len(s.Accounts)]
		if i >= s.Phones {
			acc.Password += "x" // the typo
		}
		ph := NewPhone(PhoneConfig{Account: acc.User, Password: acc.Password, Target: target,
			Source: srcs.Next(), Domain: s.Domain, Logger: s.Logger})
		if err := ph.Start(ctx); err != nil {
			return rep, err
		}
		phones = append(phones, ph)
		wg.Go(func() { runPhone(ctx, ph, s, log) })
	}
	for _, kind := range s.Attackers {
		a := Attack{Target: target, Source: srcs.Next()}
		wg.Go(func() {
			r, err := runAttacker(ctx, kind, a, s)
			if err != nil {
				onError(err)
			}
			log.Info("attacker finished", "report", r.String())
			mu.Lock()
			rep.Attacks = append(rep.Attacks, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, ph := range phones {
		rep.Phones = append(rep.Phones, ph.Report())
	}
	slices.SortFunc(rep.Attacks, func(a, b AttackReport) int { return a.Source.Compare(b.Source) })
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// runPhone registers, re-registers at half the expiry, and calls every
// s.CallEvery until ctx ends. Outcomes land in the phone's report.
func runPhone(ctx context.Context, ph *Phone, s Scenario, log *slog.Logger) {
	refresh := time.Duration(ph.cfg.Expires) * time.Second / 2
	registered := ph.Register(ctx) == nil
	lastReg := time.Now()
	for ctx.Err() == nil {
		if !registered || time.Since(lastReg) >= refresh {
			registered = ph.Register(ctx) == nil
			lastReg = time.Now()
		}
		if registered {
			if err := ph.Call(ctx, s.Number, s.Hold); err != nil && ctx.Err() == nil {
				log.Debug("call failed", "account", ph.Account(), "error", err)
			}
		}
		if !pause(ctx, s.CallEvery) {
			break
		}
	}
	if registered {
		unreg, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = ph.Unregister(unreg)
	}
}

func runAttacker(ctx context.Context, kind string, a Attack, s Scenario) (AttackReport, error) {
	switch kind {
	case "scanner":
		return Scanner{Attack: a, Probes: 5}.Run(ctx)
	case "cracker":
		return Cracker{Attack: a, Account: s.Accounts[0].User, Passwords: CommonPasswords, Domain: s.Domain}.Run(ctx)
	case "enumerator":
		return Enumerator{Attack: a, Extensions: append(Extensions(100, 120), Extensions(1000, 1020)...), Domain: s.Domain}.Run(ctx)
	default:
		return Flooder{Attack: a, Rate: 200, Count: 2000}.Run(ctx)
	}
}
