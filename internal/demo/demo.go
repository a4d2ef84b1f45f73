// Package demo runs `tollguard demo`: the daemon in front of the built-in demo
// PBX on loopback, with simulated phones and attackers.
package demo

import (
	"context"
	"flag"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/daemon"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

// The demo's cast, each on its own loopback address so bans by address mean
// something.
var (
	demoAccounts = map[string]string{"1001": "Vx7#pR2qLm", "1002": "Tb4$kW9zNe", "1003": "Qm8!sD3yHc"}
	demoPhones   = []struct {
		account, source, password string
	}{
		{"1001", "127.0.0.11", ""}, {"1002", "127.0.0.12", ""}, {"1003", "127.0.0.13", ""},
	}
	demoHoneypot = "9999"
)

// Commands returns the demo command main adds to the CLI.
func Commands() []cli.Command {
	return []cli.Command{
		{Name: "demo", Args: "[--keep] [-v]", Summary: "guard + demo PBX + simulated phones and attackers, on loopback, embedded defaults", Run: runDemo},
	}
}

func runDemo(ctx context.Context, e *cli.Env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "keep the guard running after the scenario and play a small mix of attacks and phones round after round (Ctrl-C to stop); try the client commands meanwhile")
	verbose := fs.Bool("v", false, "show the guard's own log")
	if _, err := e.Parse(fs, args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tollguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	logw := io.Discard
	if *verbose {
		logw = e.Stderr
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	out := e.Stdout
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The PBX: a registrar with digest auth that answers calls.
	p, err := pbx.New(pbx.Options{Addr: "udp://127.0.0.1:0", Realm: "demo.tollguard", Accounts: demoAccounts, Logger: log})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx) })
	<-p.Ready()

	cfg := config.Default()
	cfg.DataDir = dir
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = p.Target()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Honeypot.Accounts = []string{demoHoneypot}
	g, err := daemon.New(ctx, cfg, daemon.Options{Logger: log})
	if err != nil {
		return err
	}
	gerr := make(chan error, 1)
	go func() { gerr <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-gerr:
		return err
	}
	var guardAddr netip.AddrPort
	for _, a := range g.SIPAddrs() {
		guardAddr = a.(*net.UDPAddr).AddrPort()
	}
	fmt.Fprintf(out, "tollguard demo: guard on udp://%s in front of the demo PBX on %s (admin API http://%s)\n\n",
		guardAddr, p.Target(), g.AdminAddr())

	step := func(s string) { fmt.Fprintf(out, "── %s\n", s) }
	step("legitimate phones register and call through the guard")
	var phones []*sim.Phone
	for _, ph := range demoPhones {
		pw := demoAccounts[ph.account]
		phone := sim.NewPhone(sim.PhoneConfig{Account: ph.account, Password: pw, Target: guardAddr,
			Source: netip.MustParseAddr(ph.source), Domain: p.Realm(), UserAgent: "Yealink SIP-T46U 108.86.0.20", Logger: log})
		if err := phone.Start(ctx); err != nil {
			return fmt.Errorf("starting phone %s: %w", ph.account, err)
		}
		phones = append(phones, phone)
		if err := phone.Register(ctx); err != nil {
			fmt.Fprintf(out, "   %s: register failed: %v\n", ph.account, err)
			continue
		}
		if err := phone.Call(ctx, "13800138000", 300*time.Millisecond); err != nil {
			fmt.Fprintf(out, "   %s: call failed: %v\n", ph.account, err)
		}
	}
	for _, ph := range phones {
		fmt.Fprintf(out, "   %s\n", ph.Report())
	}
	step("the PBX calls phone 1002 (PBX → guard → phone, routed by the Path the guard added)")
	if err := p.Call(ctx, "1002"); err != nil {
		fmt.Fprintf(out, "   call failed: %v\n", err)
	} else {
		fmt.Fprintf(out, "   1002 answered and the call ended normally\n")
	}

	step("a user mistypes the password twice: not banned (3 failures in 60s are needed)")
	typo := sim.NewPhone(sim.PhoneConfig{Account: "1003", Password: "qm8!sd3yhc", Target: guardAddr,
		Source: netip.MustParseAddr("127.0.0.14"), Domain: p.Realm(), Logger: log})
	if err := typo.Start(ctx); err == nil {
		_ = typo.Register(ctx)
		_ = typo.Register(ctx)
		fmt.Fprintf(out, "   %s\n", typo.Report())
	}

	step("attackers, each from its own address")
	atk := func(src string) sim.Attack {
		return sim.Attack{Target: guardAddr, Source: netip.MustParseAddr(src), Timeout: 300 * time.Millisecond, Silence: 3}
	}
	reports := []func() (sim.AttackReport, error){
		func() (sim.AttackReport, error) { return sim.Scanner{Attack: atk("127.0.0.66"), Probes: 5}.Run(ctx) },
		func() (sim.AttackReport, error) {
			return sim.Cracker{Attack: atk("127.0.0.67"), Account: "1001", Domain: p.Realm(),
				Passwords: []string{"1234", "1001", "password", "123456", "admin", "1001pass", "Vx7#pR2qLm"}}.Run(ctx)
		},
		func() (sim.AttackReport, error) {
			// svwar keeps sweeping; its challenges go unanswered, and the
			// engine bans it once they stay so for 5 s.
			a := atk("127.0.0.68")
			a.Interval = 100 * time.Millisecond
			return sim.Enumerator{Attack: a, Extensions: sim.Extensions(100, 199), Domain: p.Realm(), UserAgent: "Z 5.4.12 v2.10.20.4"}.Run(ctx)
		},
		func() (sim.AttackReport, error) {
			return sim.Cracker{Attack: atk("127.0.0.69"), Account: demoHoneypot, Domain: p.Realm(), Passwords: []string{"9999", "1234"}, UserAgent: "Grandstream GXP2160"}.Run(ctx)
		},
	}
	for _, run := range reports {
		r, err := run()
		if err != nil {
			fmt.Fprintf(out, "   attacker error: %v\n", err)
			continue
		}
		fmt.Fprintf(out, "   %s\n", r)
	}

	step("the phones keep working while attackers are stopped")
	for _, ph := range phones {
		if err := ph.Call(ctx, "13800138000", 100*time.Millisecond); err != nil {
			fmt.Fprintf(out, "   %s: call failed: %v\n", ph.Account(), err)
		} else {
			fmt.Fprintf(out, "   %s: call answered\n", ph.Account())
		}
	}

	step("dropped at their first packet without a ban (over UDP a source address can be forged)")
	for _, rule := range []string{"scanner", "honeypot"} {
		fmt.Fprintf(out, "   %-9s %d requests dropped\n", rule, droppedBy(g.Registry(), rule))
	}

	step("held until retransmitted (greylisting: phones retransmit over UDP as RFC 3261 requires, attack tools do not)")
	fmt.Fprintf(out, "   %-9s %d requests held, %d retransmissions of phones let through\n", "greylist",
		verdicts(g.Registry(), "drop", "greylist"), verdicts(g.Registry(), "pass", "greylist"))

	step("bans in force")
	bans := g.Set().List(time.Now())
	for _, d := range bans {
		fmt.Fprintf(out, "   %-22s %-10s rule=%-20s for %-9s %s\n", d.Target(), d.Scope, d.Rule, time.Until(d.Until).Round(time.Minute), d.Reason)
	}
	if len(bans) == 0 {
		fmt.Fprintf(out, "   none: every attacker above was dropped or held before it could fail a password\n")
	}
	st := p.Stats()
	fmt.Fprintf(out, "\nThe PBX saw %d wrong-password or unknown-account requests in all; every other attempt was stopped by the guard\n", st.AuthFailures)
	fmt.Fprintf(out, "(dropped, banned, or held by greylisting: an attacker that never retransmits is never banned, and never reaches the PBX).\n")
	fmt.Fprintf(out, "It answered %d calls and %d registrations.\n", st.CallsAnswered, st.RegistersOK)

	if *keep {
		fmt.Fprintf(out, "\nThe guard keeps running, attacks and phones keep coming. Try:\n  go run ./cmd/tollguard bans --admin http://%s --token-file %s/admin.token\nCtrl-C stops it.\n", g.AdminAddr(), dir)
		var accounts []sim.Account
		for u, pw := range demoAccounts {
			accounts = append(accounts, sim.Account{User: u, Password: pw})
		}
		lab := sim.Lab{Target: guardAddr, Domain: p.Realm(), Accounts: accounts, Reached: pbxReached(p)}
		if err := sim.Continuous(ctx, lab, sim.DemoMix(), out); err != nil {
			fmt.Fprintf(out, "mix: %v\n", err)
		}
		<-ctx.Done()
	}
	cancel()
	err = <-gerr
	wg.Wait()
	return err
}

// droppedBy returns how many requests the engine dropped by rule, from its
// verdict counter.
func droppedBy(reg *prometheus.Registry, rule string) int { return verdicts(reg, "drop", rule) }

// verdicts returns the engine's verdict counter for action and rule.
func verdicts(reg *prometheus.Registry, action, rule string) int {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != "tollguard_engine_verdicts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var a, r string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "action":
					a = l.GetValue()
				case "rule":
					r = l.GetValue()
				}
			}
			if a == action && r == rule {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}
