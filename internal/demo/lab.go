package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/daemon"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

// StartLab starts the demo PBX with sim.StandardAccounts and a guard with
// the default configuration in front of it, both on loopback, for
// `tollguard simulate` without --target and for tests. protect false leaves
// the guard out (the parties talk to the PBX directly). stop shuts both
// down and removes the guard's data directory.
func StartLab(ctx context.Context, protect bool, log *slog.Logger) (lab sim.Lab, stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	fail := func(err error) (sim.Lab, func() error, error) {
		cancel()
		wg.Wait()
		return sim.Lab{}, nil, err
	}
	p, err := pbx.New(pbx.Options{Addr: "udp://127.0.0.1:0", Realm: "lab.tollguard", Accounts: sim.AccountMap(sim.StandardAccounts()), Logger: log})
	if err != nil {
		return fail(err)
	}
	pbxErr := make(chan error, 1)
	wg.Go(func() { pbxErr <- p.Run(ctx) })
	select {
	case <-p.Ready():
	case err := <-pbxErr:
		return fail(err)
	}
	lab = sim.Lab{Target: p.Addr(), Domain: p.Realm(), Accounts: sim.StandardAccounts(), Reached: pbxReached(p)}
	if !protect {
		return lab, func() error { cancel(); wg.Wait(); return nil }, nil
	}
	dir, err := os.MkdirTemp("", "tollguard-lab-")
	if err != nil {
		return fail(err)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = p.Target()
	cfg.Admin.Listen = "127.0.0.1:0"
	// The one call rule an operator adds first: no calls to premium,
	// satellite and the usual IRSF ranges (examples/tollguard.yaml).
	cfg.CallPolicy.Rules = []config.CallRule{{Name: "high-risk", Action: "reject",
		Match: config.CallMatch{Destinations: []string{"premium", "satellite", "high_risk"}}}}
	g, err := daemon.New(ctx, cfg, daemon.Options{Logger: log})
	if err != nil {
		os.RemoveAll(dir)
		return fail(fmt.Errorf("starting the guard: %w", err))
	}
	gerr := make(chan error, 1)
	go func() { gerr <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-gerr:
		os.RemoveAll(dir)
		return fail(err)
	}
	for _, a := range g.SIPAddrs() {
		lab.Target = a.(*net.UDPAddr).AddrPort()
	}
	lab.Direct = p.Addr()
	return lab, func() error {
		cancel()
		err := <-gerr
		wg.Wait()
		os.RemoveAll(dir)
		return err
	}, nil
}

// pbxReached reads the PBX's per-origin counters for sim.Lab.Reached.
func pbxReached(p *pbx.PBX) func() map[netip.Addr]sim.Reach {
	return func() map[netip.Addr]sim.Reach {
		out := map[netip.Addr]sim.Reach{}
		for a, o := range p.Origins() {
			out[a] = sim.Reach{Requests: int(o.Requests), CallsAnswered: int(o.CallsAnswered)}
		}
		return out
	}
}
