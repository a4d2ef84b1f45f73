package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/store"
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
		return runGuard(t, ctx, cfg)
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

// TestReloadKnownPages reads the registrations a page at a time: every
// address, over several pages, ends up known; older than
// distributed.remember does not.
func TestReloadKnownPages(t *testing.T) {
	ctx := t.Context()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Distributed.NewSources = 0
	cfg.Distributed.Remember = config.Duration(24 * time.Hour)
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}) }
	for i := range 5 {
		at := now.Add(time.Duration(i-4) * time.Hour)
		if i == 0 {
			at = now.Add(-48 * time.Hour) // beyond remember
		}
		st.Record(&event.Register{Meta: event.Meta{Time: at, Source: netip.AddrPortFrom(addr(i), 5060)},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1001", FromUser: "1001", AuthUser: "1001", HasCredentials: true}, Account: "1001"})
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	set := decision.NewSet()
	g := &Guard{st: st, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	if g.eng, err = engine.New(cfg, engine.Options{Set: set, Now: g.now}); err != nil {
		t.Fatal(err)
	}
	defer func(p int) { knownPage = p }(knownPage)
	knownPage = 2
	if err := g.reloadKnown(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	set.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1001", At: now, Until: now.Add(time.Hour)})
	for i := range 5 {
		v := g.eng.Check(ctx, &event.Request{Meta: event.Meta{Time: now, Source: netip.AddrPortFrom(addr(i), 5060)},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1001", FromUser: "1001", AuthUser: "1001", HasCredentials: true}})
		if want := i > 0; (v.Action == engine.Pass) != want {
			t.Errorf("address %d (registered %s): %+v", i, map[bool]string{true: "within remember", false: "too long ago"}[want], v)
		}
	}
}
