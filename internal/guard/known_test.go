package guard

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

// TestKnownSurvivesRestart: a phone registers, the guard restarts, the
// account gets locked; the phone still registers from its usual address
// (the guard reloaded the store's registrations), while a new address is
// refused (new_sources 0 turns the new-address budget off).
func TestKnownSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	p, err := pbx.New(pbx.Options{Accounts: map[string]string{"1001": "Vx7#pR2qLm"}})
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	<-p.Ready()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = p.Target()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Distributed.NewSources = 0
	start := func() (*Guard, netip.AddrPort, context.CancelFunc, chan error) {
		t.Helper()
		gctx, cancel := context.WithCancel(ctx)
		g, err := New(gctx, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- g.Run(gctx) }()
		select {
		case <-g.Ready():
		case err := <-done:
			t.Fatal(err)
		}
		var a netip.AddrPort
		for _, v := range g.SIPAddrs() {
			a = v.(*net.UDPAddr).AddrPort()
		}
		return g, a, cancel, done
	}
	phone := netip.MustParseAddr("127.0.0.21")
	_, addr, stop, done := start()
	if res, err := sim.RegisterOnce(ctx, phone, addr, p.Realm(), "1001", "Vx7#pR2qLm", nil); err != nil || res.Code != 200 {
		t.Fatalf("first registration: %v %+v", err, res)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g, addr, stop, done := start()
	defer func() { stop(); <-done }()
	now := time.Now()
	g.Set().Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1001", Origin: decision.OriginEngine,
		Rule: "distributed", At: now, Until: now.Add(time.Hour), Count: 1})
	if res, err := sim.RegisterOnce(ctx, phone, addr, p.Realm(), "1001", "Vx7#pR2qLm", nil); err != nil || res.Code != 200 {
		t.Fatalf("the phone's usual address after a restart, account locked: %v %+v", err, res)
	}
	if res, err := sim.RegisterOnce(ctx, netip.MustParseAddr("127.0.0.22"), addr, p.Realm(), "1001", "Vx7#pR2qLm", nil); err == nil && res.Code == 200 {
		t.Fatal("a new address registered while the account is locked with no budget")
	}
}

func TestProvenOnly(t *testing.T) {
	var got []decision.Decision
	a := provenOnly{decision.ApplierFunc(func(d decision.Decision) { got = append(got, d) })}
	a.Apply(decision.Decision{Rule: "proven"})
	a.Apply(decision.Decision{Rule: "forged?", Unproven: true})
	if len(got) != 1 || got[0].Rule != "proven" {
		t.Errorf("passed on %v", got)
	}
}
