package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

// TestBansSurviveRestart bans a cracker through the engine, stops the
// guard, starts a new one on the same data_dir: the ban is back, with its
// expiry, and unbanning through the ban service lets the address in at once.
func TestBansSurviveRestart(t *testing.T) {
	ctx := t.Context()
	p, err := pbx.New(pbx.Options{Accounts: map[string]string{"1001": "Vx7#pR2qLm"}})
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	<-p.Ready()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = p.Target()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Jail.RegisterFailure[0].BanMode = "ip"
	// The subject is the jail's ban: the cracker does not retransmit, so
	// greylisting would hold its guesses and nothing would fail.
	cfg.Greylist.Enabled = false

	start := func() (*Guard, netip.AddrPort, context.CancelFunc, chan error) {
		t.Helper()
		return runGuard(t, ctx, cfg)
	}
	g, addr, stop, done := start()
	attacker := netip.MustParseAddr("127.0.0.77")
	r, err := sim.Cracker{Attack: sim.Attack{Target: addr, Source: attacker, Timeout: 300 * time.Millisecond},
		Account: "1001", Domain: p.Realm(), Passwords: []string{"a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8"}}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Banned || r.Answers[403] != 3 {
		t.Fatalf("cracker: %v; want 3 refusals then silence", r)
	}
	if _, ok := g.Set().Banned(attacker, time.Now()); !ok {
		t.Fatal("attacker not in the ban set")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("clean shutdown: %v", err)
	}

	g, addr, stop, done = start()
	defer func() { stop(); <-done }()
	d, ok := g.Set().Banned(attacker, time.Now())
	if !ok {
		t.Fatal("ban lost across restart")
	}
	if left := time.Until(d.Until); left <= 0 || left > cfg.Jail.RegisterFailure[0].BanTime.D() {
		t.Errorf("restored ban has %v left", left)
	}
	if _, err := sim.RegisterOnce(ctx, attacker, addr, p.Realm(), "1001", "Vx7#pR2qLm", nil); err == nil {
		t.Fatal("banned address registered after the restart")
	}
	lifted, err := banService{g}.Unban(ctx, attacker, "", "test")
	if err != nil || len(lifted) != 1 {
		t.Fatalf("unban: %v %v", lifted, err)
	}
	if res, err := sim.RegisterOnce(ctx, attacker, addr, p.Realm(), "1001", "Vx7#pR2qLm", nil); err != nil || res.Code != 200 {
		t.Fatalf("after unban the address cannot register: %v %+v", err, res)
	}
}

// TestOperatorBanRefusesAllowed checks the upstream and allow-listed
// addresses cannot be banned by hand either.
func TestOperatorBanRefusesAllowed(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = nil
	cfg.Admin.Listen = "127.0.0.1:0"
	g, err := New(t.Context(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.st.Close()
	_, err = banService{g}.Ban(t.Context(), api.BanRequest{IP: netip.MustParseAddr("127.0.0.1"), For: time.Hour})
	if err == nil {
		t.Fatal("banned the upstream's address")
	}
	d, err := banService{g}.Ban(t.Context(), api.BanRequest{IP: netip.MustParseAddr("198.51.100.7"), For: time.Hour})
	if err != nil || d.Scope != decision.ScopeIP {
		t.Fatalf("ban: %+v %v", d, err)
	}
}

// runGuard starts a daemon on cfg under ctx and waits until it is ready.
// It returns the daemon, its UDP listener's address, and what stops it and
// reports how it ended, for tests that stop and start it again.
func runGuard(t testing.TB, ctx context.Context, cfg *config.Config) (*Guard, netip.AddrPort, context.CancelFunc, chan error) {
	t.Helper()
	gctx, cancel := context.WithCancel(ctx)
	g, err := New(gctx, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(gctx) }()
	select {
	case <-g.Ready():
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	var a netip.AddrPort
	for _, v := range g.SIPAddrs() {
		a = v.(*net.UDPAddr).AddrPort()
	}
	return g, a, cancel, done
}
